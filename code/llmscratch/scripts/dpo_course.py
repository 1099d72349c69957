"""DPO on the course's preference pairs from the instruction-tuned model: a β sweep, seeds, and an SFT control.

    python -m llmscratch.scripts.dpo_course            # writes data/part5_dpo.json and data/part5_dpo.pt
    python -m llmscratch.scripts.dpo_course --jobs 2

Every run starts from the committed instruction-tuned course model (`llmscratch.sft.load_sft_model`),
which is also DPO's frozen reference, and trains on the training pairs of
`llmscratch.pairs.make_pairs` (seed 0) with `DPO_TRAIN`:

- DPO at each β of `BETAS` (seed 42), and at `MAIN_BETA` with every seed of `SEEDS`;
- the control, with every seed: supervised fine-tuning on the same pairs' chosen responses only
  (`llmscratch.sft.InstructionBatches`, prompt masked), the same steps and learning rate, and a
  batch of 2B texts, as many as DPO's policy reads per step.

Each model is scored on the held-out pairs (preference accuracy by implicit reward, per kind;
the mean margin between the chosen and rejected rewards, at the run's β), by how far it moved
(`llmscratch.preferences.response_kl` on the held-out chosen texts), on the held-out
instructions (`llmscratch.sft.evaluate_instructions`: exact match per task, format, stopping),
and on Tiny Shakespeare's validation split. The control's implicit rewards are measured at
`MAIN_BETA`. Every trained model is scored with its weights rounded to float16; the .pt file
holds DPO at `MAIN_BETA`, seed 42, in float16.
"""

import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import torch

from ..comparisons import rung_loss
from ..data import load_text
from ..experiments import shakespeare_bpe_splits
from ..fileio import atomic_path
from ..instructions import Example, make_instructions
from ..pairs import make_pairs
from ..preferences import response_kl
from ..reward import DPOModel, PairBatches, score_pairs
from ..sft import InstructionBatches, evaluate_instructions, load_sft_model, round_to_float16
from ..training import TrainConfig, train
from .cli import commit_result, default_out, map_jobs, script_parser, start
from .reward_model import pair_accuracy

MODULE = "llmscratch.scripts.dpo_course"
OUT = "data/part5_dpo.json"

DPO_TRAIN = TrainConfig(steps=100, batch_size=8, learning_rate=1e-4, warmup_steps=10, min_lr_ratio=0.1,
                        weight_decay=0.0, eval_interval=50, eval_batches=4, seed=42)
BETAS = (0.03, 0.1, 0.3, 1.0)
MAIN_BETA = 0.1
SEEDS = (42, 43, 44)
MAX_NEW_TOKENS = 48


def scores(policy: torch.nn.Module, reference: torch.nn.Module, tokenizer: Any, data: dict, pairs: dict,
           splits: dict, beta: float) -> dict[str, Any]:
    """What the module lists for one model: held-out preferences, KL to the reference, instructions, Shakespeare."""
    batches = PairBatches({"val": pairs["val"]}, tokenizer, policy.context_length)
    judge = DPOModel(policy, beta, reference=reference)
    implicit = score_pairs(judge, batches, pairs["val"])
    kl_sum, tokens = 0.0, 0
    for i in range(0, len(pairs["val"]), 32):  # KL on the held-out chosen texts, 32 at a time
        x, y = batches.batch(pairs["val"][i: i + 32])
        chosen_x, chosen_mask = x[: len(x) // 2], y[: len(x) // 2].bool()
        n = int(chosen_mask[:, 1:].sum())
        kl_sum += response_kl(policy.eval(), reference.eval(), chosen_x, chosen_mask) * n
        tokens += n
    kl = kl_sum / tokens
    report = evaluate_instructions(policy, tokenizer, data["val"], MAX_NEW_TOKENS, use_cache=True)
    return {"preference": pair_accuracy(implicit, [p.kind for p in pairs["val"]]),
            "margin": float((implicit[:, 0] - implicit[:, 1]).mean()), "kl": kl,
            "exact": report["exact"], "format": report["format"], "stopped": report["stopped"],
            "tasks": report["tasks"], "shakespeare_val": rung_loss(policy, splits)}


def _one_run(method: str, beta: float, cfg: TrainConfig, device: str, threads: int, progress: bool,
             keep: bool) -> dict[str, Any]:
    torch.set_num_threads(threads)
    _, splits, _ = shakespeare_bpe_splits()
    data = make_instructions(load_text("tinyshakespeare"))
    pairs = make_pairs(data)
    policy, tokenizer = load_sft_model()
    reference, _ = load_sft_model()
    t0 = time.time()
    if method == "dpo":
        model: torch.nn.Module = DPOModel(policy, beta, reference=reference)
        batches: Any = PairBatches(pairs, tokenizer, policy.context_length)
    else:  # the control: the chosen responses as instruction data, twice the batch (DPO reads 2B texts a step)
        chosen = {s: [Example(p.example.task, p.example.instruction, p.chosen) for p in v] for s, v in pairs.items()}
        model, batches = policy, InstructionBatches(chosen, tokenizer, policy.context_length)
        cfg = replace(cfg, batch_size=2 * cfg.batch_size)
    history = train(model.to(device), batches, cfg, progress=progress, desc=f"{method} beta {beta} seed {cfg.seed}")
    seconds = time.time() - t0
    policy = policy.cpu().eval()
    round_to_float16(policy)
    result = scores(policy, reference, tokenizer, data, pairs, splits, beta)
    print(f"{method:4s} beta {beta:<5g} seed {cfg.seed}  preference {result['preference']['all']:.3f}  "
          f"margin {result['margin']:.3f}  kl {result['kl']:.4f}  exact {result['exact']:.3f}  "
          f"format {result['format']:.3f}  shakespeare {result['shakespeare_val']:.4f}  ({seconds:.0f} s)", flush=True)
    return {**result, "method": method, "beta": beta, "seed": cfg.seed, "train_seconds": round(seconds, 1),
            "curve": {"step": history.eval_step, "train": history.eval_train, "val": history.eval_val},
            "weights": {k: v.half() for k, v in policy.state_dict().items()} if keep else None}


def main(argv: Sequence[str] | None = None) -> int:
    parser = script_parser(MODULE, __doc__)
    parser.add_argument("--seeds", type=int, nargs="+", default=list(SEEDS),
                        help=f"default {' '.join(map(str, SEEDS))}")
    parser.add_argument("--betas", type=float, nargs="+", default=list(BETAS),
                        help=f"default {' '.join(map(str, BETAS))}")
    parser.add_argument("--jobs", type=int, default=1, help="runs trained at once, in separate processes (default 1)")
    args = parser.parse_args(argv)
    device, started = start(args)
    cfg = replace(DPO_TRAIN, steps=args.steps) if args.steps else DPO_TRAIN
    _, splits, _ = shakespeare_bpe_splits()
    data = make_instructions(load_text("tinyshakespeare"))
    pairs = make_pairs(data)
    base, tokenizer = load_sft_model()
    reference, _ = load_sft_model()
    before = scores(base, reference, tokenizer, data, pairs, splits, MAIN_BETA)
    print(f"sft model  exact {before['exact']:.3f}  format {before['format']:.3f}  "
          f"shakespeare {before['shakespeare_val']:.4f}", flush=True)
    first = args.seeds[0]
    runs_wanted = [("dpo", beta, first) for beta in args.betas]
    runs_wanted += [("dpo", MAIN_BETA, seed) for seed in args.seeds[1:]]
    runs_wanted += [("sft", MAIN_BETA, seed) for seed in args.seeds]
    calls = [(method, beta, replace(cfg, seed=seed), str(device), args.threads,
              not args.no_progress and args.jobs == 1, method == "dpo" and beta == MAIN_BETA and seed == first)
             for method, beta, seed in runs_wanted]
    runs = map_jobs(_one_run, calls, args.jobs)
    kept = next((r.pop("weights") for r in runs if r["weights"] is not None), None)
    for r in runs:
        r.pop("weights", None)
    result: dict[str, Any] = {
        "what": "DPO on the course's preference pairs (llmscratch.pairs, seed 0) from the instruction-tuned course "
                "model (also the frozen reference): a beta sweep at one seed, seeds at the main beta, and the control "
                "(SFT on the chosen responses, same steps, twice the batch); scored on held-out pairs, held-out "
                "instructions and Tiny Shakespeare's validation split",
        "train_config": asdict(cfg),
        "main_beta": MAIN_BETA,
        "max_new_tokens": MAX_NEW_TOKENS,
        "sft_model": before,
        "runs": runs,
    }
    out = Path(args.out) if args.out else default_out(OUT)
    if kept is not None:
        with atomic_path(out.with_suffix(".pt")) as tmp:
            torch.save({"model_config": asdict(base.config), "model": kept}, tmp)
    commit_result(out, result, MODULE, argv, started, None, device)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""GRPO with an exact verifier on the course's checkable tasks, from the instruction-tuned model, 3 seeds.

    python -m llmscratch.scripts.grpo_course           # writes data/part5_grpo.json
    python -m llmscratch.scripts.grpo_course --jobs 2

Every run starts from the committed instruction-tuned course model (`llmscratch.sft.load_sft_model`),
also the frozen reference, and trains with `llmscratch.verifier.train_grpo` and `GRPO` on the
training examples of the exact tasks (`llmscratch.instructions.EXACT_TASKS`, seed 0). Every
`EVAL_EVERY` steps it is scored on the held-out examples of those tasks, two ways:

- greedy: exact match of the greedy answer (what the other chapters report);
- sampled: the share of right answers among `SAMPLES` answers per prompt sampled at the training
  temperature (the quantity GRPO raises: its reward, on held-out prompts).

Compute is counted in tokens through the model: every GRPO step generates (one forward per
token, with the KV cache), then runs the sampled rows forward and backward through the policy
and forward through the reference. The chapter turns these counts into FLOPs and compares them
with DPO's and SFT's in `data/part5_dpo.json`.

The JSON holds each seed's training history (reward, KL, informative groups, tokens) and its
held-out scores along the way, and the provenance. No weights are kept.
"""

import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import torch

from ..data import load_text
from ..instructions import EXACT_TASKS, make_instructions
from ..sft import evaluate_instructions, load_sft_model
from ..verifier import GRPOConfig, train_grpo
from .cli import commit_result, default_out, map_jobs, script_parser, start

MODULE = "llmscratch.scripts.grpo_course"
OUT = "data/part5_grpo.json"

GRPO = GRPOConfig(steps=80, prompts_per_step=8, group_size=8, temperature=1.0, max_new_tokens=12,
                  learning_rate=2e-5, kl_weight=0.04, seed=42)
SEEDS = (42, 43, 44)
EVAL_EVERY = 20
SAMPLES = 4


def held_out_scores(model: torch.nn.Module, tokenizer: Any, examples: list, cfg: GRPOConfig,
                    seed: int) -> dict[str, Any]:
    """Greedy exact match, and the share of right answers among `SAMPLES` sampled ones, overall and per task."""
    greedy = evaluate_instructions(model, tokenizer, examples, cfg.max_new_tokens, use_cache=True)
    sampled = evaluate_instructions(model, tokenizer, [e for e in examples for _ in range(SAMPLES)],
                                    cfg.max_new_tokens, use_cache=True, temperature=cfg.temperature,
                                    generator=torch.Generator().manual_seed(seed))
    return {"greedy": greedy["exact"], "sampled": sampled["exact"],
            "greedy_tasks": {t: v["exact"] for t, v in greedy["tasks"].items()},
            "sampled_tasks": {t: v["exact"] for t, v in sampled["tasks"].items()}}


def _one_run(cfg: GRPOConfig, threads: int, progress: bool) -> dict[str, Any]:
    torch.set_num_threads(threads)
    data = make_instructions(load_text("tinyshakespeare"))
    train_examples = [e for e in data["train"] if e.task in EXACT_TASKS]
    val_examples = [e for e in data["val"] if e.task in EXACT_TASKS]
    policy, tokenizer = load_sft_model()
    evals = [{"step": 0, **held_out_scores(policy, tokenizer, val_examples, cfg, 0)}]

    def on_step(step: int, model: torch.nn.Module) -> None:
        if step % EVAL_EVERY == 0:
            evals.append({"step": step, **held_out_scores(model, tokenizer, val_examples, cfg, step)})

    t0 = time.time()
    history = train_grpo(policy, tokenizer, train_examples, cfg, progress=progress, on_step=on_step)
    seconds = time.time() - t0
    last = evals[-1]
    print(f"seed {cfg.seed}  greedy {evals[0]['greedy']:.3f} -> {last['greedy']:.3f}  "
          f"sampled {evals[0]['sampled']:.3f} -> {last['sampled']:.3f}  kl {history['kl'][-1]:.4f}  "
          f"({seconds:.0f} s with evaluation)", flush=True)
    return {"seed": cfg.seed, "history": history, "evals": evals, "seconds": round(seconds, 1)}


def main(argv: Sequence[str] | None = None) -> int:
    parser = script_parser(MODULE, __doc__)
    parser.add_argument("--seeds", type=int, nargs="+", default=list(SEEDS),
                        help=f"default {' '.join(map(str, SEEDS))}")
    parser.add_argument("--jobs", type=int, default=1, help="runs trained at once, in separate processes (default 1)")
    args = parser.parse_args(argv)
    device, started = start(args)
    if device.type != "cpu":
        raise SystemExit("the GRPO runs are made on the CPU (sampling with the KV cache); use --device cpu")
    cfg = replace(GRPO, steps=args.steps) if args.steps else GRPO
    calls = [(replace(cfg, seed=seed), args.threads, not args.no_progress and args.jobs == 1) for seed in args.seeds]
    runs = map_jobs(_one_run, calls, args.jobs)
    result: dict[str, Any] = {
        "what": "GRPO from the instruction-tuned course model (also the frozen reference), the verifier's exact match "
                "as the reward, on the training examples of the exact tasks (llmscratch.instructions, seed 0); "
                "held-out greedy exact match and sampled accuracy along the way, once per seed",
        "grpo_config": asdict(cfg),
        "eval_every": EVAL_EVERY,
        "samples": SAMPLES,
        "tasks": list(EXACT_TASKS),
        "runs": runs,
    }
    out = Path(args.out) if args.out else default_out(OUT)
    commit_result(out, result, MODULE, argv, started, None, device)
    return 0


if __name__ == "__main__":
    sys.exit(main())

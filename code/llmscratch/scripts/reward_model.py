"""Train a Bradley–Terry reward model on the course's preference pairs, from the instruction-tuned model, 3 seeds.

    python -m llmscratch.scripts.reward_model          # writes data/part5_reward.json and data/part5_reward.pt
    python -m llmscratch.scripts.reward_model --jobs 2

Every run starts from the committed instruction-tuned course model (`llmscratch.sft.load_sft_model`)
and trains a `llmscratch.reward.RewardModel` (its top `TRAINABLE_BLOCKS` blocks, final norm and a
scalar head) on the training pairs of `llmscratch.pairs.make_pairs` (seed 0), with `RM_TRAIN`.
It is scored on the held-out pairs: pairwise accuracy per kind (a tie counts as wrong), and
every held-out response's reward with its length in tokens, to look for a preference for length.
The ablation trains without the ``format`` pairs, the only kind whose rejected response is the
longer one, and is scored on all the held-out pairs.

Baselines, scored on the same held-out pairs: "longer is better" (ties wrong), the
instruction-tuned model's mean log-probability per response token, and a counting bigram fit on
the training pairs' chosen texts (mean log-probability per response token, add-one smoothing).

The JSON has one row per setting with its seeds' accuracies and the first seed's held-out
rewards, the baselines, and the provenance; the .pt file holds what seed 42 of the first
setting trained (the top blocks, the final norm and the head) in float16, which
`llmscratch.reward.load_reward_model` puts on top of the instruction-tuned model. Every reward model is scored with its
weights rounded to float16.
"""

import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import torch

from ..bigram import CountingBigram
from ..data import load_text
from ..fileio import atomic_path
from ..instructions import END, make_instructions
from ..pairs import KINDS, make_pairs
from ..preferences import response_logprobs
from ..reward import PairBatches, RewardModel, encode_pair_texts, score_pairs
from ..sft import load_sft_model
from ..training import TrainConfig, train
from .cli import commit_result, default_out, map_jobs, script_parser, start

MODULE = "llmscratch.scripts.reward_model"
OUT = "data/part5_reward.json"

TRAINABLE_BLOCKS = 2
RM_TRAIN = TrainConfig(steps=200, batch_size=16, learning_rate=3e-4, warmup_steps=20, min_lr_ratio=0.1,
                       weight_decay=0.0, eval_interval=50, eval_batches=4, seed=42)
SEEDS = (42, 43, 44)
SETTINGS: list[tuple[str, tuple[str, ...]]] = [("all four kinds", KINDS),
                                               ("without the format pairs", tuple(k for k in KINDS if k != "format"))]


def pair_accuracy(scores: torch.Tensor, kinds: Sequence[str]) -> dict[str, float]:
    """The share of pairs whose chosen response scores strictly higher, overall and per kind."""
    right = (scores[:, 0] > scores[:, 1]).tolist()
    out = {"all": sum(right) / len(right)}
    for kind in KINDS:
        mine = [r for r, k in zip(right, kinds) if k == kind]
        if mine:
            out[kind] = sum(mine) / len(mine)
    return out


def _lengths(pairs: Sequence, tokenizer: Any, context_length: int) -> torch.Tensor:
    """Response tokens (with the end token) of each pair's chosen and rejected text: (N, 2)."""
    return torch.tensor([[len(ids) - p for ids, p in encode_pair_texts(pair, tokenizer, context_length)]
                         for pair in pairs])


@torch.no_grad()
def _lm_scores(model: torch.nn.Module, batches: PairBatches, pairs: Sequence) -> torch.Tensor:
    """Mean log-probability per response token under a language model: (N, 2)."""
    out = []
    for i in range(0, len(pairs), 32):
        x, y = batches.batch(pairs[i: i + 32])
        per_row = response_logprobs(model, x, y.bool()) / y.sum(dim=1)
        half = len(x) // 2
        out.append(torch.stack([per_row[:half], per_row[half:]], dim=1))
    return torch.cat(out)


def _bigram_scores(pairs: dict[str, list], tokenizer: Any, context_length: int) -> torch.Tensor:
    texts = [encode_pair_texts(p, tokenizer, context_length)[0][0] for p in pairs["train"]]
    bigram = CountingBigram.fit(texts, tokenizer.vocab_size, boundary_id=tokenizer.special_tokens[END])
    logp = bigram.probabilities(smoothing=1.0).log()
    rows = []
    for pair in pairs["val"]:
        row = []
        for ids, prompt_length in encode_pair_texts(pair, tokenizer, context_length):
            t = torch.tensor(ids)
            row.append(float(logp[t[prompt_length - 1:-1], t[prompt_length:]].mean()))
        rows.append(row)
    return torch.tensor(rows)


def _one_run(name: str, kinds: tuple[str, ...], cfg: TrainConfig, device: str, threads: int, progress: bool,
             keep: bool) -> dict[str, Any]:
    torch.set_num_threads(threads)
    base, tokenizer = load_sft_model()
    pairs = make_pairs(make_instructions(load_text("tinyshakespeare")))
    batches = PairBatches(pairs, tokenizer, base.context_length)
    training = PairBatches({"train": [p for p in pairs["train"] if p.kind in kinds], "val": pairs["val"]},
                           tokenizer, base.context_length)
    t0 = time.time()
    rm = RewardModel(base, TRAINABLE_BLOCKS)
    history = train(rm.to(device), training, cfg, progress=progress, desc=f"{name}, seed {cfg.seed}")
    seconds = time.time() - t0
    rm = rm.cpu()
    kept = {k: v.half() for k, v in rm.trainable_state().items()}
    rm.load_state_dict({k: v.float() for k, v in kept.items()}, strict=False)  # scored as stored
    scores = score_pairs(rm, batches, pairs["val"])
    accuracy = pair_accuracy(scores, [p.kind for p in pairs["val"]])
    print(f"{name:26s} seed {cfg.seed}  held-out accuracy {accuracy['all']:.3f}  "
          + "  ".join(f"{k} {accuracy[k]:.3f}" for k in KINDS) + f"  ({seconds:.0f} s)", flush=True)
    return {"accuracy": accuracy, "train_seconds": seconds, "scores": scores.tolist(),
            "curve": {"step": history.eval_step, "train": history.eval_train, "val": history.eval_val},
            "weights": kept if keep else None}


def main(argv: Sequence[str] | None = None) -> int:
    parser = script_parser(MODULE, __doc__)
    parser.add_argument("--seeds", type=int, nargs="+", default=list(SEEDS),
                        help=f"default {' '.join(map(str, SEEDS))}")
    parser.add_argument("--jobs", type=int, default=1, help="runs trained at once, in separate processes (default 1)")
    args = parser.parse_args(argv)
    device, started = start(args)
    cfg = replace(RM_TRAIN, steps=args.steps) if args.steps else RM_TRAIN
    base, tokenizer = load_sft_model()
    pairs = make_pairs(make_instructions(load_text("tinyshakespeare")))
    batches = PairBatches(pairs, tokenizer, base.context_length)
    kinds = [p.kind for p in pairs["val"]]
    lengths = _lengths(pairs["val"], tokenizer, base.context_length)
    baselines = {
        "longer is better": pair_accuracy(lengths.float(), kinds),
        "instruction-tuned model, mean log-probability per token": pair_accuracy(
            _lm_scores(base, batches, pairs["val"]), kinds),
        "counting bigram of the chosen texts, mean log-probability per token": pair_accuracy(
            _bigram_scores(pairs, tokenizer, base.context_length), kinds),
    }
    for name, accuracy in baselines.items():
        print(f"{name}: {accuracy['all']:.3f}", flush=True)
    calls = [(name, kinds_trained, replace(cfg, seed=seed), str(device), args.threads,
              not args.no_progress and args.jobs == 1, i == 0 and seed == args.seeds[0])
             for i, (name, kinds_trained) in enumerate(SETTINGS) for seed in args.seeds]
    runs = map_jobs(_one_run, calls, args.jobs)
    rows = []
    for i, (name, kinds_trained) in enumerate(SETTINGS):
        mine = runs[i * len(args.seeds):(i + 1) * len(args.seeds)]
        rows.append({"name": name, "kinds": list(kinds_trained), "seeds": list(args.seeds),
                     "accuracy": [r["accuracy"] for r in mine],
                     "train_seconds": [round(r["train_seconds"], 1) for r in mine],
                     "curves": [{"seed": s, **r["curve"]} for s, r in zip(args.seeds, mine)],
                     "rewards": mine[0]["scores"]})
    result: dict[str, Any] = {
        "what": "A Bradley-Terry reward model (the instruction-tuned course model's top blocks, final norm and a "
                "scalar head) trained on the course's preference pairs (llmscratch.pairs, seed 0), once per seed, with "
                "all four kinds of pair and without the format pairs; pairwise accuracy on the held-out pairs per kind "
                "(ties count as wrong), against three baselines",
        "train_config": asdict(cfg),
        "trainable_blocks": TRAINABLE_BLOCKS,
        "pairs": {split: {k: sum(p.kind == k for p in v) for k in KINDS} for split, v in pairs.items()},
        "baselines": baselines,
        "held_out": {"kinds": kinds, "lengths": lengths.tolist()},
        "rows": rows,
    }
    out = Path(args.out) if args.out else default_out(OUT)
    with atomic_path(out.with_suffix(".pt")) as tmp:
        torch.save({"trainable_blocks": TRAINABLE_BLOCKS, "weights": runs[0]["weights"]}, tmp)
    commit_result(out, result, MODULE, argv, started, None, device)
    return 0


if __name__ == "__main__":
    sys.exit(main())

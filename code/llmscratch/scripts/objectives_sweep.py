"""Causal, prefix and masked language models on one backbone, three seeds each, at the ladder's budget.

    python -m llmscratch.scripts.objectives_sweep        # writes data/part4_objectives.json and .pt
    python -m llmscratch.scripts.objectives_sweep --jobs 2

Every row (`ENTRIES`) is the ladder's two-block GPT (`llmscratch.comparisons.RUNGS`, untied) with one
extra token, [MASK] (id 512), trained with `llmscratch.comparisons.LADDER_TRAIN` under one
`llmscratch.objectives.Objective`: causal; prefix (a random bidirectional prefix, loss after it);
the prefix model's bug, its loss also inside the prefix; masked at 15% (BERT), 40% and 80%.
Each seed drives the initialisation, the batches and the objective's random choices.

Every trained model is scored on the validation split, cut into 64-token windows (`windows`):

- ``continuation``: the mean loss (nats per token) of tokens 32..63 of the first 256 windows, each
  from everything before it (`objectives.continuation_nlls`);
- ``blank``: the mean loss of token 32 of the first 128 windows, from both sides (`objectives.blank_nlls`);
- ``masked_15``: for masked models, the loss at 15% of the positions of the first 256 windows, all
  replaced by [MASK] (`objectives.masked_nlls`, generator seed 0);
- ``protocol``: for the left-to-right models, the book's protocol loss (`comparisons.rung_loss`);
- ``final_train``: the last training-loss estimate, of each objective's own loss.

The masked model learns from a share of the positions only, so at the same steps it sees far fewer
targets than the causal model (15% as many at a 15% rate). `EXTRA_ENTRIES`, trained only when named,
gives it as many: 10,000 steps at 15% predict about as many tokens as 1,500 causal steps.

    python -m llmscratch.scripts.objectives_sweep --only "masked 15%, 10000 steps" --out data/part4_objectives_long.json

The JSON also holds the counting bigram's continuation and blank losses on the same tokens, the
training curves, and for seed 42 of "causal", "prefix" and "masked 15%" the blank loss of every
window; the .pt file holds those three models' weights, which the chapter scores again.
"""

import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import torch

from ..comparisons import LADDER_TRAIN, RUNGS, SEEDS, rung_loss
from ..config import GPTConfig
from ..datasets import TextBatches
from ..experiments import shakespeare_bpe_splits
from ..fileio import atomic_path
from ..model import GPT
from ..objectives import (
    Objective,
    ObjectiveModel,
    bigram_blank_nlls,
    bigram_continuation_nlls,
    bigram_log_probs,
    blank_nlls,
    continuation_nlls,
    masked_nlls,
)
from ..objectives import windows as cut_windows
from ..training import TrainConfig, train
from .cli import commit_result, default_out, map_jobs, script_parser, start

MODULE = "llmscratch.scripts.objectives_sweep"
OUT = "data/part4_objectives.json"

MASK_ID = 512  # one past the course tokenizer's 512 tokens
CONFIG: GPTConfig = replace(dict(RUNGS)["two blocks"], vocab_size=MASK_ID + 1)
ENTRIES: list[tuple[str, Objective]] = [
    ("causal", Objective("causal", mask_id=MASK_ID)),
    ("prefix", Objective("prefix", mask_id=MASK_ID)),
    ("prefix, loss inside the prefix", Objective("prefix", mask_id=MASK_ID, prefix_loss=True)),
    ("masked 15%", Objective("masked", mask_rate=0.15, mask_id=MASK_ID)),
    ("masked 40%", Objective("masked", mask_rate=0.40, mask_id=MASK_ID)),
    ("masked 80%", Objective("masked", mask_rate=0.80, mask_id=MASK_ID)),
]
# Trained only when asked for (--only), with its own changes to the training config.
EXTRA_ENTRIES: list[tuple[str, Objective, dict[str, Any]]] = [
    ("masked 15%, 10000 steps", Objective("masked", mask_rate=0.15, mask_id=MASK_ID), {"steps": 10_000}),
]
SAVED = ("causal", "prefix", "masked 15%", "masked 15%, 10000 steps")  # seed 42 of these goes into the .pt file
WINDOW, START, BLANK = 64, 32, 32  # window length; continuation scored from START; the blank's position
N_CONTINUATION, N_BLANK = 256, 128  # windows scored


def windows(val: torch.Tensor) -> torch.Tensor:
    """The validation stream cut into consecutive windows of `WINDOW` tokens: (N, WINDOW)."""
    return cut_windows(val, WINDOW)


def score(model: GPT, objective: Objective, val: torch.Tensor) -> dict[str, Any]:
    """The measures of the module docstring for one trained model (means, plus the per-window blank losses)."""
    w = windows(val)
    kind = objective.kind
    blank = blank_nlls(model, kind, w[:N_BLANK], BLANK, MASK_ID)
    out: dict[str, Any] = {
        "continuation": float(continuation_nlls(model, kind, w[:N_CONTINUATION], START, MASK_ID).double().mean()),
        "blank": float(blank.double().mean()),
        "blank_per_window": [round(float(v), 5) for v in blank],
    }
    if kind == "masked":
        generator = torch.Generator().manual_seed(0)
        out["masked_15"] = float(masked_nlls(model, w[:N_CONTINUATION], 0.15, MASK_ID, generator).double().mean())
    return out


def _one_run(name: str, objective: Objective, cfg: TrainConfig, device: str, threads: int,
             progress: bool) -> dict[str, Any]:
    torch.set_num_threads(threads)
    _, splits, _ = shakespeare_bpe_splits()
    t0 = time.time()
    torch.manual_seed(cfg.seed)
    wrapped = ObjectiveModel(GPT(CONFIG).to(device), objective, seed=cfg.seed)
    batches = TextBatches({"train": splits["train"], "val": splits["val"]}, CONFIG.context_length,
                          every_position=True)
    history = train(wrapped, batches, cfg, progress=progress, desc=f"{name} seed {cfg.seed}")
    model = wrapped.model.cpu()
    measures = score(model, objective, splits["val"])
    if objective.kind != "masked":
        measures["protocol"] = rung_loss(model, splits)
    measures["final_train"] = history.eval_train[-1]
    wall = time.time() - t0
    print(f"{name:32s} seed {cfg.seed}  continuation {measures['continuation']:.4f}  blank {measures['blank']:.4f}"
          f"  ({wall:.0f} s)", flush=True)
    curve = {"step": history.eval_step, "train": history.eval_train, "val": history.eval_val}
    weights = model.state_dict() if name in SAVED and cfg.seed == SEEDS[0] else None
    return {"measures": measures, "wall": wall, "curve": curve, "weights": weights}


def _row(name: str, objective: Objective, runs: list[dict[str, Any]], seeds: Sequence[int],
         changes: dict[str, Any]) -> dict[str, Any]:
    keys = [k for k in runs[0]["measures"] if k != "blank_per_window"]
    row: dict[str, Any] = {"name": name, "objective": asdict(objective), "seeds": list(seeds),
                           "wall_seconds": round(statistics.fmean(r["wall"] for r in runs), 1)}
    if changes:
        row["train_changes"] = changes
    for key in keys:
        values = [r["measures"][key] for r in runs]
        row[key] = {"values": [round(v, 5) for v in values], "mean": round(statistics.fmean(values), 5),
                    "min": round(min(values), 5), "max": round(max(values), 5)}
    row["curves"] = [{"seed": s, **r["curve"]} for s, r in zip(seeds, runs)]
    if runs[0]["weights"] is not None:
        row["blank_per_window"] = runs[0]["measures"]["blank_per_window"]
    return row


def main(argv: Sequence[str] | None = None) -> int:
    parser = script_parser(MODULE, __doc__)
    parser.add_argument("--seeds", type=int, nargs="+", default=list(SEEDS),
                        help=f"default {' '.join(map(str, SEEDS))}")
    parser.add_argument("--jobs", type=int, default=1, help="runs trained at once, in separate processes (default 1)")
    parser.add_argument("--only", nargs="+", metavar="NAME", help="train only these rows (default: ENTRIES)")
    args = parser.parse_args(argv)
    known = {name: (objective, changes) for name, objective, changes in
             [*((name, objective, {}) for name, objective in ENTRIES), *EXTRA_ENTRIES]}
    if args.only and set(args.only) - set(known):
        raise SystemExit(f"--only: no row named {', '.join(sorted(set(args.only) - set(known)))}")
    device, started = start(args)
    base = replace(LADDER_TRAIN, steps=args.steps) if args.steps else LADDER_TRAIN
    chosen = [(name, *known[name]) for name in args.only] if args.only else [(n, o, {}) for n, o in ENTRIES]
    _, splits, chars = shakespeare_bpe_splits()
    calls = [(name, objective, replace(base, **changes, seed=seed), str(device), args.threads,
              not args.no_progress and args.jobs == 1) for name, objective, changes in chosen for seed in args.seeds]
    runs = map_jobs(_one_run, calls, args.jobs)
    by_name = {name: runs[i * len(args.seeds):(i + 1) * len(args.seeds)] for i, (name, *_) in enumerate(chosen)}
    w = windows(splits["val"])
    log_probs = bigram_log_probs(splits["train"], MASK_ID)
    result: dict[str, Any] = {
        "what": "One two-block GPT (vocabulary 512 + [MASK]) trained with each pretraining objective at the ladder's "
                "budget on the 512-token BPE of Tiny Shakespeare, once per seed; losses in nats per token on the "
                "validation split's 64-token windows: continuation (tokens 32..63 of 256 windows, from all before), "
                "blank (token 32 of 128 windows, from both sides), masked_15 (15% of positions all [MASK]), "
                "protocol (the book's left-to-right protocol), final_train (the objective's own training loss)",
        "config": asdict(CONFIG),
        "train_config": asdict(base),
        "seeds": list(args.seeds),
        "val_chars_per_token": round(chars["val"] / len(splits["val"]), 5),
        "windows": {"length": WINDOW, "start": START, "blank": BLANK, "continuation": N_CONTINUATION,
                    "blank_windows": N_BLANK},
        "bigram": {"continuation": round(float(bigram_continuation_nlls(log_probs, w[:N_CONTINUATION], START)
                                               .double().mean()), 5),
                   "blank": round(float(bigram_blank_nlls(log_probs, w[:N_BLANK], BLANK).double().mean()), 5)},
        "rows": [_row(name, objective, by_name[name], args.seeds, changes) for name, objective, changes in chosen],
    }
    out = Path(args.out) if args.out else default_out(OUT)
    saved = {name: runs_[0]["weights"] for name, runs_ in by_name.items() if runs_[0]["weights"] is not None}
    if saved:
        with atomic_path(out.with_suffix(".pt")) as tmp:
            torch.save({"model_config": asdict(CONFIG), "models": saved}, tmp)
    commit_result(out, result, MODULE, argv, started, None, device)
    return 0


if __name__ == "__main__":
    sys.exit(main())

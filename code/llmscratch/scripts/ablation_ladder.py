"""Part 2's ladder: from a bigram to a GPT, one piece at a time, with one training budget and three seeds.

    python -m llmscratch.scripts.ablation_ladder        # writes data/part2_ladder.json
    python -m llmscratch.scripts.ablation_ladder --device cuda --jobs 6   # the same, runs side by side

The rungs, the side questions and the budget are `llmscratch.comparisons.RUNGS`, `VARIANTS` and
`LADDER_TRAIN`; every one is trained once per seed (`SEEDS`), each seed driving both the
initialisation and the order of the batches. The JSON holds, per rung and per variant, the
config, parameter count, the validation loss of each seed in nats per token (``val_losses``),
their mean, minimum and maximum, the mean in bits per character, and the mean wall time, plus
the provenance of the whole run. A sentence that says one rung beats another needs their
ranges (min to max) to separate.

``--jobs N`` trains N runs at once in separate processes: worth it on a GPU, where a model this
small leaves the device mostly idle; on a CPU keep the default of 1 (the runs share the cores).
"""

import math
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import torch

from ..comparisons import LADDER_TRAIN, RUNGS, SEEDS, VARIANTS, fit_rung_history, rung_loss
from ..config import GPTConfig
from ..experiments import shakespeare_bpe_splits
from ..training import TrainConfig
from .cli import commit_result, default_out, map_jobs, script_parser, start

MODULE = "llmscratch.scripts.ablation_ladder"
OUT = "data/part2_ladder.json"


def _one_run(config: GPTConfig, cfg: TrainConfig, name: str, device: str, threads: int,
             progress: bool, curve_points: int = 0) -> tuple[float, int, float, dict[str, Any] | None]:
    """Train and score one (config, seed): validation loss, parameter count, wall seconds, and the
    thinned training curve (`History.curve`) when `curve_points` > 0, else None."""
    torch.set_num_threads(threads)
    _, splits, _ = shakespeare_bpe_splits()
    t0 = time.time()
    model, history = fit_rung_history(config, splits, cfg, progress=progress, desc=f"{name} seed {cfg.seed}",
                                      device=device)
    val = rung_loss(model, splits)
    print(f"{name:36s} seed {cfg.seed}  val {val:.4f}  ({time.time() - t0:.0f} s)", flush=True)
    curve = {"seed": cfg.seed, **history.curve(curve_points)} if curve_points > 0 else None
    return val, model.num_parameters(), time.time() - t0, curve


def _row(name: str, config: GPTConfig, runs: list[tuple[float, int, float, dict[str, Any] | None]],
         seeds: Sequence[int], chars_per_token: float) -> dict[str, Any]:
    losses = [run[0] for run in runs]
    mean = statistics.fmean(losses)
    row = {"name": name, "val_loss": round(mean, 5), "val_losses": [round(v, 5) for v in losses],
           "val_min": round(min(losses), 5), "val_max": round(max(losses), 5), "seeds": list(seeds),
           "val_bits_per_char": round(mean / math.log(2) / chars_per_token, 5),
           "num_parameters": runs[0][1], "wall_seconds": round(statistics.fmean(run[2] for run in runs), 1),
           "config": asdict(config)}
    if runs[0][3] is not None:
        row["curves"] = [run[3] for run in runs]
    return row


def train_grid(
    entries: Sequence[tuple[str, GPTConfig, dict[str, Any], str]], base: TrainConfig, seeds: Sequence[int],
    device: torch.device | str, threads: int = 1, jobs: int = 1, progress: bool = True, curve_points: int = 0,
    entry_seeds: dict[str, Sequence[int]] | None = None,
) -> dict[str, list[dict[str, Any]]]:
    """Train every entry once per seed with the budget `base`; return the rows by group.

    An entry is ``(name, config, train_changes, group)``: `train_changes` are `TrainConfig` fields
    that differ from `base` for that entry (``{}`` for none), and the rows of each `group` come
    back in a list of their own. Other scripts (Part 4's sweeps) call this with their own entries.
    With `curve_points` > 0 each row also has ``curves``: per seed, the training loss averaged
    over about that many blocks of steps and every validation estimate (`History.curve`).
    `entry_seeds` gives some entries (by name) their own seeds instead of `seeds`: one seed to
    re-run a configuration whose other seeds are already committed elsewhere, say.
    """
    seeds_of = {name: list((entry_seeds or {}).get(name, seeds)) for name, *_ in entries}
    _, splits, chars = shakespeare_bpe_splits()
    chars_per_token = chars["val"] / len(splits["val"])
    jobs_list = [(i, seed, name, config, replace(base, **changes, seed=seed))
                 for i, (name, config, changes, _) in enumerate(entries) for seed in seeds_of[name]]
    runs = map_jobs(_one_run, [(config, cfg, name, str(device), threads, progress and jobs == 1, curve_points)
                               for _, _, name, config, cfg in jobs_list], jobs)
    results = {(i, seed): run for (i, seed, *_), run in zip(jobs_list, runs)}
    groups: dict[str, list[dict[str, Any]]] = {}
    for i, (name, config, changes, group) in enumerate(entries):
        row = _row(name, config, [results[i, seed] for seed in seeds_of[name]], seeds_of[name], chars_per_token)
        if changes:
            row["train_changes"] = changes
        groups.setdefault(group, []).append(row)
    return groups


def main(argv: Sequence[str] | None = None) -> int:
    parser = script_parser(MODULE, __doc__)
    parser.add_argument("--seeds", type=int, nargs="+", default=list(SEEDS),
                        help=f"default {' '.join(map(str, SEEDS))}")
    parser.add_argument("--jobs", type=int, default=1, help="runs trained at once, in separate processes (default 1)")
    parser.add_argument("--rungs-only", action="store_true", help="skip the side questions (VARIANTS)")
    parser.add_argument("--only", nargs="+", metavar="NAME", help="train only these rungs and variants (a trial)")
    args = parser.parse_args(argv)
    if args.jobs < 1:
        raise SystemExit(f"--jobs must be at least 1, got {args.jobs}")
    device, started = start(args)
    base = replace(LADDER_TRAIN, steps=args.steps) if args.steps else LADDER_TRAIN
    entries = [(name, config, {}, "rungs") for name, config in RUNGS]
    if not args.rungs_only:
        entries += [(name, config, changes, "variants") for name, config, changes in VARIANTS]
    if args.only:
        unknown = set(args.only) - {name for name, *_ in entries}
        if unknown:
            raise SystemExit(f"--only: no rung or variant named {', '.join(sorted(unknown))}")
        entries = [entry for entry in entries if entry[0] in args.only]
    _, splits, chars = shakespeare_bpe_splits()
    groups = train_grid(entries, base, args.seeds, device, args.threads, args.jobs, not args.no_progress)
    result: dict[str, Any] = {
        "what": "GPT variants trained with one budget on the 512-token BPE of Tiny Shakespeare, once per seed; "
                "validation loss (nats per token) with the book's protocol: every token, each predicted from at "
                "least 15/16 of the context (sliding windows, evaluation.sliding_nlls)",
        "train_config": asdict(base),
        "seeds": list(args.seeds),
        "val_chars_per_token": round(chars["val"] / len(splits["val"]), 5),
        "rungs": groups.get("rungs", []),
        "variants": groups.get("variants", []),
    }
    commit_result(Path(args.out) if args.out else default_out(OUT), result, MODULE, argv, started, None, device)
    return 0


if __name__ == "__main__":
    sys.exit(main())

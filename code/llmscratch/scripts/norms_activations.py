"""Part 4's norms and activations: LayerNorm, RMSNorm or none; GELU, ReLU or SwiGLU, at one parameter count.

    python -m llmscratch.scripts.norms_activations        # writes data/part4_norms.json

Trains every entry of `llmscratch.modern_block.NORM_GRID` (Part 2's two-block GPT with one
change each) with Part 2's budget (`NORM_TRAIN` = `comparisons.LADDER_TRAIN`) once per seed
(`comparisons.SEEDS`), through `ablation_ladder.train_grid`, and commits the rows: validation
loss per seed with the book's protocol, parameters, wall time, and per seed a convergence curve
(the training loss averaged over blocks of steps, and every validation estimate).

The first entry, LayerNorm and GELU, is Part 2's "two blocks" rung exactly, whose three seeds
are committed in ``data/part2_ladder.json``: it is trained with the first seed only
(``--reference-seeds`` to change), for its curve and to check that it reproduces. About
13 runs of about a minute and a half each on one CPU thread; ``--jobs N`` runs N at once.
"""

import sys
from collections.abc import Sequence
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from ..comparisons import SEEDS
from ..experiments import shakespeare_bpe_splits
from ..modern_block import NORM_GRID, NORM_TRAIN
from .ablation_ladder import train_grid
from .cli import commit_result, default_out, script_parser, start

MODULE = "llmscratch.scripts.norms_activations"
OUT = "data/part4_norms.json"
CURVE_POINTS = 60


def main(argv: Sequence[str] | None = None) -> int:
    parser = script_parser(MODULE, __doc__)
    parser.add_argument("--seeds", type=int, nargs="+", default=list(SEEDS),
                        help=f"default {' '.join(map(str, SEEDS))}")
    parser.add_argument("--jobs", type=int, default=1, help="runs trained at once, in separate processes (default 1)")
    parser.add_argument("--only", nargs="+", metavar="NAME", help="train only these entries (a trial)")
    parser.add_argument("--reference-seeds", type=int, nargs="+",
                        help=f"seeds of the reference entry {NORM_GRID[0][0]!r} (default: the first seed)")
    args = parser.parse_args(argv)
    if args.jobs < 1:
        raise SystemExit(f"--jobs must be at least 1, got {args.jobs}")
    device, started = start(args)
    base = replace(NORM_TRAIN, steps=args.steps) if args.steps else NORM_TRAIN
    entries = [(name, config, {}, "grid") for name, config in NORM_GRID]
    if args.only:
        unknown = set(args.only) - {name for name, _ in NORM_GRID}
        if unknown:
            raise SystemExit(f"--only: no entry named {', '.join(sorted(unknown))}")
        entries = [entry for entry in entries if entry[0] in args.only]
    _, splits, chars = shakespeare_bpe_splits()
    reference = {NORM_GRID[0][0]: args.reference_seeds or args.seeds[:1]}
    groups = train_grid(entries, base, args.seeds, device, args.threads, args.jobs, not args.no_progress,
                        curve_points=CURVE_POINTS, entry_seeds=reference)
    result: dict[str, Any] = {
        "what": "Part 2's two-block GPT with one norm or feed-forward change each, trained with one budget on the "
                "512-token BPE of Tiny Shakespeare, once per seed; validation loss (nats per token) with the book's "
                "protocol (evaluation.sliding_nlls), and per seed the training curve (History.curve)",
        "train_config": asdict(base),
        "seeds": list(args.seeds),
        "reference": {"name": NORM_GRID[0][0], "seeds": reference[NORM_GRID[0][0]],
                      "same_as": "data/part2_ladder.json rungs 'two blocks' (all seeds)"},
        "val_chars_per_token": round(chars["val"] / len(splits["val"]), 5),
        "rows": groups.get("grid", []),
    }
    commit_result(Path(args.out) if args.out else default_out(OUT), result, MODULE, argv, started, None, device)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The leaderboard: every model of the book, scored with one protocol.

    python -m llmscratch.scripts.leaderboard        # writes data/leaderboard.json

Counts the counting models, trains the MLPs and Part 2's rungs with each seed of
`llmscratch.leaderboard.LEADERBOARD_SEEDS`, re-scores the committed long runs (the full recipe
and the course model), and writes every row with its runs, mean and spread, parameters, tokens
seen and wall time, plus the provenance of the whole run. About an hour on one CPU thread.
"""

import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from ..comparisons import LADDER_TRAIN
from ..leaderboard import LEADERBOARD_SEEDS, MLP_TRAIN, make_leaderboard
from .cli import commit_result, default_out, script_parser, start

MODULE = "llmscratch.scripts.leaderboard"
OUT = "data/leaderboard.json"


def main(argv: Sequence[str] | None = None) -> int:
    parser = script_parser(MODULE, __doc__)
    parser.add_argument("--seeds", type=int, nargs="+", default=list(LEADERBOARD_SEEDS), help="seeds per trained row")
    parser.add_argument("--skip-committed", action="store_true", help="leave out the committed long runs")
    args = parser.parse_args(argv)
    device, started = start(args)
    rung_train, mlp_train = LADDER_TRAIN, MLP_TRAIN
    if args.steps:  # a quick trial: the same number of steps for every trained row
        rung_train, mlp_train = replace(rung_train, steps=args.steps), replace(mlp_train, steps=args.steps)
    board = make_leaderboard(args.seeds, rung_train, mlp_train, committed=not args.skip_committed,
                             progress=not args.no_progress)
    commit_result(Path(args.out) if args.out else default_out(OUT), board, MODULE, argv, started, args.seeds[0], device)
    return 0


if __name__ == "__main__":
    sys.exit(main())

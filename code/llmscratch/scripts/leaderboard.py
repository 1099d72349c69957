"""The leaderboard: every model of the book, scored with one protocol.

    python -m llmscratch.scripts.leaderboard        # writes data/leaderboard.json

Counts the counting models, trains the MLPs and Part 2's rungs with each seed of
`llmscratch.leaderboard.LEADERBOARD_SEEDS`, re-scores the committed long runs (the full recipe
and the course model), and writes every row with its runs, mean and spread, parameters, tokens
seen and wall time, plus the provenance of the whole run. About an hour on one CPU thread.

    python -m llmscratch.scripts.leaderboard --only "modern block"   # one row, merged into the JSON

``--only`` trains just the named GPT rows (rungs or Part 4 rows) and merges them into the
committed JSON (`merge_rows`): each such row carries its own ``provenance``, while the file's
own record stays that of the full run that made the other rows.
"""

import argparse
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from ..comparisons import LADDER_TRAIN
from ..fileio import atomic_write_text
from ..leaderboard import (
    LEADERBOARD_SEEDS,
    MLP_TRAIN,
    PART4_ROWS,
    RUNGS,
    make_leaderboard,
    merge_rows,
    protocol,
    rung_row,
)
from ..provenance import script_provenance, to_json
from ..training import TrainConfig
from .cli import commit_result, default_out, script_parser, start

MODULE = "llmscratch.scripts.leaderboard"
OUT = "data/leaderboard.json"


def main(argv: Sequence[str] | None = None) -> int:
    parser = script_parser(MODULE, __doc__)
    parser.add_argument("--seeds", type=int, nargs="+", default=list(LEADERBOARD_SEEDS), help="seeds per trained row")
    parser.add_argument("--skip-committed", action="store_true", help="leave out the committed long runs")
    parser.add_argument("--only", nargs="+", metavar="NAME",
                        help="train only these GPT rows and merge them into the committed JSON")
    args = parser.parse_args(argv)
    device, started = start(args)
    rung_train, mlp_train = LADDER_TRAIN, MLP_TRAIN
    if args.steps:  # a quick trial: the same number of steps for every trained row
        rung_train, mlp_train = replace(rung_train, steps=args.steps), replace(mlp_train, steps=args.steps)
    if args.only:
        return _only(args, rung_train, argv)
    board = make_leaderboard(args.seeds, rung_train, mlp_train, committed=not args.skip_committed,
                             progress=not args.no_progress)
    commit_result(Path(args.out) if args.out else default_out(OUT), board, MODULE, argv, started, args.seeds[0], device)
    return 0


def _only(args: argparse.Namespace, rung_train: TrainConfig, argv: Sequence[str] | None) -> int:
    """Train the rows named by ``--only``, each with its own provenance, and merge them into the committed JSON."""
    trained = dict(RUNGS) | dict(PART4_ROWS)
    unknown = [name for name in args.only if name not in trained]
    if unknown:
        raise SystemExit(f"--only: no trained GPT row named {', '.join(unknown)}; choose from {', '.join(trained)}")
    out = Path(args.out) if args.out else default_out(OUT)
    board = json.loads(default_out(OUT).read_text())
    p = protocol()
    rows = []
    for name in args.only:
        started = time.time()
        row = rung_row(p, name, "4" if name in dict(PART4_ROWS) else "2", trained[name], args.seeds, rung_train,
                       progress=not args.no_progress)
        record = script_provenance(MODULE, sys.argv[1:] if argv is None else argv, time.time() - started,
                                   args.seeds[0])
        rows.append({**row, "provenance": {**record, "device": "cpu"}})
    atomic_write_text(out, to_json(merge_rows(board, rows)) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

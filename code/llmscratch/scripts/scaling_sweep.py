"""The scaling-law sweep: GPTs of seven sizes, each trained for five token budgets, on Tiny Shakespeare.

    python -m llmscratch.scripts.scaling_sweep          # writes data/scaling_sweep.json (40-50 min)
    python -m llmscratch.scripts.scaling_sweep --quick --out /tmp/sweep.json    # two sizes, two tiny budgets

The sizes, budgets and training settings are `llmscratch.scaling.SWEEP_SIZES`, `SWEEP_BUDGETS`
and `SWEEP_TRAIN`; `run_sweep` trains them. The JSON holds one row per run (config, parameters
with and without the embeddings, tokens seen, training FLOPs, exact validation loss in nats per
token and in bits per character, wall time, seed), plus the provenance of the whole sweep.
The scaling-laws chapter fits `fit_chinchilla` to the rows.
"""

import math
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

from ..experiments import shakespeare_bpe_splits
from ..scaling import SWEEP_BUDGETS, SWEEP_SIZES, SWEEP_TRAIN, run_sweep
from .cli import commit_result, default_out, script_parser, start

MODULE = "llmscratch.scripts.scaling_sweep"
OUT = "data/scaling_sweep.json"
# --quick: the two smallest sizes for 8 and 16 steps, a few seconds in all.
QUICK_SIZES = list(SWEEP_SIZES)[:2]
QUICK_BUDGETS = [8192, 16384]


def main(argv: Sequence[str] | None = None) -> int:
    parser = script_parser(MODULE, __doc__)
    parser.add_argument("--sizes", nargs="+", choices=list(SWEEP_SIZES), help="train only these sizes")
    parser.add_argument("--budgets", nargs="+", type=int, help="token budgets (default: SWEEP_BUDGETS)")
    parser.add_argument("--quick", action="store_true",
                        help=f"a trial: sizes {' '.join(QUICK_SIZES)}, budgets {QUICK_BUDGETS} tokens")
    args = parser.parse_args(argv)
    if args.steps is not None:
        parser.error("each budget sets its own steps: use --budgets (tokens) or --quick")
    device, started = start(args)
    names = args.sizes or (QUICK_SIZES if args.quick else list(SWEEP_SIZES))
    budgets = args.budgets or (QUICK_BUDGETS if args.quick else list(SWEEP_BUDGETS))
    _, splits, chars = shakespeare_bpe_splits()
    chars_per_token = chars["val"] / len(splits["val"])
    try:
        runs = run_sweep({name: SWEEP_SIZES[name] for name in names}, budgets, splits, SWEEP_TRAIN,
                         progress=not args.no_progress, device=device)
    except ValueError as error:  # a budget below one step
        parser.error(str(error))
    for run in runs:
        run["val_bits_per_char"] = round(run["val_loss"] / math.log(2) / chars_per_token, 5)
    result = {
        "what": "GPTs of several sizes, each trained for several token budgets (a full cosine schedule per "
                "run) on the 512-token BPE of Tiny Shakespeare; exact validation loss (nats per token) over "
                "non-overlapping sequences of context_length tokens. N for the fits: non_embedding_parameters "
                "(Kaplan et al. 2020); num_parameters includes the token and position tables",
        # The base settings; each run's steps and warm-up are in budget_config(tokens, 64).
        "train_config": asdict(SWEEP_TRAIN),
        "sizes": names,
        "budgets": budgets,
        "train_tokens": len(splits["train"]),
        "val_tokens": len(splits["val"]),
        "val_chars_per_token": round(chars_per_token, 5),
        "runs": runs,
    }
    out = Path(args.out) if args.out else default_out(OUT)
    commit_result(out, result, MODULE, argv, started, SWEEP_TRAIN.seed, device)
    print(f"{len(runs)} runs in {time.time() - started:.0f} s -> {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

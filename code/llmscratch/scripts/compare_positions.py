"""Five ways of telling a GPT where its tokens are, compared under one budget, at 1x, 2x, 4x length.

    python -m llmscratch.scripts.compare_positions      # writes data/part2_positions.json

One model (`llmscratch.comparisons.POSITIONS_BASE`, the tiny GPT: context_length 64), one data
set (Tiny Shakespeare in the course's 512-token BPE), one training budget (`POSITIONS_TRAIN`)
and the same seeds for every scheme; only `GPTConfig.position` differs (`compare_positions`).
The JSON holds, per scheme and seed, the losses and per-position loss curves at every length,
a summary over seeds (mean, min, max), the configs, and the provenance of the whole run.
"""

import math
import sys
from collections.abc import Sequence
from dataclasses import asdict, replace
from pathlib import Path

from ..comparisons import POSITIONS_BASE, POSITIONS_TRAIN, SCHEMES, SEEDS, compare_positions
from ..experiments import shakespeare_bpe_splits
from ..positional import POSITION_SCHEMES
from .cli import commit_result, default_out, script_parser, start

MODULE = "llmscratch.scripts.compare_positions"
OUT = "data/part2_positions.json"


def main(argv: Sequence[str] | None = None) -> int:
    parser = script_parser(MODULE, __doc__)
    parser.add_argument("--seeds", type=int, nargs="+", default=list(SEEDS), help=f"seeds (default {SEEDS})")
    args = parser.parse_args(argv)
    device, started = start(args)
    cfg = replace(POSITIONS_TRAIN, steps=args.steps) if args.steps else POSITIONS_TRAIN
    _, splits, chars = shakespeare_bpe_splits()
    comparison = compare_positions(splits, SCHEMES, args.seeds, cfg, POSITIONS_BASE, progress=not args.no_progress,
                                   device=device)
    result = {
        "what": "The tiny GPT trained with each position scheme (same data, budget and seeds); exact validation "
                "loss (nats per token) over non-overlapping sequences of 1x, 2x and 4x the training length, "
                "per position and on average; null where the model cannot take that length. last_token_loss: "
                "loss on the last token of each training-length sequence, with the tokens before it intact "
                "and shuffled",
        "schemes": {name: POSITION_SCHEMES[name] for name in SCHEMES},
        "model_config": asdict(POSITIONS_BASE),
        # The seed of each run is in `seeds` (and in every row), not in the shared config.
        "train_config": {k: v for k, v in asdict(cfg).items() if k != "seed"},
        "seeds": list(args.seeds),
        "val_tokens": len(splits["val"]),
        "val_chars_per_token": round(chars["val"] / len(splits["val"]), 5),
        "uniform_loss": round(math.log(POSITIONS_BASE.vocab_size), 5),
        **comparison,
    }
    commit_result(Path(args.out) if args.out else default_out(OUT), result, MODULE, argv, started, args.seeds[0],
                  device)
    return 0


if __name__ == "__main__":
    sys.exit(main())

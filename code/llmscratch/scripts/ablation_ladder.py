"""Part 2's ladder: from a bigram to a GPT, one piece at a time, with one training budget.

    python -m llmscratch.scripts.ablation_ladder        # writes data/part2_ladder.json

The rungs and the budget are `llmscratch.comparisons.RUNGS` and `LADDER_TRAIN`. The JSON holds,
per rung, the config, parameter count, validation loss in nats per token and in bits per
character, and the wall time, plus the provenance of the whole run.
"""

import math
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, replace
from pathlib import Path

from ..comparisons import LADDER_TRAIN, RUNGS, train_rung
from ..experiments import shakespeare_bpe_splits
from .cli import commit_result, default_out, script_parser, start

MODULE = "llmscratch.scripts.ablation_ladder"
OUT = "data/part2_ladder.json"


def main(argv: Sequence[str] | None = None) -> int:
    args = script_parser(MODULE, __doc__).parse_args(argv)
    device, started = start(args)
    cfg = replace(LADDER_TRAIN, steps=args.steps) if args.steps else LADDER_TRAIN
    _, splits, chars = shakespeare_bpe_splits()
    chars_per_token = chars["val"] / len(splits["val"])
    rows = []
    for name, config in RUNGS:
        t0 = time.time()
        model, val = train_rung(config, splits, cfg, progress=not args.no_progress, desc=name, device=device)
        rows.append({"name": name, "val_loss": round(val, 5),
                     "val_bits_per_char": round(val / math.log(2) / chars_per_token, 5),
                     "num_parameters": model.num_parameters(), "wall_seconds": round(time.time() - t0, 1),
                     "config": asdict(config)})
        print(f"{name:12s} {model.num_parameters():8d} params  val {val:.4f}", flush=True)
    result = {
        "what": "GPT variants trained with one budget on the 512-token BPE of Tiny Shakespeare; validation loss "
                "(nats per token) with the book's protocol: every token, each predicted from at least 15/16 of "
                "the context (sliding windows, evaluation.sliding_nlls)",
        "train_config": asdict(cfg),
        "val_chars_per_token": round(chars_per_token, 5),
        "rungs": rows,
    }
    commit_result(Path(args.out) if args.out else default_out(OUT), result, MODULE, argv, started, cfg.seed, device)
    return 0


if __name__ == "__main__":
    sys.exit(main())

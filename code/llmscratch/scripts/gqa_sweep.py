"""How few key/value heads can a GPT afford? ``n_kv_heads`` from multi-head to multi-query, three seeds each.

    python -m llmscratch.scripts.gqa_sweep        # writes data/gqa_sweep.json, about 15 minutes on one CPU thread

The model is Part 2's ladder GPT (`llmscratch.comparisons.RUNGS`, "two blocks") with eight
heads of eight features (`SWEEP_BASE`); only ``n_kv_heads`` changes, over
`llmscratch.gqa.kv_head_counts` (8, 4, 2, 1). Every run has the ladder's budget
(`llmscratch.comparisons.LADDER_TRAIN`) and seeds (`SEEDS`), through
`llmscratch.scripts.ablation_ladder.train_grid`, and is scored with the book's protocol. Each
row also records the KV-cache bytes per token of context (`llmscratch.kv_cache.kv_cache_bytes`,
float32, batch 1). A sentence that says one count beats another needs their min-max ranges to
separate.
"""

import sys
from collections.abc import Sequence
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from ..comparisons import LADDER_TRAIN, RUNGS, SEEDS
from ..config import GPTConfig
from ..experiments import shakespeare_bpe_splits
from ..gqa import kv_head_counts
from ..kv_cache import kv_cache_bytes
from .ablation_ladder import train_grid
from .cli import commit_result, default_out, script_parser, start

MODULE = "llmscratch.scripts.gqa_sweep"
OUT = "data/gqa_sweep.json"
# The ladder's two-block GPT with eight heads, so that there are four counts to sweep.
SWEEP_BASE: GPTConfig = replace(dict(RUNGS)["two blocks"], n_heads=8)


def sweep_entries(base: GPTConfig = SWEEP_BASE) -> list[tuple[str, GPTConfig, dict[str, Any], str]]:
    """One `train_grid` entry per key/value head count of `base`, named "8 kv heads (MHA)" ... "1 kv head (MQA)"."""
    entries = []
    for kv in kv_head_counts(base.n_heads):
        label = "MHA" if kv == base.n_heads else "MQA" if kv == 1 else "GQA"
        name = f"{kv} kv head{'s' if kv > 1 else ''} ({label})"
        entries.append((name, replace(base, n_kv_heads=kv), {}, "sweep"))
    return entries


def main(argv: Sequence[str] | None = None) -> int:
    parser = script_parser(MODULE, __doc__)
    parser.add_argument("--seeds", type=int, nargs="+", default=list(SEEDS),
                        help=f"default {' '.join(map(str, SEEDS))}")
    args = parser.parse_args(argv)
    device, started = start(args)
    base = replace(LADDER_TRAIN, steps=args.steps) if args.steps else LADDER_TRAIN
    entries = sweep_entries()
    rows = train_grid(entries, base, args.seeds, device, args.threads, 1, not args.no_progress)["sweep"]
    for row, (_, config, _, _) in zip(rows, entries):
        row["n_kv_heads"] = config.kv_heads
        row["kv_cache_bytes_per_token"] = kv_cache_bytes(config, batch_size=1, length=1)
    _, splits, chars = shakespeare_bpe_splits()
    result = {
        "what": "Part 2's two-block GPT with 8 query heads and n_kv_heads = 8, 4, 2, 1, trained with the ladder's "
                "budget once per seed; validation loss (nats per token) with the book's protocol "
                "(evaluation.sliding_nlls), and the float32 KV-cache bytes per token of context at batch 1",
        "base_config": asdict(SWEEP_BASE),
        "train_config": asdict(base),
        "seeds": list(args.seeds),
        "val_chars_per_token": round(chars["val"] / len(splits["val"]), 5),
        "rows": rows,
    }
    commit_result(Path(args.out) if args.out else default_out(OUT), result, MODULE, argv, started, None, device)
    return 0


if __name__ == "__main__":
    sys.exit(main())

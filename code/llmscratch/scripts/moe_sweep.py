"""Mixture of experts against a dense GPT at matched active compute, three seeds each, at the ladder's budget.

    python -m llmscratch.scripts.moe_sweep        # writes data/part4_moe.json

The models are `MOE_ENTRIES`: the ladder's two-block GPT (`llmscratch.comparisons.RUNGS`, untied),
and the same GPT whose every feed-forward network is replaced by a mixture of experts that
costs a token the same arithmetic: 4 experts of the dense width with top-1 routing (8 experts of
half the width with top-2 would be the next row; it was left out to fit the CPU time of one
session). The break-it row is the 4-expert model trained without
the load-balancing loss. Every run trains with `llmscratch.comparisons.LADDER_TRAIN` through
`ablation_ladder.train_grid`; each row has the validation loss per seed (nats per token, the
book's protocol), and for models with experts, per seed, how evenly the routers spread the
first 8192 validation tokens (`llmscratch.moe.routing_summary`: entropy in bits per layer,
mean and minimum, and the busiest expert's share). Capacity is unlimited: nothing is dropped.
"""

import sys
from collections.abc import Sequence
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import torch

from ..comparisons import LADDER_TRAIN, RUNGS, SEEDS
from ..config import GPTConfig
from ..experiments import shakespeare_bpe_splits
from ..model import GPT
from ..moe import routing_summary
from .ablation_ladder import train_grid
from .cli import commit_result, default_out, script_parser, start

MODULE = "llmscratch.scripts.moe_sweep"
OUT = "data/part4_moe.json"

DENSE: GPTConfig = dict(RUNGS)["two blocks"]
# (name, config): the same attention, embeddings and depth; only the feed-forward sublayer changes.
MOE_ENTRIES: list[tuple[str, GPTConfig]] = [
    ("dense", DENSE),
    # Four copies of the dense network's shape; each token uses one: 4x the weights, 1x the compute.
    ("4 experts, top-1", replace(DENSE, n_experts=4, experts_per_token=1)),
    # Break it: no load-balancing loss.
    ("4 experts, top-1, no balancing loss", replace(DENSE, n_experts=4, experts_per_token=1, router_aux_weight=0.0)),
]


def measure_routing(model: GPT, splits: dict[str, torch.Tensor]) -> dict[str, float]:
    """`routing_summary` on the validation split for a model with experts; nothing for a dense one."""
    return routing_summary(model, splits["val"]) if model.config.n_experts else {}


def main(argv: Sequence[str] | None = None) -> int:
    parser = script_parser(MODULE, __doc__)
    parser.add_argument("--seeds", type=int, nargs="+", default=list(SEEDS),
                        help=f"default {' '.join(map(str, SEEDS))}")
    parser.add_argument("--jobs", type=int, default=1, help="runs trained at once, in separate processes (default 1)")
    args = parser.parse_args(argv)
    device, started = start(args)
    base = replace(LADDER_TRAIN, steps=args.steps) if args.steps else LADDER_TRAIN
    entries = [(name, config, {}, "rows") for name, config in MOE_ENTRIES]
    _, splits, chars = shakespeare_bpe_splits()
    groups = train_grid(entries, base, args.seeds, device, args.threads, args.jobs, not args.no_progress,
                        measure=measure_routing)
    result: dict[str, Any] = {
        "what": "A dense two-block GPT against mixtures of experts at the same compute per token, trained with the "
                "ladder's budget on the 512-token BPE of Tiny Shakespeare, once per seed; validation loss (nats per "
                "token) with the book's protocol; routing entropy (bits) of the first 8192 validation tokens",
        "train_config": asdict(base),
        "seeds": list(args.seeds),
        "val_chars_per_token": round(chars["val"] / len(splits["val"]), 5),
        "rows": groups["rows"],
    }
    commit_result(Path(args.out) if args.out else default_out(OUT), result, MODULE, argv, started, None, device)
    return 0


if __name__ == "__main__":
    sys.exit(main())

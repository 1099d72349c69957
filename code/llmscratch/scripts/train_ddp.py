"""Data-parallel training of a tiny GPT on a toy token stream, on one process or several.

    torchrun --nproc-per-node 2 -m llmscratch.scripts.train_ddp --out ddp.pt   # two processes (gloo, CPU)
    python -m llmscratch.scripts.train_ddp --out one.pt                          # the same run on one

``--batch-size`` is the global batch: with two processes each takes half of it, and the two
runs end with the same weights up to the rounding of the all-reduce, which Adam's first
steps amplify (in float32 the weights differ by about 1e-4 after 20 steps and 1e-2 after
200, with the same loss to three decimals; by less than 1e-12 with ``--dtype float64``).
The stream follows a rule a one-layer GPT learns in a few hundred steps: each token is the
one two places before it plus one (modulo the vocabulary size), except one in ten, drawn at
random. Rank 0 writes ``--out``: the model's config and final weights, the history averaged
over the ranks (`llmscratch.distributed.global_history`), the world size, and the largest
difference between the replicas' weights (`replica_divergence`, 0 when they agree).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import asdict

import torch

from ..distributed import (
    global_history,
    process_group,
    replica_divergence,
    toy_batches,
    toy_config,
    toy_model,
    train_data_parallel,
)
from ..fileio import atomic_path

MODULE = "llmscratch.scripts.train_ddp"
def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=f"torchrun --nproc-per-node N -m {MODULE}", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, help="where rank 0 writes the weights and the history (.pt)")
    parser.add_argument("--steps", type=int, default=200, help="optimizer updates (default 200)")
    parser.add_argument("--batch-size", type=int, default=32, help="the global batch (default 32)")
    parser.add_argument("--seed", type=int, default=42, help="batch order (the weights' seed is fixed)")
    parser.add_argument("--dtype", choices=("float32", "float64"), default="float32", help="the weights' format")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads per process (default 1)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar (for logs)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    cfg = toy_config(args.steps, args.batch_size, args.seed)
    with process_group("gloo") as (rank, world_size):
        model = toy_model(dtype=getattr(torch, args.dtype))
        history = train_data_parallel(model, toy_batches(), cfg, progress=not args.no_progress)
        # Collectives: every rank takes part, then rank 0 alone writes.
        history, divergence = global_history(history), replica_divergence(model)
        if rank == 0:
            state = {"model_config": asdict(model.config), "model": model.state_dict(), "history": asdict(history),
                     "world_size": world_size, "replica_divergence": divergence}
            with atomic_path(args.out) as tmp:
                torch.save(state, tmp)
            print(f"{world_size} process(es): loss {history.eval_val[0]:.3f} -> {history.eval_val[-1]:.3f} "
                  f"(val), replicas differ by {divergence:.1e}; weights in {args.out}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

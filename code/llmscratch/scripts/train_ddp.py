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

from ..config import GPTConfig
from ..datasets import TextBatches, contiguous_split
from ..distributed import global_history, process_group, replica_divergence, train_data_parallel
from ..fileio import atomic_path
from ..model import GPT
from ..training import TrainConfig

MODULE = "llmscratch.scripts.train_ddp"
# Small enough that a test trains it on two processes in seconds; dropout 0, which the equivalence needs.
TOY_GPT = GPTConfig(vocab_size=20, context_length=8, d_model=16, n_layers=1, n_heads=2, dropout=0.0)


def toy_batches(config: GPTConfig = TOY_GPT, tokens: int = 4096, seed: int = 0) -> TextBatches:
    """Windows of the toy stream (every position a target), cut 90/10 into "train" and "val"."""
    g = torch.Generator().manual_seed(seed)
    noise = torch.randint(config.vocab_size, (tokens,), generator=g).tolist()
    random = (torch.rand(tokens, generator=g) < 0.1).tolist()
    stream = noise[:2]
    for t in range(2, tokens):
        stream.append(noise[t] if random[t] else (stream[-2] + 1) % config.vocab_size)
    train, val, _ = contiguous_split(torch.tensor(stream), (0.9, 0.1, 0.0))
    return TextBatches({"train": train, "val": val}, config.context_length, every_position=True)


def toy_model(config: GPTConfig = TOY_GPT, dtype: torch.dtype = torch.float32, seed: int = 0) -> GPT:
    """A freshly initialised GPT, the same on every rank for the same seed."""
    torch.manual_seed(seed)
    return GPT(config).to(dtype)


def toy_config(steps: int, batch_size: int, seed: int = 42) -> TrainConfig:
    """A short run: estimates at the start and the end only."""
    return TrainConfig(steps=steps, batch_size=batch_size, learning_rate=1e-2, warmup_steps=2,
                       eval_interval=steps, eval_batches=2, seed=seed)


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

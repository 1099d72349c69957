"""Data-parallel training: the course's `train` loop on several processes at once.

    torchrun --nproc-per-node 2 -m llmscratch.scripts.train_ddp --out run.pt

Data parallelism in one paragraph. Every process (a *rank*) holds the whole model. Each step,
every rank draws the same *global* batch (the batch generator is seeded identically on all
of them) and keeps only its own slice of it (`ShardedBatches`). Each rank computes the mean
loss and the gradient of its slice; PyTorch's `DistributedDataParallel` (DDP) averages the
gradients over the ranks with an all-reduce while the backward pass is still running, so
every rank ends the backward pass holding the same gradient and takes the same optimizer
step. The replicas start equal (DDP copies rank 0's weights to the others when it wraps the
model) and stay equal without ever sending a weight again.

When is that the same run as one process with the whole global batch? The mean of the
ranks' mean losses is the mean over the global batch only when every slice has the same
number of examples, so a global batch that does not split evenly is an error here. (The
GPT's loss is a mean over the targets it counts; targets set to -100 would have to be spread
evenly too. `TextBatches` has none.) Dropout breaks the equivalence: with the same seed every
rank draws the same masks for its slice, where one process draws one mask for the whole
batch. With ``dropout=0`` the two runs differ only by the rounding of the all-reduce.

    >>> import torch
    >>> from llmscratch import TextBatches
    >>> batches = TextBatches({"train": torch.arange(100)}, context_length=4)
    >>> x, y = batches("train", 6, torch.Generator().manual_seed(0))
    >>> x0, y0 = ShardedBatches(batches, rank=0, world_size=2)("train", 6, torch.Generator().manual_seed(0))
    >>> x1, y1 = ShardedBatches(batches, rank=1, world_size=2)("train", 6, torch.Generator().manual_seed(0))
    >>> tuple(x0.shape), torch.equal(torch.cat([x0, x1]), x), torch.equal(torch.cat([y0, y1]), y)
    ((3, 4), True, True)

``TrainConfig.batch_size`` stays the global batch, so one config describes the run on any
number of processes. What each rank records is its own: `train` on rank r logs the losses of
rank r's slices, and its loss estimates are made on rank r's slices of the estimate batches.
`global_history` averages them over the ranks into the history one process would have kept.

Left out: checkpoints and ``keep_best`` under DDP (a checkpoint would hold DDP's renamed
weights and be written by every rank at once; ranks estimating on different slices could
pick different best steps), DDP's ``no_sync`` (with gradient accumulation this code
all-reduces after every micro-batch: correct, only slower), uneven last batches, sharding
the model or the optimizer state (FSDP, ZeRO), tensor and pipeline parallelism, and GPUs
with NCCL. The gloo backend runs on CPUs, which is what the course's tests have; a later
chapter explains the rest.

References: Li et al., "PyTorch Distributed: Experiences on Accelerating Data Parallel
Training" (VLDB 2020); the PyTorch documentation of `DistributedDataParallel` and of
``torchrun`` (torch.distributed.run).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from .config import GPTConfig
from .datasets import TextBatches, contiguous_split
from .model import GPT
from .training import Batches, History, TrainConfig, train

__all__ = ["TOY_GPT", "ShardedBatches", "global_history", "process_group", "rank_and_world_size",
           "replica_divergence", "toy_batches", "toy_config", "toy_model", "train_data_parallel"]


class ShardedBatches:
    """Rank `rank`'s slice of every global batch that `batches` draws.

    ``ShardedBatches(batches, rank, world_size)("train", B, generator)`` draws the global batch
    of B examples from the shared, identically seeded generator, exactly as one process would,
    and returns its rows ``rank * B / world_size`` up to ``(rank + 1) * B / world_size``. The
    slices of the ranks are disjoint and together are the global batch. B must split evenly.
    """

    def __init__(self, batches: Batches, rank: int, world_size: int) -> None:
        for name, value in (("rank", rank), ("world_size", world_size)):
            if not isinstance(value, int) or isinstance(value, bool):
                raise TypeError(f"{name} must be an integer, got {value!r}")
        if world_size < 1 or not 0 <= rank < world_size:
            raise ValueError(f"need world_size >= 1 and 0 <= rank < world_size, got rank {rank}, "
                             f"world_size {world_size}")
        self.batches, self.rank, self.world_size = batches, rank, world_size

    def share(self, batch_size: int) -> int:
        """Examples per rank in a global batch of `batch_size`; `ValueError` unless it splits evenly."""
        if batch_size % self.world_size:
            raise ValueError(f"a global batch of {batch_size} examples does not split evenly over "
                             f"{self.world_size} processes; the averaged gradient is the global batch's "
                             "only for equal slices: make batch_size a multiple of the world size")
        return batch_size // self.world_size

    def __call__(self, split: str, batch_size: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        share = self.share(batch_size)
        x, y = self.batches(split, batch_size, generator)  # (B, T), (B,) or (B, T): the same on every rank
        if len(x) != batch_size or len(y) != batch_size:
            raise ValueError(f"asked for {batch_size} examples, got {len(x)} inputs and {len(y)} targets")
        rows = slice(self.rank * share, (self.rank + 1) * share)
        return x[rows], y[rows]  # (B / world_size, ...)


def rank_and_world_size() -> tuple[int, int]:
    """This process's rank and the number of processes; (0, 1) outside a process group."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


@contextmanager
def process_group(backend: str = "gloo") -> Iterator[tuple[int, int]]:
    """Join the process group that torchrun describes; yield ``(rank, world_size)``; leave it at the end.

    torchrun starts every process with RANK, WORLD_SIZE, MASTER_ADDR and MASTER_PORT in its
    environment; ``init_process_group`` reads the last two to meet the others. Started without
    them (plain ``python``), this yields ``(0, 1)`` and joins nothing, so one program runs on
    one process or many. "gloo" is the backend that runs on CPUs.
    """
    if "WORLD_SIZE" not in os.environ:
        yield 0, 1
        return
    missing = [name for name in ("RANK", "MASTER_ADDR", "MASTER_PORT") if name not in os.environ]
    if missing:
        raise RuntimeError(f"WORLD_SIZE is set but not {', '.join(missing)}: start the program with torchrun")
    rank, world_size = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    dist.init_process_group(backend, rank=rank, world_size=world_size)
    try:
        yield rank, world_size
    finally:
        dist.destroy_process_group()


def train_data_parallel(
    model: torch.nn.Module,
    batches: Batches,
    cfg: TrainConfig,
    *,
    checkpoint: str | os.PathLike | None = None,
    stop_after: int | None = None,
    progress: bool = True,
    desc: str = "training",
) -> History:
    """`train` on every rank of the process group, with ``cfg.batch_size`` as the global batch.

    Call it on every rank with the same arguments. It wraps `model` in DDP (which first copies
    rank 0's weights to every rank) and `batches` in `ShardedBatches`, and runs the unchanged
    training loop; `model` itself is trained in place. It returns this rank's `History` (see
    `global_history`). Only rank 0 shows a progress bar. Outside a process group it is `train`.
    Checkpoints and ``cfg.keep_best`` are refused on any number of processes, so that a call
    that works on one process works on many.
    """
    if checkpoint is not None:
        raise ValueError("checkpointing a data-parallel run is left out (see llmscratch.distributed); "
                         "save the model's state_dict on rank 0 when training ends")
    if cfg.keep_best:
        raise ValueError("keep_best is left out of data-parallel training: each rank estimates the loss on "
                         "its own slices, so the ranks could keep different weights")
    rank, world_size = rank_and_world_size()
    if world_size == 1:
        return train(model, batches, cfg, stop_after=stop_after, progress=progress, desc=desc)
    shards = ShardedBatches(batches, rank, world_size)
    shards.share(cfg.batch_size)  # an uneven global batch fails here, before DDP is set up
    replica = DistributedDataParallel(model)  # its forward returns the model's (logits, loss)
    return train(replica, shards, cfg, stop_after=stop_after, progress=progress and rank == 0, desc=desc)


def global_history(history: History) -> History:
    """The `History` one process would have kept: every loss averaged over the ranks (an all-reduce).

    Each rank's losses are means over equal slices, so their average is the mean over the
    global batch. Call it on every rank; outside a process group it returns `history` as is.
    """
    _, world_size = rank_and_world_size()
    if world_size == 1:
        return history

    def mean(values: list[float]) -> list[float]:
        total = torch.tensor(values, dtype=torch.float64)
        dist.all_reduce(total)  # sum over the ranks, the same result on every rank
        return (total / world_size).tolist()

    return replace(history, train_loss=mean(history.train_loss), eval_train=mean(history.eval_train),
                   eval_val=mean(history.eval_val))


@torch.no_grad()
def replica_divergence(model: torch.nn.Module) -> float:
    """The largest difference between any weight on any rank and rank 0's copy of it: 0 when all agree.

    A check for the claim that the replicas stay equal. Call it on every rank; 0.0 outside a
    process group.
    """
    _, world_size = rank_and_world_size()
    if world_size == 1:
        return 0.0
    worst = torch.zeros((), dtype=torch.float64)
    for p in model.parameters():
        reference = p.detach().clone()
        dist.broadcast(reference, src=0)  # rank 0's copy, on every rank
        worst = torch.maximum(worst, (p - reference).abs().max().double())
    dist.all_reduce(worst, op=dist.ReduceOp.MAX)
    return float(worst)


# The toy run of scripts/train_ddp.py, the tests and the scaling-out chapter: one definition for all three.
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

"""Low-rank adapters (LoRA): fine-tune a few small matrices beside frozen weights, then fold them in.

    names = add_lora(model, rank=8)        # the attention and feed-forward matrices get adapters
    ...train: only the adapters' parameters have requires_grad...
    merge_lora(model)                      # W <- W + (alpha / rank) B A: plain linear layers' speed again

A `LoRALinear` wraps a frozen ``nn.Linear`` with weight W (out × in) and adds a low-rank update:

    y = x Wᵀ + b + (alpha / rank) · x Aᵀ Bᵀ,     A: rank × in,  B: out × rank

A starts random and B at zero, so at the start the model is exactly the one it wraps, and the
update B A has rank at most `rank`: (in + out) · rank trainable numbers instead of in · out.
Merging adds (alpha / rank) B A into W once, after which the layer costs what the original did;
unmerging subtracts it again (up to rounding).

Left out: dropout on the adapter's input, adapters on the embeddings, and quantized base weights
(QLoRA).

References: Hu et al., "LoRA: Low-Rank Adaptation of Large Language Models" (ICLR 2022);
Dettmers et al., "QLoRA" (NeurIPS 2023).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn as nn

__all__ = ["LORA_TARGETS", "LoRALinear", "add_lora", "lora_parameters", "merge_lora", "trainable_share", "unmerge_lora"]

# The linear layers of a block that get adapters by default: attention's projections and the feed-forward's.
LORA_TARGETS = ("qkv", "proj", "up", "down", "gate")


class LoRALinear(nn.Module):
    """A frozen ``nn.Linear`` plus a trainable low-rank update of rank `rank`, scaled by ``alpha / rank``."""

    def __init__(self, base: nn.Linear, rank: int, alpha: float | None = None) -> None:
        super().__init__()
        if not isinstance(base, nn.Linear):
            raise TypeError(f"LoRA wraps an nn.Linear, got {type(base).__name__}")
        limit = min(base.in_features, base.out_features)
        if isinstance(rank, bool) or not isinstance(rank, int) or not 1 <= rank <= limit:
            raise ValueError(f"rank must be an integer from 1 to min(in, out) = {limit} for this "
                             f"{base.in_features} -> {base.out_features} layer, got {rank!r}")
        self.base, self.rank = base, rank
        self.scale = (rank if alpha is None else alpha) / rank  # alpha defaults to rank: a scale of 1
        for p in base.parameters():
            p.requires_grad_(False)
        # A like nn.Linear's default initialisation, B at zero: the update starts at exactly zero.
        self.lora_a = nn.Parameter(torch.empty(rank, base.in_features))
        nn.init.kaiming_uniform_(self.lora_a, a=math.sqrt(5))
        self.lora_b = nn.Parameter(torch.zeros(base.out_features, rank))
        self.merged = False

    def delta(self) -> torch.Tensor:
        """The update to the weight, (alpha / rank) B A: (out, in)."""
        return self.scale * self.lora_b @ self.lora_a

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.base(x)
        if self.merged:
            return y
        return y + self.scale * (x @ self.lora_a.T) @ self.lora_b.T  # (..., rank) then (..., out)

    @torch.no_grad()
    def merge(self) -> None:
        """Fold the update into the base weight; the adapter then adds nothing until `unmerge`."""
        if not self.merged:
            self.base.weight += self.delta().to(self.base.weight.dtype)
            self.merged = True

    @torch.no_grad()
    def unmerge(self) -> None:
        """Take the update back out of the base weight."""
        if self.merged:
            self.base.weight -= self.delta().to(self.base.weight.dtype)
            self.merged = False

    def extra_repr(self) -> str:
        return f"rank={self.rank}, scale={self.scale:g}, merged={self.merged}"


def add_lora(model: nn.Module, rank: int, alpha: float | None = None,
             targets: Sequence[str] = LORA_TARGETS) -> list[str]:
    """Replace every ``nn.Linear`` whose name ends with one of `targets` by a `LoRALinear`; freeze everything else.

    Returns the names of the wrapped layers. Raises ValueError when no layer matches.
    """
    for p in model.parameters():
        p.requires_grad_(False)
    wrapped = []
    for name, module in list(model.named_modules()):
        for child_name, child in list(module.named_children()):
            if isinstance(child, nn.Linear) and child_name in targets:
                setattr(module, child_name, LoRALinear(child, rank, alpha))
                wrapped.append(f"{name}.{child_name}" if name else child_name)
    if not wrapped:
        raise ValueError(f"no nn.Linear named one of {tuple(targets)} in the model")
    return wrapped


def lora_parameters(model: nn.Module) -> list[nn.Parameter]:
    """The adapters' parameters (A and B of every `LoRALinear`), for the optimizer."""
    return [p for m in model.modules() if isinstance(m, LoRALinear) for p in (m.lora_a, m.lora_b)]


def merge_lora(model: nn.Module) -> None:
    """Merge every adapter of `model` into its base weight."""
    for m in model.modules():
        if isinstance(m, LoRALinear):
            m.merge()


def unmerge_lora(model: nn.Module) -> None:
    """Undo `merge_lora`."""
    for m in model.modules():
        if isinstance(m, LoRALinear):
            m.unmerge()


def trainable_share(model: nn.Module) -> float:
    """The fraction of the model's (distinct) parameters that have requires_grad."""
    params = list(model.parameters())  # a tied matrix is listed once
    total = sum(p.numel() for p in params)
    return sum(p.numel() for p in params if p.requires_grad) / total if total else 0.0

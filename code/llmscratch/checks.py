"""Input checks that every model and config of the course shares: a clear error, never a silent wrong answer.

A wrong *type* raises `TypeError` (a float where a size belongs, a list where a tensor of ids
belongs); a value of the right type that is out of range raises `ValueError`:

    >>> from dataclasses import dataclass
    >>> @dataclass
    ... class Sizes:
    ...     width: object
    >>> check_sizes(Sizes(width=0), ("width",))
    Traceback (most recent call last):
    ValueError: Sizes.width must be a positive integer, got 0

Token ids are checked for type and shape before the model runs, but their *range* is checked
by the embedding lookup itself (`embed_ids`): PyTorch's lookup already refuses an id outside
the table, and turning its `IndexError` into our message costs nothing. Reading ``idx.max()``
before every forward pass would copy a number back from the GPU on every step and stop
``torch.compile`` from capturing the model as one graph.

Left out: checks of floating-point inputs (NaN detection belongs to the training loop, which
stops on a non-finite loss).
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = ["check_sizes", "check_token_ids", "embed_ids", "window_loss"]

ID_DTYPES = (torch.int64, torch.int32)


def check_sizes(config: object, names: tuple[str, ...], minimum: int = 1) -> None:
    """Each named field of `config` must be an int (not a bool) of at least `minimum`.

    `TypeError` for a value that is not an integer, `ValueError` for one that is too small.
    """
    kind = {0: "non-negative", 1: "positive"}.get(minimum, f">= {minimum}")
    for name in names:
        value = getattr(config, name)
        if not isinstance(value, int) or isinstance(value, bool):
            raise TypeError(f"{type(config).__name__}.{name} must be a {kind} integer, got {value!r}")
        if value < minimum:
            raise ValueError(f"{type(config).__name__}.{name} must be a {kind} integer, got {value!r}")


def check_token_ids(idx: object, length: int | None = None) -> None:
    """`idx` must be a 2-D int64 or int32 tensor (batch, length) of token ids.

    With `length`, the second dimension must equal it (window models see exactly that many);
    without, it must be at least 1. `TypeError` for a wrong type or dtype, `ValueError` for a
    wrong shape. The ids' range is left to `embed_ids`.
    """
    if not isinstance(idx, torch.Tensor):
        raise TypeError(f"idx must be a tensor of token ids, got {type(idx).__name__}")
    if idx.dtype not in ID_DTYPES:
        raise TypeError(f"idx must be an int64 or int32 tensor of token ids, got {idx.dtype}")
    if idx.ndim != 2:
        raise ValueError(f"idx must have shape (batch, length), got {tuple(idx.shape)}")
    if length is not None and idx.shape[1] != length:
        raise ValueError(f"idx must have shape (batch, context_length={length}), got {tuple(idx.shape)}")
    if idx.shape[1] == 0:
        raise ValueError("idx must hold at least one position")


def embed_ids(table: nn.Embedding | torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """Look `idx` up in an embedding table (an `nn.Embedding` or a (V, E) tensor): idx.shape + (E,).

    An id outside 0..V-1, negative ones included, raises `ValueError` naming the vocabulary
    (plain tensor indexing would wrap -1 around to the last row and return a wrong answer).

    >>> table = torch.arange(6.0).view(3, 2)
    >>> embed_ids(table, torch.tensor([[2, 0]])).tolist()
    [[[4.0, 5.0], [0.0, 1.0]]]
    >>> embed_ids(table, torch.tensor([[-1]]))
    Traceback (most recent call last):
    ValueError: idx holds ids outside the vocabulary 0..2
    """
    weight = table.weight if isinstance(table, nn.Embedding) else table
    try:
        return table(idx) if isinstance(table, nn.Embedding) else F.embedding(idx, weight)
    except IndexError:  # raised by the CPU lookup; on a GPU the kernel stops with a device assert
        raise ValueError(f"idx holds ids outside the vocabulary 0..{weight.shape[0] - 1}") from None


def window_loss(logits: torch.Tensor, targets: torch.Tensor | None) -> torch.Tensor | None:
    """Mean cross-entropy of `logits` (B, V) against `targets` (B,), or None without targets."""
    if targets is None:
        return None
    if targets.shape != logits.shape[:1]:
        raise ValueError(f"targets must have shape ({logits.shape[0]},), got {tuple(targets.shape)}")
    return F.cross_entropy(logits, targets)

"""Training examples for next-token models: (context window, next token) pairs, and batches of them.

Two kinds of data, two ways of cutting windows:

* **Many short sequences** (names). Each one is read between boundary tokens and every position
  becomes one example. The window before the first characters reaches past the start of the
  sequence, so it is padded on the left with the boundary id. With ``context_length=3`` and the
  boundary 0, the sequence ``[5, 13]`` ("em") gives three examples:

      >>> X, Y = name_windows([[5, 13]], context_length=3, boundary_id=0)
      >>> X.tolist(), Y.tolist()
      ([[0, 0, 0], [0, 0, 5], [0, 5, 13]], [5, 13, 0])

* **One long stream** (Shakespeare). Every offset is a window. `contiguous_split` cuts the stream
  into train, validation and test blocks; `get_batch` draws random windows for training, and
  `stream_windows` lists every window of a held-out block for an exact loss.

`PairBatches` and `TextBatches` wrap either kind as the ``batches`` argument of
`llmscratch.training.train`: a callable ``batches(split, batch_size, generator) -> (x, y)`` whose
randomness comes only from the generator it is handed, so training is reproducible.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch

__all__ = ["PairBatches", "TextBatches", "contiguous_split", "get_batch", "name_windows", "stream_windows"]


def name_windows(
    sequences: Sequence[Sequence[int]], context_length: int, boundary_id: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """All (context, next) examples of the boundary-wrapped `sequences`.

    Returns ``X`` (N, context_length) and ``Y`` (N,), N = sum of (length + 1). Built without a
    Python loop over positions: every sequence is laid out in one stream behind
    `context_length` boundary tokens, and the windows are slices of that stream.
    """
    if not isinstance(context_length, int) or isinstance(context_length, bool):
        raise TypeError(f"context_length must be a positive integer, got {context_length!r}")
    if context_length <= 0:
        raise ValueError(f"context_length must be a positive integer, got {context_length!r}")
    T = context_length
    lengths = torch.tensor([len(s) for s in sequences], dtype=torch.long)  # (S,)
    if lengths.numel() == 0:
        raise ValueError("no sequences to make windows from")
    # Stream: for each sequence, T boundary tokens, its ids, one closing boundary token.
    span = lengths + T + 1  # (S,) stream length per sequence
    starts = torch.cumsum(span, 0) - span  # (S,) where each sequence's padding begins
    stream = torch.full((int(span.sum()),), boundary_id, dtype=torch.long)
    ids = torch.tensor([i for s in sequences for i in s], dtype=torch.long)  # (sum L,)
    if ids.numel() and (int(ids.min()) < 0 or ids.eq(boundary_id).any()):
        raise ValueError(f"sequences must hold non-negative ids other than the boundary id {boundary_id}")
    owner = torch.repeat_interleave(torch.arange(len(lengths)), lengths)  # (sum L,)
    position = torch.arange(ids.numel()) - torch.repeat_interleave(torch.cumsum(lengths, 0) - lengths, lengths)
    stream[starts[owner] + T + position] = ids
    # Targets are every stream position after a sequence's T padding tokens.
    is_target = torch.ones_like(stream, dtype=torch.bool)
    pad = starts.unsqueeze(1) + torch.arange(T)  # (S, T) padding positions
    is_target[pad.flatten()] = False
    target_pos = is_target.nonzero().squeeze(1)  # (N,)
    windows = stream.unfold(0, T, 1)  # (len - T + 1, T): windows[i] = stream[i : i + T]
    return windows[target_pos - T].clone(), stream[target_pos]  # (N, T), (N,)


def contiguous_split(
    data: torch.Tensor, fractions: tuple[float, float, float] = (0.9, 0.05, 0.05)
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Cut a token stream into train, validation and test pieces, in order, without shuffling.

    A long text is not a bag of independent examples: neighbouring windows overlap, so a random
    split would put almost every validation window's text in training too. Cutting the stream
    into consecutive blocks keeps the held-out text unseen (apart from what the play repeats).

    >>> [len(part) for part in contiguous_split(torch.arange(100))]
    [90, 5, 5]
    """
    if len(fractions) != 3 or any(f < 0 for f in fractions) or abs(sum(fractions) - 1) > 1e-9:
        raise ValueError(f"fractions must be three non-negative numbers summing to 1, got {fractions}")
    n_train = int(fractions[0] * len(data))
    n_val = int(fractions[1] * len(data))
    return data[:n_train], data[n_train : n_train + n_val], data[n_train + n_val :]


def stream_windows(data: torch.Tensor, context_length: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Every window of a 1-D stream and the token after it: ``X`` (N - T, T) and ``Y`` (N - T,).

    For an exact loss over a whole held-out stream. ``X`` is a view of `data`, no copy.

    >>> X, Y = stream_windows(torch.arange(5), 3)
    >>> X.tolist(), Y.tolist()
    ([[0, 1, 2], [1, 2, 3]], [3, 4])
    """
    if data.ndim != 1 or len(data) <= context_length or context_length <= 0:
        raise ValueError(f"need a 1-D stream longer than context_length={context_length}, "
                         f"got shape {tuple(data.shape)}")
    return data.unfold(0, context_length, 1)[:-1], data[context_length:]  # (N-T, T), (N-T,)


def get_batch(
    data: torch.Tensor,
    context_length: int,
    batch_size: int,
    generator: torch.Generator,
    every_position: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """`batch_size` random contiguous windows of the 1-D token stream `data`.

    ``x`` is (B, T). ``y`` is the token after each window, (B,), or with
    `every_position` the window shifted by one, (B, T): the targets of a
    model that predicts at every position.
    """
    T = context_length
    if data.ndim != 1:
        shape = tuple(data.shape)
        raise ValueError(f"data must be a 1-D tensor of ids, got shape {shape}")
    if T <= 0 or batch_size <= 0:
        sizes = f"context_length {T}, batch_size {batch_size}"
        raise ValueError(f"sizes must be positive, got {sizes}")
    if len(data) <= T:
        n = len(data)
        raise ValueError(f"data has {n} tokens, too few for {T} and a target")
    # The last window with a target after it starts at len(data) - T - 1.
    n_starts = len(data) - T
    starts = torch.randint(n_starts, (batch_size,), generator=generator)  # (B,)
    offsets = starts.unsqueeze(1) + torch.arange(T + 1)  # (B, T+1)
    chunk = data[offsets]  # (B, T+1)
    x = chunk[:, :-1]  # (B, T)
    y = chunk[:, 1:] if every_position else chunk[:, -1]  # (B, T) or (B,)
    return x, y


class PairBatches:
    """Random mini-batches (drawn with replacement) from fixed example tensors per split.

    ``PairBatches({"train": (X, Y), "val": (Xv, Yv)})``; ``batches("train", 32, g)`` returns
    32 rows of ``X`` and the matching entries of ``Y``.
    """

    def __init__(self, splits: Mapping[str, tuple[torch.Tensor, torch.Tensor]]) -> None:
        for name, (x, y) in splits.items():
            if len(x) != len(y) or len(x) == 0:
                raise ValueError(f"split {name!r}: need as many (and more than 0) targets as inputs, "
                                 f"got {len(x)} and {len(y)}")
        self.splits = dict(splits)

    def __call__(self, split: str, batch_size: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        if split not in self.splits:
            raise KeyError(f"no split {split!r}; have {sorted(self.splits)}")
        x, y = self.splits[split]
        rows = torch.randint(len(x), (batch_size,), generator=generator)  # (B,)
        return x[rows], y[rows]


class TextBatches:
    """Random windows of long token streams per split, via `get_batch`."""

    def __init__(self, splits: Mapping[str, torch.Tensor], context_length: int, every_position: bool = False) -> None:
        for name, data in splits.items():
            if data.ndim != 1 or len(data) <= context_length:
                raise ValueError(f"split {name!r} must be a 1-D stream longer than {context_length} tokens")
        self.splits = dict(splits)
        self.context_length = context_length
        self.every_position = every_position

    def __call__(self, split: str, batch_size: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        if split not in self.splits:
            raise KeyError(f"no split {split!r}; have {sorted(self.splits)}")
        return get_batch(self.splits[split], self.context_length, batch_size, generator, self.every_position)

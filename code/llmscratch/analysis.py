"""Numbers that describe what an attention head does, measured from its weights.

A trained model's attention maps are easier to compare as a few statistics per head than as
pictures. For causal weights w[i, j] (query i, key j <= i, each row summing to 1), averaged over
the sequences of a batch and over the queries i >= `start`:

- ``distance``: how far back the head looks on average, sum_j w[i, j] (i - j), in tokens;
- ``entropy``: how spread out its weights are, -sum_j w[i, j] ln w[i, j], in nats
  (0 when a query puts all its weight on one key, ln(i + 1) when it spreads evenly);
- ``previous``: the weight on the token just before, w[i, i - 1];
- ``first``: the weight on the first token of the sequence, w[i, 0] (an "attention sink");
- ``current``: the weight on the query's own position, w[i, i].

A head that attends to the previous token only has distance 1, entropy 0 and previous 1:

    >>> import torch
    >>> w = torch.tensor([[1.0, 0, 0], [1, 0, 0], [0, 1, 0]])  # query 0 can only see itself
    >>> stats = attention_statistics(w.view(1, 1, 1, 3, 3))  # 1 layer, 1 sequence, 1 head
    >>> {k: round(float(v), 2) for k, v in stats.items()}
    {'distance': 1.0, 'entropy': 0.0, 'previous': 1.0, 'first': 0.5, 'current': 0.0}

Queries near the start have few keys to choose from, so their statistics say little (query 1's
previous token *is* the first token, as above); a larger `start` leaves them out.

Left out: statistics that need the tokens themselves (attention to punctuation, to an earlier
copy of the current token as induction heads do), and attributions through the value and output
projections, which say how much a head's output matters rather than where it looks.

References: Clark et al., "What Does BERT Look At?" (BlackboxNLP 2019), Voita et al., "Analyzing
Multi-Head Self-Attention" (ACL 2019), Xiao et al., "Efficient Streaming Language Models with
Attention Sinks" (ICLR 2024).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

__all__ = ["STATISTICS", "attention_statistics"]

# The names of the statistics, in the order `attention_statistics` returns them.
STATISTICS = ("distance", "entropy", "previous", "first", "current")


def attention_statistics(
    weights: torch.Tensor | Sequence[torch.Tensor], start: int = 1, atol: float = 1e-4
) -> dict[str, torch.Tensor]:
    """Per-head statistics of causal attention weights: a dict of (n_layers, n_heads) tensors.

    `weights` is a list with one (B, H, T, T) tensor per layer (``GPT.trace(idx).attention``) or
    one tensor (L, B, H, T, T). Each statistic (see the module docstring) is averaged over the B
    sequences and over the queries ``start <= i < T``; ``1 <= start < T`` so that every query
    has a previous token. Raises `ValueError` for weights that are not causal attention weights
    (negative, rows not summing to 1 within `atol`, or weight on future keys).
    """
    if isinstance(weights, torch.Tensor):
        stacked = weights
    else:
        layers = list(weights)
        if not layers or not all(isinstance(w, torch.Tensor) for w in layers):
            raise ValueError("weights must be a tensor (L, B, H, T, T) or a non-empty list of (B, H, T, T) tensors")
        if len({tuple(w.shape) for w in layers}) != 1:
            raise ValueError(f"every layer's weights need the same shape, got {[tuple(w.shape) for w in layers]}")
        stacked = torch.stack(layers)  # (L, B, H, T, T)
    if stacked.ndim != 5 or stacked.shape[-1] != stacked.shape[-2]:
        raise ValueError(f"expected weights of shape (L, B, H, T, T), got {tuple(stacked.shape)}")
    T = stacked.shape[-1]
    if not isinstance(start, int) or isinstance(start, bool):
        raise TypeError(f"start must be an integer with 1 <= start < T = {T}, got {start!r}")
    if not 1 <= start < T:
        raise ValueError(f"start must be an integer with 1 <= start < T = {T}, got {start!r}")
    w = stacked.detach().double()
    future = ~torch.ones(T, T, dtype=torch.bool, device=w.device).tril()  # (T, T): True where j > i
    if (w < 0).any() or not torch.allclose(w.sum(-1), torch.ones((), dtype=w.dtype, device=w.device), atol=atol):
        raise ValueError("weights must be non-negative with every row summing to 1 (a softmax over keys)")
    if (w[..., future].abs() > atol).any():
        raise ValueError("weights put weight on future keys (j > i): these statistics assume causal attention")

    w = w[..., start:, :]  # (L, B, H, Tq, T): the queries start..T-1
    i = torch.arange(start, T, device=w.device, dtype=w.dtype)  # (Tq,) query positions
    j = torch.arange(T, device=w.device, dtype=w.dtype)  # (T,) key positions
    rows = torch.arange(T - start, device=w.device)  # (Tq,) row index of query i within w
    per_query = {
        "distance": (w * (i[:, None] - j)).sum(-1),  # (L, B, H, Tq); future weights are 0
        "entropy": -torch.special.xlogy(w, w).sum(-1),  # 0 ln 0 counts as 0
        "previous": w[..., rows, rows + start - 1],  # w[i, i - 1]
        "first": w[..., 0],
        "current": w[..., rows, rows + start],  # w[i, i]
    }
    return {name: per_query[name].mean(dim=(1, 3)).float() for name in STATISTICS}  # (L, H) each

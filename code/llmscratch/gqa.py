"""Grouped-query attention after the fact: turn a multi-head model into one with fewer key/value heads.

A GPT with ``n_heads`` query heads and as many key/value heads caches
``2 · n_layers · n_heads · head_dim`` numbers per token (`llmscratch.kv_cache.kv_cache_bytes`).
Grouped-query attention (GQA) lets each key/value head serve a *group* of ``n_heads / n_kv_heads``
consecutive query heads, so the cache shrinks by that factor; multi-query attention (MQA) is the
extreme of one key/value head for all. Training such a model from scratch is one `GPTConfig`
field (``n_kv_heads``). Ainslie et al. (2023) instead *convert* a trained multi-head model: the
keys (and values) of each group's heads are replaced by their mean, which is the same as
averaging the rows of the key (and value) projection that make them, and a short "uptraining"
then lets the rest of the network adapt.

`pool_kv_heads` does that conversion on a `llmscratch.GPT`. The query heads, the output
projection, the feed-forward layers and the embeddings are copied unchanged; only the key and
value rows of each layer's ``qkv`` projection (and their biases) are averaged per group.
RoPE rotates every head's keys by the same angles, and the rotation is linear, so the mean of
the rotated keys is the rotated mean key: pooling before or after the rotation agrees.

    >>> import torch
    >>> from llmscratch import GPT, GPTConfig
    >>> mha = GPT(GPTConfig(vocab_size=10, context_length=8, d_model=8, n_layers=1, n_heads=4))
    >>> gqa = pool_kv_heads(mha, 2)  # heads (0, 1) share one key/value head, (2, 3) another
    >>> gqa.config.kv_heads, sum(p.numel() for p in mha.parameters()) - sum(p.numel() for p in gqa.parameters())
    (2, 72)

The 72 parameters are two key heads and two value heads, each 2 rows (head_dim) of 8 weights plus 2 biases.
The grouping matches `llmscratch.attention`: query head ``i`` reads key/value head
``i // (n_heads / n_kv_heads)``, so a group is a run of consecutive heads.

Left out: choosing the groups by similarity of the heads rather than by position, pooling by
anything but the plain mean (Ainslie et al. found the mean best of the simple choices), and
distillation from the multi-head model during uptraining.

References: Ainslie et al., "GQA: Training Generalized Multi-Query Transformer Models from
Multi-Head Checkpoints" (EMNLP 2023); Shazeer, "Fast Transformer Decoding: One Write-Head is All
You Need" (2019).
"""

from __future__ import annotations

from dataclasses import replace

import torch

from .model import GPT

__all__ = ["kv_head_counts", "pool_kv_heads"]


def kv_head_counts(n_heads: int) -> list[int]:
    """The key/value head counts of a sweep from multi-head to multi-query: n_heads, n_heads/2, ..., 1.

    Halving while the count divides evenly, then 1 (every count divides `n_heads`):

    >>> kv_head_counts(8), kv_head_counts(6), kv_head_counts(1)
    ([8, 4, 2, 1], [6, 3, 1], [1])
    """
    if not isinstance(n_heads, int) or isinstance(n_heads, bool) or n_heads < 1:
        raise ValueError(f"n_heads must be a positive integer, got {n_heads!r}")
    counts = [n_heads]
    while counts[-1] % 2 == 0:
        counts.append(counts[-1] // 2)
    if counts[-1] != 1:
        counts.append(1)
    return counts


def _pool_rows(w: torch.Tensor, heads: int, groups: int) -> torch.Tensor:
    """Average the rows of `heads` stacked blocks (heads·hs, ...) in `groups` runs: (groups·hs, ...)."""
    hs = w.shape[0] // heads
    blocks = w.reshape(groups, heads // groups, hs, *w.shape[1:])  # (groups, per_group, hs, ...)
    return blocks.mean(dim=1).reshape(groups * hs, *w.shape[1:])  # (groups·hs, ...)


@torch.no_grad()
def pool_kv_heads(model: GPT, n_kv_heads: int) -> GPT:
    """A copy of `model` with `n_kv_heads` key/value heads, each the mean of a group of the old ones.

    `model` may already be grouped: its key/value heads are pooled further, as long as
    `n_kv_heads` divides their count. With ``n_kv_heads`` equal to the current count the copy
    computes exactly what `model` computes. The copy is in the mode (train or eval) of `model`.
    Raises TypeError for a model that is not a GPT, ValueError for a count that does not divide.
    """
    if not isinstance(model, GPT):
        raise TypeError(f"pool_kv_heads needs a llmscratch.GPT, got {type(model).__name__}")
    c = model.config
    old = c.kv_heads
    if not isinstance(n_kv_heads, int) or isinstance(n_kv_heads, bool):
        raise TypeError(f"n_kv_heads must be an integer, got {n_kv_heads!r}")
    if n_kv_heads < 1 or old % n_kv_heads:
        raise ValueError(f"n_kv_heads={n_kv_heads} must be a positive divisor of the model's {old} key/value heads")
    pooled = GPT(replace(c, n_kv_heads=None if n_kv_heads == c.n_heads else n_kv_heads))
    state = model.state_dict()
    q_rows, kv_rows = c.n_heads * c.head_dim, old * c.head_dim
    for layer in range(c.n_layers):
        for name in ("weight", "bias"):
            key = f"blocks.{layer}.attention.qkv.{name}"
            if key not in state:
                continue  # no biases
            w = state[key]  # ((H + 2 Hkv)·hs, d) or ((H + 2 Hkv)·hs,)
            q, k, v = w.split([q_rows, kv_rows, kv_rows])  # (H·hs, ...), (Hkv·hs, ...) x2
            state[key] = torch.cat([q, _pool_rows(k, old, n_kv_heads), _pool_rows(v, old, n_kv_heads)])
    pooled.load_state_dict(state)
    return pooled.train(model.training)

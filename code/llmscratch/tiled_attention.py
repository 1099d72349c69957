"""Attention without the T × T matrix: tiles of keys and values, and the online softmax.

Written plainly, attention makes the whole (L, S) score matrix, its softmax, and only then the
weighted sum of the values: memory that grows with the *square* of the length. But one output
row needs only three running numbers per query to be computed one block of keys at a time:

* ``m``, the largest score seen so far (so that no exponential overflows);
* ``denom``, the sum of ``exp(score - m)`` over the keys seen so far (the softmax's denominator);
* ``acc``, the sum of ``exp(score - m) · v`` over the same keys (the numerator).

When a new block of keys raises the maximum from ``m`` to ``m'``, everything summed so far was
scaled by ``exp(-m)`` where it should now be ``exp(-m')``: multiplying ``denom`` and ``acc`` by
``exp(m - m')`` corrects it, exactly. After the last block, ``acc / denom`` is the softmax-weighted
average, the same number as the plain formula up to float rounding. This is the **online
softmax** (Milakov & Gimelshein 2018), and iterating over tiles of queries and keys with it is
the idea of FlashAttention (Dao et al. 2022): the (L, S) matrix is never stored, only one
``(block_q, block_k)`` tile of it at a time.

    >>> q, k, v = torch.randn(2, 7, 4), torch.randn(2, 7, 4), torch.randn(2, 7, 3)
    >>> torch.allclose(tiled_attention(q, k, v, block_size=3), torch.softmax(q @ k.mT / 2, -1) @ v, atol=1e-6)
    True

`online_softmax_step` is one update of the three running numbers, the piece a learner writes.
With ``is_causal=True`` (PyTorch's convention: query i sees keys j <= i, aligned to the top
left) key blocks that lie wholly in the future of a query block are skipped, which halves the
work, and a block that straddles the diagonal is masked.

Left out: the part that makes FlashAttention *fast*, keeping tiles in a GPU's on-chip memory
(SRAM) and fusing everything into one kernel. In Python each tile is several PyTorch calls,
so this is slower than PyTorch's fused kernel; what it shows is the memory. Also left out:
the backward pass (FlashAttention recomputes the tiles from ``m`` and ``denom`` instead of storing
the weights), dropout, arbitrary masks, and sliding windows (skip the blocks outside the band).

References: Milakov & Gimelshein, "Online normalizer calculation for softmax" (2018); Rabe &
Staats, "Self-attention Does Not Need O(n²) Memory" (2021); Dao et al., "FlashAttention: Fast and
Memory-Efficient Exact Attention with IO-Awareness" (NeurIPS 2022).
"""

from __future__ import annotations

import math

import torch

__all__ = ["online_softmax_step", "tiled_attention"]


def online_softmax_step(
    m: torch.Tensor, denom: torch.Tensor, acc: torch.Tensor, scores: torch.Tensor, values: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Fold one block of keys into the running max `m`, denominator `denom` and numerator `acc`.

    Shapes: `m` and `denom` (..., L, 1), `acc` (..., L, Ev), `scores` (..., L, b) for the block's b
    keys (-inf where masked), `values` (..., b, Ev). Start from ``m = -inf``, ``denom = 0``,
    ``acc = 0``; after the last block the attention output is ``acc / denom``. A hand-worked case,
    one query and two blocks of one key each with scores 0 then ln 3 and values 1 then 5:
    the weights are 1/4 and 3/4, so the output is 1/4 + 15/4 = 4.

    >>> m, denom, acc = torch.tensor([[-math.inf]]), torch.zeros(1, 1), torch.zeros(1, 1)
    >>> m, denom, acc = online_softmax_step(m, denom, acc, torch.tensor([[0.0]]), torch.tensor([[1.0]]))
    >>> m, denom, acc = online_softmax_step(m, denom, acc, torch.tensor([[math.log(3)]]), torch.tensor([[5.0]]))
    >>> round(float(acc / denom), 5)
    4.0
    """
    m_new = torch.maximum(m, scores.amax(dim=-1, keepdim=True))  # (..., L, 1)
    # A row that has seen only masked keys has m_new = -inf; subtracting 0 instead keeps exp(-inf) = 0, not NaN.
    shift = m_new.masked_fill(torch.isinf(m_new), 0.0)  # (..., L, 1)
    p = torch.exp(scores - shift)  # (..., L, b): this block's unnormalised weights
    rescale = torch.exp(m - shift)  # (..., L, 1): the old sums were relative to m, now to m_new
    denom = denom * rescale + p.sum(dim=-1, keepdim=True)  # (..., L, 1)
    acc = acc * rescale + p @ values  # (..., L, Ev)
    return m_new, denom, acc


def tiled_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    is_causal: bool = False,
    scale: float | None = None,
    block_size: int = 64,
    enable_gqa: bool = False,
) -> torch.Tensor:
    """softmax(q kᵀ · scale) v, computed tile by tile: (..., L, Ev), as ``F.scaled_dot_product_attention``.

    `q` is (..., L, E), `k` (..., S, E), `v` (..., S, Ev). Queries and keys are cut into blocks
    of `block_size` (the last may be shorter); the largest temporary is one (..., block, block)
    tile of scores, instead of the (..., L, S) matrix. `enable_gqa` shares each key/value head
    among ``Hq / Hkv`` query heads (dimension -3), as PyTorch's argument does.
    """
    if q.ndim < 2 or k.ndim != q.ndim or v.ndim != q.ndim:
        raise ValueError(f"q, k and v need the same number of dimensions (at least 2), got "
                         f"{tuple(q.shape)}, {tuple(k.shape)}, {tuple(v.shape)}")
    if q.shape[-1] != k.shape[-1] or k.shape[-2] != v.shape[-2]:
        raise ValueError(f"need q (..., L, E), k (..., S, E), v (..., S, Ev); got "
                         f"{tuple(q.shape)}, {tuple(k.shape)}, {tuple(v.shape)}")
    if not isinstance(block_size, int) or isinstance(block_size, bool) or block_size < 1:
        raise ValueError(f"block_size must be a positive integer, got {block_size!r}")
    if q.ndim >= 3 and k.shape[-3] != q.shape[-3]:
        hq, hkv = q.shape[-3], k.shape[-3]
        if not enable_gqa or hq % hkv:
            raise ValueError(f"{hq} query heads and {hkv} key/value heads: need equal counts, or "
                             "enable_gqa=True with the query heads a multiple of the key/value heads")
        # One key/value head per group of query heads: (..., Hq, S, E). A copy of K and V, O(S), not O(L·S).
        k, v = k.repeat_interleave(hq // hkv, dim=-3), v.repeat_interleave(hq // hkv, dim=-3)
    L, S = q.shape[-2], k.shape[-2]
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else scale
    out = torch.empty(*q.shape[:-1], v.shape[-1], dtype=q.dtype, device=q.device)  # (..., L, Ev)
    for i0 in range(0, L, block_size):
        qi = q[..., i0:i0 + block_size, :] * scale  # (..., bq, E)
        bq = qi.shape[-2]
        m = torch.full((*qi.shape[:-1], 1), -math.inf, dtype=q.dtype, device=q.device)  # (..., bq, 1)
        denom = torch.zeros_like(m)  # (..., bq, 1)
        acc = torch.zeros(*qi.shape[:-1], v.shape[-1], dtype=q.dtype, device=q.device)  # (..., bq, Ev)
        last_key = min(S, i0 + bq) if is_causal else S  # keys past the block's last query are all in its future
        for j0 in range(0, last_key, block_size):
            kj, vj = k[..., j0:j0 + block_size, :], v[..., j0:j0 + block_size, :]  # (..., bk, E), (..., bk, Ev)
            scores = qi @ kj.mT  # (..., bq, bk): one tile of the score matrix
            if is_causal and j0 + kj.shape[-2] - 1 > i0:  # the tile straddles the diagonal
                rows = torch.arange(i0, i0 + bq, device=q.device).view(-1, 1)  # (bq, 1)
                cols = torch.arange(j0, j0 + kj.shape[-2], device=q.device).view(1, -1)  # (1, bk)
                scores = scores.masked_fill(cols > rows, -math.inf)  # future keys get weight 0
            m, denom, acc = online_softmax_step(m, denom, acc, scores, vj)
        out[..., i0:i0 + bq, :] = acc / denom  # (..., bq, Ev)
    return out

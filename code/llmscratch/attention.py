"""Scaled dot-product attention, and the causal self-attention layer of the GPT.

Every position asks a question (its **query**), every position advertises what it holds (its
**key**) and what it would hand over (its **value**). The weights are a softmax over the scaled
dot products of one query with all keys, and the output is the weighted average of the values:

    attention(Q, K, V) = softmax(Q Kᵀ / √d + mask) V

Dividing by √d keeps the scores' spread near 1 whatever the head size d: the dot product of
two random d-dimensional vectors with unit-variance entries has variance d, and a softmax of
scores that large puts nearly all its weight on one key and passes almost no gradient.
The causal mask sets the scores of future keys to -inf *before* the softmax, so that their
weights are exactly 0 and the remaining weights still sum to 1.

`scaled_dot_product_attention` is that formula with the same signature and semantics as
``torch.nn.functional.scaled_dot_product_attention`` (the tests check they agree), written out
so that it can be read. `attention_weights` returns the softmax alone, for pictures.
`CausalSelfAttention` is the layer: one projection to queries, keys and values for all heads at
once, the heads attending in parallel as one batched matrix product, and an output projection.
With fewer key/value heads than query heads it is grouped-query attention.

Given a `llmscratch.kv_cache.KVCache`, the layer appends its new keys and values to it and
attends from the new queries to every stored key: the new tokens sit at positions
``cache.length`` onwards, which is where their RoPE angles and ALiBi distances start.

**Sliding-window attention** (``GPTConfig.attention_window = W``): the query at position i sees
the keys at positions j with ``i - W < j <= i``, itself and the W - 1 before it (`window_mask`).
Every mask here is built from positions, so it is the same rule whether the keys are the whole
sequence or what a rolling cache kept of it. One layer sees W tokens back; L layers see
``L · (W - 1)`` tokens back, because each layer's keys already summarise the window before them.

**A shared prefix** (``prefix_length=`` in the forward pass, one length per sequence): the keys at
positions below the prefix length are seen by every query, in both directions, as in a prefix
language model (T5's and UniLM's prefix LM); the rest stays causal (`prefix_lm_mask`). A prefix of 0 is
the causal model; a prefix of the whole sequence is the bidirectional encoder of a masked language
model. One set of weights serves all three; `llmscratch.objectives` trains it each way.

Left out: fused kernels. The layer uses PyTorch's fused function when it is not asked for its
weights; it computes the same thing. Attention that never holds the whole T × T matrix is
`llmscratch.tiled_attention`.

References: Vaswani et al., "Attention Is All You Need" (NeurIPS 2017); Radford et al.,
"Language Models are Unsupervised Multitask Learners" (2019) for the decoder-only layout;
Ainslie et al., "GQA" (EMNLP 2023); Beltagy et al., "Longformer" (2020) and Jiang et al.,
"Mistral 7B" (2023) for sliding-window attention.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from .config import GPTConfig
from .kv_cache import KVCache
from .positional import alibi_slopes, apply_rope, rope_angles

__all__ = ["CausalSelfAttention", "attention_weights", "causal_mask", "merge_heads", "prefix_lm_mask",
           "scaled_dot_product_attention", "sliding_window_mask", "split_heads", "window_mask"]


def causal_mask(length_q: int, length_k: int | None = None) -> torch.Tensor:
    """Boolean (Tq, Tk) mask, True where query i may look at key j, i.e. j <= i.

    >>> causal_mask(3).int().tolist()
    [[1, 0, 0], [1, 1, 0], [1, 1, 1]]
    """
    length_k = length_q if length_k is None else length_k
    return torch.ones(length_q, length_k, dtype=torch.bool).tril()


def window_mask(query_positions: torch.Tensor, key_positions: torch.Tensor, window: int | None = None) -> torch.Tensor:
    """Boolean (Tq, Tk) mask from positions: True where query i may see key j, i.e. ``0 <= i - j < window``.

    Without a window it is the causal rule ``j <= i``. With one, the query sees itself and the
    ``window - 1`` keys before it. The positions are absolute (a cache's keys need not start at 0):

    >>> window_mask(torch.tensor([5, 6]), torch.tensor([3, 4, 5, 6]), window=2).int().tolist()
    [[0, 1, 1, 0], [0, 0, 1, 1]]
    """
    if window is not None and (not isinstance(window, int) or isinstance(window, bool) or window < 1):
        raise ValueError(f"window must be a positive integer or None, got {window!r}")
    offset = query_positions.view(-1, 1) - key_positions.view(1, -1)  # (Tq, Tk): how far back key j is
    allowed = offset >= 0  # not in the future
    if window is not None:
        allowed &= offset < window  # and not more than window - 1 back
    return allowed


def sliding_window_mask(length: int, window: int | None) -> torch.Tensor:
    """The (length, length) sliding-window causal mask: a band of `window` diagonals.

    >>> sliding_window_mask(4, 2).int().tolist()
    [[1, 0, 0, 0], [1, 1, 0, 0], [0, 1, 1, 0], [0, 0, 1, 1]]
    """
    positions = torch.arange(length)
    return window_mask(positions, positions, window)


def prefix_lm_mask(query_positions: torch.Tensor, key_positions: torch.Tensor, prefix_length: torch.Tensor,
                   window: int | None = None) -> torch.Tensor:
    """Boolean (B, Tq, Tk) mask: `window_mask`, and also every key whose position is below its row's prefix length.

    `prefix_length` (B,) holds one length per sequence. Query i then sees key j if j <= i (within
    the window), or if j < prefix_length: the prefix is read in both directions, the rest left to right.
    A length of 0 gives the causal mask; the full length, no mask at all:

    >>> prefix_lm_mask(torch.arange(4), torch.arange(4), torch.tensor([2])).int().tolist()
    [[[1, 1, 0, 0], [1, 1, 0, 0], [1, 1, 1, 0], [1, 1, 1, 1]]]
    """
    causal = window_mask(query_positions, key_positions, window)  # (Tq, Tk)
    shared = key_positions.view(1, 1, -1) < prefix_length.view(-1, 1, 1)  # (B, 1, Tk): prefix keys, seen by all
    return causal.unsqueeze(0) | shared  # (B, Tq, Tk)


def split_heads(x: torch.Tensor, n_heads: int) -> torch.Tensor:
    """Cut the features of every token into heads: (B, T, n_heads * hs) -> (B, n_heads, T, hs).

    Head h gets features ``h * hs`` to ``(h + 1) * hs - 1`` of each token, and the head axis
    moves next to the batch axis, so that one batched matrix product serves every head:

    >>> split_heads(torch.arange(8.0).view(1, 2, 4), 2)[0, 1].tolist()  # head 1: features 2, 3
    [[2.0, 3.0], [6.0, 7.0]]
    """
    B, T, C = x.shape
    if C % n_heads:
        raise ValueError(f"{C} features do not split into {n_heads} heads of equal size")
    return x.view(B, T, n_heads, C // n_heads).transpose(1, 2)  # (B, T, H, hs) -> (B, H, T, hs)


def merge_heads(y: torch.Tensor) -> torch.Tensor:
    """Undo `split_heads`: (B, n_heads, T, hs) -> (B, T, n_heads * hs), the heads side by side."""
    B, H, T, hs = y.shape
    return y.transpose(1, 2).reshape(B, T, H * hs)  # (B, T, H, hs) -> (B, T, H*hs)


def _repeat_kv(q: torch.Tensor, kv: torch.Tensor, enable_gqa: bool) -> torch.Tensor:
    """Share each key/value head among ``Hq / Hkv`` query heads (grouped-query attention)."""
    if q.shape[-3:-2] == kv.shape[-3:-2] or q.ndim < 3:
        return kv
    hq, hkv = q.shape[-3], kv.shape[-3]
    if not enable_gqa or hq % hkv:
        raise ValueError(f"{hq} query heads and {hkv} key/value heads: need equal counts, or "
                         "enable_gqa=True with the query heads a multiple of the key/value heads")
    return kv.repeat_interleave(hq // hkv, dim=-3)  # (..., Hq, S, E)


def attention_weights(
    q: torch.Tensor,
    k: torch.Tensor,
    attn_mask: torch.Tensor | None = None,
    is_causal: bool = False,
    scale: float | None = None,
    enable_gqa: bool = False,
) -> torch.Tensor:
    """softmax(q kᵀ · scale + mask): the (..., L, S) attention weights; each row sums to 1.

    `q` is (..., L, E), `k` is (..., S, E). A boolean `attn_mask` (broadcastable to (..., L, S))
    marks with True the keys a query may attend to; a float one is added to the scores.
    `is_causal` applies `causal_mask` (and excludes `attn_mask`). `scale` defaults to 1/√E.
    """
    if q.shape[-1] != k.shape[-1]:
        raise ValueError(f"queries and keys need the same feature size, got {q.shape[-1]} and {k.shape[-1]}")
    if is_causal and attn_mask is not None:
        raise ValueError("pass either attn_mask or is_causal=True, not both (as PyTorch requires)")
    k = _repeat_kv(q, k, enable_gqa)
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else scale
    scores = (q @ k.transpose(-2, -1)) * scale  # (..., L, S)
    if is_causal:
        attn_mask = causal_mask(q.shape[-2], k.shape[-2]).to(q.device)
    if attn_mask is not None:
        if attn_mask.dtype == torch.bool:
            scores = scores.masked_fill(~attn_mask, float("-inf"))  # weight exactly 0 after softmax
        else:
            scores = scores + attn_mask
    return torch.softmax(scores, dim=-1)


def scaled_dot_product_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    attn_mask: torch.Tensor | None = None,
    dropout_p: float = 0.0,
    is_causal: bool = False,
    scale: float | None = None,
    enable_gqa: bool = False,
) -> torch.Tensor:
    """The weighted average of `v` (..., S, Ev) under `attention_weights`: shape (..., L, Ev).

    Same arguments and result as ``torch.nn.functional.scaled_dot_product_attention``. Like it,
    `dropout_p` drops attention weights whenever it is positive (pass 0 in evaluation).
    Causal averaging of three one-dimensional values is a running mean:

    >>> v = torch.tensor([[1.0], [2.0], [6.0]])
    >>> q = k = torch.zeros(3, 1)
    >>> scaled_dot_product_attention(q, k, v, is_causal=True).flatten().tolist()
    [1.0, 1.5, 3.0]
    """
    weights = attention_weights(q, k, attn_mask, is_causal, scale, enable_gqa)  # (..., L, S)
    if dropout_p > 0:
        weights = F.dropout(weights, p=dropout_p)
    return weights @ _repeat_kv(q, v, enable_gqa)  # (..., L, Ev)


class CausalSelfAttention(nn.Module):
    """Multi-head causal self-attention with optional RoPE or ALiBi, grouped key/value heads, a sliding window
    and a bidirectional prefix.

    ``forward(x)`` maps (B, T, d_model) to (B, T, d_model). With ``return_weights=True`` it
    returns ``(y, weights)``, the weights being (B, n_heads, T, T), or (B, n_heads, T, S) with a
    `KVCache` that holds S - T earlier positions (``cache=``, and ``layer=`` the block's index).
    Parameters: ``d_model * (n_heads + 2 * n_kv_heads) * head_dim`` for the query/key/value
    projection and ``d_model * d_model`` for the output projection, plus biases if enabled.
    ``prefix_length=`` (B,) opens each sequence's first positions to every query (`prefix_lm_mask`).
    """

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        c = config
        self.n_heads, self.n_kv_heads, self.head_dim = c.n_heads, c.kv_heads, c.head_dim
        self.position, self.rope_base, self.dropout = c.position, c.rope_base, c.dropout
        self.window = c.attention_window  # None: the whole causal prefix
        # One matrix makes all queries, keys and values: a single matmul instead of 3 * n_heads.
        self.qkv = nn.Linear(c.d_model, (c.n_heads + 2 * c.kv_heads) * c.head_dim, bias=c.bias)
        # Mixes what the heads found back into the residual stream.
        self.proj = nn.Linear(c.n_heads * c.head_dim, c.d_model, bias=c.bias)

    def forward(
        self, x: torch.Tensor, return_weights: bool = False, *, cache: KVCache | None = None, layer: int = 0,
        padding_mask: torch.Tensor | None = None, prefix_length: torch.Tensor | None = None,
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        B, T, _ = x.shape
        H, Hkv, hs = self.n_heads, self.n_kv_heads, self.head_dim
        start = 0 if cache is None else cache.length  # the position of the first new token
        q, k, v = self.qkv(x).split([H * hs, Hkv * hs, Hkv * hs], dim=-1)  # (B, T, H*hs), (B, T, Hkv*hs) x2
        q = split_heads(q, H)  # (B, H, T, hs)
        k, v = split_heads(k, Hkv), split_heads(v, Hkv)  # (B, Hkv, T, hs) each
        if self.position == "rope":
            cos, sin = rope_angles(T, hs, self.rope_base, start=start)  # (T, hs/2) each: the new positions' angles
            cos, sin = cos.to(x.device), sin.to(x.device)
            q = apply_rope(q, cos, sin)  # (B, H, T, hs): rotated by position
            k = apply_rope(k, cos, sin)  # (B, Hkv, T, hs)
        if cache is not None:
            # (B, Hkv, S, hs) each: the keys the cache kept (all, or the last window of a rolling cache), then these
            k, v = cache.append(layer, k, v)
        S = k.shape[2]
        mask, is_causal = None, True
        if self.position == "alibi" or self.window is not None or start > 0:
            # PyTorch's is_causal aligns its mask to the top left, and knows no window or distances:
            # build the mask from positions. The new queries are at start.., the S keys end with them.
            queries = torch.arange(start, start + T, device=x.device)  # (T,)
            keys = torch.arange(start + T - S, start + T, device=x.device)  # (S,)
            allowed = window_mask(queries, keys, self.window)  # (T, S)
            is_causal = False
            if self.position == "alibi":
                distance = (keys.view(1, -1) - queries.view(-1, 1)).to(x.dtype)  # (T, S): j - i, <= 0 for past keys
                bias = alibi_slopes(H).to(x.device, x.dtype).view(-1, 1, 1) * distance  # (H, T, S)
                mask = bias.masked_fill(~allowed, float("-inf"))  # (H, T, S): the mask folded in
            elif not bool(allowed.all()):
                mask = allowed  # (T, S); one new token that sees every stored key needs none
        if padding_mask is not None:
            mask, is_causal = self._padded_mask(padding_mask, start, T, S, x), False  # (B, 1 or H, T, S)
        if prefix_length is not None:
            if padding_mask is not None:
                raise ValueError("a shared prefix and left padding together are not supported; pass one of them")
            mask, is_causal = self._prefix_mask(prefix_length, start, T, S, x), False  # (B, 1 or H, T, S)
        gqa = Hkv != H
        if return_weights:
            weights = attention_weights(q, k, mask, is_causal, enable_gqa=gqa)  # (B, H, T, T); T by S with a cache
            dropped = F.dropout(weights, self.dropout, training=self.training)  # (B, H, T, S)
            y = dropped @ _repeat_kv(q, v, gqa)  # (B, H, T, hs)
        else:
            # Attention dropout only while training, as nn.Dropout would do it.
            p = self.dropout if self.training else 0.0
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=p, is_causal=is_causal,
                                               enable_gqa=gqa)  # (B, H, T, hs)
        y = merge_heads(y)  # (B, T, H*hs): heads side by side
        y = self.proj(y)  # (B, T, d_model)
        return (y, weights) if return_weights else y

    # --- Left padding (llmscratch.serving): a batch of prompts of different lengths. ---
    def _padded_mask(self, padding_mask: torch.Tensor, start: int, T: int, S: int, x: torch.Tensor) -> torch.Tensor:
        """The attention mask without the pad keys: `padding_mask` (B, start + T) is True at real tokens.

        A pad query would then see no key at all (a softmax of only -inf is NaN, and a NaN value
        times a weight of 0 is still NaN), so every query also sees itself; a pad's output is
        never read by a real token. ALiBi's bias needs no shift: it sees only the distance
        between two real tokens, which the padding in front of both does not change.
        """
        queries = torch.arange(start, start + T, device=x.device)  # (T,)
        keys = torch.arange(start + T - S, start + T, device=x.device)  # (S,): the keys the cache holds, then these
        itself = keys.view(1, -1) == queries.view(-1, 1)  # (T, S)
        real = padding_mask[:, None, None, start + T - S:]  # (B, 1, 1, S)
        keep = (window_mask(queries, keys, self.window) & real) | itself  # (B, 1, T, S)
        if self.position != "alibi":
            return keep
        distance = (keys.view(1, -1) - queries.view(-1, 1)).to(x.dtype)  # (T, S): j - i, <= 0 for past keys
        bias = alibi_slopes(self.n_heads).to(x.device, x.dtype).view(-1, 1, 1) * distance  # (H, T, S)
        return bias.masked_fill(~keep, float("-inf"))  # (B, H, T, S)

    # --- A bidirectional prefix (llmscratch.objectives): prefix and masked language models. ---
    def _prefix_mask(self, prefix_length: torch.Tensor, start: int, T: int, S: int, x: torch.Tensor) -> torch.Tensor:
        """`prefix_lm_mask` for the new queries and the S keys, as a (B, 1, T, S) mask, or (B, H, T, S) with ALiBi.

        ALiBi's bias then penalises the distance in either direction, ``-slope * |i - j|``: the
        symmetric form that bidirectional models use.
        """
        queries = torch.arange(start, start + T, device=x.device)  # (T,)
        keys = torch.arange(start + T - S, start + T, device=x.device)  # (S,)
        keep = prefix_lm_mask(queries, keys, prefix_length.to(x.device), self.window).unsqueeze(1)  # (B, 1, T, S)
        if self.position != "alibi":
            return keep
        distance = -(keys.view(1, -1) - queries.view(-1, 1)).abs().to(x.dtype)  # (T, S): -|j - i|
        bias = alibi_slopes(self.n_heads).to(x.device, x.dtype).view(-1, 1, 1) * distance  # (H, T, S)
        return bias.masked_fill(~keep, float("-inf"))  # (B, H, T, S)

"""Ways of telling a transformer where each token is: sinusoidal, rotary (RoPE) and ALiBi.

Attention by itself sees a *set*: permute the tokens and its outputs permute with them. Order
has to be put in from outside, and there are two families of ways to do it.

* **Absolute**, added to the token embeddings once at the bottom of the model: a learned table
  (GPT-2; that one is a plain ``nn.Embedding`` inside `llmscratch.model.GPT`) or the fixed
  sinusoids of the original Transformer, `sinusoidal_positions`.
* **Relative**, applied inside every attention layer. `apply_rope` rotates each pair of query
  and key features by an angle proportional to the position, so that the dot product of a
  query at m with a key at n depends only on m - n. `alibi_bias` adds ``-slope * (m - n)`` to
  the attention scores, a penalty growing with distance, with one slope per head.

The fifth option of the course, no positions at all ("NoPE"), needs no code: the causal mask
alone lets a model count how many tokens came before.

RoPE's promise, checked numerically (the same vectors at positions (5, 2) and (13, 10)):

    >>> import torch
    >>> q, k = torch.randn(1, 1, 1, 8), torch.randn(1, 1, 1, 8)
    >>> cos, sin = rope_angles(16, 8)
    >>> def score(m, n):
    ...     return float(apply_rope(q, cos[m:m+1], sin[m:m+1]) @ apply_rope(k, cos[n:n+1], sin[n:n+1]).mT)
    >>> abs(score(5, 2) - score(13, 10)) < 1e-5
    True

Left out: learned relative biases (T5), xPos, and the RoPE rescalings for long context
(position interpolation, NTK, YaRN), which the long-context chapter adds.

References: Vaswani et al., "Attention Is All You Need" (2017), section 3.5; Su et al.,
"RoFormer: Enhanced Transformer with Rotary Position Embedding" (2021); Press et al., "Train
Short, Test Long: Attention with Linear Biases Enables Input Length Extrapolation" (ICLR 2022);
Kazemnejad et al., "The Impact of Positional Encoding on Length Generalization in
Transformers" (NeurIPS 2023) for NoPE.
"""

from __future__ import annotations

import math

import torch

__all__ = ["POSITION_SCHEMES", "alibi_bias", "alibi_slopes", "apply_rope", "rope_angles", "rope_real",
           "sinusoidal_positions"]

# The schemes `llmscratch.GPTConfig.position` accepts; where each one acts.
POSITION_SCHEMES = {
    "learned": "a trained vector per position, added to the token embedding (GPT-2)",
    "sinusoidal": "fixed sines and cosines of the position, added to the token embedding",
    "rope": "queries and keys rotated by position-dependent angles, in every layer",
    "alibi": "a penalty proportional to distance added to attention scores, in every layer",
    "none": "no position signal; only the causal mask breaks the symmetry",
}


def _check_even(name: str, dim: int) -> None:
    if not isinstance(dim, int) or isinstance(dim, bool):
        raise TypeError(f"{name} must be a positive even integer (features come in sin/cos pairs), got {dim!r}")
    if dim <= 0 or dim % 2:
        raise ValueError(f"{name} must be a positive even integer (features come in sin/cos pairs), got {dim!r}")


def sinusoidal_positions(length: int, dim: int, base: float = 10000.0) -> torch.Tensor:
    """The (length, dim) table of the original Transformer.

    Feature pair i of position p is ``(sin(p * w_i), cos(p * w_i))`` with frequency
    ``w_i = base ** (-2i / dim)``: the first pairs turn fast, the last ones slowly, like the
    hands of a clock. Position 0 is ``[0, 1, 0, 1, ...]``:

    >>> sinusoidal_positions(3, 4)[0].tolist()
    [0.0, 1.0, 0.0, 1.0]
    """
    _check_even("dim", dim)
    position = torch.arange(length, dtype=torch.float32).unsqueeze(1)  # (T, 1)
    frequency = base ** (-torch.arange(0, dim, 2, dtype=torch.float32) / dim)  # (dim/2,)
    angle = position * frequency  # (T, dim/2)
    table = torch.stack([angle.sin(), angle.cos()], dim=-1)  # (T, dim/2, 2)
    return table.flatten(1)  # (T, dim): sin, cos, sin, cos, ...


def rope_angles(
    length: int, head_dim: int, base: float = 10000.0, start: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin of the rotation angles ``p * w_i`` of positions ``start .. start + length - 1``,
    each (length, head_dim / 2).

    The same frequencies as `sinusoidal_positions`; here they rotate, instead of being added.
    `start` > 0 gives the rows of a longer table without building it (a KV cache's new tokens).
    """
    _check_even("head_dim", head_dim)
    position = torch.arange(start, start + length, dtype=torch.float32).unsqueeze(1)  # (T, 1)
    frequency = base ** (-torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim)  # (hs/2,)
    angle = position * frequency  # (T, hs/2)
    return angle.cos(), angle.sin()


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate each consecutive feature pair of `x` (..., T, hs) by the angles of its position.

    `cos` and `sin` are (T, hs/2) from `rope_angles`. Pair ``(a, b)`` at position p becomes
    ``(a cos - b sin, a sin + b cos)``, a rotation, so lengths are kept:

    >>> x = torch.randn(2, 3, 4, 6)
    >>> cos, sin = rope_angles(4, 6)
    >>> torch.allclose(apply_rope(x, cos, sin).norm(dim=-1), x.norm(dim=-1), atol=1e-5)
    True

    That rotation is the product of the complex numbers ``a + ib`` and ``cos + i sin``, and
    this is how it is computed: one complex multiplication instead of four real ones, a stack
    and a copy, which makes it about twice as fast on a CPU, forward and backward (Apple's MPS
    lacks complex numbers and gets the real form, `rope_real`, which gives the same numbers).
    The product is taken in float32, as Meta's Llama code does, and cast back.

    Rotating q at m and k at n, the dot product is that of q and k rotated by m - n: it sees
    only the offset. The pairing (features 2i, 2i+1) is RoFormer's and that of Meta's Llama code;
    GPT-NeoX and Hugging Face's Llama pair feature i with i + hs/2, which is the same model with
    the features permuted.
    """
    if x.shape[-1] != 2 * cos.shape[-1] or x.shape[-2] != cos.shape[0] or cos.shape != sin.shape:
        raise ValueError(f"rope angles {tuple(cos.shape)} do not fit x of shape {tuple(x.shape)}: "
                         "need (T, hs/2) for x (..., T, hs)")
    if x.device.type == "mps":
        return rope_real(x, cos, sin)
    pairs = torch.view_as_complex(x.float().reshape(*x.shape[:-1], -1, 2))  # (..., T, hs/2): a + ib
    turned = pairs * torch.complex(cos.float(), sin.float())  # (..., T, hs/2): times e^{i p w}
    return torch.view_as_real(turned).flatten(-2).to(x.dtype)  # (..., T, hs)


def rope_real(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """`apply_rope` in real arithmetic: ``(a cos - b sin, a sin + b cos)`` for every pair ``(a, b)``."""
    a, b = x[..., 0::2], x[..., 1::2]  # (..., T, hs/2) each
    cos, sin = cos.to(x.dtype), sin.to(x.dtype)
    rotated = torch.stack([a * cos - b * sin, a * sin + b * cos], dim=-1)  # (..., T, hs/2, 2)
    return rotated.flatten(-2)  # (..., T, hs)


def alibi_slopes(n_heads: int) -> torch.Tensor:
    """One slope per head: the geometric sequence ``2 ** (-8 i / n)``, i = 1..n.

    For a head count that is not a power of two, the paper takes the slopes of the next lower
    power of two and fills up with every other slope of the next higher one:

    >>> alibi_slopes(4).tolist()
    [0.25, 0.0625, 0.015625, 0.00390625]
    """
    if not isinstance(n_heads, int) or isinstance(n_heads, bool):
        raise TypeError(f"n_heads must be a positive integer, got {n_heads!r}")
    if n_heads <= 0:
        raise ValueError(f"n_heads must be a positive integer, got {n_heads!r}")

    def powers(n: int) -> list[float]:
        return [2.0 ** (-8.0 * i / n) for i in range(1, n + 1)]

    low = 2 ** int(math.floor(math.log2(n_heads)))
    slopes = powers(low) + powers(2 * low)[0::2][: n_heads - low]
    return torch.tensor(slopes)


def alibi_bias(n_heads: int, length: int) -> torch.Tensor:
    """The (n_heads, length, length) ALiBi term added to causal attention scores.

    Entry (h, m, n) is ``-slope_h * (m - n)``: zero on the diagonal, more negative the further
    back key n is. Entries above the diagonal (future keys) are positive here; the causal mask
    removes them.

    >>> alibi_bias(2, 3)[0].tolist()  # head 0 of 2: slope 1/16
    [[0.0, 0.0625, 0.125], [-0.0625, 0.0, 0.0625], [-0.125, -0.0625, 0.0]]
    """
    position = torch.arange(length, dtype=torch.float32)
    offset = position.unsqueeze(0) - position.unsqueeze(1)  # (T, T): n - m, <= 0 for past keys
    return alibi_slopes(n_heads).view(-1, 1, 1) * offset  # (H, T, T)

"""The transformer block: attention to mix positions, a feed-forward network to think per
position, normalization, and the residual connections that make depth trainable.

A pre-norm block (GPT-2 and almost everything since) normalizes the *input* of each sublayer
and adds the sublayer's output to an untouched residual stream:

    x = x + attention(norm_1(x))
    x = x + feed_forward(norm_2(x))

A post-norm block (the original Transformer) normalizes *after* the addition:

    x = norm_1(x + attention(x))
    x = norm_2(x + feed_forward(x))

In pre-norm the stream is a sum of every sublayer's contribution, and the gradient reaches the
embeddings along the additions without passing through any norm; in post-norm every gradient
passes through every norm above it, which is why post-norm wants a learning-rate warm-up.
With ``residual=False`` the additions are dropped (``x = attention(norm_1(x))``): the chapter's
experiment on why deep stacks need them.

With ``n_experts > 0`` the feed-forward sublayer is a mixture of experts (`llmscratch.moe`):
the same place in the block, the same input and output shapes.

Left out: dropout on the residual branches (small models trained briefly do not overfit), and
parallel blocks (attention and feed-forward side by side, GPT-J).

References: Vaswani et al. (2017); He et al., "Deep Residual Learning" (CVPR 2016); Ba et al.,
"Layer Normalization" (2016); Xiong et al., "On Layer Normalization in the Transformer
Architecture" (ICML 2020); Zhang & Sennrich, "Root Mean Square Layer Normalization" (NeurIPS
2019); Hendrycks & Gimpel, "GELUs" (2016); Shazeer, "GLU Variants Improve Transformer" (2020).
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from .attention import CausalSelfAttention
from .config import ACTIVATIONS, NORMS, GPTConfig
from .kv_cache import KVCache
from .moe import MoEFeedForward

__all__ = ["Block", "FeedForward", "RMSNorm", "make_norm"]


class RMSNorm(nn.Module):
    """Divide each vector by its root mean square, then scale per feature: LayerNorm without
    the mean subtraction and the bias, a little cheaper and as good in practice.

    >>> norm = RMSNorm(2)
    >>> [round(v, 4) for v in norm(torch.tensor([3.0, 4.0])).tolist()]  # rms = sqrt((9 + 16) / 2)
    [0.8485, 1.1314]
    """

    def __init__(self, dim: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))  # (dim,)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        inverse_rms = torch.rsqrt(x.pow(2).mean(dim=-1, keepdim=True) + self.eps)  # (..., 1): 1 / rms
        return x * inverse_rms * self.weight


def make_norm(kind: str, dim: int, bias: bool = True) -> nn.Module:
    """A norm layer by name: "layernorm", "rmsnorm", or "none" (the identity)."""
    if kind == "layernorm":
        return nn.LayerNorm(dim, bias=bias)
    if kind == "rmsnorm":
        return RMSNorm(dim)
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"unknown norm {kind!r}; choose one of {NORMS}")


class FeedForward(nn.Module):
    """Per-position MLP: widen to `d_ff`, a nonlinearity, project back to `d_model`.

    "gelu" and "relu": ``down(act(up(x)))``, 2 matrices. "swiglu": ``down(silu(gate(x)) * up(x))``,
    3 matrices; a gated unit, which is why SwiGLU models use a `d_ff` of about 8/3 d_model
    instead of 4 d_model to keep the parameter count.
    """

    def __init__(self, d_model: int, d_ff: int, activation: str = "gelu", bias: bool = True) -> None:
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {activation!r}; choose one of {ACTIVATIONS}")
        self.activation = activation
        self.up = nn.Linear(d_model, d_ff, bias=bias)
        self.gate = nn.Linear(d_model, d_ff, bias=bias) if activation == "swiglu" else None
        self.down = nn.Linear(d_ff, d_model, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.up(x)  # (B, T, d_ff)
        if self.activation == "gelu":
            h = F.gelu(h)
        elif self.activation == "relu":
            h = F.relu(h)
        else:
            h = F.silu(self.gate(x)) * h
        return self.down(h)  # (B, T, d_model)


def _feed_forward(c: GPTConfig) -> nn.Module | None:
    """The block's feed-forward sublayer: none (d_ff = 0), one network, or a mixture of n_experts."""
    if not c.ff_dim:
        return None
    if not c.n_experts:
        return FeedForward(c.d_model, c.ff_dim, c.activation, c.bias)
    experts = [FeedForward(c.d_model, c.ff_dim, c.activation, c.bias) for _ in range(c.n_experts)]
    return MoEFeedForward(c.d_model, experts, c.experts_per_token, c.capacity_factor)


class Block(nn.Module):
    """One transformer layer; ``forward(x)`` keeps the shape (B, T, d_model).

    ``return_weights=True`` also returns the attention weights (B, n_heads, T, T). With a
    `KVCache` (``cache=``, ``layer=`` this block's index) attention also sees the cached positions.
    ``padding_mask=`` (B, S), True at real tokens, hides left padding from attention (`llmscratch.serving`).
    ``prefix_length=`` (B,) lets every query see each sequence's first positions (`llmscratch.objectives`).
    """

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        c = config
        self.pre_norm, self.residual = c.norm_placement == "pre", c.residual
        self.norm_1 = make_norm(c.norm, c.d_model, c.bias)
        self.attention = CausalSelfAttention(c)
        # d_ff = 0: an attention-only block, without the feed-forward sublayer.
        self.norm_2 = make_norm(c.norm, c.d_model, c.bias) if c.ff_dim else None
        self.feed_forward = _feed_forward(c)
        self.drop = nn.Dropout(c.dropout)

    def forward(
        self, x: torch.Tensor, return_weights: bool = False, *, cache: KVCache | None = None, layer: int = 0,
        padding_mask: torch.Tensor | None = None, prefix_length: torch.Tensor | None = None,
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        if self.pre_norm:
            a, weights = self._attend(self.norm_1(x), return_weights, cache, layer, padding_mask, prefix_length)
            x = self._plus(x, self.drop(a))  # x = x + attention(norm_1(x))
            if self.feed_forward is not None:
                x = self._plus(x, self.drop(self.feed_forward(self.norm_2(x))))  # x = x + feed_forward(norm_2(x))
        else:
            a, weights = self._attend(x, return_weights, cache, layer, padding_mask, prefix_length)
            x = self.norm_1(self._plus(x, self.drop(a)))  # x = norm_1(x + attention(x))
            if self.feed_forward is not None:
                x = self.norm_2(self._plus(x, self.drop(self.feed_forward(x))))  # x = norm_2(x + feed_forward(x))
        return (x, weights) if return_weights else x

    def _plus(self, x: torch.Tensor, branch: torch.Tensor) -> torch.Tensor:
        """The residual connection ``x + branch``; only the branch when residual=False."""
        return x + branch if self.residual else branch

    def _attend(
        self, x: torch.Tensor, return_weights: bool, cache: KVCache | None, layer: int,
        padding_mask: torch.Tensor | None = None, prefix_length: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Attention's output (B, T, d_model), and its weights (B, n_heads, T, S) when asked for."""
        masks = {"padding_mask": padding_mask, "prefix_length": prefix_length}
        if return_weights:
            return self.attention(x, return_weights=True, cache=cache, layer=layer, **masks)
        return self.attention(x, cache=cache, layer=layer, **masks), None

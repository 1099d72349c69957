"""How much arithmetic training takes, how fast this machine can do it, and how much of that a run used.

    >>> from llmscratch import GPTConfig
    >>> cfg = GPTConfig(vocab_size=512, context_length=256, d_model=256, n_layers=6, n_heads=8)
    >>> f"{training_flops_per_token(cfg) / 1e6:.1f} MFLOP per token"
    '33.8 MFLOP per token'

A forward pass costs about 2 FLOPs per weight per token (one multiply, one add), and the
backward pass twice that, so training costs ``6 N`` FLOPs per token for N weights in matrix
products (Kaplan et al. 2020, section 2.1), plus attention's scores and weighted sums, which
grow with the context: ``6 · 2 · n_layers · context · d_model`` more, counted at every
position as if the causal mask saved nothing (PaLM's appendix B counts it so too).
`matmul_peak` measures what one large matrix product achieves on this machine, and
`utilization` divides a run's achieved FLOPs per second by it: the model-FLOPs utilization
(MFU) of Chowdhery et al. (2022), here against a measured rather than a datasheet peak.

Left out: FLOPs of norms, activations and softmax (a few percent at these sizes), and
recomputation.
"""

from __future__ import annotations

import time

import torch

from .config import GPTConfig

__all__ = ["matmul_peak", "matmul_weights", "training_flops_per_token", "utilization"]


def matmul_weights(config: GPTConfig) -> int:
    """Weights that take part in a matrix product per token: every block's, plus the output layer.

    The position table is a lookup, not a product, and the token embedding's lookup is free;
    with tied weights the output layer still multiplies by that (V, d) matrix. With a mixture of
    experts only the k experts a token is routed to count, plus the router: the active weights.
    """
    d, L, f = config.d_model, config.n_layers, config.ff_dim
    kv = config.kv_heads * config.head_dim
    attention = d * d + 2 * d * kv + d * d  # query, key and value, output
    ff = (3 if config.activation == "swiglu" else 2) * d * f
    if config.n_experts:  # a token runs through k experts only, after the router's (d, E) product
        ff = config.experts_per_token * ff + d * config.n_experts
    return L * (attention + ff) + config.vocab_size * d


def training_flops_per_token(config: GPTConfig, context: int | None = None) -> int:
    """FLOPs to train on one token: 6 per matmul weight, plus attention at `context` (default: the model's)."""
    T = config.context_length if context is None else context
    return 6 * matmul_weights(config) + 6 * 2 * config.n_layers * T * config.d_model


def matmul_peak(size: int = 2048, dtype: torch.dtype = torch.float32, seconds: float = 1.0) -> float:
    """FLOP/s of a (size, size) @ (size, size) product on the CPU, the best of repeats over ~`seconds`."""
    g = torch.Generator().manual_seed(0)
    a = torch.randn(size, size, generator=g).to(dtype)
    b = torch.randn(size, size, generator=g).to(dtype)
    a @ b  # warm up: first calls pay for allocation and thread start-up
    best, spent = float("inf"), 0.0
    while spent < seconds:
        start = time.perf_counter()
        a @ b
        elapsed = time.perf_counter() - start
        best, spent = min(best, elapsed), spent + elapsed
    return 2 * size**3 / best


def utilization(tokens_per_second: float, config: GPTConfig, peak_flops: float) -> float:
    """Model-FLOPs utilization: the training FLOPs a run achieved per second, over the peak."""
    if tokens_per_second < 0 or peak_flops <= 0:
        raise ValueError("tokens_per_second must be >= 0 and peak_flops positive")
    return tokens_per_second * training_flops_per_token(config) / peak_flops

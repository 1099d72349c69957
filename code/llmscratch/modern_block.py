"""Part 4's first question: which norm and which feed-forward nonlinearity, at one parameter count?

    width = swiglu_width(NORM_BASE)                 # 170: SwiGLU's d_ff at GELU's parameter count
    grid = NORM_GRID                                # (name, config): one change to NORM_BASE each

**The grid** (`NORM_GRID`): Part 2's two-block GPT (`NORM_BASE`, LayerNorm and GELU, pre-norm,
learned positions, untied, d_model 64) with one change each: RMSNorm instead of LayerNorm, no norm at all,
ReLU instead of GELU, SwiGLU instead of GELU. A gated unit has three matrices where GELU has two,
so its hidden width is cut (`swiglu_width`) until the parameter counts match; the norms differ
by LayerNorm's d_model shifts per norm, a fraction of a percent of the model. The script
``python -m llmscratch.scripts.norms_activations`` trains the grid with Part 2's budget
(`comparisons.LADDER_TRAIN`) and seeds, and commits the losses and the convergence curves.

**The speed** (`time_norm`): seconds per forward and backward pass of one norm layer on a batch
of activations, the median of several repeats. On a CPU PyTorch's `nn.LayerNorm` is one fused
kernel, while the course's `RMSNorm` is several elementwise operations in Python; the saving
RMSNorm promises (no mean) shows up only in a fused kernel.

Left out: a learning-rate search per variant (one budget for all, as in Part 2), the other GLU
variants (GEGLU, ReGLU), and DeepNorm-style residual scaling.

References: Ba et al., "Layer Normalization" (2016); Zhang & Sennrich, "Root Mean Square Layer
Normalization" (NeurIPS 2019); Hendrycks & Gimpel, "GELUs" (2016); Shazeer, "GLU Variants
Improve Transformer" (2020); Touvron et al., "LLaMA" (2023).
"""

from __future__ import annotations

import statistics
import time
from dataclasses import replace

import torch
import torch.nn as nn

from .blocks import make_norm
from .comparisons import LADDER_TRAIN, RUNGS
from .config import NORMS, GPTConfig
from .model import parameter_formula
from .training import TrainConfig

__all__ = ["NORM_BASE", "NORM_GRID", "NORM_TRAIN", "parameter_gap", "swiglu_width", "time_norm"]

# Part 2's two-block rung: LayerNorm, GELU, pre-norm, learned positions, untied, d_model 64. (Two
# blocks rather than four: the grid's 13 runs then fit the CPU time of a shared machine.)
NORM_BASE: GPTConfig = dict(RUNGS)["two blocks"]
# Part 2's budget: 1500 steps of 32 sequences of 64 tokens.
NORM_TRAIN: TrainConfig = LADDER_TRAIN


def swiglu_width(config: GPTConfig) -> int:
    """The SwiGLU hidden width whose feed-forward parameter count is closest to `config`'s.

    GELU and ReLU have two matrices (up, down), SwiGLU three (gate, up, down), so at the same
    parameters SwiGLU's width is about 2/3 of the two-matrix width: 4 d_model becomes 8/3 d_model.
    With d_model 64 and biases: 2 * 64 * 256 + 256 + 64 = 33,088 for GELU; 3 * 64 * 170 +
    2 * 170 + 64 = 33,044 for SwiGLU at width 170 (171 would give 33,238).

    >>> swiglu_width(GPTConfig(d_model=64))
    170
    """
    if config.ff_dim == 0:
        raise ValueError("swiglu_width: config has no feed-forward sublayer (d_ff=0)")
    target = parameter_formula(replace(config, activation="gelu"))["feed_forward"]

    def gap(width: int) -> int:
        return abs(parameter_formula(replace(config, activation="swiglu", d_ff=width))["feed_forward"] - target)

    guess = max(1, round(2 * config.ff_dim / 3))
    return min(range(max(1, guess - 3), guess + 4), key=gap)


def parameter_gap(a: GPTConfig, b: GPTConfig) -> float:
    """|params(a) - params(b)| / params(b), from `model.parameter_formula`."""
    pa, pb = parameter_formula(a)["total"], parameter_formula(b)["total"]
    return abs(pa - pb) / pb


# (name, config): NORM_BASE with one change each. Names are the chapter's row labels.
NORM_GRID: list[tuple[str, GPTConfig]] = [
    ("LayerNorm, GELU", NORM_BASE),
    ("RMSNorm, GELU", replace(NORM_BASE, norm="rmsnorm")),
    ("no norm, GELU", replace(NORM_BASE, norm="none")),
    ("LayerNorm, ReLU", replace(NORM_BASE, activation="relu")),
    ("LayerNorm, SwiGLU", replace(NORM_BASE, activation="swiglu", d_ff=swiglu_width(NORM_BASE))),
]


def time_norm(norm: str | nn.Module, shape: tuple[int, ...] = (32, 64, 64), repeats: int = 50,
              rounds: int = 5) -> float:
    """Median seconds of one forward and backward pass of a norm layer on a random batch of `shape`.

    `norm` is a name for ``make_norm(norm, shape[-1])`` or a layer (``torch.nn.RMSNorm(64)``, say).
    Each of `rounds` measurements times `repeats` passes and divides; the median of the rounds
    resists the other processes of a shared machine better than the mean.
    """
    if isinstance(norm, str) and norm not in NORMS:
        raise ValueError(f"unknown norm {norm!r}; choose one of {NORMS}")
    if repeats < 1 or rounds < 1:
        raise ValueError(f"repeats and rounds must be at least 1, got {repeats} and {rounds}")
    layer = make_norm(norm, shape[-1]) if isinstance(norm, str) else norm
    x = torch.randn(shape, requires_grad=True)
    grad = torch.randn(shape)
    layer(x).backward(grad)  # warm-up: the first call allocates
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        for _ in range(repeats):
            layer(x).backward(grad)
        times.append((time.perf_counter() - t0) / repeats)
    return statistics.median(times)

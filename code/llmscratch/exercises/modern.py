"""Checkers for Part 4's modern block: the SwiGLU feed-forward network and its matched width.

`check_swiglu` runs the learner's function next to the package's `llmscratch.blocks.FeedForward`
(activation "swiglu", no biases) and names the first case that disagrees; where the output
matches a known slip (a plain sigmoid for SiLU, the gate and the up projection swapped, GELU in
place of SiLU, no gate at all), the hint asks about it. `check_swiglu_width` compares a width
rule with `llmscratch.modern_block.swiglu_width`.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from ..blocks import FeedForward
from ..config import GPTConfig
from ..modern_block import swiglu_width
from .core import ExerciseError, call_learner, expect_tensor, passed

__all__ = ["check_swiglu", "check_swiglu_width"]


def _swiglu_cases() -> list[tuple[str, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]]:
    """(description, x, gate, up, down): ordinary shapes, a single vector, large inputs where SiLU ≈ ReLU."""
    g = torch.Generator().manual_seed(0)
    cases = []
    for where, shape, d_ff, scale in [("x of shape (2, 5, 8), d_ff 12", (2, 5, 8), 12, 1.0),
                                      ("x of shape (3, 16), d_ff 40", (3, 16), 40, 1.0),
                                      ("one vector x of shape (4,), d_ff 6", (4,), 6, 1.0),
                                      ("x of shape (2, 8) with large entries (std 20), d_ff 10", (2, 8), 10, 20.0)]:
        d = shape[-1]
        x = scale * torch.randn(shape, generator=g, dtype=torch.float64)
        gate, up = (torch.randn(d, d_ff, generator=g, dtype=torch.float64) / d**0.5 for _ in range(2))
        down = torch.randn(d_ff, d, generator=g, dtype=torch.float64) / d_ff**0.5
        cases.append((where, x, gate, up, down))
    return cases


def check_swiglu(fn: Callable[[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]) -> None:
    """Check ``fn(x, gate, up, down) -> y``, SwiGLU without biases, against the package's `FeedForward`.

    `x` has shape (..., d_model); `gate` and `up` have shape (d_model, d_ff) and `down`
    (d_ff, d_model), used as ``x @ gate``. The hidden vector is ``silu(x @ gate) * (x @ up)``,
    where ``silu(z) = z * sigmoid(z)``, and ``y = hidden @ down`` has the shape of `x`.
    """
    cases = _swiglu_cases()
    for where, x, gate, up, down in cases:
        d, d_ff = gate.shape
        reference = FeedForward(d, d_ff, "swiglu", bias=False).double()
        with torch.no_grad():  # nn.Linear stores (out, in): the transposes of the learner's matrices
            reference.gate.weight.copy_(gate.T)
            reference.up.weight.copy_(up.T)
            reference.down.weight.copy_(down.T)
            want = reference(x)
        got = call_learner(where, fn, x.clone(), gate.clone(), up.clone(), down.clone())
        a, b = x @ gate, x @ up
        slips = [(torch.sigmoid(a) * b @ down, "your output matches sigmoid(x @ gate): is SiLU the sigmoid alone?"),
                 (F.silu(b) * a @ down, "your output matches SiLU on x @ up: which projection goes through SiLU?"),
                 (F.gelu(a) * b @ down, "your output matches GELU: which nonlinearity does SwiGLU use?"),
                 (F.silu(a) @ down, "your output has no x @ up factor: what does the gate multiply?"),
                 (F.silu(a * b) @ down, "your output applies SiLU after multiplying: to what is SiLU applied?")]
        hint = ""
        if isinstance(got, torch.Tensor):
            for output, text in slips:
                if got.shape == output.shape and torch.allclose(got.detach().double(), output, atol=1e-6):
                    hint = text
                    break
        expect_tensor(where, got, want, atol=1e-6, hint=hint or "is it silu(x @ gate) * (x @ up), then @ down?")
    passed("check_swiglu", len(cases))


def check_swiglu_width(fn: Callable[[int, int, bool], int]) -> None:
    """Check ``fn(d_model, d_ff, bias) -> width``: the SwiGLU hidden width whose feed-forward sublayer has
    the parameter count closest to a two-matrix one (GELU or ReLU) of width `d_ff`, biases included when
    `bias` is True (a bias on up, on down, and on SwiGLU's gate)."""
    cases = [(64, 256, True), (64, 256, False), (256, 1024, False), (48, 100, True), (8, 3, False)]
    for d_model, d_ff, bias in cases:
        config = GPTConfig(d_model=d_model, n_heads=1, d_ff=d_ff, bias=bias)
        want = swiglu_width(config)
        where = f"d_model={d_model}, d_ff={d_ff}, bias={bias}"
        got = call_learner(where, fn, d_model, d_ff, bias)
        if not isinstance(got, int) or isinstance(got, bool):
            raise ExerciseError(f"{where}: expected an int, got {type(got).__name__}")
        if got != want:
            if abs(got - want) == 1:
                hint = " (count the parameters of both neighbours: which is closer?)"
            else:
                hint = " (SwiGLU has three matrices of the width, GELU two)"
            raise ExerciseError(f"{where}: expected width {want}, got {got}{hint}")
    passed("check_swiglu_width", len(cases))


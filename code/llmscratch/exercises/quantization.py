"""Checkers for Part 4's quantization chapter."""

from __future__ import annotations

from collections.abc import Callable

import torch

from ..quantization import QuantScheme, quantize_tensor
from .core import ExerciseError, call_learner, passed

__all__ = ["check_absmax"]


def _cases() -> list[tuple[str, torch.Tensor, int]]:
    g = torch.Generator().manual_seed(0)
    outlier = torch.randn(4, 16, generator=g) * 0.02
    outlier[2, 5] = 3.0
    zero_row = torch.randn(3, 8, generator=g)
    zero_row[1] = 0.0
    return [("a (2, 4) matrix at 8 bits", torch.tensor([[0.5, -1.0, 0.25, 0.0], [2.0, 1.0, -0.5, 0.1]]), 8),
            ("random (6, 32) weights at 8 bits", torch.randn(6, 32, generator=g), 8),
            ("random (6, 32) weights at 4 bits", torch.randn(6, 32, generator=g), 4),
            ("a (4, 16) matrix with one outlier in row 2, at 4 bits", outlier, 4),
            ("a matrix whose row 1 is all zeros, at 4 bits", zero_row, 4),
            ("random (5, 8) weights at 2 bits", torch.randn(5, 8, generator=g), 2)]


def check_absmax(fn: Callable[[torch.Tensor, int], tuple[torch.Tensor, torch.Tensor]]) -> None:
    """Check ``fn(w, bits) -> (q, scale)``: per-row absmax quantization of a matrix w (out, in).

    `q` (out, in) holds integers in [-qmax, qmax] with qmax = 2^(bits-1) - 1, `scale` (out, 1)
    is each row's max|w| / qmax (any positive number for a row of zeros), and q = round(w / scale).
    The package stores scales in float16, so a scale within 0.1% of the exact one passes.
    """
    n = 0
    for where, w, bits in _cases():
        qmax = 2 ** (bits - 1) - 1
        got = call_learner(where, fn, w.clone(), bits)
        if not isinstance(got, tuple) or len(got) != 2 or not all(isinstance(t, torch.Tensor) for t in got):
            raise ExerciseError(f"{where}: expected a tuple (q, scale) of two tensors, got {type(got).__name__}")
        q, scale = (t.detach().double() for t in got)
        if q.shape != w.shape or scale.shape != (w.shape[0], 1):
            raise ExerciseError(f"{where}: expected q of shape {tuple(w.shape)} and scale of shape "
                                f"({w.shape[0]}, 1), got {tuple(q.shape)} and {tuple(scale.shape)}")
        if not bool(torch.isfinite(scale).all()) or not bool((scale > 0).all()):
            raise ExerciseError(f"{where}: every scale must be a positive number, got {scale.flatten().tolist()} "
                                "(what is max|w| of a row of zeros?)")
        if not torch.equal(q, q.round()) or float(q.abs().max()) > qmax:
            raise ExerciseError(f"{where}: q must hold integers from {-qmax} to {qmax}, got values up to "
                                f"{float(q.abs().max()):g} (what is qmax at {bits} bits?)")
        want = quantize_tensor(w, QuantScheme(bits=bits, granularity="channel")).scale.double()  # (out, 1)
        nonzero = w.abs().amax(1, keepdim=True) > 0
        if not bool(torch.isclose(scale, want, rtol=1e-3, atol=0)[nonzero].all()):
            row = int((~torch.isclose(scale, want, rtol=1e-3, atol=0) & nonzero).nonzero()[0, 0])
            raise ExerciseError(f"{where}: row {row} should have scale {float(want[row]):.6g}, got "
                                f"{float(scale[row]):.6g} (one scale per row: that row's max|w| / qmax)")
        if not torch.equal(q, (w.double() / scale).round().clamp(-qmax, qmax)):
            raise ExerciseError(f"{where}: q should be w / scale rounded to the nearest integer "
                                "(rounded, not truncated)")
        n += 1
    passed("check_absmax", n)

"""Checkers for Part 4's quantization chapter, and for the playground's file of int8 weights."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path

import torch

from ..config import GPTConfig
from ..export import MAGIC, export_model, read_header
from ..model import GPT
from ..quantization import QuantScheme, quantize_tensor
from .core import ExerciseError, call_learner, passed

__all__ = ["check_absmax", "check_export_header"]


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


def _exports() -> list[tuple[str, bytes]]:
    """Small exported models, as the bytes a browser downloads."""
    files = []
    with tempfile.TemporaryDirectory() as tmp:
        for dtype, config in [("int8", GPTConfig(vocab_size=16, context_length=8, d_model=8, n_layers=1, n_heads=2)),
                              ("float16", GPTConfig(vocab_size=32, context_length=16, d_model=16, n_layers=2,
                                                    n_heads=4, position="rope", tie_weights=False)),
                              ("float32", GPTConfig(vocab_size=8, context_length=4, d_model=4, n_layers=1, n_heads=1,
                                                    bias=False))]:
            torch.manual_seed(0)
            path = Path(tmp) / f"{dtype}.bin"
            export_model(GPT(config), path, dtype)
            files.append((f"a {config.n_layers}-layer model exported as {dtype}", path.read_bytes()))
    return files


def check_export_header(fn: Callable[[bytes], dict]) -> None:
    """Check ``fn(raw) -> dict``: the JSON header of an exported model's bytes (`export.read_header`).

    The layout: 8 bytes of magic, the header's length as a little-endian uint32, then the header.
    A file that does not start with the magic must raise `ValueError`.
    """
    n = 0
    for where, raw in _exports():
        want, _ = read_header(raw)
        got = call_learner(where, fn, raw)
        if not isinstance(got, dict):
            raise ExerciseError(f"{where}: expected the header as a dict, got {type(got).__name__}")
        if got != want:
            missing = sorted(set(want) - set(got))
            raise ExerciseError(f"{where}: the header differs from the package's (keys {sorted(got)}, expected "
                                f"{sorted(want)}{'; missing ' + str(missing) if missing else ''}). Hint: the length "
                                "is 4 bytes after the magic, little-endian (struct format '<I')")
        n += 1
    bad = b"NOTANEXP" + raw[len(MAGIC):]
    try:
        fn(bad)
    except ValueError:
        n += 1
    except Exception as err:  # noqa: BLE001 - the learner's code may raise anything
        raise ExerciseError(f"a file starting with {bad[:8]!r}: expected ValueError, got "
                            f"{type(err).__name__}: {err}") from None
    else:
        raise ExerciseError(f"a file starting with {bad[:8]!r} instead of {MAGIC!r}: expected ValueError, "
                            "got a header (check the magic first: a wrong file must not be read as weights)")
    passed("check_export_header", n)

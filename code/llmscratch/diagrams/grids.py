"""A diagram of quantization grids, computed by `llmscratch.quantization` itself.

One row of sixteen weights, mostly positive, is quantized to int4 twice: with absmax, whose grid
is symmetric around 0 and spends half its levels on negative values the row hardly has, and
with zero-point, whose grid spans exactly the row's range. Below, a row of 64 weights with one
outlier shows what a scale per group of 32 buys over one scale per row. Every scale, offset and
error written on the picture is what `quantize_tensor` returns when it is drawn.
"""

from __future__ import annotations

import torch

from ..quantization import QuantScheme, dequantize_tensor, quantize_tensor
from .svg import DARK, INK, MUTED, PALETTE, Canvas, tint

__all__ = ["OUTLIER_ROW", "ROW", "draw_grids", "grid_levels"]

# A skewed row: most weights positive, one small negative.
ROW = [0.62, 0.05, 0.31, 0.44, 0.12, 0.27, 0.5, 0.18, 0.7, 0.36, 0.09, 0.23, 0.55, 0.4, -0.2, 0.15]
ABSMAX = QuantScheme(bits=4, granularity="channel")
ZERO_POINT = QuantScheme(bits=4, symmetric=False, granularity="channel")
BLUE, ORANGE, GREY, RED = PALETTE["blue"], PALETTE["orange"], PALETTE["grey"], PALETTE["vermillion"]


def _outlier_row() -> list[float]:
    row = [0.02 if i % 2 else -0.02 for i in range(64)]
    row[5] = 0.9
    return row


OUTLIER_ROW = _outlier_row()


def grid_levels(scheme: QuantScheme, row: list[float] = ROW) -> tuple[list[float], list[float], float, float | None]:
    """The grid's levels ŵ, the row's rounded values, the scale and the zero point (None for absmax).

    >>> levels, rounded, scale, zero = grid_levels(ZERO_POINT)
    >>> len(levels), zero
    (16, 3)
    """
    w = torch.tensor([row])
    qt = quantize_tensor(w, scheme)
    scale = float(qt.scale)
    zero = None if qt.zero is None else int(qt.zero)
    levels = [scale * (q - (zero or 0)) for q in range(scheme.qmin, scheme.qmax + 1)]
    return levels, dequantize_tensor(qt)[0].tolist(), scale, zero


def _number_line(c: Canvas, y: float, scheme: QuantScheme, title: str, formula: list[tuple[str, str]],
                 note: str) -> None:
    levels, rounded, scale, zero = grid_levels(scheme)
    x = lambda v: 440 + v * 380  # noqa: E731 -- [-1, 1] -> [60, 820]
    c.text(40, y, title, 16, "start", INK, "bold")
    c.text(840, y, formula, 15, "end")
    base = y + 78
    c.line(40, base, 840, base, GREY, 1.2)
    used = {round(v, 6) for v in rounded}
    for v in levels:
        hit = round(v, 6) in used
        c.line(x(v), base - 9, x(v), base + 9, ORANGE if hit else GREY, 2.4 if hit else 1.2)
    for w, r in zip(ROW, rounded):
        c.circle(x(w), base - 36, 5, tint(BLUE, 0.3), BLUE, 1.2)
        c.line(x(w), base - 30, x(r), base - 11, MUTED, 1)
    c.line(x(0), base + 12, x(0), base + 20, INK, 1.5)
    c.text(x(0), base + 36, "0", 14, "middle")
    unused = len(levels) - len(used)
    error = sum(abs(a - b) for a, b in zip(ROW, rounded)) / len(ROW)
    shown = f"z = {zero}" if zero is not None else "z = 0, not stored"
    c.text(40, base + 62, f"s = {scale:.3f}, {shown}; {unused} of {len(levels)} levels unused, "
                          f"mean |w − ŵ| = {error:.3f}. {note}", 13, "start", MUTED)


def draw_grids(ident: str, title: str, desc: str) -> Canvas:
    """Absmax and zero-point grids under one skewed row; per-channel and group scales under an outlier."""
    c = Canvas(880, 600, ident, title, desc)
    c.text(40, 30, "Sixteen weights w (dots), each rounded to the nearest int4 level (ticks; orange: in use)", 15)
    _number_line(c, 66, ABSMAX, "absmax", [("s = max|w| / qmax;  q = round(w / s)", "mono")],
                 "Half the grid lies below 0.")
    _number_line(c, 246, ZERO_POINT, "zero-point",
                 [("s = (max - min) / (2^bits - 1);  z = round(-min / s)", "mono")],
                 "It fits the row.")
    # Per-channel against group-wise scales, on a row with one outlier.
    y = 428
    c.text(40, y, "One outlier in a row of 64 weights", 16, "start", INK, "bold")
    c.text(840, y, "ŵ = s · (q - z), with one s and z per group", 15, "end")
    w = torch.tensor([OUTLIER_ROW])
    per_channel = quantize_tensor(w, QuantScheme(bits=4, granularity="channel"))
    grouped = quantize_tensor(w, QuantScheme(bits=4, granularity="group", group_size=32))
    lost = {name: int((dequantize_tensor(qt)[0] == 0).sum() - (w[0] == 0).sum())
            for name, qt in (("channel", per_channel), ("group", grouped))}
    cell = 12
    for i, v in enumerate(OUTLIER_ROW):
        cx = 56 + i * cell + (8 if i >= 32 else 0)
        fill = tint(RED, 0.2) if v > 0.5 else tint(BLUE, 0.75 if v > 0 else 0.9)
        c.rect(cx, y + 16, cell - 2, 26, fill, RED if v > 0.5 else GREY, 1, rx=2)
    c.text(56 + 16 * cell, y + 62, f"group 0: s = {float(grouped.scale[0, 0]):.3f}", 14,
           "middle", DARK["orange"])
    c.text(64 + 48 * cell, y + 62, f"group 1: s = {float(grouped.scale[0, 1]):.3f}", 14,
           "middle", DARK["orange"])
    c.text(40, y + 96, [("per-channel", "bold"), (f": one s = {float(per_channel.scale[0, 0]):.3f} for the row, set "
                        f"by the outlier; {lost['channel']} of the 63 small weights round to 0.", "")], 14)
    c.text(40, y + 122, [("group_size = 32", "mono"),
                         (f": only the outlier's group is coarse; {lost['group']} small weights round to 0.", "")], 14)
    c.text(40, y + 148, "The price: one float16 scale per 32 weights, half a bit per weight.", 14, "start", MUTED)
    return c

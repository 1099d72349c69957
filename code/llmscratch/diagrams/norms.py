"""A diagram of what a norm does to one vector: LayerNorm centres and scales, RMSNorm only scales.

One vector of four features, `VECTOR`, goes through ``make_norm("layernorm", 4)`` and
``make_norm("rmsnorm", 4)`` as freshly built (gains 1, shifts 0), step by step: LayerNorm
subtracts the mean, then divides by the standard deviation; RMSNorm divides by the root mean
square and keeps the mean. Every number on the picture is computed here with the package's own
layers (`norm_steps`), so the picture cannot drift from the code.

Left out: the learned gain and shift (at their initial values they change nothing), and eps.
"""

from __future__ import annotations

import torch

from ..blocks import make_norm
from .svg import DARK, INK, MUTED, PALETTE, Canvas, tint

__all__ = ["VECTOR", "draw_norm_steps", "norm_steps"]

# Four features, all positive, mean 4: what a norm does to the mean shows.
VECTOR: tuple[float, ...] = (3.0, 1.0, 5.0, 7.0)
BLUE, ORANGE, GREY = PALETTE["blue"], PALETTE["orange"], PALETTE["grey"]


def norm_steps(vector: tuple[float, ...] = VECTOR) -> dict[str, list[tuple[str, list[float]]]]:
    """The vectors the picture draws, per norm: (label, values) for each step, the last the layer's output.

    >>> [round(v, 2) for v in norm_steps()["rmsnorm"][-1][1]]  # x / sqrt(mean(x²)) = x / sqrt(21)
    [0.65, 0.22, 1.09, 1.53]
    """
    x = torch.tensor(vector)
    mean = x.mean()
    centred = x - mean
    with torch.no_grad():
        layer = make_norm("layernorm", len(vector))(x)
        rms = make_norm("rmsnorm", len(vector))(x)
    return {"layernorm": [("x", x.tolist()), ("x − mean", centred.tolist()), ("÷ std", layer.tolist())],
            "rmsnorm": [("x", x.tolist()), ("x * inverse_rms", rms.tolist())]}


def _panel(c: Canvas, x0: float, zero: float, values: list[float], scale: float, colour: str, label: str) -> None:
    """Four bars from a zero line at height `zero`, each with its value at its end, and a label below."""
    c.line(x0 - 6, zero, x0 + 4 * 42 - 6, zero, GREY, 1.2)
    for i, v in enumerate(values):
        bx, h = x0 + i * 42, v * scale
        top = zero - max(h, 0.0)
        c.rect(bx, top, 30, abs(h), tint(colour, 0.45), colour, 1.2, rx=2)
        c.text(bx + 15, top - 6 if v >= 0 else zero - h + 17, f"{v:.2f}".replace("-", "−"), 13, "middle")
    c.text(x0 + 78, zero + 72, [(label, "mono")], 14, "middle", MUTED)


def draw_norm_steps(ident: str, title: str, desc: str) -> Canvas:
    steps = norm_steps()
    c = Canvas(860, 510, ident, title, desc)
    rows = (("layernorm", "LayerNorm", "(x − mean) / std", 160, BLUE),
            ("rmsnorm", "RMSNorm", "x / rms", 390, ORANGE))
    for key, name, formula, zero, colour in rows:
        c.text(24, zero - 84, name, 17, "start", INK, "bold")
        c.text(140, zero - 84, [(f'make_norm("{key}", 4)', "mono")], 14, "start", MUTED)
        c.text(24, zero - 40, [(formula, "mono")], 14, "start", MUTED)
        for j, (label, values) in enumerate(steps[key]):
            x0 = 230 + j * 215 if key == "layernorm" or j == 0 else 230 + 2 * 215
            scale = 40 / max(abs(v) for v in values)
            _panel(c, x0, zero, values, scale, colour, label)
            if j:
                c.line(x0 - 50, zero - 20, x0 - 14, zero - 20, INK, 1.8, arrow=True)
        if key == "rmsnorm":
            c.line(230 + 4 * 42 + 6, zero - 20, 230 + 2 * 215 - 50, zero - 20, GREY, 1.5, dash="5 4")
            c.text(230 + 215 + 78, zero + 28, "no mean subtracted", 14, "middle", DARK["orange"])
    mean = sum(VECTOR) / len(VECTOR)
    c.text(430, 484, f"mean {mean:g}: LayerNorm's output has mean 0, RMSNorm's keeps the sign of every feature",
           14, "middle", MUTED)
    return c

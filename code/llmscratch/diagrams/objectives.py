"""A diagram of the three pretraining objectives: one mask rule, three prefix lengths, three kinds of target.

Each panel's grid is `prefix_lm_mask` itself, computed when the picture is drawn, with a prefix
of 0 (causal), 3 (prefix LM) and the whole window (masked LM); above it the input the model
reads, below it what each position is trained to predict (`llmscratch.objectives`).

Left out: BERT's random and unchanged replacements (10% each of the chosen tokens), and batches,
where every row draws its own prefix length or its own masked positions.
"""

from __future__ import annotations

import torch

from ..attention import prefix_lm_mask
from .svg import EDGE, INK, MUTED, PALETTE, Canvas, tint

__all__ = ["PANELS", "WORDS", "draw_objectives"]

BLUE, GREEN, ORANGE, GREY = PALETTE["blue"], PALETTE["green"], PALETTE["orange"], PALETTE["grey"]
WORDS = ["To", "be", "or", "not", "to", "be"]
NEXT = "…"  # the token after the window
# (name, prefix length, positions replaced by [MASK]); the masked model's prefix is the whole window.
PANELS = [("causal", 0, ()), ("prefix", 3, ()), ("masked", len(WORDS), (1, 4))]


def _targets(name: str, prefix: int, masked: tuple[int, ...]) -> list[str | None]:
    """What each position is trained to predict, None where it has no target."""
    following = WORDS[1:] + [NEXT]
    if name == "causal":
        return following
    if name == "prefix":
        return [following[i] if i >= prefix - 1 else None for i in range(len(WORDS))]
    return [WORDS[i] if i in masked else None for i in range(len(WORDS))]


def draw_objectives(ident: str, title: str, desc: str) -> Canvas:
    """Three panels side by side: the input, the (6, 6) mask, the targets."""
    T = len(WORDS)
    c = Canvas(890, 500, ident, title, desc)
    cw, ch = 44, 28
    positions = torch.arange(T)
    for k, (name, prefix, masked) in enumerate(PANELS):
        x0, y0 = 24 + k * 296, 40
        length = "T" if prefix == T else str(prefix)
        c.text(x0, y0, name, 17, weight="bold")
        c.text(x0, y0 + 24, [("prefix_length", "mono"), (f" = {length}", "")], 14, fill=MUTED)
        c.text(x0, y0 + 56, "input", 14, fill=MUTED)
        for i, word in enumerate(WORDS):
            shown = "MASK" if i in masked else word
            fill = tint(GREEN, 0.75) if i < prefix and name == "prefix" else (
                tint(ORANGE, 0.6) if i in masked else "#ffffff")
            c.rect(x0 + i * cw + 2, y0 + 66, cw - 4, ch, fill, EDGE, 1, rx=3)
            c.text(x0 + (i + 0.5) * cw, y0 + 66 + 19, shown, 13, "middle", INK)
        mask = prefix_lm_mask(positions, positions, torch.tensor([prefix]))[0]  # (T, T)
        causal = mask & torch.ones(T, T, dtype=torch.bool).tril()
        gy = y0 + 110
        for i in range(T):
            for j in range(T):
                fill = BLUE if causal[i, j] else (GREEN if mask[i, j] else "#ffffff")
                c.rect(x0 + j * cw + 2, gy + i * ch, cw - 4, ch - 2, fill, EDGE, 1, rx=2)
        ty = gy + T * ch + 22
        c.text(x0, ty, "target", 14, fill=MUTED)
        for i, target in enumerate(_targets(name, prefix, masked)):
            if target is None:
                c.text(x0 + (i + 0.5) * cw, ty + 28, "·", 15, "middle", MUTED)
            else:
                c.rect(x0 + i * cw + 2, ty + 9, cw - 4, ch, tint(BLUE, 0.8), BLUE, 1, rx=3)
                c.text(x0 + (i + 0.5) * cw, ty + 28, target, 13, "middle", INK)
    ly = 432
    for k, (fill, label) in enumerate([(BLUE, [("seen: key ", ""), ("j <= i", "mono")]),
                                       (GREEN, [("seen through the prefix: ", ""), ("j < prefix_length", "mono")]),
                                       ("#ffffff", "hidden")]):
        x = (24, 230, 660)[k]
        c.rect(x, ly - 13, 16, 16, fill, EDGE, 1, rx=2)
        c.text(x + 24, ly, label, 14)
    c.text(24, ly + 30, [("mask = ", ""), ("prefix_lm_mask", "mono"), ("(positions, positions, ", ""),
                         ("prefix_length", "mono"), (")", "")], 14)
    c.text(24, ly + 56, "rows: query positions i; columns: key positions j; · : no loss at that position", 14,
           fill=MUTED)
    return c

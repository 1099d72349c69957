"""A diagram of sliding-window attention: the band mask, and the rolling KV cache that serves it.

The mask on the left is `sliding_window_mask` itself, computed when the picture is drawn, next
to the causal mask it narrows (`causal_mask`); the cache on the right follows `KVCache.append`:
after each new token, the layer keeps the last `attention_window` positions.

Left out: batch and head axes (every head and row has the same mask), and ALiBi's biases.
"""

from __future__ import annotations

from ..attention import causal_mask, sliding_window_mask
from .svg import EDGE, INK, MUTED, PALETTE, Canvas, tint

__all__ = ["LENGTH", "WINDOW", "draw_sliding_window"]

BLUE, ORANGE, GREY = PALETTE["blue"], PALETTE["orange"], PALETTE["grey"]
LENGTH, WINDOW = 8, 3  # the mask drawn: 8 positions, a window of 3


def draw_sliding_window(ident: str, title: str, desc: str) -> Canvas:
    """Left: the (8, 8) band of a window of 3 inside the causal triangle. Right: the rolling cache over steps."""
    c = Canvas(880, 470, ident, title, desc)
    band, causal = sliding_window_mask(LENGTH, WINDOW), causal_mask(LENGTH)  # (T, T) each
    cell, x0, y0 = 30, 70, 92
    c.text(40, 38, [("sliding_window_mask", "mono"), (f"({LENGTH}, {WINDOW})", "mono")], 16, weight="bold")
    c.text(x0 + LENGTH * cell / 2, y0 - 12, "key position j", 14, "middle", MUTED)
    c.text(x0 - 12, y0 + 14, "i", 14, "end", MUTED)
    for i in range(LENGTH):
        c.text(x0 - 12, y0 + (i + 0.5) * cell + 5 + 14, str(i), 13, "end", MUTED)
        c.text(x0 + (i + 0.5) * cell, y0 + LENGTH * cell + 20 + 14, str(i), 13, "middle", MUTED)
        for j in range(LENGTH):
            if band[i, j]:
                fill = BLUE
            elif causal[i, j]:
                fill = tint(GREY, 0.55)
            else:
                fill = "#ffffff"
            c.rect(x0 + j * cell, y0 + 14 + i * cell, cell, cell, fill, EDGE, 1, rx=2)
    legend_y = y0 + LENGTH * cell + 62
    for k, (fill, label) in enumerate([(BLUE, [("seen: ", ""), ("i - W < j <= i", "mono")]),
                                       (tint(GREY, 0.55), "hidden by the window"),
                                       ("#ffffff", "future: hidden by the causal mask")]):
        c.rect(40, legend_y + k * 26 - 13, 16, 16, fill, EDGE, 1, rx=2)
        c.text(64, legend_y + k * 26, label, 14)

    # The rolling cache: steps t = 5, 6, 7, the new token's key appended, the oldest dropped.
    cx, cy, box = 420, 92, 38
    c.text(cx, 38, [("KVCache", "mono"), (" with ", ""), ("attention_window", "mono"), (" = 3", "")], 16,
           weight="bold")
    for row, t in enumerate((5, 6, 7)):
        y = cy + 14 + row * 70
        c.text(cx, y + 26, f"t = {t}", 14, "start", MUTED)
        for p in range(t + 1):
            x = cx + 56 + p * (box + 6)
            if p == t:
                c.rect(x, y, box, box, tint(ORANGE, 0.55), ORANGE, 1.5, rx=4)
            elif p >= t - WINDOW + 1:
                c.rect(x, y, box, box, tint(BLUE, 0.7), BLUE, 1.5, rx=4)
            else:
                c.rect(x, y, box, box, "#ffffff", GREY, 1.2, rx=4, dash="4 3")
            c.text(x + box / 2, y + 26, str(p), 14, "middle", INK if p >= t - WINDOW + 1 else MUTED)
    notes = cy + 14 + 3 * 70 + 6
    c.rect(cx, notes - 13, 16, 16, tint(ORANGE, 0.55), ORANGE, 1.5, rx=3)
    c.text(cx + 24, notes, "the new token's key and value", 14)
    c.rect(cx, notes + 13, 16, 16, tint(BLUE, 0.7), BLUE, 1.5, rx=3)
    c.text(cx + 24, notes + 26, "kept: the last W - 1 keys it attends to", 14)
    c.rect(cx, notes + 39, 16, 16, "#ffffff", GREY, 1.2, rx=3, dash="4 3")
    c.text(cx + 24, notes + 52, "dropped: memory stays at W positions", 14)
    c.text(cx, notes + 86, [("held", "mono"), (" = min(length, W)", "")], 14)
    c.text(cx, notes + 110, [("receptive_field", "mono"), (" = n_layers · (W - 1) + 1", "")], 14)
    return c

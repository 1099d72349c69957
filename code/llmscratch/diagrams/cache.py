"""The KV cache: what generation recomputes without one, what it stores with one, and how GQA shrinks it.

Two panels over the same step (the sixth token's logits): without a cache every position of
every layer is computed again, though only the last column's logits are used; with one, the
first positions' keys and values are read from the cache and only the new column is computed.
Below, the memory formula with the course model's sizes, computed by `kv_cache_bytes`.

`draw_gqa` shows the course model's eight query heads reading eight, two or one key/value heads
(multi-head, grouped-query, multi-query attention), each with its cache per token.

Left out: the batch axis, and the rolling cache of sliding-window models.
"""

from __future__ import annotations

from dataclasses import replace

from ..experiments import RECIPES
from ..kv_cache import kv_cache_bytes
from .svg import DARK, EDGE, INK, MUTED, PALETTE, Canvas, tint

__all__ = ["draw_gqa", "draw_kv_cache"]

BLUE, ORANGE, GREEN, GREY = (PALETTE[c] for c in ("blue", "orange", "green", "grey"))
TOKENS = ("To", " be", " or", " not", " to")  # the five ids already written; the step predicts the sixth
LAYERS = 3  # drawn; the formula below uses the course model's real depth
CELL, GAP, TOP = 56, 14, 118


def _panel(c: Canvas, x0: float, cached: bool) -> None:
    """One step over TOKENS: a column per position, a row per layer; the last column is the new token."""
    last = len(TOKENS) - 1
    for j, token in enumerate(TOKENS):
        x = x0 + j * (CELL + GAP)
        new = j == last
        c.text(x + CELL / 2, TOP + LAYERS * (CELL + 12) + 26, token.replace(" ", "␣"), 15, "middle")
        c.text(x + CELL / 2, TOP + LAYERS * (CELL + 12) + 46, f"t = {j}", 13, "middle", MUTED)
        for layer in range(LAYERS):
            y = TOP + (LAYERS - 1 - layer) * (CELL + 12)
            if cached and not new:
                c.rect(x, y, CELL, CELL, tint(GREEN, 0.8), GREEN, 1.4, rx=4)
                c.text(x + CELL / 2, y + 24, "k, v", 14, "middle")
                c.text(x + CELL / 2, y + 44, "stored", 13, "middle", MUTED)
            else:
                c.rect(x, y, CELL, CELL, tint(ORANGE, 0.65), ORANGE, 1.8, rx=4)
                c.text(x + CELL / 2, y + 33, "q, k, v", 13, "middle")
        if new or not cached:
            c.line(x + CELL / 2, TOP - 4 if new else TOP - 8, x + CELL / 2, TOP - 26, ORANGE if new else GREY,
                   1.5, arrow=new)
    c.text(x0 + last * (CELL + GAP) + CELL / 2, TOP - 34, "logits: next token", 14, "middle", INK, "bold")
    if not cached:
        c.text(x0 - 4, TOP - 34, "logits thrown away", 14, "start", MUTED)


def draw_kv_cache(ident: str, title: str, desc: str) -> Canvas:
    """Without a cache vs with one, for one decode step, and the cache's size."""
    c = Canvas(880, 600, ident, title, desc)
    left, right = 40, 480
    c.text(left, 34, "without a cache: step 5 runs 5 tokens", 16, "start", INK, "bold")
    c.text(right, 34, [("with a ", ""), ("KVCache", "mono"), (": step 5 runs 1", "")], 16, "start", INK, "bold")
    c.text(left, 58, "every layer, every position, every step", 14, "start", MUTED)
    c.text(right, 58, [("the rest is read; ", ""), ("cache.length", "mono"), (" = 4", "")], 14, "start", MUTED)
    _panel(c, left, cached=False)
    _panel(c, right, cached=True)
    c.line(455, 80, 455, 400, EDGE, 1.5)
    for i in range(LAYERS):
        c.text(left - 8, TOP + (LAYERS - 1 - i) * (CELL + 12) + 33, f"{i}", 13, "end", MUTED)
    c.text(20, 100, "layer", 13, "start", MUTED)
    c.text(860, 400, "compute per step: t positions → 1", 13, "end", BLUE)
    # The two phases, in the package's words.
    y = 446
    c.text(40, y, [("prefill", "bold"), (": the prompt in one pass; each layer's ", ""), ("k", "mono"), (", ", ""),
                   ("v", "mono"), (" go into the cache", "")], 15)
    c.text(40, y + 26, [("decode", "bold"), (": one new token a step; ", ""), ("KVCache.append", "mono"),
                        (" adds its ", ""), ("k", "mono"), (", ", ""), ("v", "mono"),
                        (", its query attends to all of them", "")], 15)
    c.text(40, y + 52, [("its position is ", ""), ("cache.length", "mono"),
                        (": RoPE angles, ALiBi distances and learned positions start there", "")], 15)
    course = RECIPES["course"].model
    full = kv_cache_bytes(course, batch_size=1, length=course.context_length)
    formula = " = 2 · n_layers · batch · n_kv_heads · length · head_dim · 4 B"
    c.text(40, y + 92, [("kv_cache_bytes", "mono"), (formula, "")], 15, "start", DARK["orange"])
    c.text(40, y + 116, f"course model, one row of {course.context_length} tokens: 2 · {course.n_layers} · 1 · "
                        f"{course.kv_heads} · {course.context_length} · {course.head_dim} · 4 B = "
                        f"{full / 2**20:g} MiB", 14, "start", MUTED)
    return c


def draw_gqa(ident: str, title: str, desc: str) -> Canvas:
    """Eight query heads reading 8, 2 or 1 key/value heads: MHA, GQA, MQA, and the cache of each."""
    course = RECIPES["course"].model
    H = course.n_heads
    c = Canvas(880, 560, ident, title, desc)
    colours = [PALETTE[k] for k in ("blue", "orange", "green", "purple", "vermillion", "sky", "grey", "blue")]
    panels = [("multi-head (MHA)", H), ("grouped-query (GQA)", 2), ("multi-query (MQA)", 1)]
    for p, (name, kv) in enumerate(panels):
        y = 40 + p * 170
        group = H // kv
        config = replace(course, n_kv_heads=kv)
        per_token = kv_cache_bytes(config, batch_size=1, length=1)
        c.text(30, y, name, 16, "start", INK, "bold")
        c.text(30, y + 22, [("n_kv_heads", "mono"), (f" = {kv}: cache {per_token:,} B per token", "")], 14,
               "start", MUTED)
        for i in range(H):
            x = 330 + i * 62
            colour = colours[i // group] if kv > 1 else BLUE
            c.rect(x, y - 16, 46, 30, tint(colour, 0.7), colour, 1.4, rx=4)
            c.text(x + 23, y + 4, f"q{i}", 14, "middle")
        for g in range(kv):
            centre = 330 + (g * group + group / 2) * 62 - 8
            colour = colours[g] if kv > 1 else BLUE
            width = max(46.0, group * 62 - 16)
            c.rect(centre - width / 2, y + 64, width, 30, tint(colour, 0.85), colour, 1.8, rx=4)
            c.text(centre, y + 84, f"k{g}, v{g}" if kv < H else f"k{g} v{g}", 14 if kv < H else 13, "middle")
            for i in range(g * group, (g + 1) * group):
                c.line(330 + i * 62 + 23, y + 14, centre + (i - g * group - (group - 1) / 2) * min(12, 40 / group),
                       y + 64, colour, 1.2)
    c.text(440, 536, [("query head i reads key/value head i // (", ""), ("n_heads", "mono"), (" / ", ""),
                      ("n_kv_heads", "mono"), ("); ", ""), ("pool_kv_heads", "mono"),
                      (" averages each group's k, v", "")], 14, "middle", MUTED)
    return c

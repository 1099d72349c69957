"""The KV cache: what generation recomputes without one, and what it stores with one.

Two panels over the same step (the sixth token's logits): without a cache every position of
every layer is computed again, though only the last column's logits are used; with one, the
first positions' keys and values are read from the cache and only the new column is computed.
Below, the memory formula with the course model's sizes, computed by `kv_cache_bytes`.

Left out: the batch axis, grouped key/value heads (the GQA chapter's plots show those), and the
rolling cache of sliding-window models.
"""

from __future__ import annotations

from ..experiments import RECIPES
from ..kv_cache import kv_cache_bytes
from .svg import DARK, EDGE, INK, MUTED, PALETTE, Canvas, tint

__all__ = ["draw_kv_cache"]

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

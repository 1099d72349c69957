"""Diagrams of what happens inside attention: one query's weighted average, the split into heads,
and RoPE's rotation of query and key pairs.

The numbers on the pictures are computed here by the package's own functions
(`attention_weights`, `scaled_dot_product_attention`, `rope_angles`) from small made-up vectors,
so a picture cannot show a softmax the code would not produce. The sizes on the multi-head and
RoPE pictures are those of the default `GPTConfig` (the course's tiny model).

Left out: the batch axis (every picture follows one sequence), dropout on the weights, ALiBi, and
grouped-query attention beyond a one-line note.
"""

from __future__ import annotations

import math

import torch

from ..attention import attention_weights, scaled_dot_product_attention
from ..config import GPTConfig
from ..positional import rope_angles
from .svg import DARK, EDGE, INK, MUTED, PALETTE, Canvas, Run, tint

__all__ = ["draw_attention", "draw_multi_head", "draw_rope"]

BLUE, ORANGE, GREEN, PURPLE, GREY = (PALETTE[c] for c in ("blue", "orange", "green", "purple", "grey"))

# One query (position 2) against four keys; head_dim 4, so the scale is 1/√4 = 1/2.
TOKENS = ("the", "cat", "sat", "on")
QUERY_AT = 2
Q_ROW = (1.0, 0.0, 1.0, 1.0)
K_ROWS = ((1.0, 0.0, 0.0, 1.0), (0.0, 1.0, 1.0, 0.0), (1.0, 0.0, 1.0, 1.0), (1.0, 1.0, 1.0, 1.0))
V_ROWS = ((2.0, 0.0, 1.0, 0.0), (0.0, 2.0, 0.0, 1.0), (1.0, 1.0, 0.0, 0.0), (0.0, 0.0, 3.0, 3.0))


def _strip(c: Canvas, cx: float, y: float, values: tuple[float, ...] | list[float], colour: str,
           cell: float = 28, digits: int = 0) -> None:
    """A vector as a row of cells centred on `cx`, its numbers written in them."""
    x0 = cx - cell * len(values) / 2
    for i, value in enumerate(values):
        c.rect(x0 + i * cell, y, cell, 26, tint(colour, 0.75), colour, 1.2, rx=3)
        c.text(x0 + (i + 0.5) * cell, y + 18, f"{value:.{digits}f}", 13, "middle")


def draw_attention(ident: str, title: str, desc: str) -> Canvas:
    """Attention for one query as a weighted average of the values, with the causal mask."""
    c = Canvas(880, 574, ident, title, desc)
    hs = len(Q_ROW)
    q = torch.tensor([Q_ROW] * len(TOKENS))  # (T, hs): every row the same; we follow row QUERY_AT
    k, v = torch.tensor(K_ROWS), torch.tensor(V_ROWS)  # (T, hs) each
    weights = attention_weights(q, k, is_causal=True)[QUERY_AT]  # (T,)
    y_out = scaled_dot_product_attention(q, k, v, is_causal=True)[QUERY_AT]  # (hs,)
    raw = (q[QUERY_AT] @ k.T).tolist()  # (T,) unscaled dot products
    cols = [330 + 150 * j for j in range(len(TOKENS))]
    rows = {"token": 48, "k": 104, "v": 144, "q": 196, "score": 252, "mask": 296, "weight": 340, "sum": 440}
    labels = {
        "token": "token at position t", "k": [("k", "mono"), (": key of each token", "")],
        "v": [("v", "mono"), (": value of each token", "")], "q": [("q", "mono"), (" of t = 2", "")],
        "score": [("q · k / √", ""), ("head_dim", "mono")], "mask": [("causal_mask", "mono"), (": j > t → −∞", "")],
        "weight": [("softmax(dim=-1)", "mono"), (": weights", "")],
    }
    for name, run in labels.items():
        c.text(24, rows[name] + 18, run, 15)
    future = [j > QUERY_AT for j in range(len(TOKENS))]
    # The future key's column: outlined, greyed, and never reaching the sum.
    for j, cx in enumerate(cols):
        if future[j]:
            c.rect(cx - 70, rows["token"] - 30, 140, rows["weight"] + 112 - rows["token"], tint(GREY, 0.85), GREY,
                   1.2, rx=8, dash="5 4")
            c.text(cx, rows["weight"] + 72, "future key: masked", 13, "middle", MUTED)
    for j, (cx, token) in enumerate(zip(cols, TOKENS)):
        ink = MUTED if future[j] else INK
        c.text(cx, rows["token"] - 10, f"t = {j}" if j != QUERY_AT else "t = 2 (query)", 13, "middle", ink)
        edge = BLUE if j == QUERY_AT else EDGE
        c.rect(cx - 50, rows["token"], 100, 30, "#ffffff", edge, 2.5 if j == QUERY_AT else 1.5)
        c.text(cx, rows["token"] + 21, token, 16, "middle", ink)
        _strip(c, cx, rows["k"], K_ROWS[j], GREY if future[j] else ORANGE)
        _strip(c, cx, rows["v"], V_ROWS[j], GREY if future[j] else GREEN)
        c.text(cx, rows["score"] + 18, f"{raw[j]:g} / {math.sqrt(hs):g} = {raw[j] / math.sqrt(hs):.2f}", 15, "middle",
               ink)
        c.text(cx, rows["mask"] + 18, "−∞" if future[j] else f"{raw[j] / math.sqrt(hs):.2f}", 15, "middle", ink)
        # The weight as a bar on a common baseline, its value above.
        w = float(weights[j])
        base = rows["weight"] + 46
        height = 40 * w / float(weights.max())
        if w > 0:
            c.rect(cx - 22, base - height, 44, height, tint(BLUE, 0.55), BLUE, 1.2, rx=2)
        c.line(cx - 34, base, cx + 34, base, MUTED, 1)
        c.text(cx + 30 if w > 0 else cx, base - height / 2 + 5 if w > 0 else base - 8, f"{w:.2f}", 14,
               "start" if w > 0 else "middle", ink)
    _strip(c, 196, rows["q"], Q_ROW, BLUE)
    c.line(250, rows["q"] + 13, 262, rows["q"] + 13, BLUE, 1.5)
    c.path(f"M262,{rows['q'] + 13} L262,{rows['score'] + 13}", BLUE, 1.5)
    c.line(262, rows["score"] + 13, 268, rows["score"] + 13, BLUE, 1.5, arrow=True)
    # The weighted sum: the formula with the computed weights, and the result.
    terms: list[tuple[str, str]] = [("=", "")]
    for j in range(len(TOKENS)):
        terms += [(f"{' +' if j else ''} {float(weights[j]):.2f}·", ""), ("v", "mono"), (f"{j}", "sub")]
    top = rows["sum"]
    c.text(24, top + 18, [("output for t = 2: Σ weight · ", ""), ("v", "mono")], 15)
    c.text(24, top + 50, terms, 15)
    _strip(c, 600, top + 32, [float(x) for x in y_out], PURPLE, cell=52, digits=2)
    c.text(600, top + 24, "y (head_dim numbers)", 14, "middle")
    c.text(440, 530, [("CausalSelfAttention", "mono"), (" does this for every position t and every head at once:", "")],
           14, "middle", MUTED)
    c.text(440, 552, [("q, k, v (B, H, T, hs) → weights (B, H, T, T) → y (B, H, T, hs)", "mono")], 13, "middle",
           MUTED)
    return c


def draw_multi_head(ident: str, title: str, desc: str) -> Canvas:
    """d_model split into n_heads slices of head_dim, each head attending, concatenation, proj."""
    cfg = GPTConfig()
    d, H, hs = cfg.d_model, cfg.n_heads, cfg.head_dim
    c = Canvas(880, 600, ident, title, desc)
    unit = 512 / d  # pixels per feature
    x0, width = 180, 512
    heads = [BLUE, ORANGE, GREEN, PURPLE] * (H // 4 + 1)
    centres = [x0 + (h + 0.5) * hs * unit for h in range(H)]

    def bar(y: float, label: str, shape: str, split: bool, gap: float = 0) -> None:
        c.text(x0 - 12, y + 19, label, 15, "end", INK)
        for h in range(H if split else 1):
            left = x0 + (h * hs * unit if split else 0) + gap / 2
            w = (hs * unit if split else width) - gap
            fill, edge = (tint(heads[h], 0.7), heads[h]) if split else ("#eef1f4", MUTED)
            c.rect(left, y, w, 28, fill, edge, 1.4, rx=3)
        c.text(x0 + width + 14, y + 19, shape, 14, "start", INK)

    bar(28, "x", "(B, T, d_model)", False)
    c.text(x0 + width / 2, 47, [("d_model", "mono"), (f" = {d} features per token", "")], 14, "middle")
    c.line(x0 + width / 2, 58, x0 + width / 2, 84, INK, 1.5, arrow=True)
    c.text(x0 + width / 2 + 12, 77, [("qkv", "mono"), (": one Linear for all heads, then split", "")], 14)
    for i, name in enumerate("qkv"):
        bar(92 + 36 * i, name, "(B, T, H*hs) each" if i == 1 else "", True)
    for h in range(H):
        c.text(centres[h], 92 + 19, f"head {h}", 14, "middle")
    # One slice: its width is head_dim.
    y = 200
    left, right = x0, x0 + hs * unit
    c.path(f"M{left + 2},{y} L{left + 2},{y + 6} L{right - 2},{y + 6} L{right - 2},{y}", INK, 1.2)
    c.text((left + right) / 2, y + 24, [("head_dim", "mono"), (f" = {d} / {H} = {hs}", "")], 14, "middle")
    c.text(x0 + width + 14, 219, [("split_heads", "mono"), (" each:", "")], 14)
    c.text(x0 + width + 14, 237, "(B, T, H, hs)", 14)
    c.text(x0 + width + 14, 255, "→ (B, H, T, hs)", 14)
    top = 278
    for h in range(H):
        c.line(centres[h], 236, centres[h], top - 2, heads[h], 2, arrow=True)
        c.rect(centres[h] - 56, top, 112, 58, "#ffffff", heads[h], 2)
        c.text(centres[h], top + 24, f"head {h}", 15, "middle", INK, "bold")
        c.text(centres[h], top + 45, "attends", 14, "middle")
        c.line(centres[h], top + 58, centres[h], top + 84, heads[h], 2, arrow=True)
    c.text(x0 + width + 14, top + 20, "softmax(q kᵀ/√hs", 14)
    c.text(x0 + width + 14, top + 38, "+ mask) v;", 14)
    c.text(x0 + width + 14, top + 56, "weights (B, H, T, T)", 14)
    bar(366, "y", "(B, H, T, hs)", True, gap=10)
    c.line(x0 + width / 2, 400, x0 + width / 2, 436, INK, 1.5, arrow=True)
    c.text(x0 + width / 2 + 12, 424, [("merge_heads", "mono"), (": the heads side by side again", "")], 14)
    bar(442, "", "(B, T, H*hs)", True)
    c.line(x0 + width / 2, 476, x0 + width / 2, 512, INK, 1.5, arrow=True)
    c.text(x0 + width / 2 + 12, 500, [("proj", "mono"), (": Linear(H*hs, d_model) mixes the heads", "")], 14)
    bar(518, "", "(B, T, d_model)", False)
    c.text(440, 580, [("n_kv_heads", "mono"), (" < ", ""), ("n_heads", "mono"),
                      (": k and v get fewer slices, each shared by a group of query heads (GQA)", "")],
           13, "middle", MUTED)
    return c


def _plane(c: Canvas, cx: float, cy: float, r: float) -> None:
    c.circle(cx, cy, r, "none", EDGE, 1.2, dash="4 4")
    c.line(cx - r - 14, cy, cx + r + 14, cy, MUTED, 1, arrow=True)
    c.line(cx, cy + r + 14, cx, cy - r - 14, MUTED, 1, arrow=True)


def _arrow_at(c: Canvas, cx: float, cy: float, angle: float, length: float, colour: str, width: float = 2.5,
              dash: str | None = None) -> tuple[float, float]:
    """An arrow from the centre at `angle` (radians, counter-clockwise, as in maths); its tip."""
    x, y = cx + length * math.cos(angle), cy - length * math.sin(angle)
    c.line(cx, cy, x, y, colour, width, arrow=True, dash=dash)
    return x, y


def _arc(c: Canvas, cx: float, cy: float, r: float, a0: float, a1: float, colour: str, width: float = 1.5) -> None:
    """A circular arc from angle a0 to a1 (counter-clockwise) around the centre."""
    x0, y0 = cx + r * math.cos(a0), cy - r * math.sin(a0)
    x1, y1 = cx + r * math.cos(a1), cy - r * math.sin(a1)
    large = 1 if (a1 - a0) % (2 * math.pi) > math.pi else 0
    c.path(f"M{x0:.1f},{y0:.1f} A{r},{r} 0 {large} 0 {x1:.1f},{y1:.1f}", colour, width)


def draw_rope(ident: str, title: str, desc: str) -> Canvas:
    """A query pair turned by p·ω_i; q and k at two offsets; the speed of every pair of a head."""
    cfg = GPTConfig()
    hs, T = cfg.head_dim, cfg.context_length
    cos, sin = rope_angles(T, hs, cfg.rope_base)  # (T, hs/2) each
    omega = [math.atan2(float(sin[1, i]), float(cos[1, i])) for i in range(hs // 2)]  # angle at p = 1
    c = Canvas(880, 556, ident, title, desc)
    pair = 1  # a pair slow enough for four positions to fit in a quarter turn
    w = omega[pair]
    # Panel 1: one pair of q at positions 0..3.
    cx, cy, r = 150, 190, 96
    c.text(cx, 36, [("one pair of ", ""), ("q", "mono"), (", positions p = 0…3", "")], 15, "middle", INK, "bold")
    _plane(c, cx, cy, r)
    c.text(cx + r + 12, cy + 20, "feature 2i", 13, "end", MUTED)
    c.text(cx - 8, cy - r - 4, "feature 2i+1", 13, "end", MUTED)
    start = math.radians(8)
    for p in range(4):
        shade = tint(BLUE, 0.6 - 0.2 * p) if p < 3 else BLUE
        x, y = _arrow_at(c, cx, cy, start + p * w, r - 4, shade)
        c.text(x + 6, y - 6, f"p = {p}", 13, "start", INK)
    _arc(c, cx, cy, 44, start, start + w, INK)
    c.text(cx + 48, cy - 8, [("ω", ""), ("i", "sub")], 15, "start")
    c.text(cx, cy + r + 42, [("turned by p · ω", ""), ("i", "sub")], 15, "middle")
    # Panel 2: q at m and k at n, for two (m, n) with the same offset.
    cx2 = 436
    c.text(cx2, 36, [("q", "mono"), (" at m, ", ""), ("k", "mono"), (" at n", "")], 15, "middle", INK, "bold")
    _plane(c, cx2, cy, r)
    q0, k0 = math.radians(-16), math.radians(-25)
    for (m, n), dash in (((3, 1), None), ((7, 5), "6 4")):
        for name, pos, start, colour, ink in (("q", m, q0, BLUE, BLUE), ("k", n, k0, ORANGE, DARK["orange"])):
            angle = start + pos * w
            _arrow_at(c, cx2, cy, angle, r - 4, colour, 2.5, dash)
            # The label sits just outside the circle, in the arrow's direction.
            lx, ly = cx2 + (r + 10) * math.cos(angle), cy - (r + 10) * math.sin(angle) + 5
            anchor = "start" if math.cos(angle) > 0.2 else "end" if math.cos(angle) < -0.2 else "middle"
            c.text(lx, ly, f"{name}, {'m' if name == 'q' else 'n'} = {pos}", 13, anchor, ink)
        _arc(c, cx2, cy, 40, k0 + n * w, q0 + m * w, INK, 1.2)
    c.text(cx2, cy + r + 42, "m − n = 2 both times: same angle,", 15, "middle")
    c.text(cx2, cy + r + 62, [("same score ", ""), ("q", "mono"), (" · ", ""), ("k", "mono")], 15, "middle")
    # The rule, in the package's names.
    tx = 630
    notes: list[tuple[float, Run]] = [
        (0, [("apply_rope", "mono"), (" turns each pair", "")]),
        (0, "(a, b) = features (2i, 2i+1)"),
        (0, [("of ", ""), ("q", "mono"), (" (B, H, T, hs) and ", ""), ("k", "mono")]),
        (0, [("by the angle p · ω", ""), ("i", "sub"), (":", "")]),
        (0, "→ (a cos − b sin,"),
        (22, "a sin + b cos)"),
        (0, [("cos, sin = ", ""), ("rope_angles", "mono")]),
        (0, [("(T, ", ""), ("head_dim", "mono"), (", ", ""), ("rope_base", "mono"), (")", "")]),
        (0, "each (T, hs/2)"),
    ]
    for i, (indent, run) in enumerate(notes):
        c.text(tx + indent, 70 + 28 * i + (10 if i >= 6 else 0), run, 14)
    # Panel 3: every pair of a head turns at its own speed.
    top = 392
    c.text(440, top, [("ω", ""), ("i", "sub"), (" = ", ""), ("rope_base", "mono"), (" ^ (−2i / ", ""),
                      ("head_dim", "mono"), ("): every pair turns at its own speed", "")], 15, "middle")
    c.text(440, top + 22, [(f"how far each of the {hs // 2} pairs of ", ""), ("head_dim", "mono"),
                           (f" = {hs} has turned at p = {T - 1}, the last position of ", ""),
                           ("context_length", "mono"), (f" = {T}", "")], 13, "middle", MUTED)
    for i in range(hs // 2):
        x, y = 80 + i * 103, top + 72
        turns = (T - 1) * omega[i] / (2 * math.pi)
        c.circle(x, y, 26, "#ffffff", EDGE, 1.2)
        if turns >= 1:
            c.circle(x, y, 26, "none", BLUE, 2.5)
        else:
            _arc(c, x, y, 26, math.pi / 2 - 2 * math.pi * turns, math.pi / 2, BLUE, 2.5)
        end = math.pi / 2 - (T - 1) * omega[i]
        c.line(x, y, x + 22 * math.cos(end), y - 22 * math.sin(end), INK, 2)
        c.text(x, top + 120, f"i = {i}", 13, "middle")
        c.text(x, top + 138, f"{turns:.2g} turn{'' if f'{turns:.2g}' == '1' else 's'}", 13, "middle", MUTED)
    return c

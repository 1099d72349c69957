"""A diagram of mixture-of-experts routing: one token through the router to its top-k experts and back.

The probabilities and gates written on the picture are computed by `llmscratch.moe.route` from
the router scores `SCORES` when the picture is drawn, and the labels are the attribute names of
`llmscratch.moe.MoEFeedForward` (``router``, ``experts``) and the config's fields.

Left out: capacity (a full expert would drop the token's assignment) and the load-balancing
loss, which act on a batch of tokens, not on one.
"""

from __future__ import annotations

import torch

from ..moe import route
from .svg import INK, MUTED, PALETTE, Canvas, tint

__all__ = ["K", "SCORES", "draw_moe_routing"]

# The router's scores for the one token drawn (one per expert), and its top-k.
SCORES = (0.9, -0.4, 0.5, -1.1)
K = 2

BLUE, GREEN, GREY, ORANGE = PALETTE["blue"], PALETTE["green"], PALETTE["grey"], PALETTE["orange"]


def draw_moe_routing(ident: str, title: str, desc: str) -> Canvas:
    """One token: router scores, softmax, top-2, two experts run and two idle, gates, the weighted sum."""
    r = route(torch.tensor([SCORES]), K)
    probs = r.probs[0].tolist()
    chosen = {int(e): float(g) for e, g in zip(r.experts[0], r.gates[0])}
    c = Canvas(880, 520, ident, title, desc)
    c.text(24, 36, [("One token, ", ""), ("n_experts", "mono"), (f" = {len(SCORES)}, ", ""),
                    ("experts_per_token", "mono"), (f" = {K}", "")], 16, "start", INK, "bold")
    mid = 250  # the token's row
    # The token and the router.
    c.rect(24, mid - 24, 92, 48, tint(BLUE, 0.8), BLUE, 1.8)
    c.text(70, mid + 5, [("x", "mono")], 16, "middle")
    c.text(70, mid + 46, "(d_model,)", 13, "middle", MUTED)
    c.line(116, mid, 150, mid, INK, 1.5, arrow=True)
    c.rect(152, mid - 24, 96, 48, tint(ORANGE, 0.8), ORANGE, 1.8)
    c.text(200, mid + 5, [("router", "mono")], 15, "middle")
    c.text(200, mid + 46, "softmax", 13, "middle", MUTED)
    rows = [100 + 100 * e for e in range(len(SCORES))]
    for e, y in enumerate(rows):
        active = e in chosen
        colour = GREEN if active else GREY
        # Router to each expert's probability bar.
        c.path(f"M248,{mid} C270,{mid} 270,{y} 292,{y}", INK if active else GREY, 1.5 if active else 1.2,
               dash=None if active else "4 4")
        c.rect(296, y - 9, 200 * probs[e], 18, tint(colour, 0.55), colour, 1.2, rx=3)
        c.text(300, y - 16, f"p = {probs[e]:.2f}", 14, "start", INK if active else MUTED)
        # The expert.
        c.rect(440, y - 23, 150, 46, tint(colour, 0.8) if active else "#ffffff", colour, 1.8,
               dash=None if active else "5 4")
        c.text(515, y + 5, [(f"experts[{e}]", "mono")], 15, "middle", INK if active else MUTED)
        if active:
            c.line(300 + 200 * probs[e], y, 438, y, INK, 1.5, arrow=True)
            c.line(590, y, 690, mid + (y - mid) * 0.12, INK, 1.5, arrow=True)
            c.text(626, y + (-10 if y < mid else 24), f"× g = {chosen[e]:.2f}", 14, "middle", INK)
        else:
            c.text(515, y + 42, "idle: no arithmetic", 13, "middle", MUTED, italic=True)
    # The weighted sum and the output.
    c.circle(706, mid, 15, "#ffffff", INK, 2)
    c.path(f"M698,{mid} L714,{mid} M706,{mid - 8} L706,{mid + 8}", INK, 2)
    c.line(721, mid, 770, mid, INK, 1.5, arrow=True)
    c.rect(772, mid - 24, 84, 48, tint(BLUE, 0.8), BLUE, 1.8)
    c.text(814, mid + 5, [("y", "mono")], 16, "middle")
    c.text(814, mid + 46, "(d_model,)", 13, "middle", MUTED)
    # The rule, in the code's words.
    c.text(440, 486, [("probs.topk(k, dim=-1)", "mono"), (", then the gates ", ""),
                      ("top / top.sum(dim=-1, keepdim=True)", "mono")], 14, "middle")
    return c

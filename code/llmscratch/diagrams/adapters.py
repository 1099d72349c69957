"""A diagram of a LoRA adapter beside a frozen weight, with the course model's own counts.

The frozen matrix W of one attention output projection (``proj``, d_model × d_model) is drawn to
scale next to the adapter's two factors at rank 8: A, rank × in, a thin strip, and B, out × rank,
another. The input goes through both paths and the two outputs are added; merging folds the
scaled product into W. The counts under the picture are computed when it is drawn, with
`llmscratch.lora.add_lora` on the course model's configuration.

Left out: the other wrapped layers (``qkv``, ``up``, ``down``), which follow the same picture.
"""

from __future__ import annotations

from ..experiments import RECIPES
from ..lora import add_lora, lora_parameters
from ..model import GPT
from .svg import INK, MUTED, PALETTE, Canvas, tint

__all__ = ["RANK", "course_counts", "draw_lora"]

RANK = 8
BLUE, ORANGE, GREY = PALETTE["blue"], PALETTE["orange"], PALETTE["grey"]


def course_counts(rank: int = RANK) -> tuple[int, int]:
    """(trainable adapter parameters, all parameters) of the course model with adapters of `rank`."""
    model = GPT(RECIPES["course"].model)
    total = model.num_parameters()
    add_lora(model, rank)
    return sum(p.numel() for p in lora_parameters(model)), total


def draw_lora(ident: str, title: str, desc: str) -> Canvas:
    """x through the frozen W and through A then B; the sum; the merge; the counts."""
    d = RECIPES["course"].model.d_model
    px = 170 / d  # pixels per feature: W is d × d
    side, thin = d * px, max(RANK * px, 6.0)
    c = Canvas(880, 470, ident, title, desc)
    c.text(40, 36, [("One ", ""), ("LoRALinear", "mono"), (f": the attention output projection, rank {RANK}", "")],
           16, "start", INK, "bold")
    # the input
    c.text(60, 214, "x", 22, "middle", INK, "bold")
    c.text(60, 238, f"{d} features", 13, "middle", MUTED)
    c.line(76, 200, 196, 150, INK, 1.5, arrow=True)
    c.line(76, 220, 196, 330, INK, 1.5, arrow=True)
    # the frozen path
    c.rect(200, 62, side, side, tint(GREY, 0.75), GREY, 1.6, rx=2)
    c.text(200 + side / 2, 140, "W", 24, "middle", INK, "bold")
    c.text(200 + side / 2, 164, f"{d} × {d}, frozen", 14, "middle")
    c.text(200 + side / 2, 252, f"{d * d:,} numbers", 13, "middle", MUTED)
    c.line(200 + side, 147, 640, 232, INK, 1.5, arrow=True)
    # the adapter path: A (rank × in) then B (out × rank)
    ay = 328
    c.rect(200, ay, side, thin, tint(BLUE, 0.55), BLUE, 1.4, rx=1)
    c.text(200 + side / 2, ay + 32, f"A: {RANK} × {d}", 14, "middle", INK, "bold")
    c.text(200 + side / 2, ay + 52, "random at the start", 13, "middle", MUTED)
    bx, by = 500, 214
    c.line(200 + side, ay + thin / 2, bx - 4, ay + thin / 2, BLUE, 1.5, arrow=True)
    c.text(435, ay - 12, f"{RANK} features", 13, "middle", MUTED)
    c.rect(bx, by, thin, side, tint(ORANGE, 0.55), ORANGE, 1.4, rx=1)
    c.text(bx + 20, by + 100, f"B: {d} × {RANK}", 14, "start", INK, "bold")
    c.text(bx + 20, by + 120, "zero at the start", 13, "start", MUTED)
    c.line(bx + thin, by + 20, 640, 252, ORANGE, 1.5, arrow=True)
    c.text(590, 272, "× alpha / rank", 14, "middle", MUTED)
    # the sum
    c.circle(654, 242, 14, "none", INK, 1.6)
    c.text(654, 248, "+", 18, "middle", INK, "bold")
    c.line(668, 242, 730, 242, INK, 1.5, arrow=True)
    c.text(748, 248, "y", 22, "middle", INK, "bold")
    c.text(640, 100, [("y = W x + ", ""), ("(alpha / rank) B A", "mono"), (" x", "")], 15, "middle")
    c.text(640, 124, f"trainable: ({d} + {d}) · {RANK} = {2 * d * RANK:,}, {100 * 2 * RANK / d:.2g} % of W", 13,
           "middle", MUTED)
    trainable, total = course_counts()
    c.text(440, 430, [("merge: ", "bold"), ("W <- W + (alpha / rank) B A", "mono"),
                      (", after which the layer costs what it did", "")], 14, "middle")
    c.text(440, 454, f"the course model at rank {RANK}: {trainable:,} trainable of {total:,} "
                     f"({100 * trainable / total:.1f} %), in qkv, proj, up and down of every block", 13,
           "middle", MUTED)
    return c

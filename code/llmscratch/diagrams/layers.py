"""Diagrams of how the layers connect: a transformer block in its two norm placements, and the
residual stream through the whole GPT.

Every box is labelled with the attribute name it has in `llmscratch.blocks.Block` or
`llmscratch.model.GPT` (``norm_1``, ``attention``, ``feed_forward``, ``token_embedding``,
``final_norm``, ``lm_head``...), so the picture can be read next to the code.

Left out: dropout on the residual branches, the insides of the sublayers (the attention pictures
in `heads` show those), and the post-norm GPT, whose blocks already end in a norm and which
therefore has no ``final_norm`` (an identity in `GPT`).
"""

from __future__ import annotations

from ..config import GPTConfig
from .svg import DARK, INK, MUTED, PALETTE, Canvas, Run, tint

__all__ = ["draw_block", "draw_residual_stream"]

BLUE, ORANGE, GREEN, PURPLE, GREY = (PALETTE[c] for c in ("blue", "orange", "green", "purple", "grey"))
STREAM = "#3d5a80"  # the residual stream's colour in both pictures


def _box(c: Canvas, x: float, y: float, w: float, h: float, name: str, note: str | None, colour: str) -> None:
    """A layer: its attribute name in code type, and optionally its class below in small type."""
    c.rect(x, y, w, h, tint(colour, 0.8), colour, 1.8)
    if note:
        c.text(x + w / 2, y + h / 2 - 3, [(name, "mono")], 15, "middle")
        c.text(x + w / 2, y + h / 2 + 15, note, 13, "middle", MUTED)
    else:
        c.text(x + w / 2, y + h / 2 + 5, [(name, "mono")], 14, "middle")


def _plus(c: Canvas, x: float, y: float, r: float = 11) -> None:
    """The residual addition: a circled plus on the stream."""
    c.circle(x, y, r, "#ffffff", STREAM, 2)
    c.path(f"M{x - r + 4},{y} L{x + r - 4},{y} M{x},{y - r + 4} L{x},{y + r - 4}", STREAM, 2)


def _block_panel(c: Canvas, px: float, pre: bool) -> None:
    """One block, input at the top, output at the bottom; `pre` chooses the norm placement."""
    sx, bx, bw = px + 110, px + 300, 170  # the stream's x, the branch boxes' centre and width
    placement = "pre" if pre else "post"
    c.text(px + 220, 44, "pre-norm (GPT-2)" if pre else "post-norm (original Transformer)", 16, "middle", INK, "bold")
    c.text(px + 220, 66, [(f'norm_placement="{placement}"', "mono")], 14, "middle", MUTED)
    c.text(sx, 100, "x (B, T, d_model)", 14, "middle")
    c.text(px + 24, 300, "residual", 14, "start", STREAM)
    c.text(px + 24, 318, "stream", 14, "start", STREAM)
    segments: list[tuple[float, float]] = []  # pieces of the stream's line, between the boxes on it
    top = 108
    for i, (name, note) in enumerate((("attention", "CausalSelfAttention"), ("feed_forward", "FeedForward"))):
        norm = f"norm_{i + 1}"
        y0 = 130 + i * 170 if pre else 130 + i * 166
        c.circle(sx, y0, 4, STREAM, STREAM)
        c.path(f"M{sx},{y0} L{bx},{y0}", STREAM, 2)
        y = y0
        if pre:  # the norm sits on the branch, before the sublayer
            c.line(bx, y, bx, y + 16, STREAM, 2, arrow=True)
            _box(c, bx - 50, y + 16, 100, 32, norm, None, GREY)
            y += 48
        c.line(bx, y, bx, y + 16, STREAM, 2, arrow=True)
        _box(c, bx - bw / 2, y + 16, bw, 48, name, note, BLUE if i == 0 else GREEN)
        y += 64
        join = y + 22
        c.path(f"M{bx},{y} L{bx},{join} L{sx + 14},{join}", STREAM, 2)
        c.arrowhead(sx + 12, join, 3.14159, STREAM)
        _plus(c, sx, join)
        segments.append((top, join - 11))
        top = join + 11
        if not pre:  # the norm sits on the stream, after the addition
            _box(c, sx - 45, join + 22, 90, 32, norm, None, GREY)
            segments.append((top, join + 22))
            top = join + 54
    segments.append((top, 470))
    for a, b in segments:
        c.line(sx, a, sx, b, STREAM, 4, arrow=True)
    c.text(sx, 492, "x (B, T, d_model)", 14, "middle")
    lines: list[Run] = ([[("x = x + attention(norm_1(x))", "mono")], [("x = x + feed_forward(norm_2(x))", "mono")]]
                        if pre else
                        [[("x = norm_1(x + attention(x))", "mono")], [("x = norm_2(x + feed_forward(x))", "mono")]])
    for i, run in enumerate(lines):
        c.text(px + 220, 528 + 22 * i, run, 14, "middle")
    c.text(px + 220, 594, "the stream meets only additions" if pre else "the stream passes through both norms",
           14, "middle", STREAM, italic=True)


def draw_block(ident: str, title: str, desc: str) -> Canvas:
    """Pre-norm and post-norm blocks side by side, in `Block`'s names."""
    c = Canvas(880, 620, ident, title, desc)
    _block_panel(c, 0, pre=True)
    c.line(440, 24, 440, 600, "#d0d7de", 1.5, dash="6 5")
    _block_panel(c, 440, pre=False)
    return c


def draw_residual_stream(ident: str, title: str, desc: str) -> Canvas:
    """Embeddings start the stream, every block reads it and adds to it, final_norm and lm_head end it."""
    cfg = GPTConfig()
    c = Canvas(880, 470, ident, title, desc)
    by = 270  # the stream's centre line
    # The embeddings and their sum.
    c.text(70, 128, "idx (B, T)", 14, "middle")
    c.line(70, 134, 70, 156, INK, 1.5, arrow=True)
    _box(c, 20, 158, 200, 50, "token_embedding", "(vocab_size, d_model)", PURPLE)
    _box(c, 20, 332, 200, 50, "position_embedding", "(context_length, d_model)", ORANGE)
    c.line(120, 424, 120, 386, INK, 1.5, arrow=True)
    c.text(120, 442, "arange(T)", 14, "middle")
    c.text(120, 462, [('only if position="learned"', "")], 13, "middle", MUTED)
    c.path(f"M220,183 L250,183 L250,{by - 14}", INK, 1.5)
    c.arrowhead(250, by - 12, 1.5708, INK)
    c.path(f"M220,357 L250,357 L250,{by + 14}", INK, 1.5)
    c.arrowhead(250, by + 12, -1.5708, INK)
    # The stream.
    c.rect(262, by - 8, 468, 16, tint(STREAM, 0.65), STREAM, 1.5, rx=8)
    _plus(c, 250, by, 12)
    c.text(496, by + 68, "residual stream x (B, T, d_model)", 15, "middle", STREAM, "bold")
    # The blocks: each sublayer reads through its norm and adds back to the stream.
    ends = []
    for layer in range(cfg.n_layers):
        b = 270 + layer * 234
        c.rect(b, 112, 226, 132, "none", MUTED, 1.2, dash="5 4")
        c.text(b + 8, 132, [(f"blocks[{layer}]", "mono")], 14, "start", MUTED)
        for i, (name, w, colour) in enumerate((("attention", 94, BLUE), ("feed_forward", 114, GREEN))):
            x = b + 6 + i * 100
            _box(c, x, 144, w, 38, name, None, colour)
            read, write = x + 26, x + w - 14
            _box(c, read - 26, 202, 52, 26, f"norm_{i + 1}", None, GREY)
            c.line(read, by - 8, read, 230, STREAM, 1.8, arrow=True)
            c.line(read, 202, read, 184, STREAM, 1.8, arrow=True)
            c.line(write, 182, write, by - 11, STREAM, 1.8, arrow=True)
            _plus(c, write, by, 9)
        ends.append(b + 220)
    # Where GPT.trace records the stream: after the embeddings and after each block.
    for i, x in enumerate([262, *ends]):
        c.path(f"M{x},{by + 10} L{x},{by + 20}", STREAM, 1.5)
        c.text(x, by + 36, [(f"hidden[{i}]", "mono")], 13, "middle", MUTED)
    c.text(510, by + 90, [("GPT.trace(idx).hidden", "mono"), (": the stream at each tick", "")], 13, "middle",
           MUTED)
    # The output: final norm, then the output layer, which may share the token embedding's matrix.
    c.path(f"M730,{by} L820,{by} L820,{by - 30}", STREAM, 3)
    c.arrowhead(820, by - 32, -1.5708, STREAM)
    _box(c, 770, by - 72, 100, 38, "final_norm", None, GREY)
    c.line(820, by - 74, 820, 182, INK, 1.5, arrow=True)
    _box(c, 770, 144, 100, 38, "lm_head", None, PURPLE)
    c.line(820, 142, 820, 62, INK, 1.5, arrow=True)
    c.text(866, 52, "logits (B, T, vocab_size)", 14, "end")
    c.path("M770,163 L752,163 L752,78 L170,78 L170,156", DARK["purple"], 1.8, dash="6 4")
    c.text(462, 70, [("tie_weights", "mono"), (": ", ""), ("lm_head.weight", "mono"), (" is ", ""),
                     ("token_embedding.weight", "mono")], 14, "middle", DARK["purple"])
    c.text(24, 36, [("A pre-norm GPT with ", ""), ("n_layers", "mono"), (f" = {cfg.n_layers}", "")], 15, "start",
           INK, "bold")
    return c

"""A few SVG primitives for the course's diagrams, built as plain strings.

A `Canvas` collects shapes and text and writes one self-contained SVG: an opaque light card
with dark ink, a ``<title>`` and a ``<desc>`` for screen readers, no external fonts, images or
stylesheets. The card is opaque on purpose: an SVG shown through ``<img>`` cannot see the page's
CSS, so it cannot follow the book's dark-mode switch, and dark ink on a transparent background
would vanish on a dark page.

Text is written as runs: a plain string, or a list of ``(text, style)`` pieces where the style
is ``""``, ``"sub"`` (a subscript), ``"sup"``, ``"mono"`` (a code name) or ``"bold"``.
The canvas estimates every text's box from its length, so that a test can check that no two
labels overlap:

    >>> c = Canvas(200, 100, "demo", "A demo.", "A box and a label.")
    >>> c.text(20, 40, [("q", "mono"), ("t", "sub")])
    >>> c.text(20, 80, "below")
    >>> c.overlaps()
    []
    >>> svg = c.render()
    >>> svg.startswith("<svg") and 'role="img"' in svg and '<title id="demo-title">A demo.</title>' in svg
    True

Left out: real font metrics (the estimate is deliberately generous), text wrapping, and any
interactivity.
"""

from __future__ import annotations

import math
from html import escape

__all__ = ["CARD", "DARK", "EDGE", "FONT", "INK", "MONO", "MUTED", "PALETTE", "Canvas", "Run", "tint"]

FONT = "system-ui, -apple-system, 'Segoe UI', Helvetica, Arial, sans-serif"
MONO = "ui-monospace, 'SFMono-Regular', Menlo, Consolas, 'DejaVu Sans Mono', monospace"
INK = "#1f2328"  # near-black text and lines: contrast above 14:1 on the card
MUTED = "#57606a"  # secondary text, still above 6:1
CARD = "#fbfbfc"
EDGE = "#d0d7de"
# Okabe and Ito's colour-blind-safe palette: query, key, value, then more.
PALETTE = {"blue": "#0072b2", "orange": "#e69f00", "green": "#009e73", "purple": "#cc79a7",
           "vermillion": "#d55e00", "sky": "#56b4e9", "grey": "#8c959f"}
# Darker shades of the light ones, for text in those colours (contrast above 4.5:1 on the card).
DARK = {"orange": "#9a6700", "purple": "#9d4a7b"}

Run = str | list[tuple[str, str]]

# Average advance width per character, in ems; generous, so that estimated boxes cover real ones.
_WIDTH = {"": 0.6, "bold": 0.65, "mono": 0.62, "sub": 0.6, "sup": 0.6}


def tint(colour: str, amount: float = 0.82) -> str:
    """`colour` mixed with white: 0 keeps it, 1 is white. Light fills keep dark text readable."""
    r, g, b = (int(colour[i:i + 2], 16) for i in (1, 3, 5))
    r, g, b = (round(v + (255 - v) * amount) for v in (r, g, b))
    return f"#{r:02x}{g:02x}{b:02x}"


def _pieces(run: Run) -> list[tuple[str, str]]:
    return [(run, "")] if isinstance(run, str) else run


def text_width(run: Run, size: float) -> float:
    """The estimated width of `run` at font `size`, subscripts at 13/16 of it (but 13 px at least)."""
    width = 0.0
    for text, style in _pieces(run):
        s = max(13.0, size * 0.8) if style in ("sub", "sup") else size
        width += len(text) * _WIDTH[style] * s
    return width


class Canvas:
    """An SVG drawing of `width` × `height` user units on an opaque rounded card."""

    def __init__(self, width: int, height: int, ident: str, title: str, desc: str) -> None:
        self.width, self.height, self.ident, self.title, self.desc = width, height, ident, title, desc
        self.items: list[str] = []
        self.boxes: list[tuple[float, float, float, float, str]] = []  # x0, y0, x1, y1, text

    def rect(self, x: float, y: float, w: float, h: float, fill: str = "none", stroke: str = INK,
             width: float = 1.5, rx: float = 6, dash: str | None = None) -> None:
        extra = f' stroke-dasharray="{dash}"' if dash else ""
        self.items.append(f'<rect x="{x:g}" y="{y:g}" width="{w:g}" height="{h:g}" rx="{rx:g}" fill="{fill}" '
                          f'stroke="{stroke}" stroke-width="{width:g}"{extra}/>')

    def circle(self, cx: float, cy: float, r: float, fill: str = "none", stroke: str = INK,
               width: float = 1.5, dash: str | None = None) -> None:
        extra = f' stroke-dasharray="{dash}"' if dash else ""
        self.items.append(f'<circle cx="{cx:g}" cy="{cy:g}" r="{r:g}" fill="{fill}" stroke="{stroke}" '
                          f'stroke-width="{width:g}"{extra}/>')

    def path(self, d: str, stroke: str = INK, width: float = 1.5, fill: str = "none",
             dash: str | None = None) -> None:
        extra = f' stroke-dasharray="{dash}"' if dash else ""
        self.items.append(f'<path d="{d}" fill="{fill}" stroke="{stroke}" stroke-width="{width:g}" '
                          f'stroke-linecap="round" stroke-linejoin="round"{extra}/>')

    def line(self, x1: float, y1: float, x2: float, y2: float, stroke: str = INK, width: float = 1.5,
             arrow: bool = False, dash: str | None = None) -> None:
        """A straight line; with `arrow`, it ends in a filled head at (x2, y2)."""
        if arrow:  # stop the line inside the head, so that a thick line does not poke out of its tip
            length = math.hypot(x2 - x1, y2 - y1)
            back = min(6.0, length / 2) / length
            self.path(f"M{x1:g},{y1:g} L{x2 - (x2 - x1) * back:.1f},{y2 - (y2 - y1) * back:.1f}", stroke, width,
                      dash=dash)
            self.arrowhead(x2, y2, math.atan2(y2 - y1, x2 - x1), stroke)
        else:
            self.path(f"M{x1:g},{y1:g} L{x2:g},{y2:g}", stroke, width, dash=dash)

    def arrowhead(self, x: float, y: float, angle: float, fill: str = INK, size: float = 9) -> None:
        """A filled triangle with its tip at (x, y), pointing along `angle` (radians)."""
        points = [(x, y)]
        for side in (-1, 1):
            a = angle + math.pi - side * 0.42
            points.append((x + size * math.cos(a), y + size * math.sin(a)))
        coords = " ".join(f"{px:.1f},{py:.1f}" for px, py in points)
        self.items.append(f'<polygon points="{coords}" fill="{fill}"/>')

    def text(self, x: float, y: float, run: Run, size: float = 15, anchor: str = "start", fill: str = INK,
             weight: str = "normal", italic: bool = False) -> None:
        """Text with its baseline at `y`; `anchor` is "start", "middle" or "end" at `x`."""
        if size < 13:
            raise ValueError(f"text of {size} px is too small to read; use 13 px or more")
        spans, shift = [], 0.0
        for piece, style in _pieces(run):
            attrs, dy = "", 0.0
            if style in ("sub", "sup"):
                dy = size * (0.3 if style == "sub" else -0.4)
                attrs = f' font-size="{max(13.0, size * 0.8):g}"'
            elif style == "mono":
                attrs = f' font-family="{MONO}"'
            elif style == "bold":
                attrs = ' font-weight="bold"'
            move = f' dy="{dy - shift:g}"' if dy != shift else ""
            spans.append(f"<tspan{attrs}{move}>{escape(piece)}</tspan>")
            shift = dy
        if shift:
            spans.append(f'<tspan dy="{-shift:g}"></tspan>')
        style = ' font-style="italic"' if italic else ""
        bold = ' font-weight="bold"' if weight != "normal" else ""
        self.items.append(f'<text x="{x:g}" y="{y:g}" font-size="{size:g}" text-anchor="{anchor}" fill="{fill}"'
                          f'{bold}{style}>{"".join(spans)}</text>')
        w = text_width(run, size)
        x0 = x - {"start": 0, "middle": w / 2, "end": w}[anchor]
        label = "".join(p for p, _ in _pieces(run))
        self.boxes.append((x0, y - 0.8 * size, x0 + w, y + 0.25 * size + (0.3 * size if shift or any(
            s == "sub" for _, s in _pieces(run)) else 0), label))

    def overlaps(self) -> list[tuple[str, str]]:
        """Pairs of texts whose estimated boxes intersect, and texts that leave the card."""
        found = []
        for i, (ax0, ay0, ax1, ay1, a) in enumerate(self.boxes):
            if ax0 < 2 or ay0 < 2 or ax1 > self.width - 2 or ay1 > self.height - 2:
                found.append((a, "<edge of the card>"))
            for bx0, by0, bx1, by1, b in self.boxes[i + 1:]:
                if ax0 < bx1 and bx0 < ax1 and ay0 < by1 and by0 < ay1:
                    found.append((a, b))
        return found

    def render(self) -> str:
        """The SVG document: the card, then everything drawn, in order."""
        i = self.ident
        head = (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {self.width} {self.height}" '
                f'width="{self.width}" height="{self.height}" role="img" '
                f'aria-labelledby="{i}-title {i}-desc" font-family="{FONT}">')
        card = (f'<rect x="1" y="1" width="{self.width - 2}" height="{self.height - 2}" rx="14" fill="{CARD}" '
                f'stroke="{EDGE}" stroke-width="1.5"/>')
        lines = [head, f'<title id="{i}-title">{escape(self.title)}</title>',
                 f'<desc id="{i}-desc">{escape(self.desc)}</desc>', card, *self.items, "</svg>"]
        return "\n".join(lines) + "\n"

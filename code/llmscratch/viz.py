"""Small HTML views for the chapters, self-contained: inline styles, no scripts, no downloads.

`visible_whitespace` makes a token printable as a label: a space becomes ␣, a newline ↵.

    >>> visible_whitespace(" the\\n")
    '␣the↵'

`token_spans_html` shows how a tokenizer cuts a text: each token is a coloured span, and
hovering over it shows its id. Every piece of text is HTML-escaped, so a text that contains
markup is shown, never run:

    >>> from llmscratch.bpe import BPETokenizer
    >>> html = token_spans_html(BPETokenizer([]), "<b>")
    >>> "<b>" in html, "&lt;" in html
    (False, True)

The colours are semi-transparent and the text colour is inherited, so the view reads on a
light page and on a dark one alike.

Left out: anything interactive beyond the browser's own hover tooltip.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Protocol

__all__ = ["TOKEN_COLOURS", "token_spans_html", "visible_whitespace"]

# Four hues, alternated so that neighbouring tokens differ; alpha keeps text legible on any background.
TOKEN_COLOURS = (
    "rgba(66, 135, 245, 0.28)",
    "rgba(245, 166, 35, 0.32)",
    "rgba(76, 175, 80, 0.30)",
    "rgba(233, 30, 99, 0.26)",
)


def visible_whitespace(text: str) -> str:
    """`text` with spaces shown as ␣ and newlines as ↵, for axis labels and hover text."""
    return text.replace(" ", "␣").replace("\n", "↵")


class _Tokenizer(Protocol):
    def encode(self, text: str) -> list[int]: ...

    def decode_bytes(self, ids: Sequence[int]) -> bytes: ...


def _groups(tokenizer: _Tokenizer, ids: Sequence[int]) -> list[tuple[str, list[int]]]:
    """Consecutive ids grouped so that each group decodes to whole characters.

    A byte-level token can end in the middle of a multi-byte character (an emoji is four
    bytes); such a token is shown together with the tokens that complete the character.
    """
    groups: list[tuple[str, list[int]]] = []
    pending: list[int] = []
    for i in ids:
        pending.append(i)
        try:
            text = tokenizer.decode_bytes(pending).decode("utf-8")
        except UnicodeDecodeError:
            continue  # not yet a whole character: wait for the next token
        groups.append((text, pending))
        pending = []
    if pending:
        groups.append((tokenizer.decode_bytes(pending).decode("utf-8", errors="replace"), pending))
    return groups


def token_spans_html(tokenizer: _Tokenizer, text: str) -> str:
    """`text` as a ``<div>`` of coloured token spans; hover a span to see its token id(s).

    Works with any tokenizer that has ``encode`` and ``decode_bytes``.
    """
    spans = []
    for k, (piece, ids) in enumerate(_groups(tokenizer, tokenizer.encode(text))):
        label = ("token " if len(ids) == 1 else "tokens ") + ", ".join(map(str, ids))
        spans.append(
            f'<span title="{html.escape(label)}" style="background: {TOKEN_COLOURS[k % len(TOKEN_COLOURS)]}; '
            f'color: inherit; border-radius: 3px; padding: 1px 0;">{html.escape(piece)}</span>'
        )
    return (
        '<div class="llmscratch-tokens" style="font-family: var(--pst-font-family-monospace, monospace); '
        'white-space: pre-wrap; line-height: 1.9; color: inherit; font-size: 0.9em;">' + "".join(spans) + "</div>"
    )

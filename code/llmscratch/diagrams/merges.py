"""A diagram of one byte-pair merge step, computed by `llmscratch.bpe`'s own functions.

The text is the BPE chapter's teaching example. `count_pairs` counts its adjacent pairs,
`train_naive` picks the first merge (the most frequent pair, ties to the smaller ids), `merge`
rewrites the sequence, and `BPETokenizer` names the new token's bytes; the picture only lays
out what they return.
"""

from __future__ import annotations

from ..bpe import BPETokenizer, count_pairs, merge, train_naive
from .svg import INK, MUTED, PALETTE, Canvas, tint

__all__ = ["TEXT", "draw_bpe_merge", "merge_step"]

TEXT = "the cat sat on the mat"
ORANGE, GREY = PALETTE["orange"], PALETTE["grey"]


def merge_step(text: str = TEXT) -> tuple[list[int], list[tuple[tuple[int, int], int]], tuple[int, int], list[int]]:
    """The byte ids of `text`, its pair counts (most frequent first), the merged pair, the ids after.

    >>> ids, counts, pair, after = merge_step()
    >>> pair, counts[0], len(ids) - len(after)
    ((97, 116), ((97, 116), 3), 3)
    """
    ids = list(text.encode("utf-8"))
    counts = count_pairs({tuple(ids): 1})
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    pair = train_naive({tuple(ids): 1}, n_merges=1)[0]
    return ids, ranked, pair, merge(ids, pair, 256)


def _show(token: bytes) -> str:
    return token.decode("utf-8", errors="replace").replace(" ", "␣")


def _cells(c: Canvas, y: float, ids: list[int], vocab: list[bytes], marked: set[int]) -> None:
    """A token sequence as cells: the token's text above, its id below; `marked` positions in colour."""
    cell = 36
    x0 = (c.width - cell * len(ids)) / 2
    for i, t in enumerate(ids):
        x = x0 + i * cell
        fill, edge = (tint(ORANGE, 0.6), ORANGE) if i in marked else ("#ffffff", GREY)
        c.rect(x + 1, y, cell - 2, 54, fill, edge, 1.4, rx=4)
        c.text(x + cell / 2, y + 22, _show(vocab[t]), 16, "middle")
        c.text(x + cell / 2, y + 44, [(str(t), "mono")], 13, "middle", MUTED)


def draw_bpe_merge(ident: str, title: str, desc: str) -> Canvas:
    """Bytes, pair counts, the merge, and the shorter sequence."""
    ids, ranked, pair, after = merge_step()
    vocab = BPETokenizer([pair]).vocab
    c = Canvas(880, 470, ident, title, desc)
    starts = [i for i in range(len(ids) - 1) if (ids[i], ids[i + 1]) == pair]
    c.text(24, 34, [("ids = list(", "mono"), (f'"{TEXT}"', "mono"), (".encode())", "mono"),
                    (f": {len(ids)} byte ids, 0–255", "")], 15)
    _cells(c, 48, ids, vocab, {i + d for i in starts for d in (0, 1)})
    x0 = (c.width - 36 * len(ids)) / 2
    for i in starts:
        c.path(f"M{x0 + i * 36 + 4},{108} L{x0 + i * 36 + 4},{114} L{x0 + i * 36 + 68},{114} "
               f"L{x0 + i * 36 + 68},{108}", ORANGE, 2)
    c.text(24, 150, [("count_pairs", "mono"), (": how often each adjacent pair occurs, most frequent first", "")], 15)
    shown = ranked[:5]
    for j, ((a, b), n) in enumerate(shown):
        x = 44 + j * 160
        best = (a, b) == pair
        c.rect(x, 164, 150, 50, tint(ORANGE, 0.6) if best else "#ffffff", ORANGE if best else GREY,
               2 if best else 1.2)
        c.text(x + 75, 184, f"{_show(vocab[a])} {_show(vocab[b])}  × {n}", 15, "middle", INK,
               "bold" if best else "normal")
        c.text(x + 75, 204, [(f"({a}, {b})", "mono")], 13, "middle", MUTED)
    rest = len(ranked) - len(shown)
    c.text(24, 238, f"… and {rest} more pairs. The most frequent wins; among equal counts, the smaller ids.", 14,
           "start", MUTED)
    c.line(440, 252, 440, 300, INK, 1.8, arrow=True)
    c.text(452, 272, [("merge(ids, ", "mono"), (f"{pair}", "mono"), (", 256)", "mono")], 15)
    c.text(452, 292, [("new_id = 256 + r", "mono"), (" for merge r = 0", "")], 14, "start", MUTED)
    c.text(428, 272, [("merges = [", "mono"), (f"{pair}", "mono"), ("]", "mono")], 15, "end")
    c.text(428, 292, [("vocab[256]", "mono"), (f" = {vocab[256]!r}", "mono")], 14, "end", MUTED)
    _cells(c, 308, after, vocab, {i for i, t in enumerate(after) if t == 256})
    c.text(440, 396, f"{len(ids)} byte ids → {len(after)} tokens: each of the {len(starts)} pairs is now one token.",
           15, "middle")
    c.text(440, 424, [("train_naive", "mono"), (" and ", ""), ("train_fast", "mono"),
                      (" repeat the step on the new sequence: count, merge, until ", ""),
                      ("vocab_size", "mono"), (" tokens", "")], 14, "middle", MUTED)
    again = count_pairs({tuple(after): 1})
    new = max((p for p in again if 256 in p), key=lambda p: (again[p], [-x for x in p]))
    c.text(440, 450, [("Next step, counted again: new pairs appear, such as ", ""),
                      (f"{_show(vocab[new[0]])} {_show(vocab[new[1]])} {new}", "mono"), (f" × {again[new]}", "")],
           14, "middle", MUTED)
    return c

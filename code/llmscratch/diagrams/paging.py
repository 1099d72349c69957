"""A diagram of the paged KV cache: two sequences, their block tables, and where their blocks sit.

The allocation is done by `llmscratch.paging.PagedAllocator` itself (`paged_example`): sequence A
reads a 6-token prompt, B a 3-token one, then A grows by 4 and B by 3, so their blocks interleave
in memory. The picture lays out the tables and slots the allocator returns, and beneath them the
contiguous reservation that would hold the same two sequences.
"""

from __future__ import annotations

from ..paging import PagedAllocator
from .svg import INK, MUTED, PALETTE, Canvas, tint

__all__ = ["BLOCK_SIZE", "MAX_TOKENS", "draw_paged_cache", "paged_example"]

BLOCK_SIZE, NUM_BLOCKS, MAX_TOKENS = 4, 8, 16
COLOURS = {"A": PALETTE["blue"], "B": PALETTE["orange"]}
CELL, GAP = 20, 10


def paged_example() -> PagedAllocator:
    """The allocator after A: 6 tokens, B: 3 tokens, A: +4, B: +3 (tables A [0, 1, 3], B [2, 4]).

    >>> pages = paged_example()
    >>> pages.table("A"), pages.table("B"), pages.wasted_slots
    ([0, 1, 3], [2, 4], 4)
    """
    pages = PagedAllocator(NUM_BLOCKS, BLOCK_SIZE)
    pages.allocate("A", 6)
    pages.allocate("B", 3)
    pages.append("A", 4)
    pages.append("B", 3)
    return pages


def _block(c: Canvas, x: float, y: float, filled: int, colour: str | None, dash: str | None = None) -> None:
    """One block of BLOCK_SIZE slots at (x, y): the first `filled` slots tinted, the rest empty."""
    for s in range(BLOCK_SIZE):
        fill = tint(colour, 0.55) if colour and s < filled else "#ffffff"
        c.rect(x + s * CELL, y, CELL, CELL, fill, colour or MUTED, 1.2, rx=2, dash=dash)


def draw_paged_cache(ident: str, title: str, desc: str) -> Canvas:
    """Logical blocks, block tables, physical blocks, and the contiguous alternative."""
    pages = paged_example()
    c = Canvas(880, 470, ident, title, desc)
    width = BLOCK_SIZE * CELL
    c.text(24, 36, f"Each sequence's tokens in blocks of block_size = {BLOCK_SIZE} slots", 15, weight="bold")
    owner = {}
    for row, seq in enumerate(("A", "B")):
        y = 62 + row * 48
        n = pages.length(seq)
        c.text(24, y + 15, f"sequence {seq}: {n} tokens", 15, fill=INK)
        table = pages.table(seq)
        for i, block in enumerate(table):
            _block(c, 210 + i * (width + GAP), y, min(BLOCK_SIZE, n - i * BLOCK_SIZE), COLOURS[seq])
            owner[block] = (seq, min(BLOCK_SIZE, n - i * BLOCK_SIZE), i)
        c.text(560, y + 15, [(f"table(\"{seq}\") = {table}", "mono")], 15, fill=INK)
    c.text(24, 190, "Physical blocks, where the tables point: slot = block · block_size + offset", 15,
           weight="bold")
    for b in range(NUM_BLOCKS):
        x = 24 + b * (width + GAP)
        c.text(x + width / 2, 218, f"block {b}", 13, "middle", MUTED)
        if b in owner:
            seq, filled, i = owner[b]
            _block(c, x, 226, filled, COLOURS[seq])
            c.text(x + width / 2, 266, f"{seq}, #{i}", 13, "middle", INK)
        else:
            _block(c, x, 226, 0, None, dash="3 3")
            c.text(x + width / 2, 266, "free list", 13, "middle", MUTED)
    c.text(24, 300, f"PagedAllocator: {pages.wasted_slots} empty slots, at most block_size − 1 per sequence, "
           "and only in its last block", 15)
    c.text(24, 346, f"Contiguous: each sequence reserves max_tokens = {MAX_TOKENS} slots", 15, weight="bold")
    waste = 0
    for row, seq in enumerate(("A", "B")):
        y = 362 + row * 40
        n = pages.length(seq)
        waste += MAX_TOKENS - n
        for s in range(MAX_TOKENS):
            used = s < n
            c.rect(24 + s * CELL, y, CELL, CELL, tint(COLOURS[seq], 0.55) if used else "#ffffff",
                   COLOURS[seq] if used else MUTED, 1.2, rx=2, dash=None if used else "3 3")
        c.text(24 + MAX_TOKENS * CELL + 16, y + 15, f"{seq}: {n} used, {MAX_TOKENS - n} reserved and empty", 15)
    c.text(24, 452, f"{waste} empty slots held, against {pages.wasted_slots} paged: the same two sequences", 15,
           fill=MUTED)
    return c

"""A paged KV-cache allocator: the idea behind vLLM's PagedAttention, as bookkeeping.

A server does not know how long an answer will be. Giving each request one contiguous stretch
of cache memory means reserving the most it could ever need (prompt plus the longest answer
allowed), and every slot it does not use is wasted while it runs. Paging cuts the memory into
fixed-size **blocks** of `block_size` token slots and gives a sequence a block only when its
last one is full; a **block table** per sequence maps its positions to wherever its blocks
happen to be, exactly as an operating system's page table maps virtual to physical pages.
Waste is then at most `block_size - 1` slots per sequence, in its last block.

    >>> pages = PagedAllocator(num_blocks=4, block_size=4)
    >>> pages.allocate("a", 6)  # 6 tokens: two blocks, the second half full
    >>> pages.table("a"), pages.slot("a", 5)  # position 5: block 1 (the 2nd taken), offset 1
    ([0, 1], 5)
    >>> pages.append("a", 3)  # 9 tokens now: a third block
    >>> pages.table("a"), pages.num_free, pages.wasted_slots
    ([0, 1, 2], 1, 3)
    >>> pages.free("a")
    >>> pages.num_free
    4

`slot(seq, position)` is the physical index a kernel would write the key and value of that
position to (``block * block_size + offset``). Here nothing is written: the allocator manages
indices only and is not wired into the model's attention, which keeps one contiguous
`llmscratch.kv_cache.KVCache` per batch. A paged kernel gathers each sequence's keys through its
block table; that gather is what PagedAttention adds to attention.

Left out: sharing blocks between sequences with a common prefix (copy-on-write, reference
counts), swapping blocks to CPU memory, and preemption when the blocks run out (we raise
`OutOfBlocks`, and the scheduler in `llmscratch.scheduling` admits requests only when they fit).

References: Kwon et al., "Efficient Memory Management for Large Language Model Serving with
PagedAttention" (SOSP 2023).
"""

from __future__ import annotations

from collections.abc import Hashable

__all__ = ["OutOfBlocks", "PagedAllocator", "blocks_needed"]


class OutOfBlocks(RuntimeError):
    """The allocator has fewer free blocks than a request needs."""


def blocks_needed(tokens: int, block_size: int) -> int:
    """Blocks that hold `tokens` slots: the ceiling of tokens / block_size.

    >>> blocks_needed(9, 4), blocks_needed(8, 4), blocks_needed(0, 4)
    (3, 2, 0)
    """
    return -(-tokens // block_size)


class PagedAllocator:
    """Fixed-size blocks of KV-cache slots, a free list, and a block table per sequence.

    Every method that takes blocks raises `OutOfBlocks` (and changes nothing) if there are too
    few; every method that names a sequence raises `KeyError` for one that is not allocated,
    so a double `free` is an error rather than a block handed out twice.
    """

    def __init__(self, num_blocks: int, block_size: int) -> None:
        for name, value in (("num_blocks", num_blocks), ("block_size", block_size)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        self.num_blocks, self.block_size = num_blocks, block_size
        # A stack: the block freed last is handed out first, as a cache-friendly allocator would.
        self._free = list(range(num_blocks - 1, -1, -1))
        self._tables: dict[Hashable, list[int]] = {}
        self._lengths: dict[Hashable, int] = {}

    @property
    def num_free(self) -> int:
        """Blocks on the free list."""
        return len(self._free)

    @property
    def sequences(self) -> list[Hashable]:
        """The sequences that hold blocks, in the order they were allocated."""
        return list(self._tables)

    @property
    def used_slots(self) -> int:
        """Token slots that hold a token: the sum of the sequences' lengths."""
        return sum(self._lengths.values())

    @property
    def allocated_slots(self) -> int:
        """Token slots in blocks that are handed out."""
        return (self.num_blocks - self.num_free) * self.block_size

    @property
    def wasted_slots(self) -> int:
        """Allocated but empty slots: the unfilled end of each sequence's last block."""
        return self.allocated_slots - self.used_slots

    def can_allocate(self, tokens: int) -> bool:
        """Whether a new sequence of `tokens` tokens would fit now."""
        return blocks_needed(tokens, self.block_size) <= self.num_free

    def allocate(self, seq: Hashable, tokens: int) -> None:
        """Give a new sequence `seq` the blocks for its first `tokens` tokens (its prompt)."""
        if seq in self._tables:
            raise ValueError(f"sequence {seq!r} is already allocated; append to it or free it first")
        if not isinstance(tokens, int) or tokens < 1:
            raise ValueError(f"tokens must be a positive integer, got {tokens!r}")
        self._tables[seq], self._lengths[seq] = [], 0
        try:
            self.append(seq, tokens)
        except OutOfBlocks:
            del self._tables[seq], self._lengths[seq]
            raise

    def append(self, seq: Hashable, tokens: int = 1) -> None:
        """Grow sequence `seq` by `tokens` tokens, taking a block whenever its last one fills up."""
        table = self._table(seq)
        if not isinstance(tokens, int) or tokens < 0:
            raise ValueError(f"tokens must be a non-negative integer, got {tokens!r}")
        length = self._lengths[seq] + tokens
        more = blocks_needed(length, self.block_size) - len(table)
        if more > self.num_free:
            raise OutOfBlocks(f"sequence {seq!r} needs {more} more block(s) of {self.block_size} slots, "
                              f"{self.num_free} free")
        table.extend(self._free.pop() for _ in range(more))
        self._lengths[seq] = length

    def free(self, seq: Hashable) -> None:
        """Return every block of `seq` to the free list; `seq` is forgotten."""
        table = self._table(seq)
        self._free.extend(reversed(table))
        del self._tables[seq], self._lengths[seq]

    def table(self, seq: Hashable) -> list[int]:
        """The block table of `seq`: the physical block of its positions 0..bs-1, bs..2bs-1, ..."""
        return list(self._table(seq))

    def length(self, seq: Hashable) -> int:
        """Tokens stored for `seq`."""
        self._table(seq)
        return self._lengths[seq]

    def slot(self, seq: Hashable, position: int) -> int:
        """The physical slot of `seq`'s token at `position`: ``block * block_size + offset``."""
        table = self._table(seq)
        if not 0 <= position < self._lengths[seq]:
            raise IndexError(f"position {position} outside sequence {seq!r} of length {self._lengths[seq]}")
        block, offset = divmod(position, self.block_size)
        return table[block] * self.block_size + offset

    def _table(self, seq: Hashable) -> list[int]:
        if seq not in self._tables:
            raise KeyError(f"sequence {seq!r} holds no blocks (never allocated, or already freed)")
        return self._tables[seq]

    def __repr__(self) -> str:
        return (f"PagedAllocator({self.num_blocks} blocks of {self.block_size}, {self.num_free} free, "
                f"{len(self._tables)} sequences)")

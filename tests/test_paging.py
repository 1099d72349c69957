"""llmscratch.paging: the paged allocator never hands out a block twice and gets every block back.

A hand-worked example (the docstring's), the errors (over-allocation, double free, unknown
sequences), and random interleavings of allocate / append / free checked against a plain model
of what each sequence should hold.
"""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from llmscratch.paging import OutOfBlocks, PagedAllocator, blocks_needed


def test_the_hand_worked_example():
    """4 blocks of 4 slots. "a" takes 6 tokens: blocks 0 and 1 (2 slots empty). "b" takes 3: block 2.
    "a" grows by 3 to 9 tokens: block 3. Slot of "a" position 8 is block 3, offset 0 = 12."""
    pages = PagedAllocator(num_blocks=4, block_size=4)
    pages.allocate("a", 6)
    pages.allocate("b", 3)
    pages.append("a", 3)
    assert pages.table("a") == [0, 1, 3] and pages.table("b") == [2]
    assert pages.slot("a", 8) == 12 and pages.slot("b", 2) == 10
    assert (pages.used_slots, pages.allocated_slots, pages.wasted_slots, pages.num_free) == (12, 16, 4, 0)
    pages.free("a")
    assert pages.num_free == 3 and pages.sequences == ["b"]


def test_over_allocation_raises_and_changes_nothing():
    pages = PagedAllocator(num_blocks=2, block_size=4)
    pages.allocate("a", 5)
    with pytest.raises(OutOfBlocks, match="needs 1 more"):
        pages.allocate("b", 1)
    assert pages.sequences == ["a"] and pages.num_free == 0
    with pytest.raises(OutOfBlocks):
        pages.append("a", 4)
    assert pages.length("a") == 5  # the failed append stored nothing
    pages.append("a", 3)  # fills the second block exactly
    assert pages.wasted_slots == 0 and not pages.can_allocate(1)


def test_double_free_and_unknown_sequences_are_errors():
    pages = PagedAllocator(num_blocks=2, block_size=2)
    pages.allocate("a", 1)
    pages.free("a")
    with pytest.raises(KeyError, match="already freed"):
        pages.free("a")
    with pytest.raises(KeyError):
        pages.append("nobody")
    pages.allocate("a", 1)
    with pytest.raises(ValueError, match="already allocated"):
        pages.allocate("a", 1)
    with pytest.raises(IndexError):
        pages.slot("a", 1)
    with pytest.raises(ValueError, match="num_blocks"):
        PagedAllocator(0, 4)
    with pytest.raises(ValueError, match="tokens"):
        pages.allocate("c", 0)


@pytest.mark.parametrize("tokens,size,expected", [(0, 4, 0), (1, 4, 1), (4, 4, 1), (5, 4, 2), (16, 16, 1)])
def test_blocks_needed_is_the_ceiling(tokens, size, expected):
    assert blocks_needed(tokens, size) == expected


OPS = st.lists(st.tuples(st.sampled_from(["allocate", "append", "free"]), st.integers(0, 5), st.integers(1, 9)),
               max_size=60)


@given(OPS, st.integers(1, 12), st.integers(1, 5))
def test_random_interleavings_keep_every_block_owned_once(ops, num_blocks, block_size):
    """Whatever the order of operations: no block is in two tables or in a table and the free
    list, every table holds exactly the blocks its length needs, and freeing all returns all."""
    pages = PagedAllocator(num_blocks, block_size)
    lengths: dict[int, int] = {}
    for op, seq, tokens in ops:
        try:
            if op == "allocate":
                pages.allocate(seq, tokens)
                assert seq not in lengths
                lengths[seq] = tokens
            elif op == "append":
                pages.append(seq, tokens)
                lengths[seq] += tokens
            else:
                pages.free(seq)
                del lengths[seq]
        except OutOfBlocks:
            assert blocks_needed(lengths.get(seq, 0) + tokens, block_size) - len(
                pages.table(seq) if seq in lengths else []) > pages.num_free
        except (KeyError, ValueError):
            assert (op == "allocate") == (seq in lengths)  # allocating a live one, or touching a dead one
        owned = [b for s in pages.sequences for b in pages.table(s)]
        assert len(owned) == len(set(owned))  # never handed out twice
        assert len(owned) + pages.num_free == num_blocks and set(owned).isdisjoint(pages._free)
        for s, n in lengths.items():
            assert pages.length(s) == n and len(pages.table(s)) == blocks_needed(n, block_size)
        slots = [pages.slot(s, p) for s in pages.sequences for p in range(pages.length(s))]
        assert len(slots) == len(set(slots))  # two tokens never share a slot
    for s in list(lengths):
        pages.free(s)
    assert pages.num_free == num_blocks and pages.used_slots == 0 and pages.sequences == []

"""Learning byte-pair merges: count adjacent pairs, merge the most frequent one, repeat.

Byte-pair encoding started as a compression scheme (Gage, 1994) and became a way to build a
subword vocabulary (Sennrich et al., 2016). Training sees the text as sequences of byte ids
0..255, one sequence per pre-token, and learns an ordered list of merges; merge number ``r``
creates the new token id ``256 + r``:

    >>> word_counts = {b"hug": 10, b"pug": 5, b"hugs": 5}
    >>> [(bytes(pair), n) for pair, n in count_pairs(word_counts).most_common(2)]
    [(b'ug', 20), (b'hu', 15)]
    >>> train_naive(word_counts, n_merges=2)
    [(117, 103), (104, 256)]

The first merge turns ``u g`` (bytes 117 and 103) into token 256, the second turns ``h`` plus
that new token into ``hug`` (token 257). Ties are broken the same way in both trainers: the
pair with the highest count wins, and among equal counts the smallest pair of ids.

Two trainers learn exactly the same merges:

* `train_naive` recounts every pair after every merge. Short and obviously right; it is the
  reference the tests and the benchmark compare against, and it is slow: every merge costs a
  pass over the whole corpus.
* `train_fast` counts once and then updates only what a merge changes: it keeps, for every
  pair, where it occurs, and a merge touches just those places and their neighbours.

Both work on pre-tokens deduplicated with counts (``{b" the": 5000, ...}``): a word that occurs
5000 times is stored once, and its pairs count 5000 times.

Left out: BPE-dropout and other stochastic variants, minimum-frequency cut-offs, and
parallel training; Hugging Face's Rust `tokenizers` does all three.
"""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence

__all__ = ["count_pairs", "merge", "train_fast", "train_naive"]

Pair = tuple[int, int]


def count_pairs(word_counts: Mapping[Sequence[int], int]) -> Counter[Pair]:
    """How often each adjacent pair of ids occurs, each word weighted by its count.

    >>> count_pairs({(1, 2, 1, 2): 3})
    Counter({(1, 2): 6, (2, 1): 3})
    """
    counts: Counter[Pair] = Counter()
    for word, n in word_counts.items():
        for pair in zip(word, word[1:]):
            counts[pair] += n
    return counts


def merge(ids: Sequence[int], pair: Pair, new_id: int) -> list[int]:
    """Replace every occurrence of `pair` in `ids` by `new_id`, scanning left to right.

    Occurrences never overlap: in ``a a a`` only the first two ``a`` merge.

    >>> merge([5, 5, 5, 7], (5, 5), 256)
    [256, 5, 7]
    """
    out: list[int] = []
    i = 0
    while i < len(ids):
        if i + 1 < len(ids) and ids[i] == pair[0] and ids[i + 1] == pair[1]:
            out.append(new_id)
            i += 2
        else:
            out.append(ids[i])
            i += 1
    return out


def _best(counts: Mapping[Pair, int]) -> Pair:
    """The most frequent pair; among equal counts, the smallest pair of ids."""
    return min(counts, key=lambda pair: (-counts[pair], pair))


def train_naive(
    word_counts: Mapping[Sequence[int], int], n_merges: int
) -> list[Pair]:
    """Learn up to `n_merges` merges by recounting every pair after every merge.

    Stops early when no pair is left (every word is a single token).
    """
    words = {tuple(w): n for w, n in word_counts.items() if n > 0}
    merges: list[Pair] = []
    for r in range(n_merges):
        counts = count_pairs(words)
        if not counts:
            break
        pair = _best(counts)
        merges.append(pair)
        # Merging is one-to-one (X splits back into a b): words stay distinct.
        words = {tuple(merge(w, pair, 256 + r)): n for w, n in words.items()}
    return merges


def train_fast(
    word_counts: Mapping[Sequence[int], int],
    n_merges: int,
    progress: Iterable[object] | None = None,
) -> list[Pair]:
    """Learn the same merges as `train_naive`, updating counts, not recounting.

    Every symbol of every word gets a slot in flat lists, and the slots of a
    word form a doubly linked list (``prev``/``nxt``, -1 at the ends).
    ``where[pair]`` holds the slots at which `pair` starts. Merging ``(a, b)``
    into ``X`` at slot ``i`` (``b`` in slot ``j``) changes only the pairs around
    it: with a left neighbour ``h`` and a right neighbour ``k``, ``(h, a)`` and
    ``(b, k)`` lose the word's count and ``(h, X)`` and ``(X, k)`` gain it. A
    merge costs time in proportion to how often its pair occurs, not to the
    size of the corpus.

    ``where`` may go stale (a slot whose pair has changed stays listed), so a
    slot is checked when it is used. The most frequent pair comes from a heap
    of ``(-count, pair)`` entries, also checked against the live count.

    `progress`, if given, is an iterable of `n_merges` items to step through
    (``tqdm(range(n_merges))``, say), so that a caller can show a progress bar.
    """
    symbol: list[int] = []  # the token in each slot; -1 once merged leftwards
    weight: list[int] = []  # the count of the word the slot belongs to
    prev: list[int] = []
    nxt: list[int] = []
    for w, n in word_counts.items():
        if n <= 0 or not len(w):
            continue
        start = len(symbol)
        symbol.extend(w)
        weight.extend([n] * len(w))
        prev.extend(range(start - 1, start + len(w) - 1))
        nxt.extend(range(start + 1, start + len(w) + 1))
        prev[start] = nxt[-1] = -1  # words do not link to each other

    counts: dict[Pair, int] = {}
    where: dict[Pair, set[int]] = {}
    for i, j in enumerate(nxt):
        if j >= 0:
            pair = (symbol[i], symbol[j])
            counts[pair] = counts.get(pair, 0) + weight[i]
            where.setdefault(pair, set()).add(i)
    heap = [(-n, pair) for pair, n in counts.items()]
    heapq.heapify(heap)

    def add(pair: Pair, slot: int, n: int) -> None:
        counts[pair] = counts.get(pair, 0) + n
        changed.add(pair)
        if n > 0:
            where.setdefault(pair, set()).add(slot)

    merges: list[Pair] = []
    for _ in range(n_merges) if progress is None else progress:
        if len(merges) == n_merges:
            break
        while heap and counts.get(heap[0][1], 0) != -heap[0][0]:
            heapq.heappop(heap)  # stale: the count has changed since the push
        if not heap:
            break  # no pair left anywhere
        a, b = pair = heap[0][1]
        new_id = 256 + len(merges)
        merges.append(pair)
        changed: set[Pair] = set()
        # Sorted slots are in word order: left to right, as `merge` does it.
        for i in sorted(where.pop(pair)):
            j = nxt[i]
            if symbol[i] != a or j < 0 or symbol[j] != b:
                continue  # stale, or taken by an overlapping merge ("a a a")
            n = weight[i]
            h, k = prev[i], nxt[j]
            if h >= 0:
                add((symbol[h], a), h, -n)
                add((symbol[h], new_id), h, n)
            if k >= 0:
                add((b, symbol[k]), j, -n)
                add((new_id, symbol[k]), i, n)
                prev[k] = i
            counts[pair] -= n
            symbol[i], symbol[j] = new_id, -1
            nxt[i] = k
        changed.discard(pair)
        del counts[pair]  # every occurrence is merged: its count is now 0
        for p in changed:
            if counts[p] > 0:
                heapq.heappush(heap, (-counts[p], p))
            else:
                del counts[p]
    return merges

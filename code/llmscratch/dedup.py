"""Exact and near-duplicate removal for instruction data: shingles, MinHash, and LSH banding.

    kept = dedup(texts, threshold=0.8)          # indices of the texts to keep, first of each cluster
    pairs = near_duplicates(texts)              # [(i, j, similarity), ...] with i < j

**Exact duplicates** are texts equal after `normalize` (lowercase, no ASCII punctuation, single
spaces). A set of normalized forms finds them in one pass.

**Near duplicates** are texts whose sets of character k-grams (`shingles`) overlap a lot, measured
by the Jaccard similarity J(A, B) = |A ∩ B| / |A ∪ B|. Comparing every pair is quadratic, so:

- **MinHash** (Broder 1997) turns each set into a short signature. Pick a random hash h and keep
  min h(A). Every element of A ∪ B is equally likely to have the smallest hash, and the minima of
  A and B agree exactly when that element is in A ∩ B, so P[min h(A) = min h(B)] = J(A, B). With
  `num_perm` independent hashes, the fraction of equal positions estimates J with standard error
  √(J(1 − J) / num_perm), at most 0.5 / √num_perm (0.044 at 128). The hashes are
  h(x) = (a·x + b) mod p with p = 2⁶¹ − 1, over a 64-bit BLAKE2b hash of each shingle (not Python's
  `hash`, which is salted per process), so a signature is the same in every process.
- **LSH banding** cuts a signature into `bands` bands of `rows` values and calls two texts
  candidates when any band matches exactly. A pair with Jaccard s agrees on a band with
  probability s^rows, so it becomes a candidate with probability 1 − (1 − s^rows)^bands: an
  S-curve that rises around s ≈ (1/bands)^(1/rows) (`candidate_probability`, `threshold`).
  Only candidates are compared, and the comparison (`verify`) removes the false positives.

`perturb` and `near_duplicate_benchmark` plant near-duplicates with known answers, and
`precision_recall` scores a method against them.

Left out: exact *substring* deduplication with suffix arrays (Lee et al. remove repeated spans of
50+ tokens, not whole documents), semantic deduplication with embeddings (paraphrases share few
shingles), and the streaming and distributed machinery needed at web scale.

References: Broder, "On the resemblance and containment of documents" (1997); Leskovec,
Rajaraman and Ullman, "Mining of Massive Datasets", ch. 3; Lee et al., "Deduplicating Training
Data Makes Language Models Better" (ACL 2022).
"""

from __future__ import annotations

import hashlib
import random
import string
from collections import defaultdict
from collections.abc import Iterable, Sequence
from functools import lru_cache

import numpy as np

__all__ = ["MERSENNE_PRIME", "candidate_probability", "dedup", "estimated_jaccard", "exact_duplicates", "jaccard",
           "lsh_candidates", "minhash_signature", "near_duplicate_benchmark", "near_duplicates", "normalize",
           "perturb", "precision_recall", "shingles", "threshold"]

MERSENNE_PRIME = (1 << 61) - 1  # p = 2^61 - 1: a prime larger than any reduced shingle hash
_P = np.uint64(MERSENNE_PRIME)
_LOW31, _LOW30 = np.uint64((1 << 31) - 1), np.uint64((1 << 30) - 1)
_PUNCTUATION = str.maketrans("", "", string.punctuation)


def normalize(text: str) -> str:
    """Lowercase, delete the 32 ASCII punctuation characters ``!"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~``, and
    collapse every run of whitespace to one space (none at the ends).

    >>> normalize("  Don't   STOP,\\n me-now! ")
    'dont stop menow'

    Punctuation is deleted rather than replaced by a space, so "don't" and "dont" agree; non-ASCII
    punctuation (curly quotes, dashes) is kept.
    """
    return " ".join(text.lower().translate(_PUNCTUATION).split())


def shingles(text: str, k: int = 5) -> set[str]:
    """The set of character k-grams (shingles) of ``normalize(text)``.

    >>> sorted(shingles("Abc, de!", k=3))
    [' de', 'abc', 'bc ', 'c d']

    A text whose normalized form is shorter than k gives one shingle, the form itself (the empty
    string for an empty text), so every text has a non-empty set.
    """
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    t = normalize(text)
    if len(t) <= k:
        return {t}
    return {t[i:i + k] for i in range(len(t) - k + 1)}


def jaccard(a: set, b: set) -> float:
    """|a ∩ b| / |a ∪ b|, and 1.0 for two empty sets (they are the same set).

    >>> jaccard({"ab", "bc", "cd"}, {"bc", "cd", "de"})   # 2 shared of 4
    0.5
    """
    union = len(a | b)
    return 1.0 if union == 0 else len(a & b) / union


def exact_duplicates(texts: Sequence[str]) -> list[int]:
    """Indices of the texts whose normalized form appeared earlier: the ones to drop (the first is kept).

    >>> exact_duplicates(["Hello, world", "another", "hello world!", "HELLO   WORLD"])
    [2, 3]
    """
    seen: set[str] = set()
    drop = []
    for i, text in enumerate(texts):
        t = normalize(text)
        if t in seen:
            drop.append(i)
        seen.add(t)
    return drop


def _hash64(shingle: str) -> int:
    """A stable 64-bit hash: the first 8 bytes of BLAKE2b, the same in every process and on every machine."""
    return int.from_bytes(hashlib.blake2b(shingle.encode("utf-8"), digest_size=8).digest(), "little")


@lru_cache(maxsize=16)
def _coefficients(num_perm: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The (a, b) of each hash, 1 <= a < p and 0 <= b < p, derived from the seed with BLAKE2b (stable everywhere)."""
    a = np.array([1 + _hash64(f"a:{seed}:{i}") % (MERSENNE_PRIME - 1) for i in range(num_perm)], dtype=np.uint64)
    b = np.array([_hash64(f"b:{seed}:{i}") % MERSENNE_PRIME for i in range(num_perm)], dtype=np.uint64)
    a.flags.writeable = b.flags.writeable = False  # cached: nobody may change them
    return a, b


def _mulmod(a: np.ndarray, x: np.ndarray) -> np.ndarray:
    """(a · x) mod p for uint64 arrays with entries below p = 2^61 − 1, exactly, in 64-bit arithmetic.

    The product needs up to 122 bits, so each factor is split into 31-bit halves:
    a·x = a_hi·x_hi·2^62 + mid·2^31 + a_lo·x_lo with mid = a_hi·x_lo + a_lo·x_hi, and since
    2^61 ≡ 1 (mod p), 2^62 ≡ 2 and mid·2^31 ≡ (mid >> 30) + (mid mod 2^30)·2^31. Every term
    stays below 2^62 and their sum below 2^64.
    """
    a_hi, a_lo = a >> np.uint64(31), a & _LOW31
    x_hi, x_lo = x >> np.uint64(31), x & _LOW31
    mid = a_hi * x_lo + a_lo * x_hi
    total = (a_hi * x_hi << np.uint64(1)) + (mid >> np.uint64(30)) + ((mid & _LOW30) << np.uint64(31)) + a_lo * x_lo
    return total % _P


def minhash_signature(shingle_set: Iterable[str], num_perm: int = 128, seed: int = 0) -> np.ndarray:
    """The MinHash signature of a set of shingles: (num_perm,) uint64, entry i = min over x of (a_i·x + b_i) mod p.

    >>> sig = minhash_signature(shingles("the cat sat on the mat"), num_perm=64)
    >>> sig.shape, sig.dtype.name, bool((sig < MERSENNE_PRIME).all())
    ((64,), 'uint64', True)
    >>> estimated_jaccard(sig, minhash_signature(shingles("The cat sat on the mat."), num_perm=64))
    1.0

    x is the shingle's 64-bit BLAKE2b hash reduced mod p; the same set, `num_perm` and `seed` give the
    same signature in any process.
    """
    if num_perm < 1:
        raise ValueError(f"num_perm must be at least 1, got {num_perm}")
    xs = np.array([_hash64(s) for s in set(shingle_set)], dtype=np.uint64) % _P  # (S,)
    if xs.size == 0:
        raise ValueError("cannot MinHash an empty set of shingles: its minimum is undefined")
    a, b = _coefficients(num_perm, seed)
    hashed = (_mulmod(a[:, None], xs[None, :]) + b[:, None]) % _P  # (num_perm, S)
    return hashed.min(axis=1)


def estimated_jaccard(sig_a: np.ndarray, sig_b: np.ndarray) -> float:
    """The fraction of positions where two MinHash signatures agree: an unbiased estimate of their sets' Jaccard.

    >>> estimated_jaccard(np.array([1, 2, 3, 4]), np.array([1, 2, 0, 4]))
    0.75
    """
    sig_a, sig_b = np.asarray(sig_a), np.asarray(sig_b)
    if sig_a.ndim != 1 or sig_a.shape != sig_b.shape or sig_a.size == 0:
        raise ValueError(f"signatures must be non-empty and of the same length, got shapes {sig_a.shape} "
                         f"and {sig_b.shape} (were they made with different num_perm?)")
    return float(np.mean(sig_a == sig_b))


def candidate_probability(s: float, bands: int, rows: int) -> float:
    """The chance that a pair with Jaccard s shares at least one band: 1 − (1 − s^rows)^bands.

    >>> candidate_probability(0.5, bands=2, rows=2)   # a band agrees w.p. 0.25; 1 − 0.75² = 0.4375
    0.4375
    """
    _check_bands(bands, rows)
    if not 0.0 <= s <= 1.0:
        raise ValueError(f"s is a Jaccard similarity and must lie in [0, 1], got {s}")
    return 1.0 - (1.0 - s**rows) ** bands


def threshold(bands: int, rows: int) -> float:
    """Roughly where the S-curve rises fastest: (1/bands)^(1/rows).

    >>> round(threshold(bands=32, rows=4), 3)   # the defaults of near_duplicates
    0.42
    """
    _check_bands(bands, rows)
    return (1.0 / bands) ** (1.0 / rows)


def _check_bands(bands: int, rows: int) -> None:
    if bands < 1 or rows < 1:
        raise ValueError(f"bands and rows must be at least 1, got bands={bands}, rows={rows}")


def lsh_candidates(signatures: Sequence[np.ndarray] | np.ndarray, bands: int, rows: int) -> set[tuple[int, int]]:
    """The pairs (i, j), i < j, whose signatures agree on every row of at least one band.

    >>> sigs = np.array([[1, 2, 3, 4], [1, 2, 9, 9], [7, 7, 3, 4], [8, 8, 8, 8]])
    >>> sorted(lsh_candidates(sigs, bands=2, rows=2))   # 0~1 on band 0, 0~2 on band 1
    [(0, 1), (0, 2)]

    Each band is a hash table from its `rows` values to the texts that have them; a bucket of m
    texts gives m(m − 1)/2 pairs.
    """
    _check_bands(bands, rows)
    if len(signatures) == 0:
        return set()
    lengths = {len(s) for s in signatures}
    if len(lengths) > 1:
        raise ValueError(f"signatures have different lengths {sorted(lengths)}: make them with one num_perm")
    sigs = np.asarray(signatures)  # (n, num_perm)
    if bands * rows != sigs.shape[1]:
        raise ValueError(f"bands * rows must equal num_perm: {bands} * {rows} = {bands * rows}, "
                         f"but the signatures have {sigs.shape[1]} values")
    pairs = set()
    for band in range(bands):
        buckets = defaultdict(list)
        for i, sig in enumerate(sigs):
            buckets[sig[band * rows:(band + 1) * rows].tobytes()].append(i)
        for members in buckets.values():
            pairs.update((i, j) for n, i in enumerate(members) for j in members[n + 1:])
    return pairs


def near_duplicates(texts: Sequence[str], threshold: float = 0.8, num_perm: int = 128, bands: int = 32,
                    rows: int = 4, k: int = 5, seed: int = 0, verify: str = "estimate") -> list[tuple[int, int, float]]:
    """The pairs (i, j, similarity), i < j, sorted, of LSH candidates whose similarity is at least `threshold`.

    >>> texts = ["the quick brown fox jumps over the lazy dog", "the quick brown fox jumped over the lazy dog",
    ...          "an entirely different sentence"]
    >>> near_duplicates(texts, threshold=0.6, verify="exact")   # 34 shared 5-grams of 45
    [(0, 1, 0.7555555555555555)]

    `verify="estimate"` (the default) compares the MinHash signatures (fast, standard error
    ≤ 0.5/√num_perm); `verify="exact"` computes the Jaccard of the shingle sets. Either way a pair
    LSH never proposes is missed: with the defaults a pair at Jaccard 0.8 is proposed with
    probability 1 − (1 − 0.8⁴)³² ≈ 1 − 5·10⁻⁸. Exact duplicates are reported too (similarity 1).
    """
    if not 0.0 <= threshold <= 1.0:
        raise ValueError(f"threshold must lie in [0, 1], got {threshold}")
    if verify not in ("exact", "estimate"):
        raise ValueError(f"verify must be 'exact' or 'estimate', got {verify!r}")
    _check_bands(bands, rows)
    if bands * rows != num_perm:
        raise ValueError(f"bands * rows must equal num_perm: {bands} * {rows} = {bands * rows} != {num_perm}")
    sets = [shingles(t, k) for t in texts]
    sigs = [minhash_signature(s, num_perm, seed) for s in sets]
    found = []
    for i, j in sorted(lsh_candidates(sigs, bands, rows)):
        sim = jaccard(sets[i], sets[j]) if verify == "exact" else estimated_jaccard(sigs[i], sigs[j])
        if sim >= threshold:
            found.append((i, j, sim))
    return found


def dedup(texts: Sequence[str], threshold: float = 0.8, num_perm: int = 128, bands: int = 32, rows: int = 4,
          k: int = 5, seed: int = 0, verify: str = "estimate") -> list[int]:
    """The indices of the texts to keep, in order: exact duplicates go first, then near-duplicates.

    >>> dedup(["The cat sat on the mat all day.", "the cat sat on the mat all day", "A cat sat on the mat all day.",
    ...        "Dogs bark."])   # 1 is an exact duplicate of 0, and 2 a near one (Jaccard 23/27)
    [0, 3]

    A text is dropped when it is a near-duplicate of a text already kept (an earlier one). This is
    greedy, not connected components: in a chain a ~ b ~ c with a and c dissimilar, b goes and c stays.
    The arguments are those of `near_duplicates`.
    """
    exact = set(exact_duplicates(texts))
    survivors = [i for i in range(len(texts)) if i not in exact]
    pairs = near_duplicates([texts[i] for i in survivors], threshold, num_perm, bands, rows, k, seed, verify)
    similar_to_earlier = defaultdict(list)
    for i, j, _ in pairs:
        similar_to_earlier[j].append(i)
    kept: set[int] = set()  # positions among the survivors
    for j in range(len(survivors)):
        if kept.isdisjoint(similar_to_earlier[j]):
            kept.add(j)
    return [survivors[j] for j in sorted(kept)]


def perturb(text: str, rng: random.Random, edits: int) -> str:
    """`text` after `edits` random small edits, each one of: swap two adjacent words, delete a word,
    change one letter, duplicate a word, or change a word's case or trailing punctuation.

    >>> s = "the cat sat on the mat"
    >>> perturb(s, random.Random(0), edits=0) == s, perturb(s, random.Random(0), edits=2) != s
    (True, True)

    Words are split on whitespace and joined with single spaces. A case or punctuation edit is
    invisible after `normalize`, so a copy can be an exact duplicate, which a deduplicator should catch too.
    """
    if edits < 0:
        raise ValueError(f"edits must be at least 0, got {edits}")
    words = text.split()
    if edits and not words:
        raise ValueError("cannot edit a text with no words")
    for _ in range(edits):
        n = len(words)
        ops = ["letter", "duplicate", "case"] + (["swap", "delete"] if n >= 2 else [])
        op = rng.choice(ops)
        i = rng.randrange(n - 1 if op == "swap" else n)
        if op == "swap":
            words[i], words[i + 1] = words[i + 1], words[i]
        elif op == "delete":
            del words[i]
        elif op == "duplicate":
            words.insert(i, words[i])
        elif op == "letter":
            pos = rng.randrange(len(words[i]))
            new = rng.choice([c for c in string.ascii_lowercase if c != words[i][pos].lower()])
            words[i] = words[i][:pos] + new + words[i][pos + 1:]
        elif rng.random() < 0.5:  # "case"
            words[i] = words[i].swapcase()
        elif len(words[i]) > 1 and words[i][-1] in string.punctuation:  # "case" on punctuation: drop a mark
            words[i] = words[i][:-1]
        else:  # or add one
            words[i] += rng.choice(",.!?;")
    return " ".join(words)


def near_duplicate_benchmark(texts: Sequence[str], n_pairs: int, edits: int,
                             seed: int = 0) -> tuple[list[str], set[tuple[int, int]]]:
    """`texts` plus perturbed copies of `n_pairs` of them (distinct, chosen at random), and the pairs
    (original index, copy index) that a near-duplicate detector should find.

    >>> texts, true_pairs = near_duplicate_benchmark(["a b c", "d e f", "g h i"], n_pairs=2, edits=1, seed=0)
    >>> len(texts), len(true_pairs), all(i < 3 <= j for i, j in true_pairs)
    (5, 2, True)

    The originals should be distinct: the ground truth knows only the planted pairs.
    """
    if not 0 <= n_pairs <= len(texts):
        raise ValueError(f"n_pairs must lie between 0 and the number of texts ({len(texts)}), got {n_pairs}")
    rng = random.Random(seed)
    out = list(texts)
    true_pairs = set()
    for i in rng.sample(range(len(texts)), n_pairs):
        true_pairs.add((i, len(out)))
        out.append(perturb(texts[i], rng, edits))
    return out, true_pairs


def precision_recall(found_pairs: Iterable[tuple], true_pairs: Iterable[tuple[int, int]]) -> tuple[float, float]:
    """(precision, recall) of found pairs against the true ones; (i, j) and (j, i) are the same pair.

    >>> precision_recall([(0, 5, 0.9), (1, 2, 0.8)], {(0, 5), (3, 6)})   # 1 right of 2 found, 1 of 2 true
    (0.5, 0.5)

    `found_pairs` may be (i, j) or the (i, j, similarity) of `near_duplicates`. Precision is measured
    against the constructed pairs only: a pair of two originals that happen to be similar counts as
    a false positive. With nothing found, precision is 1.0; with nothing to find, recall is 1.0.
    """
    found = {(min(p[0], p[1]), max(p[0], p[1])) for p in found_pairs}
    true = {(min(i, j), max(i, j)) for i, j in true_pairs}
    hits = len(found & true)
    return (hits / len(found) if found else 1.0), (hits / len(true) if true else 1.0)

"""Checkers for tokens: BPE merges, embeddings, and measuring loss in bits per character.

Each checker runs the learner's function next to the package's own implementation
(`llmscratch.bpe.train`, `llmscratch.checks.embed_ids`, `llmscratch.evaluation`) and raises
`ExerciseError` on the first case that disagrees.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch

from ..bpe.train import count_pairs, merge
from ..checks import embed_ids
from ..evaluation import bits_per_char, token_nlls
from ..mlp import MLPConfig, MLPLanguageModel
from .core import ExerciseError, call_learner, expect_tensor, passed

__all__ = ["check_bits_per_char", "check_bpe_merge", "check_cosine_matrix", "check_embedding_lookup",
           "check_pair_counts"]

Pair = tuple[int, int]


def _random_ids(g: torch.Generator, n: int, high: int) -> list[int]:
    return torch.randint(0, high, (n,), generator=g).tolist()


def _short(ids: Sequence[int], n: int = 8) -> str:
    ids = list(ids)
    return str(ids) if len(ids) <= n else f"[{', '.join(map(str, ids[:n]))}, ...] ({len(ids)} ids)"


def check_bpe_merge(fn: Callable[[list[int], Pair, int], list[int]]) -> None:
    """Check ``fn(ids, pair, new_id) -> new list`` against `llmscratch.bpe.train.merge`.

    Scan `ids` left to right; wherever ``pair[0]`` is followed by ``pair[1]``, write `new_id`
    and skip both; copy every other id. Occurrences never overlap: ``[5, 5, 5]`` with the pair
    ``(5, 5)`` becomes ``[new_id, 5]``. `fn` returns a new list and leaves `ids` unchanged.
    """
    g = torch.Generator().manual_seed(0)
    cases: list[tuple[str, list[int], Pair]] = [
        ("a pair in the middle", [1, 2, 3, 4], (2, 3)),
        ("a pair that occurs twice", [1, 2, 9, 1, 2], (1, 2)),
        ("a pair at the very end", [7, 8, 1, 2], (1, 2)),
        ("a pair at the very start", [1, 2, 7, 8], (1, 2)),
        ("three equal ids, overlapping occurrences", [5, 5, 5], (5, 5)),
        ("four equal ids", [5, 5, 5, 5], (5, 5)),
        ("an id equal to the pair's second half after a match", [1, 2, 2, 1, 2], (1, 2)),
        ("the pair reversed is not the pair", [2, 1, 2, 1], (1, 2)),
        ("no occurrence", [3, 4, 5], (4, 3)),
        ("a single id", [1], (1, 2)),
        ("an empty list", [], (1, 2)),
    ]
    for n in (20, 50):
        ids = _random_ids(g, n, 4)  # a small alphabet, so pairs repeat and overlap
        cases.append((f"random ids (length {n})", ids, (ids[0], ids[1])))
    for name, ids, pair in cases:
        new_id = 256
        original = list(ids)
        want = merge(ids, pair, new_id)
        where = f"{name}: merge {pair} -> {new_id} in {_short(original)}"
        got = call_learner(where, fn, ids, pair, new_id)
        if ids != original:
            raise ExerciseError(f"{where}: your function changed the input list; build a new one instead")
        if not isinstance(got, (list, tuple)):
            raise ExerciseError(f"{where}: expected a list, got {type(got).__name__}")
        got = [int(i) for i in got]
        if got != want:
            n_got, n_want = got.count(new_id), want.count(new_id)
            if len(got) < len(want) and n_got == n_want:
                hint = "is the last id copied when it is not part of a match?"
            elif n_got > n_want:
                hint = "can an id that was already merged start another match? After a match, skip both ids"
            elif n_got < n_want:
                hint = "are all occurrences replaced, left to right?"
            else:
                j = next(k for k, (a, b) in enumerate(zip(got, want)) if a != b)
                hint = f"position {j}: expected {want[j]}, got {got[j]}; are the other ids copied unchanged?"
            raise ExerciseError(f"{where}: expected {_short(want)}, got {_short(got)} ({hint})")
    passed("check_bpe_merge", len(cases))


def check_pair_counts(fn: Callable[[list[int]], dict[Pair, int]]) -> None:
    """Check ``fn(ids) -> {(a, b): count}`` against `llmscratch.bpe.train.count_pairs`.

    Every adjacent pair ``(ids[i], ids[i + 1])`` counts once, overlapping ones included: in
    ``[5, 5, 5]`` the pair ``(5, 5)`` occurs twice. Pairs that never occur may be left out (or
    given count 0); a list shorter than two ids has no pairs.
    """
    g = torch.Generator().manual_seed(1)
    cases: list[tuple[str, list[int]]] = [
        ("ordinary ids", [1, 2, 3, 1, 2]),
        ("three equal ids (overlapping pairs)", [5, 5, 5]),
        ("a pair that occurs only at the end", [1, 2, 3, 4, 9, 9]),
        ("two ids", [7, 8]),
        ("a single id", [4]),
        ("an empty list", []),
        ("random ids (length 40)", _random_ids(g, 40, 5)),
        ("random ids (length 301)", _random_ids(g, 301, 30)),
    ]
    for name, ids in cases:
        original = list(ids)
        want = dict(count_pairs({tuple(ids): 1}))
        where = f"{name} {_short(original)}"
        got = call_learner(where, fn, ids)
        if ids != original:
            raise ExerciseError(f"{where}: your function changed the input list")
        if not hasattr(got, "items"):
            raise ExerciseError(f"{where}: expected a dict of pair -> count, got {type(got).__name__}")
        got = {tuple(k): int(v) for k, v in got.items() if v}
        if got == want:
            continue
        short = [p for p in want if got.get(p, 0) < want[p]]
        if short:
            p = short[0]
            found = f"you counted {got[p]}" if p in got else "it is missing from your counts"
            hint = ("does your loop reach the last pair?" if got == dict(count_pairs({tuple(ids[:-1]): 1}))
                    else "every adjacent pair counts, overlapping ones too: does your loop move one id at a time?")
            raise ExerciseError(f"{where}: pair {p} occurs {want[p]} time(s), {found} ({hint})")
        p = next(p for p in got if got[p] > want.get(p, 0))
        raise ExerciseError(f"{where}: pair {p} occurs {want.get(p, 0)} time(s), you counted {got[p]} "
                            "(are you pairing each id with the one right after it?)")
    passed("check_pair_counts", len(cases))


def check_embedding_lookup(fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> None:
    """Check ``fn(ids, table) -> vectors`` against the package's lookup (`llmscratch.checks.embed_ids`).

    `table` is (V, E); `ids` holds integer ids in 0..V-1 of any shape; the result has shape
    ``ids.shape + (E,)`` and holds row ``ids[...]`` of `table` at each position. The exercise asks
    for it as a matrix product, one-hot vectors of length V times the table.
    """
    g = torch.Generator().manual_seed(2)
    V, E = 11, 4
    table = torch.randn(V, E, generator=g, dtype=torch.float64)
    cases = [
        ("one id", torch.tensor([3])),
        ("a list of ids", torch.tensor([0, 4, 4, 10])),
        ("ids that never reach the last row", torch.tensor([1, 2, 0])),
        ("a (B, T) batch", torch.randint(0, V, (3, 5), generator=g)),
        ("a (B, T) batch with the first and last id", torch.tensor([[0, V - 1], [V - 1, 0]])),
        ("no ids at all", torch.zeros(0, dtype=torch.long)),
    ]
    for name, ids in cases:
        want = embed_ids(table, ids)
        where = f"{name}, ids of shape {tuple(ids.shape)}, table ({V}, {E})"
        got = call_learner(where, fn, ids.clone(), table.clone())
        if isinstance(got, torch.Tensor) and got.shape != want.shape:
            raise ExerciseError(f"{where}: expected shape {tuple(want.shape)}, got {tuple(got.shape)} "
                                "(one vector per id, in the ids' own layout: ids.shape + (E,))")
        expect_tensor(where, got, want, atol=1e-6, rtol=1e-6, hint="is row i of the table the vector of token i?")
    passed("check_embedding_lookup", len(cases))


def check_cosine_matrix(fn: Callable[[torch.Tensor], torch.Tensor]) -> None:
    """Check ``fn(table) -> (V, V)`` cosine similarities between the rows of a (V, E) table.

    Entry ``[i, j]`` is the cosine of the angle between rows i and j: their dot product over the
    product of their lengths, so the diagonal is 1 and a row's length does not matter. The
    reference is `torch.nn.functional.cosine_similarity`, row against row.
    """
    g = torch.Generator().manual_seed(3)
    cases = [
        ("two orthogonal rows", torch.tensor([[1.0, 0.0], [0.0, 3.0]])),
        ("a row and twice itself", torch.tensor([[1.0, 2.0, 2.0], [2.0, 4.0, 4.0], [-1.0, 0.0, 1.0]])),
        ("random rows of very different lengths", torch.randn(6, 4, generator=g) * torch.tensor([[0.1], [1], [10],
                                                                                               [1], [5], [0.5]])),
        ("a tall table (V > E)", torch.randn(9, 3, generator=g)),
        ("a wide table (V < E)", torch.randn(3, 9, generator=g)),
    ]
    for name, table in cases:
        t = table.double()
        want = torch.nn.functional.cosine_similarity(t.unsqueeze(1), t.unsqueeze(0), dim=-1)  # (V, V)
        where = f"{name}, table of shape {tuple(table.shape)}"
        got = call_learner(where, fn, table.clone())
        expect_tensor(where, got, want, atol=1e-5, rtol=1e-4,
                      hint="is each row divided by its own length, along the embedding dimension?")
    passed("check_cosine_matrix", len(cases))


def check_bits_per_char(fn: Callable[[torch.Tensor, int], float]) -> None:
    """Check ``fn(nlls, n_chars) -> bits per character`` against `llmscratch.evaluation.bits_per_char`.

    `nlls` holds the loss in nats of every token of a text (from `token_nlls`), and the text is
    `n_chars` characters long. The answer is the total in bits over the characters:
    ``nlls.sum() / ln 2 / n_chars``, that is, nats per token times tokens, over characters, over ln 2.
    """
    g = torch.Generator().manual_seed(4)
    cases = [(8, 2, 12, 12), (8, 3, 40, 97), (50, 4, 200, 731), (5, 1, 1, 3)]
    for vocab, T, n_tokens, n_chars in cases:
        torch.manual_seed(vocab + n_tokens)
        model = MLPLanguageModel(MLPConfig(vocab_size=vocab, context_length=T, embedding_dim=4, hidden_dim=8))
        ids = torch.randint(0, vocab, (n_tokens,), generator=g)
        context = torch.randint(0, vocab, (T,), generator=g)
        nlls = token_nlls(model, ids, context)
        want = bits_per_char(model, ids, n_chars, context)
        where = f"{n_tokens} tokens of a {n_chars}-character text (mean loss {float(nlls.mean()):.4f} nats per token)"
        got = call_learner(where, fn, nlls.clone(), n_chars)
        if isinstance(got, torch.Tensor) and got.numel() == 1:
            got = float(got)
        if not isinstance(got, (int, float)):
            raise ExerciseError(f"{where}: expected a number, got {type(got).__name__}")
        if not math.isclose(got, want, rel_tol=1e-5):
            ratio = got / want
            if math.isclose(ratio, math.log(2), rel_tol=1e-3):
                hint = "that is nats, not bits: how many nats make one bit?"
            elif math.isclose(ratio, n_chars / n_tokens, rel_tol=1e-3) and n_chars != n_tokens:
                hint = "that is per token: what do you divide the total by?"
            elif math.isclose(ratio, math.log(2) / math.log(10), rel_tol=1e-3):
                hint = "which logarithm turns nats into bits?"
            else:
                hint = "is it the total over every token, divided by the number of characters?"
            raise ExerciseError(f"{where}: expected {want:.6g} bits per character, got {got:.6g} ({hint})")
    passed("check_bits_per_char", len(cases))

"""llmscratch.exercises.tokens: each checker passes the package's answer and rejects plausible wrong ones."""

import math

import pytest
import torch.nn.functional as F

from llmscratch.bpe.train import count_pairs, merge
from llmscratch.exercises import (
    ExerciseError,
    check_bits_per_char,
    check_bpe_merge,
    check_cosine_matrix,
    check_embedding_lookup,
    check_pair_counts,
)


def test_the_merge_checker_passes_the_package(capsys):
    check_bpe_merge(merge)
    assert "check_bpe_merge: all" in capsys.readouterr().out


def merge_overlapping(ids, pair, new_id):
    """Advances one id after a match, so the second id of a pair is reused: 5 5 5 -> X X."""
    out = []
    for i in range(len(ids)):
        if i + 1 < len(ids) and (ids[i], ids[i + 1]) == pair:
            out.append(new_id)
        elif not (i > 0 and (ids[i - 1], ids[i]) == pair):
            out.append(ids[i])
    return out


def merge_drops_last(ids, pair, new_id):
    """Loops over range(len(ids) - 1), so a last id that is not part of a match is lost."""
    out, i = [], 0
    while i < len(ids) - 1:
        if (ids[i], ids[i + 1]) == pair:
            out.append(new_id)
            i += 2
        else:
            out.append(ids[i])
            i += 1
    return out


def merge_first_only(ids, pair, new_id):
    """Replaces only the first occurrence."""
    for i in range(len(ids) - 1):
        if (ids[i], ids[i + 1]) == pair:
            return ids[:i] + [new_id] + ids[i + 2:]
    return list(ids)


def merge_in_place(ids, pair, new_id):
    out = merge(ids, pair, new_id)
    ids[:] = out
    return ids


@pytest.mark.parametrize("wrong, message", [
    (merge_overlapping, r"\[5, 5, 5\]: expected \[256, 5\], got \[256, 256\].*already merged start another"),
    (merge_drops_last, r"is the last id copied"),
    (merge_first_only, r"a pair that occurs twice.*got \[256, 9, 1, 2\].*are all occurrences replaced"),
    (merge_in_place, r"changed the input list"),
])
def test_the_merge_checker_rejects_plausible_mistakes(wrong, message):
    with pytest.raises(ExerciseError, match=message):
        check_bpe_merge(wrong)


def package_pair_counts(ids):
    return count_pairs({tuple(ids): 1})


def test_the_pair_counter_checker_passes_the_package(capsys):
    check_pair_counts(package_pair_counts)
    assert "all 8 cases" in capsys.readouterr().out


def test_the_pair_counter_checker_rejects_plausible_mistakes():
    def stepping_by_two(ids):  # counts only non-overlapping pairs
        counts = {}
        for i in range(0, len(ids) - 1, 2):
            counts[ids[i], ids[i + 1]] = counts.get((ids[i], ids[i + 1]), 0) + 1
        return counts

    def misses_the_last_pair(ids):  # range(len(ids) - 2)
        counts = {}
        for i in range(len(ids) - 2):
            counts[ids[i], ids[i + 1]] = counts.get((ids[i], ids[i + 1]), 0) + 1
        return counts

    def pairs_with_the_next_but_one(ids):  # zip(ids, ids[2:]) instead of zip(ids, ids[1:])
        counts = {}
        for pair in zip(ids, ids[2:]):
            counts[pair] = counts.get(pair, 0) + 1
        return counts

    with pytest.raises(ExerciseError, match=r"pair \(1, 2\) occurs 2 time\(s\), you counted 1 .*one id at a time"):
        check_pair_counts(stepping_by_two)
    with pytest.raises(ExerciseError, match=r"pair \(1, 2\) occurs 2 time\(s\), you counted 1.*reach the last pair"):
        check_pair_counts(misses_the_last_pair)
    with pytest.raises(ExerciseError, match=r"ordinary ids.*is missing from your counts"):
        check_pair_counts(pairs_with_the_next_but_one)


def test_the_embedding_lookup_checker():
    check_embedding_lookup(lambda ids, table: F.one_hot(ids, table.shape[0]).to(table.dtype) @ table)
    check_embedding_lookup(lambda ids, table: table[ids])

    def one_hot_of_default_length(ids, table):
        return F.one_hot(ids).to(table.dtype) @ table  # fails where ids never reach the last row

    with pytest.raises(ExerciseError, match=r"one id.*expected .* got"):
        check_embedding_lookup(lambda ids, table: table.T[ids % table.shape[1]])
    with pytest.raises(ExerciseError, match=r"one id, ids of shape \(1,\).*raised RuntimeError: mat1 and mat2"):
        check_embedding_lookup(one_hot_of_default_length)
    with pytest.raises(ExerciseError, match=r"expected shape \(3, 5, 4\), got \(5, 3, 4\).*one vector per id"):
        check_embedding_lookup(lambda ids, table: table[ids.T] if ids.ndim == 2 and len(set(ids.shape)) > 1
                               else table[ids])  # transposed batch
    with pytest.raises(ExerciseError, match=r"expected a tensor"):
        check_embedding_lookup(lambda ids, table: table[ids].tolist())


def test_the_cosine_checker():
    check_cosine_matrix(lambda t: F.normalize(t, dim=1) @ F.normalize(t, dim=1).T)
    with pytest.raises(ExerciseError, match=r"divided by its own length"):
        check_cosine_matrix(lambda t: F.normalize(t, dim=0) @ F.normalize(t, dim=0).T)  # the wrong dimension
    with pytest.raises(ExerciseError, match=r"divided by its own length"):
        check_cosine_matrix(lambda t: t @ t.T)  # dot products, not cosines


def test_the_bits_per_char_checker():
    check_bits_per_char(lambda nlls, n_chars: float(nlls.double().sum()) / math.log(2) / n_chars)
    check_bits_per_char(lambda nlls, n_chars: nlls.double().sum() / math.log(2) / n_chars)  # a 0-d tensor is fine
    with pytest.raises(ExerciseError, match=r"nats, not bits"):
        check_bits_per_char(lambda nlls, n_chars: float(nlls.sum()) / n_chars)
    with pytest.raises(ExerciseError, match=r"that is per token"):
        check_bits_per_char(lambda nlls, n_chars: float(nlls.mean()) / math.log(2))
    with pytest.raises(ExerciseError, match=r"which logarithm"):
        check_bits_per_char(lambda nlls, n_chars: float(nlls.sum()) / math.log(10) / n_chars)
    with pytest.raises(ExerciseError, match=r"expected a number"):
        check_bits_per_char(lambda nlls, n_chars: None)


def test_the_checkers_are_exported_and_documented():
    import llmscratch.exercises as ex
    from llmscratch.exercises import tokens

    for name in tokens.__all__:
        assert name in ex.__all__ and getattr(ex, name).__doc__

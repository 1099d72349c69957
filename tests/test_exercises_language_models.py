"""The Part 1 checkers accept the package's own functions and reject the slips learners make."""

import pytest
import torch
import torch.nn.functional as F

from llmscratch import CountingBigram, get_batch, name_windows
from llmscratch.exercises import (
    ExerciseError,
    check_bigram_counts,
    check_context_windows,
    check_cross_entropy,
    check_get_batch,
)


def counts_with(seqs, V, boundary, *, start=True, end=True, transpose=False, boundary_id=None):
    b = boundary if boundary_id is None else boundary_id
    N = torch.zeros(V, V, dtype=torch.long)
    for s in seqs:
        wrapped = ([b] if start else []) + list(s) + ([b] if end else [])
        for i, j in zip(wrapped, wrapped[1:]):
            N[j, i] += 1 if transpose else 0
            N[i, j] += 0 if transpose else 1
    return N


def test_the_package_passes_every_checker(capsys):
    check_bigram_counts(lambda seqs, V, b: CountingBigram.fit(seqs, vocab_size=V, boundary_id=b).counts)
    check_cross_entropy(F.cross_entropy)
    check_context_windows(name_windows)
    check_get_batch(lambda data, T, B, g: get_batch(data, T, B, g, every_position=True))
    assert capsys.readouterr().out.count("✓") == 4


def test_a_from_scratch_count_table_passes(capsys):
    check_bigram_counts(counts_with)
    assert "check_bigram_counts: all 6 cases" in capsys.readouterr().out


@pytest.mark.parametrize(
    "wrong, message",
    [
        (lambda s, V, b: counts_with(s, V, b, start=False), r"counted \d+ pairs, expected \d+ .*boundary token before"),
        (lambda s, V, b: counts_with(s, V, b, end=False), r"counted \d+ pairs, expected"),
        (lambda s, V, b: counts_with(s, V, b, transpose=True), "transpose"),
        (lambda s, V, b: counts_with(s, V, b, boundary_id=0), r"boundary id 4.*row i should count"),
    ],
    ids=["no start token", "no end token", "transposed", "boundary hard-coded as 0"],
)
def test_the_count_checker_rejects_plausible_mistakes(wrong, message):
    with pytest.raises(ExerciseError, match=message):
        check_bigram_counts(wrong)


def stable_ce(logits, targets):
    shifted = logits - logits.max(dim=1, keepdim=True).values  # (B, V)
    logp = shifted - shifted.exp().sum(dim=1, keepdim=True).log()
    return -logp[torch.arange(len(targets)), targets].mean()


def test_a_from_scratch_stable_cross_entropy_passes(capsys):
    check_cross_entropy(stable_ce)
    assert "all 6 cases" in capsys.readouterr().out


@pytest.mark.parametrize(
    "wrong, message",
    [
        # exp of logits near 1000 overflows
        (lambda x, y: -(x.exp() / x.exp().sum(1, keepdim=True))[torch.arange(len(y)), y].log().mean(),
         "exp.*overflow|subtract"),
        # a stable softmax, but log of a probability that rounds to 0
        (lambda x, y: -torch.softmax(x, dim=1)[torch.arange(len(y)), y].log().mean(), "log\\(p\\)"),
        (lambda x, y: -torch.log_softmax(x, dim=1)[torch.arange(len(y)), y].sum(), "times too large.*mean"),
        (lambda x, y: -torch.log_softmax(x, dim=0)[torch.arange(len(y)), y].mean(), "each row"),
        (lambda x, y: torch.tensor(F.cross_entropy(x, y).item()), "no gradient can flow"),
        (lambda x, y: F.cross_entropy(x, y).item(), "expected a tensor"),
    ],
    ids=["naive exp", "log of softmax", "sum not mean", "softmax over the batch", "detached", "a float"],
)
def test_the_cross_entropy_checker_rejects_plausible_mistakes(wrong, message):
    with pytest.raises(ExerciseError, match=message):
        check_cross_entropy(wrong)


def windows_with(seqs, T, boundary, *, reset=True, end=True):
    xs, ys = [], []
    context = [boundary] * T
    for s in seqs:
        if reset:
            context = [boundary] * T
        for target in list(s) + ([boundary] if end else []):
            xs.append(context)
            ys.append(target)
            context = context[1:] + [target]
    return torch.tensor(xs, dtype=torch.long).view(-1, T), torch.tensor(ys, dtype=torch.long)


def test_a_from_scratch_window_builder_passes(capsys):
    check_context_windows(windows_with)
    assert "all 6 cases" in capsys.readouterr().out


@pytest.mark.parametrize(
    "wrong, message",
    [
        (lambda s, T, b: windows_with(s, T, b, end=False), "is the closing boundary a target"),
        (lambda s, T, b: windows_with(s, T, b, reset=False), r"example \d+ .*should have the window"),
        (lambda s, T, b: windows_with(s, T, 0), "boundary id 9"),
    ],
    ids=["no end target", "context carried over between names", "boundary hard-coded as 0"],
)
def test_the_window_checker_rejects_plausible_mistakes(wrong, message):
    with pytest.raises(ExerciseError, match=message):
        check_context_windows(wrong)


def batch_with(data, T, B, g, *, n_starts=None, shift=1, use_generator=True):
    n_starts = len(data) - T if n_starts is None else n_starts
    starts = torch.randint(n_starts, (B,), generator=g if use_generator else None)
    x = torch.stack([data[s : s + T] for s in starts.tolist()])
    y = torch.stack([data[s + shift : s + shift + T] for s in starts.tolist()])
    return x, y


def test_a_from_scratch_batch_passes(capsys):
    check_get_batch(batch_with)
    assert "all 4 cases" in capsys.readouterr().out


@pytest.mark.parametrize(
    "wrong, message",
    [
        (lambda d, T, B, g: batch_with(d, T, B, g, n_starts=len(d) - T - 1), "never took the last window"),
        (lambda d, T, B, g: batch_with(d, T, B, g, shift=0), "shifted one token on"),
        (lambda d, T, B, g: batch_with(d, T, B, g, use_generator=False), "generator you are given"),
        (lambda d, T, B, g: (batch_with(d, T, B, g)[0], batch_with(d, T, B, g)[1][:, -1]), r"expected y of shape"),
        (lambda d, T, B, g: batch_with(d, T, B, g, n_starts=len(d) - T + 1), "raised|not a window"),
    ],
    ids=["last window never drawn", "y not shifted", "global random state", "y only the last token",
         "a start past the end"],
)
def test_the_batch_checker_rejects_plausible_mistakes(wrong, message):
    with pytest.raises(ExerciseError, match=message):
        check_get_batch(wrong)

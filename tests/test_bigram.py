"""llmscratch.bigram.CountingBigram: the chapter's worked example, references, and invariants."""

import math
from collections import Counter

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st

from llmscratch import CountingBigram

sequences_strategy = st.lists(st.lists(st.integers(1, 5), max_size=8), min_size=1, max_size=20)


def test_hand_worked_example():
    """".ab." and ".a.": the boundary starts two names, 'a' is followed once by 'b' and once by the end."""
    model = CountingBigram.fit([[1, 2], [1]], vocab_size=3)
    assert model.counts.tolist() == [[0, 2, 0], [1, 0, 1], [1, 0, 0]]
    P = model.probabilities()
    assert P[1].tolist() == [0.5, 0.0, 0.5]
    # Predictions: .->a (1), a->b (1/2), b->. (1), .->a (1), a->. (1/2): mean -ln p = 2 ln 2 / 5.
    assert model.nll([[1, 2], [1]]) == pytest.approx(2 * math.log(2) / 5)


@given(sequences_strategy)
def test_counts_match_a_python_counter(seqs):
    model = CountingBigram.fit(seqs, vocab_size=6)
    expected = Counter(pair for s in seqs for pair in zip([0, *s], [*s, 0]))
    for i in range(6):
        for j in range(6):
            assert model.counts[i, j] == expected[(i, j)]


@given(sequences_strategy, st.floats(0.01, 10))
def test_nll_matches_torch_cross_entropy(seqs, alpha):
    """Against a reference: the mean NLL is cross-entropy with log-probabilities as logits."""
    model = CountingBigram.fit(seqs, vocab_size=6)
    logits = torch.log(model.probabilities(alpha))
    first = torch.tensor([a for s in seqs for a in [0, *s]])
    second = torch.tensor([b for s in seqs for b in [*s, 0]])
    expected = F.cross_entropy(logits[first], second)
    torch.testing.assert_close(torch.tensor(model.nll(seqs, alpha), dtype=torch.float64), expected)


@given(sequences_strategy, st.floats(0.001, 100))
def test_rows_are_distributions(seqs, alpha):
    P = CountingBigram.fit(seqs, vocab_size=6).probabilities(alpha)
    torch.testing.assert_close(P.sum(dim=1), torch.ones(6, dtype=torch.float64))
    assert (P > 0).all()


def test_unseen_pair_gives_infinite_loss_without_smoothing():
    model = CountingBigram.fit([[1, 2]], vocab_size=4)  # token 3 never occurs
    assert model.nll([[1, 2]]) == pytest.approx(0.0)  # an unused empty row is no obstacle
    assert math.isinf(model.nll([[2, 1]], smoothing=0.0))
    assert math.isfinite(model.nll([[2, 1]], smoothing=1.0))


def test_empty_rows_need_smoothing():
    model = CountingBigram.fit([[1]], vocab_size=4)
    with pytest.raises(ValueError, match=r"rows \[2, 3\] have no counts"):
        model.probabilities()


def test_uniform_model_has_perplexity_v():
    V = 9
    uniform = CountingBigram(torch.ones(V, V, dtype=torch.long))
    assert uniform.perplexity([[1, 2, 3], [8]]) == pytest.approx(V)


def test_sampling_is_seeded_and_respects_the_table():
    # A deterministic chain: boundary -> 1 -> 2 -> boundary.
    counts = torch.zeros(3, 3, dtype=torch.long)
    counts[0, 1] = counts[1, 2] = counts[2, 0] = 5
    model = CountingBigram(counts)
    assert model.sample(3, torch.Generator().manual_seed(0)) == [[1, 2]] * 3
    rich = CountingBigram.fit([[1, 2, 3], [2, 2], [3, 1]], vocab_size=4)
    a = rich.sample(20, torch.Generator().manual_seed(123), smoothing=0.5)
    b = rich.sample(20, torch.Generator().manual_seed(123), smoothing=0.5)
    assert a == b
    assert all(0 < t < 4 for s in a for t in s)


@pytest.mark.parametrize(
    "counts, boundary, message",
    [
        (torch.zeros(2, 3, dtype=torch.long), 0, "square"),
        (-torch.ones(2, 2, dtype=torch.long), 0, "non-negative"),
        (torch.zeros(2, 2, dtype=torch.long), 5, "boundary_id"),
    ],
)
def test_bad_tables(counts, boundary, message):
    with pytest.raises(ValueError, match=message):
        CountingBigram(counts, boundary)


def test_ids_outside_the_vocabulary():
    with pytest.raises(ValueError, match="outside 0..3"):
        CountingBigram.fit([[1, 4]], vocab_size=4)


def test_negative_smoothing_and_empty_scoring():
    model = CountingBigram.fit([[1]], vocab_size=2)
    with pytest.raises(ValueError, match="smoothing"):
        model.probabilities(-1)
    with pytest.raises(ValueError, match="no sequences"):
        model.nll([])

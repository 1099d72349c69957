"""llmscratch.datasets: windows against a plain-Python reference, batches that are seeded and aligned."""


import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from llmscratch import PairBatches, TextBatches, get_batch, name_windows


def reference_windows(sequences, T, boundary):
    """The obvious loop: slide a window over [boundary] * T + seq + [boundary]."""
    xs, ys = [], []
    for seq in sequences:
        context = [boundary] * T
        for token in [*seq, boundary]:
            xs.append(list(context))
            ys.append(token)
            context = context[1:] + [token]
    return xs, ys


@given(st.lists(st.lists(st.integers(1, 9), max_size=12), min_size=1, max_size=15), st.integers(1, 9))
def test_name_windows_match_the_loop(sequences, T):
    X, Y = name_windows(sequences, T, boundary_id=0)
    xs, ys = reference_windows(sequences, T, 0)
    assert X.tolist() == xs and Y.tolist() == ys
    assert X.shape == (sum(len(s) + 1 for s in sequences), T)


def test_a_nonzero_boundary_id():
    X, Y = name_windows([[1, 2]], context_length=2, boundary_id=5)
    assert X.tolist() == [[5, 5], [5, 1], [1, 2]] and Y.tolist() == [1, 2, 5]


@pytest.mark.parametrize(
    "args, message",
    [(([[1]], 0), "positive integer"), (([], 3), "no sequences"), (([[1, 0]], 3), "boundary id 0"),
     (([[-1]], 3), "non-negative")],
)
def test_name_windows_errors(args, message):
    with pytest.raises(ValueError, match=message):
        name_windows(*args)


def test_get_batch_windows_are_contiguous_and_seeded():
    data = torch.arange(100) * 7  # every value says where it came from
    x, y = get_batch(data, 5, 16, torch.Generator().manual_seed(3))
    assert x.shape == (16, 5) and y.shape == (16,)
    assert torch.equal(torch.diff(x, dim=1), torch.full((16, 4), 7))
    assert torch.equal(y, x[:, -1] + 7)
    x2, y2 = get_batch(data, 5, 16, torch.Generator().manual_seed(3))
    assert torch.equal(x, x2) and torch.equal(y, y2)
    xa, ya = get_batch(data, 5, 16, torch.Generator().manual_seed(3), every_position=True)
    assert torch.equal(xa, x) and torch.equal(ya[:, :-1], x[:, 1:]) and torch.equal(ya[:, -1], y)


def test_get_batch_reaches_the_last_token_and_never_beyond():
    data = torch.arange(10)
    x, y = get_batch(data, 9, 50, torch.Generator().manual_seed(0))
    assert (y == 9).all()  # only one window fits: 0..8 -> 9


@pytest.mark.parametrize(
    "data, T, B, message",
    [(torch.zeros(2, 5, dtype=torch.long), 2, 1, "1-D"), (torch.arange(4), 4, 1, "too few"),
     (torch.arange(9), 0, 1, "positive"), (torch.arange(9), 2, 0, "positive")],
)
def test_get_batch_errors(data, T, B, message):
    with pytest.raises(ValueError, match=message):
        get_batch(data, T, B, torch.Generator())


def test_pair_batches_keep_inputs_and_targets_aligned():
    X = torch.arange(50).unsqueeze(1).repeat(1, 3)  # row i is [i, i, i]
    Y = torch.arange(50) + 1000
    batches = PairBatches({"train": (X, Y), "val": (X[:5], Y[:5])})
    x, y = batches("train", 32, torch.Generator().manual_seed(0))
    assert torch.equal(y, x[:, 0] + 1000)
    xv, _ = batches("val", 32, torch.Generator().manual_seed(0))
    assert (xv < 5).all()
    with pytest.raises(KeyError, match="no split 'test'"):
        batches("test", 1, torch.Generator())
    with pytest.raises(ValueError, match="split 'bad'"):
        PairBatches({"bad": (X, Y[:3])})


def test_text_batches():
    batches = TextBatches({"train": torch.arange(30), "val": torch.arange(100, 120)}, context_length=4)
    x, y = batches("val", 8, torch.Generator().manual_seed(0))
    assert x.shape == (8, 4) and (x >= 100).all() and torch.equal(y, x[:, -1] + 1)
    with pytest.raises(ValueError, match="longer than 4"):
        TextBatches({"train": torch.arange(4)}, context_length=4)

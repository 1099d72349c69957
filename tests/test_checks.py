"""llmscratch.checks: the shared input checks raise the right kind of error, and never return a wrong answer."""

from dataclasses import dataclass

import pytest
import torch

from llmscratch.checks import check_sizes, check_token_ids, embed_ids, window_loss


@dataclass
class Sizes:
    width: object = 4
    depth: object = 0


@pytest.mark.parametrize("value, error", [(2.0, TypeError), ("4", TypeError), (True, TypeError), (None, TypeError),
                                          (0, ValueError), (-1, ValueError)])
def test_check_sizes_tells_a_wrong_type_from_a_wrong_value(value, error):
    with pytest.raises(error, match=f"Sizes.width must be a positive integer, got {value!r}"):
        check_sizes(Sizes(width=value), ("width",))


def test_check_sizes_accepts_the_minimum():
    check_sizes(Sizes(), ("width",))
    check_sizes(Sizes(), ("depth",), minimum=0)
    with pytest.raises(ValueError, match="Sizes.depth must be a positive integer, got 0"):
        check_sizes(Sizes(), ("depth",))


@pytest.mark.parametrize("idx, length, error, message", [
    ([[1, 2]], None, TypeError, "tensor of token ids, got list"),
    (torch.zeros(2, 3), None, TypeError, "int64 or int32 tensor of token ids, got torch.float32"),
    (torch.zeros(3, dtype=torch.long), None, ValueError, r"shape \(batch, length\), got \(3,\)"),
    (torch.zeros(2, 0, dtype=torch.long), None, ValueError, "at least one position"),
    (torch.zeros(2, 4, dtype=torch.long), 3, ValueError, r"context_length=3\), got \(2, 4\)"),
])
def test_check_token_ids(idx, length, error, message):
    with pytest.raises(error, match=message):
        check_token_ids(idx, length)


def test_check_token_ids_accepts_both_integer_dtypes():
    check_token_ids(torch.zeros(2, 3, dtype=torch.int32), 3)
    check_token_ids(torch.zeros(2, 3, dtype=torch.int64))


@pytest.mark.parametrize("bad", [5, 17, -1, -5])
def test_embed_ids_refuses_ids_outside_the_table_instead_of_wrapping(bad):
    """Plain indexing would read row -1 as the last row: a silent wrong answer."""
    table = torch.randn(5, 3)
    idx = torch.tensor([[0, bad]])
    with pytest.raises(ValueError, match=r"outside the vocabulary 0\.\.4"):
        embed_ids(table, idx)
    with pytest.raises(ValueError, match=r"outside the vocabulary 0\.\.4"):
        embed_ids(torch.nn.Embedding(5, 3), idx)


def test_embed_ids_is_the_lookup_and_keeps_gradients():
    embedding = torch.nn.Embedding(5, 3)
    idx = torch.tensor([[4, 0, 4]])
    out = embed_ids(embedding, idx)
    torch.testing.assert_close(out, embedding.weight[idx])
    out.sum().backward()
    assert embedding.weight.grad[4].tolist() == [2.0, 2.0, 2.0] and embedding.weight.grad[1].abs().sum() == 0


def test_window_loss():
    logits = torch.randn(4, 6)
    targets = torch.tensor([0, 5, 2, 2])
    torch.testing.assert_close(window_loss(logits, targets), torch.nn.functional.cross_entropy(logits, targets))
    assert window_loss(logits, None) is None
    with pytest.raises(ValueError, match=r"targets must have shape \(4,\), got \(4, 1\)"):
        window_loss(logits, targets[:, None])

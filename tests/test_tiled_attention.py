"""Tiled attention with the online softmax equals PyTorch's attention, over shapes, block sizes,
causal or not, and grouped key/value heads; the online-softmax step against a hand-worked case."""

import math

import pytest
import torch
import torch.nn.functional as F

from llmscratch.tiled_attention import online_softmax_step, tiled_attention

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.parametrize("L,S", [(1, 1), (1, 9), (9, 9), (13, 13), (5, 12), (12, 5), (64, 64)])
@pytest.mark.parametrize("block_size", [1, 4, 7, 64])
@pytest.mark.parametrize("is_causal", [False, True])
def test_matches_torch(L, S, block_size, is_causal):
    """Blocks that divide the length and blocks that do not, one block, one query, more queries than keys."""
    g = torch.Generator().manual_seed(L * 100 + S)
    q, k = torch.randn(2, 3, L, 8, generator=g), torch.randn(2, 3, S, 8, generator=g)
    v = torch.randn(2, 3, S, 5, generator=g)
    ours = tiled_attention(q, k, v, is_causal=is_causal, block_size=block_size)
    torch.testing.assert_close(ours, F.scaled_dot_product_attention(q, k, v, is_causal=is_causal))


@pytest.mark.parametrize("is_causal", [False, True])
def test_matches_torch_with_gqa_scale_and_large_scores(is_causal):
    """Four query heads sharing two key/value heads; scores of several hundred, where a softmax
    without the running max would overflow exp()."""
    g = torch.Generator().manual_seed(3)
    q = torch.randn(1, 4, 20, 16, generator=g) * 30
    k, v = torch.randn(1, 2, 20, 16, generator=g) * 30, torch.randn(1, 2, 20, 16, generator=g)
    for scale in (None, 0.05):
        ours = tiled_attention(q, k, v, is_causal=is_causal, scale=scale, block_size=6, enable_gqa=True)
        ref = F.scaled_dot_product_attention(q, k, v, is_causal=is_causal, scale=scale, enable_gqa=True)
        assert torch.isfinite(ours).all()
        torch.testing.assert_close(ours, ref)


def test_two_dimensional_inputs_and_float64():
    g = torch.Generator().manual_seed(5)
    q, k, v = (torch.randn(10, 4, generator=g, dtype=torch.float64) for _ in range(3))
    ours = tiled_attention(q, k, v, is_causal=True, block_size=3)
    assert ours.dtype == torch.float64
    torch.testing.assert_close(ours, F.scaled_dot_product_attention(q, k, v, is_causal=True))


def test_online_softmax_step_hand_worked():
    """One query, keys in two blocks: scores (0, ln 2) then (ln 4,), values 1, 2 then 7.
    Weights 1/7, 2/7, 4/7, so the output is (1 + 4 + 28) / 7 = 33/7. After the first block the
    running max is ln 2 and the denominator e^{0 - ln 2} + e^0 = 1.5; the second block raises
    the max to ln 4 and rescales the denominator by e^{ln 2 - ln 4} = 1/2: 0.75 + 1 = 1.75."""
    m, denom, acc = torch.tensor([[-math.inf]]), torch.zeros(1, 1), torch.zeros(1, 1)
    m, denom, acc = online_softmax_step(m, denom, acc, torch.tensor([[0.0, math.log(2)]]), torch.tensor([[1.0], [2.0]]))
    torch.testing.assert_close(m, torch.tensor([[math.log(2)]]))
    torch.testing.assert_close(denom, torch.tensor([[1.5]]))
    m, denom, acc = online_softmax_step(m, denom, acc, torch.tensor([[math.log(4)]]), torch.tensor([[7.0]]))
    torch.testing.assert_close(denom, torch.tensor([[1.75]]))
    torch.testing.assert_close(acc / denom, torch.tensor([[33 / 7]]))


def test_a_fully_masked_block_changes_nothing():
    """A block whose keys are all masked (-inf) leaves the running numbers as they were, without NaN,
    also as the very first block (running max still -inf)."""
    m, denom, acc = torch.tensor([[-math.inf]]), torch.zeros(1, 1), torch.zeros(1, 2)
    masked = torch.tensor([[-math.inf, -math.inf]])
    m, denom, acc = online_softmax_step(m, denom, acc, masked, torch.ones(2, 2))
    assert torch.isinf(m).all() and denom.item() == 0 and not acc.any()
    m, denom, acc = online_softmax_step(m, denom, acc, torch.tensor([[1.0]]), torch.tensor([[3.0, 4.0]]))
    m2, l2, acc2 = online_softmax_step(m, denom, acc, masked, torch.ones(2, 2))
    assert torch.equal(m2, m) and torch.equal(l2, denom) and torch.equal(acc2, acc)


def test_bad_inputs_raise():
    q = torch.randn(1, 4, 3, 8)
    with pytest.raises(ValueError, match="block_size"):
        tiled_attention(q, q, q, block_size=0)
    with pytest.raises(ValueError, match="enable_gqa"):
        tiled_attention(q, torch.randn(1, 2, 3, 8), torch.randn(1, 2, 3, 8))
    with pytest.raises(ValueError, match="need q"):
        tiled_attention(q, torch.randn(1, 4, 3, 6), q)

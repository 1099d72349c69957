"""The long-context checkers accept the package's own functions and reject the slips learners make."""

import math

import pytest
import torch

from llmscratch.attention import sliding_window_mask
from llmscratch.exercises import ExerciseError, check_online_softmax_step, check_window_mask
from llmscratch.tiled_attention import online_softmax_step


def test_the_package_passes(capsys):
    check_window_mask(sliding_window_mask)
    check_online_softmax_step(online_softmax_step)
    out = capsys.readouterr().out
    assert "check_window_mask: all 7 cases" in out and "check_online_softmax_step: all 7 cases" in out


def band(length, window, low=0):
    """Keys with low <= i - j < window + low... shifted bands: the slips."""
    offset = torch.arange(length).view(-1, 1) - torch.arange(length).view(1, -1)
    return (offset >= low) & (offset < window + low)


@pytest.mark.parametrize("wrong,message", [
    (lambda T, W: band(T, W + 1), "how many keys does the last query see"),  # one diagonal too many
    (lambda T, W: band(T, W, low=1), "does each query see itself"),  # the diagonal left out
    (lambda T, W: (torch.arange(T).view(-1, 1) - torch.arange(T).view(1, -1)).abs() < W, "after it"),  # no causality
    (lambda T, W: band(T, W).int(), "boolean"),
])
def test_window_mask_slips_are_rejected(wrong, message):
    with pytest.raises(ExerciseError, match=message):
        check_window_mask(wrong)


def no_rescale(m, denom, acc, scores, values):
    """The classic slip: new max taken, but the old sums not multiplied by exp(m_old - m_new)."""
    m_new = torch.maximum(m, scores.amax(-1, keepdim=True))
    shift = m_new.masked_fill(torch.isinf(m_new), 0.0)
    p = torch.exp(scores - shift)
    return m_new, denom + p.sum(-1, keepdim=True), acc + p @ values


def nan_on_masked_blocks(m, denom, acc, scores, values):
    """Right on ordinary blocks; NaN when a row has seen only masked keys (exp(-inf + inf))."""
    m_new = torch.maximum(m, scores.amax(-1, keepdim=True))
    p = torch.exp(scores - m_new)
    rescale = torch.exp(m - m_new)
    return m_new, denom * rescale + p.sum(-1, keepdim=True), acc * rescale + p @ values


def test_online_softmax_slips_are_rejected():
    with pytest.raises(ExerciseError, match="the maximum moves"):
        check_online_softmax_step(no_rescale)
    with pytest.raises(ExerciseError, match=r"exp\(-inf"):
        check_online_softmax_step(nan_on_masked_blocks)
    with pytest.raises(ExerciseError, match="tuple"):
        check_online_softmax_step(lambda m, d, a, s, v: a)
    with pytest.raises(NotImplementedError):
        check_online_softmax_step(lambda *args: (_ for _ in ()).throw(NotImplementedError()))
    assert math.isinf(float("-inf"))

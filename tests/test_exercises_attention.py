"""The attention checkers accept the package's own functions and reject the slips learners make."""

import math

import pytest
import torch

from llmscratch.attention import merge_heads, scaled_dot_product_attention, split_heads
from llmscratch.exercises import (
    ExerciseError,
    check_attention,
    check_merge_heads,
    check_rope,
    check_sinusoidal,
    check_split_heads,
)
from llmscratch.positional import apply_rope, rope_angles, sinusoidal_positions


def reference_attention(q, k, v, causal):
    return scaled_dot_product_attention(q, k, v, is_causal=causal)


def attention_with(q, k, v, causal, *, scale=None, softmax_dim=-1, mask="before"):
    scale = 1 / math.sqrt(q.shape[-1]) if scale is None else scale
    scores = q @ k.transpose(-2, -1) * scale
    T = q.shape[-2]
    future = ~torch.ones(T, T, dtype=torch.bool).tril()
    if causal and mask == "before":
        scores = scores.masked_fill(future, float("-inf"))
    weights = torch.softmax(scores, dim=softmax_dim)
    if causal and mask == "after":
        weights = weights.masked_fill(future, 0.0)
    return weights @ v


def test_package_passes_every_checker(capsys):
    check_attention(reference_attention)
    check_split_heads(split_heads)
    check_merge_heads(merge_heads)
    check_sinusoidal(sinusoidal_positions)
    check_rope(lambda x: apply_rope(x, *rope_angles(x.shape[-2], x.shape[-1])))
    assert capsys.readouterr().out.count("✓") == 5


def test_a_from_scratch_attention_passes():
    check_attention(lambda q, k, v, causal: attention_with(q, k, v, causal))


@pytest.mark.parametrize("slip,match", [
    (dict(mask="none"), "future token leaked"),
    (dict(mask="after"), "future token leaked"),  # zeroed after the softmax: the denominator still reads the future
    (dict(scale=1.0), "not divided by √d"),
    (dict(softmax_dim=-2), "which axis"),
])
def test_attention_slips_are_named(slip, match):
    with pytest.raises(ExerciseError, match=match):
        check_attention(lambda q, k, v, causal: attention_with(q, k, v, causal, **slip))


def test_split_heads_without_transpose_is_rejected():
    def reshape_only(x, n_heads):
        B, T, C = x.shape
        return x.reshape(B, n_heads, T, C // n_heads)

    with pytest.raises(ExerciseError, match="mix features of different tokens"):
        check_split_heads(reshape_only)


def test_split_heads_interleaved_is_rejected():
    def every_nth(x, n_heads):
        B, T, C = x.shape
        return x.view(B, T, C // n_heads, n_heads).permute(0, 3, 1, 2)

    with pytest.raises(ExerciseError, match="every n_heads-th feature"):
        check_split_heads(every_nth)


def test_merge_heads_without_transpose_is_rejected():
    with pytest.raises(ExerciseError, match="mix different positions"):
        check_merge_heads(lambda y: y.reshape(y.shape[0], y.shape[2], -1))


def sinusoids_with(length, dim, *, swap=False, exponent=lambda i, dim: -2 * i / dim):
    p = torch.arange(length, dtype=torch.float32)[:, None]
    w = 10000.0 ** exponent(torch.arange(dim // 2, dtype=torch.float32), dim)
    a, b = (p * w).sin(), (p * w).cos()
    if swap:
        a, b = b, a
    return torch.stack([a, b], -1).flatten(1)


def test_sinusoidal_slips_are_named():
    check_sinusoidal(sinusoids_with)
    with pytest.raises(ExerciseError, match="sine and cosine the right way round"):
        check_sinusoidal(lambda n, d: sinusoids_with(n, d, swap=True))
    with pytest.raises(ExerciseError, match="exponent -2i/dim"):  # the 2 forgotten
        check_sinusoidal(lambda n, d: sinusoids_with(n, d, exponent=lambda i, dim: -i / dim))


def test_rope_slips_are_named():
    def rope(x, sign=1.0, pairing="adjacent"):
        T, hs = x.shape[-2:]
        w = 10000.0 ** (-torch.arange(0, hs, 2) / hs)
        angle = torch.arange(T)[:, None] * w  # (T, hs/2)
        cos, sin = angle.cos(), sign * angle.sin()
        if pairing == "adjacent":
            a, b = x[..., 0::2], x[..., 1::2]
            return torch.stack([a * cos - b * sin, a * sin + b * cos], -1).flatten(-2)
        a, b = x[..., : hs // 2], x[..., hs // 2:]
        return torch.cat([a * cos - b * sin, a * sin + b * cos], -1)

    check_rope(rope)
    with pytest.raises(ExerciseError, match="wrong way round"):
        check_rope(lambda x: rope(x, sign=-1.0))
    with pytest.raises(ExerciseError, match="pairs features 2i and 2i\\+1"):
        check_rope(lambda x: rope(x, pairing="halves"))

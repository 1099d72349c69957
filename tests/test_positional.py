"""Position schemes: sinusoid values, RoPE's relative property, ALiBi slopes and bias."""

import math

import pytest
import torch

from llmscratch.positional import alibi_bias, alibi_slopes, apply_rope, rope_angles, rope_real, sinusoidal_positions


def test_sinusoidal_matches_formula():
    table = sinusoidal_positions(50, 16)
    for p in (0, 7, 49):
        for i in range(8):
            w = 10000 ** (-2 * i / 16)
            assert table[p, 2 * i].item() == pytest.approx(math.sin(p * w), abs=1e-5)
            assert table[p, 2 * i + 1].item() == pytest.approx(math.cos(p * w), abs=1e-5)


@pytest.mark.parametrize("head_dim", [2, 8, 32])
def test_rope_depends_only_on_offset(head_dim):
    """q·k after rotation at (m, n) equals q·k at (m + s, n + s) for every shift s."""
    g = torch.Generator().manual_seed(0)
    q, k = torch.randn(head_dim, generator=g), torch.randn(head_dim, generator=g)
    cos, sin = rope_angles(200, head_dim)

    def rotated(x, p):
        return apply_rope(x.view(1, head_dim), cos[p : p + 1], sin[p : p + 1]).view(head_dim)

    for m, n in [(3, 1), (10, 10), (40, 2)]:
        base = torch.dot(rotated(q, m), rotated(k, n))
        for s in (1, 17, 150):
            torch.testing.assert_close(torch.dot(rotated(q, m + s), rotated(k, n + s)), base, atol=1e-4, rtol=1e-4)


def test_rope_is_a_rotation_and_identity_at_zero():
    x = torch.randn(3, 5, 8)
    cos, sin = rope_angles(5, 8)
    y = apply_rope(x, cos, sin)
    torch.testing.assert_close(y.norm(dim=-1), x.norm(dim=-1))
    torch.testing.assert_close(y[:, 0], x[:, 0])  # angle 0 at position 0
    with pytest.raises(ValueError, match="do not fit"):
        apply_rope(x, *rope_angles(4, 8))
    with pytest.raises(ValueError, match="even"):
        rope_angles(4, 7)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
def test_rope_complex_product_equals_real_rotation(dtype):
    """The complex multiplication `apply_rope` uses gives the real form's values and gradients,
    also on the strided (B, H, T, hs) views attention passes it, and keeps the input's dtype."""
    g = torch.Generator().manual_seed(0)
    qkv = torch.randn(2, 7, 3 * 4 * 8, generator=g).to(dtype)
    q = qkv[..., 32:64].view(2, 7, 4, 8).transpose(1, 2).requires_grad_()  # (B, H, T, hs), not contiguous
    cos, sin = rope_angles(7, 8)
    fast, slow = apply_rope(q, cos, sin), rope_real(q, cos, sin)
    assert fast.dtype == dtype and fast.shape == q.shape
    tol = {"atol": 2e-2, "rtol": 2e-2} if dtype == torch.bfloat16 else {}
    torch.testing.assert_close(fast, slow, **tol)
    weights = torch.randn(fast.shape, generator=g).to(dtype)
    (grad_fast,) = torch.autograd.grad((fast * weights).sum(), q)
    (grad_slow,) = torch.autograd.grad((slow * weights).sum(), q)
    torch.testing.assert_close(grad_fast, grad_slow, **tol)


def test_alibi_slopes_from_the_paper():
    assert alibi_slopes(8).tolist() == [2.0 ** -i for i in range(1, 9)]
    # Not a power of two: the 4-head slopes, then every other slope of the 8-head sequence.
    assert alibi_slopes(6).tolist() == [2.0 ** -2, 2.0 ** -4, 2.0 ** -6, 2.0 ** -8, 2.0 ** -1, 2.0 ** -3]


def test_alibi_bias_is_minus_slope_times_distance():
    bias = alibi_bias(4, 6)
    slopes = alibi_slopes(4)
    for h in range(4):
        for m in range(6):
            for n in range(m + 1):
                assert bias[h, m, n].item() == pytest.approx(-slopes[h].item() * (m - n))

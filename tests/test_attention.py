"""Attention against PyTorch's reference, the causal mask, and the layer's shapes and errors."""

import pytest
import torch
import torch.nn.functional as F

from llmscratch import GPTConfig
from llmscratch.attention import (
    CausalSelfAttention,
    attention_weights,
    causal_mask,
    merge_heads,
    scaled_dot_product_attention,
    sliding_window_mask,
    split_heads,
    window_mask,
)


@pytest.mark.parametrize("L,S", [(5, 5), (3, 7), (7, 3)])
@pytest.mark.parametrize("is_causal", [False, True])
def test_matches_torch(L, S, is_causal):
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(2, 3, n, 8, generator=g) for n in (L, S, S))
    ours = scaled_dot_product_attention(q, k, v, is_causal=is_causal)
    torch.testing.assert_close(ours, F.scaled_dot_product_attention(q, k, v, is_causal=is_causal))


def test_matches_torch_with_masks_scale_and_gqa():
    g = torch.Generator().manual_seed(1)
    q = torch.randn(2, 4, 6, 8, generator=g)
    k, v = torch.randn(2, 2, 6, 8, generator=g), torch.randn(2, 2, 6, 5, generator=g)
    bool_mask = torch.rand(6, 6, generator=g) > 0.3
    bool_mask[:, 0] = True  # every query keeps at least one key
    float_mask = torch.randn(4, 6, 6, generator=g)
    for mask in (bool_mask, float_mask):
        for scale in (None, 0.3):
            ours = scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=scale, enable_gqa=True)
            ref = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=scale, enable_gqa=True)
            torch.testing.assert_close(ours, ref)


def test_weights_are_causal_and_sum_to_one():
    q, k = torch.randn(1, 2, 5, 4), torch.randn(1, 2, 5, 4)
    w = attention_weights(q, k, is_causal=True)
    torch.testing.assert_close(w.sum(-1), torch.ones(1, 2, 5))
    assert torch.all(w.masked_select(~causal_mask(5)) == 0)


def test_running_mean_example():
    """The chapter's first picture: equal scores under a causal mask average the past."""
    v = torch.arange(1.0, 6.0).unsqueeze(1)  # (5, 1)
    q = k = torch.zeros(5, 3)
    out = scaled_dot_product_attention(q, k, v, is_causal=True).squeeze(1)
    torch.testing.assert_close(out, torch.cumsum(v.squeeze(1), 0) / torch.arange(1.0, 6.0))


def test_errors():
    q = torch.randn(1, 4, 3, 8)
    with pytest.raises(ValueError, match="not both"):
        attention_weights(q, q, attn_mask=causal_mask(3), is_causal=True)
    with pytest.raises(ValueError, match="feature size"):
        attention_weights(q, torch.randn(1, 4, 3, 6))
    with pytest.raises(ValueError, match="enable_gqa"):
        attention_weights(q, torch.randn(1, 2, 3, 8))


@pytest.mark.parametrize("position", ["learned", "rope", "alibi"])
@pytest.mark.parametrize("n_kv_heads", [None, 2, 1])
def test_layer_fused_path_equals_explicit_path(position, n_kv_heads):
    """Without weights the layer calls PyTorch's fused kernel; with them, ours. Same output."""
    torch.manual_seed(0)
    layer = CausalSelfAttention(GPTConfig(d_model=32, n_heads=4, n_kv_heads=n_kv_heads, position=position))
    x = torch.randn(2, 9, 32)
    y_fused = layer(x)
    y, w = layer(x, return_weights=True)
    assert y.shape == (2, 9, 32) and w.shape == (2, 4, 9, 9)
    torch.testing.assert_close(y_fused, y)
    assert torch.all(w.masked_select(~causal_mask(9)) == 0)


def test_layer_parameter_count():
    c = GPTConfig(d_model=32, n_heads=4, n_kv_heads=2)
    layer = CausalSelfAttention(c)
    hs = c.head_dim
    expected = 32 * (4 + 2 * 2) * hs + (4 + 2 * 2) * hs + 32 * 32 + 32
    assert sum(p.numel() for p in layer.parameters()) == expected


def test_split_and_merge_heads_invert_each_other():
    x = torch.randn(2, 5, 12)
    heads = split_heads(x, 3)  # (B, H, T, hs)
    assert heads.shape == (2, 3, 5, 4)
    torch.testing.assert_close(heads[:, 1], x[..., 4:8])  # head 1 owns features 4..7 of every token
    torch.testing.assert_close(merge_heads(heads), x)
    with pytest.raises(ValueError, match="do not split"):
        split_heads(x, 5)


def test_window_mask_hand_example():
    """Window 3 over 5 positions: a band of 3 diagonals; no window is the causal mask."""
    expected = [[1, 0, 0, 0, 0], [1, 1, 0, 0, 0], [1, 1, 1, 0, 0], [0, 1, 1, 1, 0], [0, 0, 1, 1, 1]]
    assert sliding_window_mask(5, 3).int().tolist() == expected
    assert torch.equal(sliding_window_mask(5, None), causal_mask(5))
    assert torch.equal(sliding_window_mask(5, 5), causal_mask(5))  # a window as long as the input hides nothing
    # Absolute positions: two new queries (7, 8) against the last four keys a rolling cache kept (5..8).
    assert window_mask(torch.tensor([7, 8]), torch.arange(5, 9), 3).int().tolist() == [[1, 1, 1, 0], [0, 1, 1, 1]]
    with pytest.raises(ValueError, match="window"):
        window_mask(torch.arange(3), torch.arange(3), 0)


POSITIONS = ["learned", "sinusoidal", "rope", "alibi", "none"]


@pytest.mark.parametrize("position", POSITIONS)
@pytest.mark.parametrize("n_kv_heads", [None, 1])
def test_windowed_layer_matches_torch_with_the_band_mask(position, n_kv_heads):
    """The layer's fused path, its explicit path, and PyTorch's attention with the band as its mask agree."""
    torch.manual_seed(0)
    config = GPTConfig(d_model=32, n_heads=4, n_kv_heads=n_kv_heads, position=position, attention_window=3)
    layer = CausalSelfAttention(config)
    x = torch.randn(2, 9, 32)
    y_fused = layer(x)
    y, w = layer(x, return_weights=True)
    torch.testing.assert_close(y_fused, y)
    band = sliding_window_mask(9, 3)
    assert torch.all(w.masked_select(~band) == 0)
    torch.testing.assert_close(w.sum(-1), torch.ones(2, 4, 9))
    if position in ("learned", "sinusoidal", "none"):  # no scores changed by position inside the layer
        q, k, v = layer.qkv(x).split([32, 8 * config.kv_heads, 8 * config.kv_heads], dim=-1)
        q, k, v = split_heads(q, 4), split_heads(k, config.kv_heads), split_heads(v, config.kv_heads)
        ref = F.scaled_dot_product_attention(q, k, v, attn_mask=band, enable_gqa=n_kv_heads is not None)
        torch.testing.assert_close(y, layer.proj(merge_heads(ref)))


@pytest.mark.parametrize("position", POSITIONS)
def test_a_window_as_long_as_the_input_changes_nothing(position):
    torch.manual_seed(0)
    full = CausalSelfAttention(GPTConfig(d_model=32, n_heads=4, position=position))
    windowed = CausalSelfAttention(GPTConfig(d_model=32, n_heads=4, position=position, attention_window=9))
    windowed.load_state_dict(full.state_dict())
    x = torch.randn(2, 9, 32)
    torch.testing.assert_close(windowed(x), full(x))
    narrow = CausalSelfAttention(GPTConfig(d_model=32, n_heads=4, position=position, attention_window=2))
    narrow.load_state_dict(full.state_dict())
    assert torch.allclose(narrow(x)[:, :2], full(x)[:, :2])  # the first two queries see all their keys anyway
    assert not torch.allclose(narrow(x)[:, 2:], full(x)[:, 2:], atol=1e-4)

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
    split_heads,
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

"""llmscratch.flops: the FLOP count matches a hand count, and MFU is the ratio it claims to be."""

import pytest
import torch

from llmscratch import GPT, GPTConfig
from llmscratch.flops import matmul_peak, matmul_weights, training_flops_per_token, utilization


@pytest.mark.parametrize("activation", ["gelu", "swiglu"])
def test_matmul_weights_are_the_block_matrices_plus_the_output_layer(activation):
    cfg = GPTConfig(vocab_size=50, context_length=16, d_model=32, n_layers=2, n_heads=4, bias=False,
                    activation=activation, tie_weights=False)
    model = GPT(cfg)
    matrices = sum(p.numel() for name, p in model.named_parameters()
                   if p.ndim == 2 and "embedding" not in name)  # lookups are not products
    assert matmul_weights(cfg) == matrices


def test_training_flops_per_token_by_hand():
    cfg = GPTConfig(vocab_size=100, context_length=10, d_model=8, n_layers=1, n_heads=2)
    weights = 4 * 8 * 8 + 2 * 8 * 32 + 100 * 8  # attention, feed-forward, output layer
    assert training_flops_per_token(cfg) == 6 * weights + 12 * 1 * 10 * 8
    assert training_flops_per_token(cfg, context=20) - training_flops_per_token(cfg) == 12 * 10 * 8


def test_utilization_and_the_peak():
    cfg = GPTConfig()
    assert utilization(1000.0, cfg, 1000.0 * training_flops_per_token(cfg)) == pytest.approx(1.0)
    with pytest.raises(ValueError):
        utilization(1.0, cfg, 0.0)
    peak = matmul_peak(128, torch.float32, seconds=0.05)
    assert 1e8 < peak < 1e14  # a real machine's rate, in FLOP/s

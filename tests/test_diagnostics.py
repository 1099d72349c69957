"""Gradient and collapse diagnostics: against direct computations, the hand-worked examples,
invariants over model variants, and clear errors."""

import math
from dataclasses import replace

import pytest
import torch

from llmscratch.diagnostics import gradient_norms, layer_gradient_norms, position_cosine
from llmscratch.model import GPT, GPTConfig

SMALL = GPTConfig(vocab_size=30, context_length=8, d_model=16, n_layers=3, n_heads=2)
VARIANTS = [SMALL, replace(SMALL, norm_placement="post"), replace(SMALL, residual=False),
            replace(SMALL, norm="rmsnorm", activation="swiglu", tie_weights=False), replace(SMALL, d_ff=0)]


def _backward(model, seed=0):
    g = torch.Generator().manual_seed(seed)
    idx = torch.randint(model.config.vocab_size, (2, model.config.context_length), generator=g)
    model.zero_grad()
    _, loss = model(idx, idx.roll(-1, dims=1))
    loss.backward()


def test_hand_worked_linear_layer():
    """d(w·x + b)/dw = x = (3, 4), whose norm is 5; d/db = 1."""
    layer = torch.nn.Linear(2, 1)
    layer(torch.tensor([[3.0, 4.0]])).sum().backward()
    assert gradient_norms(layer) == pytest.approx({"weight": 5.0, "bias": 1.0})


@pytest.mark.parametrize("config", VARIANTS, ids=lambda c: f"{c.norm_placement}-res{c.residual}-{c.norm}-ff{c.ff_dim}")
def test_norms_match_a_direct_computation(config):
    torch.manual_seed(0)
    model = GPT(config)
    _backward(model)
    norms = gradient_norms(model)
    expected = {n: p.grad.norm().item() for n, p in model.named_parameters() if p.grad is not None}
    assert norms == pytest.approx(expected)
    layers = layer_gradient_norms(model)
    assert len(layers) == config.n_layers
    for i, value in enumerate(layers):
        # A layer's norm is the norm of all its parameters' gradients as one vector.
        squares = sum(v**2 for n, v in norms.items() if n.startswith(f"blocks.{i}."))
        assert value == pytest.approx(math.sqrt(squares))
        flat = torch.cat([p.grad.flatten() for p in model.blocks[i].parameters()])
        assert value == pytest.approx(flat.norm().item(), rel=1e-5)
    assert all(v > 0 for v in layers)


def test_tied_weight_appears_once():
    model = GPT(SMALL)  # lm_head shares the token embedding
    _backward(model)
    names = gradient_norms(model)
    assert "token_embedding.weight" in names and "lm_head.weight" not in names


def test_scaling_the_loss_scales_every_norm():
    torch.manual_seed(0)
    model = GPT(SMALL)
    idx = torch.randint(SMALL.vocab_size, (2, SMALL.context_length))
    _, loss = model(idx, idx)
    loss.backward()
    once = layer_gradient_norms(model)
    model.zero_grad()
    _, loss = model(idx, idx)
    (3 * loss).backward()
    torch.testing.assert_close(torch.tensor(layer_gradient_norms(model)), 3 * torch.tensor(once))


def test_unused_layer_counts_zero_and_frozen_parameters_are_skipped():
    torch.manual_seed(0)
    model = GPT(SMALL)
    model.blocks[0].requires_grad_(False)
    _backward(model)
    assert layer_gradient_norms(model)[0] == 0.0
    assert not any(name.startswith("blocks.0.") for name in gradient_norms(model))


def test_errors():
    model = GPT(SMALL)
    with pytest.raises(ValueError, match="backward"):
        gradient_norms(model)
    with pytest.raises(ValueError, match="backward"):
        layer_gradient_norms(model)
    with pytest.raises(TypeError, match="nn.Module"):
        gradient_norms("not a model")
    with pytest.raises(ValueError, match="ModuleList"):
        layer_gradient_norms(torch.nn.Linear(2, 2))
    bigram = GPT(replace(SMALL, n_layers=0))
    _backward(bigram)
    with pytest.raises(ValueError, match="non-empty"):
        layer_gradient_norms(bigram)


def test_position_cosine_against_a_loop():
    g = torch.Generator().manual_seed(0)
    h = torch.randn(2, 5, 7, generator=g)
    pairs = [torch.cosine_similarity(h[b, i], h[b, j], dim=0)
             for b in range(2) for i in range(5) for j in range(5) if i != j]
    assert position_cosine(h) == pytest.approx(torch.stack(pairs).mean().item(), abs=1e-6)


def test_position_cosine_invariants():
    g = torch.Generator().manual_seed(1)
    h = torch.randn(3, 6, 8, generator=g)
    perm = torch.randperm(6, generator=g)
    # The order of positions and the length of each vector do not matter; a shared vector is 1.
    assert position_cosine(h[:, perm]) == pytest.approx(position_cosine(h), abs=1e-6)
    assert position_cosine(h * torch.rand(3, 6, 1, generator=g).add(0.1)) == pytest.approx(position_cosine(h), abs=1e-6)
    assert position_cosine(torch.randn(1, 1, 8).expand(2, 6, 8)) == pytest.approx(1.0)
    assert position_cosine(torch.cat([h[:, :1], -h[:, :1]], dim=1)) == pytest.approx(-1.0)


def test_position_cosine_errors():
    for bad in (torch.zeros(4, 8), torch.zeros(2, 1, 8), [[1.0]]):
        with pytest.raises(ValueError, match="positions"):
            position_cosine(bad)


def test_update_ratios_measure_how_far_each_matrix_moved():
    from llmscratch.diagnostics import UpdateRatios

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Linear(3, 2))
    watch = UpdateRatios(model, every=2)
    before = model[0].weight.detach().clone()
    with torch.no_grad():
        model[0].weight.mul_(1.5)  # moved by half its size
    watch(1, model)  # not a multiple of `every`: ignored
    watch(2, model)
    assert watch.steps == [2] and set(watch.ratios) == {"0.weight", "1.weight"}  # matrices only
    assert watch.ratios["0.weight"] == [pytest.approx(0.5)] and watch.ratios["1.weight"] == [0.0]
    assert torch.equal(model[0].weight, 1.5 * before)
    with pytest.raises(ValueError):
        UpdateRatios(model, every=0)

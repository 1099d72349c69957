"""llmscratch.embeddings: BagOfEmbeddingsLM shapes, loud errors, and what positions change."""

import math

import pytest
import torch

from llmscratch import BagOfEmbeddingsConfig, BagOfEmbeddingsLM


def _model(positions: bool, hidden_dim: int = 16, seed: int = 0) -> BagOfEmbeddingsLM:
    torch.manual_seed(seed)
    config = BagOfEmbeddingsConfig(
        vocab_size=20, context_length=5, embedding_dim=8, positions=positions, hidden_dim=hidden_dim
    )
    return BagOfEmbeddingsLM(config)


def _idx(seed: int = 1) -> torch.Tensor:
    return torch.randint(20, (7, 5), generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("positions", [False, True])
@pytest.mark.parametrize("hidden_dim", [0, 16])
def test_logits_and_loss_by_hand(positions, hidden_dim):
    """Each window, one slot at a time: h_t = tanh(W (E[x_t] + P[t]) + b) (no tanh layer when
    hidden_dim=0), logits = U mean_t(h_t) + c, and the loss is -log softmax(logits)[target]."""
    model = _model(positions, hidden_dim)
    g = torch.Generator().manual_seed(5)
    with torch.no_grad():  # biases start at zero; make them count
        for layer in (model.hidden, model.output):
            if layer is not None:
                layer.bias.copy_(torch.randn(layer.bias.shape, generator=g))
    idx = _idx()
    targets = torch.randint(20, (7,), generator=g)
    logits, loss = model(idx, targets)
    assert logits.shape == (7, 20) and loss.ndim == 0
    E = model.token_embedding.weight
    P = model.position_embedding.weight if positions else torch.zeros(5, 8)
    expected = []
    for window in idx.tolist():
        slots = []
        for t, token in enumerate(window):
            v = E[token] + P[t]  # (8,)
            slots.append(torch.tanh(model.hidden.weight @ v + model.hidden.bias) if hidden_dim else v)
        mean = sum(slots) / len(slots)
        expected.append(model.output.weight @ mean + model.output.bias)  # (20,)
    expected = torch.stack(expected)  # (7, 20)
    torch.testing.assert_close(logits, expected)
    nll = -torch.log_softmax(expected, dim=-1)[torch.arange(7), targets].mean()
    torch.testing.assert_close(loss, nll)
    no_targets = model(idx)
    torch.testing.assert_close(no_targets[0], logits)
    assert no_targets[1] is None
    # Order: a reversed window changes the logits exactly when a tanh layer follows the positions.
    reversed_logits = model(idx.flip(1))[0]
    if positions and hidden_dim:
        assert not torch.allclose(reversed_logits, logits, atol=1e-4)
    else:
        torch.testing.assert_close(reversed_logits, logits)


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"vocab_size": 0}, ValueError, "vocab_size must be a positive integer, got 0"),
        ({"context_length": -1}, ValueError, "context_length must be a positive integer, got -1"),
        ({"embedding_dim": 2.5}, TypeError, "embedding_dim must be a positive integer, got 2.5"),
        ({"hidden_dim": -1}, ValueError, "hidden_dim must be a non-negative integer, got -1"),
        ({"positions": "yes"}, TypeError, "positions must be a bool"),
        ({"vocab_size": True}, TypeError, "vocab_size must be a positive integer, got True"),
    ],
)
def test_bad_config_raises(kwargs, error, message):
    with pytest.raises(error, match=message):
        BagOfEmbeddingsConfig(**kwargs)


def test_bad_inputs_raise():
    model = _model(True)
    with pytest.raises(ValueError, match=r"context_length=5\), got \(2, 4\)"):
        model(torch.zeros(2, 4, dtype=torch.long))  # wrong window length
    with pytest.raises(ValueError, match=r"outside the vocabulary 0\.\.19"):
        model(torch.full((2, 5), 20))  # id outside the vocabulary
    with pytest.raises(TypeError, match="must be a BagOfEmbeddingsConfig"):
        BagOfEmbeddingsLM({"vocab_size": 20})


@pytest.mark.parametrize("hidden_dim", [0, 16])
def test_without_positions_order_does_not_matter(hidden_dim):
    model = _model(False, hidden_dim)
    idx = _idx()
    perm = torch.randperm(5, generator=torch.Generator().manual_seed(2))
    torch.testing.assert_close(model(idx)[0], model(idx[:, perm])[0])


def test_with_positions_order_matters():
    model = _model(True, 16)
    idx = _idx()
    perm = torch.tensor([4, 3, 2, 1, 0])
    assert not torch.allclose(model(idx)[0], model(idx[:, perm])[0], atol=1e-4)


def test_positions_without_a_hidden_layer_are_only_a_bias():
    """mean(tok + pos) = mean(tok) + mean(pos): a constant, so order still does not matter."""
    model = _model(True, hidden_dim=0)
    idx = _idx()
    torch.testing.assert_close(model(idx)[0], model(idx.flip(1))[0])


@pytest.mark.parametrize("positions", [False, True])
def test_loss_at_init_is_about_ln_v(positions):
    torch.manual_seed(3)
    config = BagOfEmbeddingsConfig(vocab_size=512, context_length=8, positions=positions)
    model = BagOfEmbeddingsLM(config)
    g = torch.Generator().manual_seed(4)
    idx = torch.randint(512, (256, 8), generator=g)
    targets = torch.randint(512, (256,), generator=g)
    _, loss = model(idx, targets)
    assert loss.item() == pytest.approx(math.log(512), abs=0.05)

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
def test_shapes(positions, hidden_dim):
    model = _model(positions, hidden_dim)
    idx = _idx()
    logits, loss = model(idx)
    assert logits.shape == (7, 20) and loss is None
    logits, loss = model(idx, torch.zeros(7, dtype=torch.long))
    assert loss.ndim == 0


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

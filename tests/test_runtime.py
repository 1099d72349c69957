"""llmscratch.runtime: evaluation mode always restored, devices resolved or refused clearly."""

import pytest
import torch

from llmscratch import GPT, GPTConfig, eval_mode, resolve_device


@pytest.mark.parametrize("start_training", [True, False])
def test_eval_mode_restores_the_mode_even_after_an_error(start_training):
    model = GPT(GPTConfig(vocab_size=10, context_length=4, d_model=8, n_layers=1, n_heads=2, dropout=0.5))
    model.train(start_training)
    with pytest.raises(RuntimeError, match="inside the block"):
        with eval_mode(model):
            assert not model.training and not any(m.training for m in model.modules())
            raise RuntimeError("inside the block")
    assert model.training == start_training
    assert all(m.training == start_training for m in model.modules())


def test_eval_mode_turns_dropout_off():
    model = GPT(GPTConfig(vocab_size=10, context_length=4, d_model=8, n_layers=1, n_heads=2, dropout=0.5)).train()
    idx = torch.randint(10, (3, 4))
    with eval_mode(model):
        torch.testing.assert_close(model(idx)[0], model(idx)[0])
    assert not torch.equal(model(idx)[0], model(idx)[0])  # back in training mode: dropout draws again


def test_resolve_device():
    assert resolve_device("cpu") == torch.device("cpu")
    expected = "cuda" if torch.cuda.is_available() else "mps" if torch.backends.mps.is_available() else "cpu"
    assert resolve_device("auto").type == expected
    with pytest.raises(ValueError, match="device must be one of"):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA GPU"):
            resolve_device("cuda")

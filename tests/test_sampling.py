"""llmscratch.sampling: temperature limits, seeded generation, stopping, and the window it feeds."""


import pytest
import torch

from llmscratch import MLPConfig, MLPLanguageModel, NeuralBigram, generate, next_token_probs


def test_temperature_limits():
    logits = torch.tensor([[2.0, 1.0, -1.0], [0.0, 3.0, 0.5]])
    torch.testing.assert_close(next_token_probs(logits, 1.0), torch.softmax(logits, dim=-1))
    # Very low temperature approaches the argmax; very high approaches uniform.
    torch.testing.assert_close(next_token_probs(logits, 1e-3), next_token_probs(logits, 0))
    torch.testing.assert_close(next_token_probs(logits, 1e4), torch.full((2, 3), 1 / 3), atol=1e-3, rtol=0)
    with pytest.raises(ValueError, match="temperature"):
        next_token_probs(logits, -0.5)


def chain_bigram():
    """A bigram that deterministically walks 0 -> 1 -> 2 -> 3 -> 0."""
    model = NeuralBigram(4)
    with torch.no_grad():
        model.weight.fill_(-30.0)
        for a in range(4):
            model.weight[a, (a + 1) % 4] = 30.0
    return model


def test_generation_follows_the_model_and_stops():
    model = chain_bigram()
    out = generate(model, torch.zeros(3, 1, dtype=torch.long), 10, stop_id=0, generator=torch.Generator())
    assert out == [[1, 2, 3]] * 3  # the stop id itself is not returned
    long = generate(model, torch.tensor([[2]]), 6)
    assert long == [[3, 0, 1, 2, 3, 0]]


def test_generation_is_seeded_and_uses_the_last_window():
    torch.manual_seed(0)
    model = MLPLanguageModel(MLPConfig(context_length=3))
    prompt = torch.randint(1, 27, (4, 7))
    a = generate(model, prompt, 20, temperature=1.3, generator=torch.Generator().manual_seed(5))
    b = generate(model, prompt, 20, temperature=1.3, generator=torch.Generator().manual_seed(5))
    assert a == b and all(len(row) == 20 for row in a)
    # Only the last three ids matter to a model with a window of three.
    c = generate(model, prompt[:, -3:], 20, temperature=1.3, generator=torch.Generator().manual_seed(5))
    assert c == a
    assert model.training  # the mode is restored


def test_greedy_generation_is_the_argmax_path():
    torch.manual_seed(0)
    model = MLPLanguageModel(MLPConfig(context_length=2)).eval()
    context = torch.tensor([[0, 0]])
    out = generate(model, context, 5, temperature=0)[0]
    expected, window = [], [0, 0]
    for _ in range(5):
        token = int(model(torch.tensor([window]))[0].argmax())
        expected.append(token)
        window = window[1:] + [token]
    assert out == expected


def test_generation_errors():
    model = MLPLanguageModel(MLPConfig(context_length=3))
    with pytest.raises(ValueError, match="context must have shape"):
        generate(model, torch.zeros(3, dtype=torch.long), 5)
    with pytest.raises(ValueError, match="context_length=3"):  # too short for a fixed window
        generate(model, torch.zeros(1, 2, dtype=torch.long), 5)

"""llmscratch.sampling: temperature limits, seeded generation, stopping, and the window it feeds."""


import pytest
import torch

from llmscratch import MLPConfig, MLPLanguageModel, NeuralBigram, generate, next_token_probs
from llmscratch.sampling import banned_ngram_tokens, min_p_mask, penalize_repetition, top_k_mask, top_p_mask


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
    with pytest.raises(ValueError, match="idx must have shape"):
        generate(model, torch.zeros(3, dtype=torch.long), 5)
    with pytest.raises(ValueError, match="context_length=3"):  # too short for a fixed window
        generate(model, torch.zeros(1, 2, dtype=torch.long), 5)


def test_truncation_masks_by_hand():
    """probs [0.1, 0.4, 0.2, 0.3]: top-2 keeps 0.4 and 0.3; top-p 0.7 keeps 0.4 and 0.3 (0.4 < 0.7, then 0.7
    reaches it), top-p 0.71 adds 0.2; min-p 0.5 keeps tokens with at least 0.2."""
    probs = torch.tensor([[0.1, 0.4, 0.2, 0.3]])
    assert top_k_mask(probs, 2).tolist() == [[False, True, False, True]]
    assert top_k_mask(probs, 10).all()
    assert top_p_mask(probs, 0.7).tolist() == [[False, True, False, True]]
    assert top_p_mask(probs, 0.71).tolist() == [[False, True, True, True]]
    assert top_p_mask(probs, 0.01).tolist() == [[False, True, False, False]]  # the best token always stays
    assert top_p_mask(probs, 1.0).all()
    assert min_p_mask(probs, 0.5).tolist() == [[False, True, True, True]]
    assert min_p_mask(probs, 0.7).tolist() == [[False, True, False, True]]  # 0.3 >= 0.28
    assert min_p_mask(probs, 0.8).tolist() == [[False, True, False, False]]  # 0.3 < 0.32


def test_next_token_probs_truncates_then_renormalises_in_order():
    logits = torch.tensor([0.1, 0.4, 0.2, 0.3]).log()
    torch.testing.assert_close(next_token_probs(logits, top_k=3), torch.tensor([0.0, 4, 2, 3]) / 9)
    # top-k 3 leaves [0, 4/9, 2/9, 3/9]; top-p 0.5 of that keeps 4/9 and 3/9 (4/9 < 0.5)
    torch.testing.assert_close(next_token_probs(logits, top_k=3, top_p=0.5), torch.tensor([0.0, 4, 0, 3]) / 7)
    torch.testing.assert_close(next_token_probs(logits, min_p=0.6), torch.tensor([0.0, 4, 0, 3]) / 7)
    torch.testing.assert_close(next_token_probs(logits), torch.tensor([0.1, 0.4, 0.2, 0.3]))


@pytest.mark.parametrize("kwargs, error, message", [
    (dict(temperature=-0.5), ValueError, "temperature must be >= 0"),
    (dict(temperature="hot"), TypeError, "temperature must be a number"),
    (dict(top_p=0.0), ValueError, r"top_p must be in \(0, 1\]"),
    (dict(top_p=1.5), ValueError, r"top_p must be in \(0, 1\]"),
    (dict(top_k=0), ValueError, "top_k must be a positive integer"),
    (dict(min_p=2.0), ValueError, r"min_p must be in \[0, 1\]"),
    (dict(repetition_penalty=0.0), ValueError, "repetition_penalty must be positive"),
    (dict(no_repeat_ngram_size=0), ValueError, "no_repeat_ngram_size must be a positive integer"),
])
def test_bad_decoding_arguments_are_refused(kwargs, error, message):
    model = NeuralBigram(5)
    with pytest.raises(error, match=message):
        generate(model, torch.zeros(1, 1, dtype=torch.long), 3, **kwargs)


def test_repetition_penalty_and_ngram_blocking():
    logits = torch.tensor([[2.0, -1.0, 0.5, 3.0]])
    out = penalize_repetition(logits, torch.tensor([[0, 1, 1]]), 2.0)
    assert out.tolist() == [[1.0, -2.0, 0.5, 3.0]]  # seen tokens lose probability whatever their sign
    assert banned_ngram_tokens([5, 6, 7, 5, 6], 3) == {7} and banned_ngram_tokens([5, 6], 3) == set()
    # A bigram model whose best next token is always 1: greedy repeats it; blocking 2-grams cannot.
    model = NeuralBigram(4)
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[0.0, 3, 2, 1]] * 4))
    assert generate(model, torch.tensor([[0]]), 4, temperature=0) == [[1, 1, 1, 1]]
    blocked = generate(model, torch.tensor([[0]]), 6, temperature=0, no_repeat_ngram_size=2)[0]
    pairs = list(zip([0] + blocked, blocked))
    assert len(pairs) == len(set(pairs)), pairs  # no bigram occurs twice
    assert generate(model, torch.tensor([[0]]), 2, temperature=0, repetition_penalty=10.0) == [[1, 2]]


def test_top_k_one_is_greedy_and_sampling_stays_in_the_nucleus():
    torch.manual_seed(0)
    model = MLPLanguageModel(MLPConfig(context_length=2))
    prompt = torch.zeros(4, 2, dtype=torch.long)
    greedy = generate(model, prompt, 8, temperature=0)
    assert generate(model, prompt, 8, top_k=1, generator=torch.Generator().manual_seed(3)) == greedy
    nucleus = generate(model, prompt, 8, top_p=0.3, generator=torch.Generator().manual_seed(3))
    for row, ids in zip(prompt.tolist(), nucleus):
        window = row
        for token in ids:  # every sampled token was inside the top-p set of its step
            probs = torch.softmax(model.eval()(torch.tensor([window]))[0], dim=-1)
            assert top_p_mask(probs, 0.3)[0, token]
            window = window[1:] + [token]

"""llmscratch.evaluation: exact totals, and bits per character that do not depend on the cut."""

import math
from dataclasses import replace

import pytest
import torch

from llmscratch import (
    GPT,
    GPTConfig,
    MLPConfig,
    MLPLanguageModel,
    bits_per_char,
    evaluate_loss,
    stream_windows,
    token_nlls,
)
from llmscratch.evaluation import shuffled_prefix_loss


def model(vocab_size=11, context_length=3, seed=0):
    torch.manual_seed(seed)
    return MLPLanguageModel(MLPConfig(vocab_size=vocab_size, context_length=context_length, hidden_dim=16))


@pytest.mark.parametrize("V,n_tokens,n_chars", [(7, 50, 50), (256, 40, 173), (1024, 9, 31)])
def test_uniform_model_costs_log2_V_per_token(V, n_tokens, n_chars):
    m = model(vocab_size=V)
    torch.nn.init.zeros_(m.output.weight)
    ids = torch.randint(V, (n_tokens,), generator=torch.Generator().manual_seed(1))
    got = bits_per_char(m, ids, n_chars, context=torch.zeros(5, dtype=torch.long))
    assert got == pytest.approx(math.log2(V) * n_tokens / n_chars, rel=1e-6)


def test_agrees_with_evaluate_loss_over_the_same_windows():
    m = model()
    stream = torch.randint(11, (200,), generator=torch.Generator().manual_seed(2))
    T = m.context_length
    nll = token_nlls(m, stream[T:], context=stream[:T], batch_size=7)  # batches of any size
    X, Y = stream_windows(stream, T)
    assert float(nll.mean()) == pytest.approx(evaluate_loss(m, X, Y), rel=1e-5)


def test_only_the_last_context_tokens_matter_and_mode_is_restored():
    m = model()
    m.train()
    ids = torch.tensor([1, 2, 3, 4])
    a = token_nlls(m, ids, context=torch.tensor([9, 9, 5, 6, 7]))
    b = token_nlls(m, ids, context=torch.tensor([5, 6, 7]))
    torch.testing.assert_close(a, b)
    assert m.training


def test_rejects_short_context_and_bad_lengths():
    m = model()
    with pytest.raises(ValueError, match="context"):
        token_nlls(m, torch.tensor([1, 2]), context=torch.tensor([1]))
    with pytest.raises(ValueError, match="n_chars"):
        bits_per_char(m, torch.tensor([1, 2]), 0, context=torch.tensor([1, 2, 3]))


def test_position_losses_per_position_and_mean():
    """Against a direct computation: the mean over positions is the ordinary mean loss."""
    from llmscratch import GPT, GPTConfig
    from llmscratch.evaluation import position_losses

    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=20, context_length=8, d_model=16, n_layers=1, n_heads=2, position="rope"))
    stream = torch.randint(20, (100,))
    curve = position_losses(model, stream, length=8, batch_size=3)
    pieces = stream[: 11 * 9].view(11, 9)
    _, loss = model(pieces[:, :-1], pieces[:, 1:])
    assert curve.shape == (8,)
    torch.testing.assert_close(curve.mean(), loss.detach(), rtol=1e-5, atol=1e-6)
    longer = position_losses(model, stream, length=16)  # rope: longer than training is allowed
    assert longer.shape == (16,)
    with pytest.raises(ValueError, match="holds no sequence"):
        position_losses(model, stream[:5], length=8)


TINY_GPT = GPTConfig(vocab_size=20, context_length=8, d_model=16, n_layers=1, n_heads=2)


def test_shuffled_prefix_loss_is_blind_to_order_for_one_layer_without_positions():
    """One layer, no positions: the last token attends to a set, so shuffling what precedes it changes nothing."""
    stream = torch.randint(0, TINY_GPT.vocab_size, (300,), generator=torch.Generator().manual_seed(0))
    torch.manual_seed(0)
    bag = GPT(replace(TINY_GPT, position="none"))
    intact, shuffled = shuffled_prefix_loss(bag, stream, 8)
    assert intact == pytest.approx(shuffled, abs=1e-5)
    torch.manual_seed(0)
    ordered = GPT(replace(TINY_GPT, position="learned"))
    for p in ordered.parameters():  # large weights: a strong position signal and sharp attention
        torch.nn.init.normal_(p, std=0.5)
    intact, shuffled = shuffled_prefix_loss(ordered, stream, 8)
    assert abs(intact - shuffled) > 1e-4
    with pytest.raises(ValueError, match="length"):
        shuffled_prefix_loss(bag, stream, 1)


def _gpt(T=8, seed=0):
    torch.manual_seed(seed)
    return GPT(GPTConfig(vocab_size=11, context_length=T, d_model=16, n_layers=1, n_heads=2))


def test_sliding_nlls_stride_1_is_every_token_from_its_full_window():
    from llmscratch.evaluation import sliding_nlls

    m = _gpt()
    g = torch.Generator().manual_seed(1)
    ids, context = torch.randint(0, 11, (37,), generator=g), torch.randint(0, 11, (20,), generator=g)
    stream = torch.cat([context[-8:], ids])
    with torch.no_grad():  # brute force: one window per token, its last prediction
        expected = torch.stack([torch.nn.functional.cross_entropy(m(stream[j : j + 8][None])[0][0, -1], stream[j + 8])
                                for j in range(len(ids))])
    assert torch.allclose(sliding_nlls(m, ids, context, stride=1), expected, atol=1e-5)
    for stride in (3, 8):  # a longer stride gives each token less context: different, same count
        coarse = sliding_nlls(m, ids, context, stride=stride)
        assert coarse.shape == expected.shape and not torch.allclose(coarse, expected, atol=1e-4)
        # the last token of each window still has the full window
        last = torch.arange(stride - 1, len(ids), stride)
        assert torch.allclose(coarse[last], expected[last], atol=1e-5)


def test_sliding_nlls_rejects_bad_stride_and_short_context():
    from llmscratch.evaluation import sliding_nlls

    m = _gpt()
    ids = torch.randint(0, 11, (10,))
    for stride in (0, 9, 2.0):
        with pytest.raises(ValueError, match="stride"):
            sliding_nlls(m, ids, torch.zeros(8, dtype=torch.long), stride=stride)
    with pytest.raises(ValueError, match="context"):
        sliding_nlls(m, ids, torch.zeros(7, dtype=torch.long))

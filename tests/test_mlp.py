"""llmscratch.mlp: NeuralBigram and MLPLanguageModel against explicit references, and loud errors."""

import math

import pytest
import torch
import torch.nn.functional as F

from llmscratch import CountingBigram, MLPConfig, MLPLanguageModel, NeuralBigram


def test_neural_bigram_starts_uniform_at_ln_v():
    model = NeuralBigram(27)
    idx = torch.randint(27, (50, 1), generator=torch.Generator().manual_seed(0))
    targets = torch.randint(27, (50,), generator=torch.Generator().manual_seed(1))
    _, loss = model(idx, targets)
    assert loss.item() == pytest.approx(math.log(27), abs=1e-6)


def test_cross_entropy_is_the_mean_negative_log_likelihood():
    """Against the formula: loss = -mean(log softmax(logits)[target])."""
    g = torch.Generator().manual_seed(0)
    model = NeuralBigram(5)
    with torch.no_grad():
        model.weight.copy_(torch.randn(5, 5, generator=g))
    idx = torch.randint(5, (40, 1), generator=g)
    targets = torch.randint(5, (40,), generator=g)
    logits, loss = model(idx, targets)
    probs = torch.exp(model.weight) / torch.exp(model.weight).sum(dim=1, keepdim=True)
    expected = -torch.log(probs[idx[:, 0], targets]).mean()
    torch.testing.assert_close(loss, expected)
    torch.testing.assert_close(logits, F.one_hot(idx[:, 0], 5).float() @ model.weight)


def test_neural_bigram_converges_to_the_counting_solution():
    """Gradient descent on cross-entropy finds the normalised counts (every pair seen, so the optimum is finite)."""
    sequences = [[1, 2, 3], [2, 1], [3, 3, 1, 2], [1], [2, 3, 2], [3, 1, 1], [1, 3], [2, 2], [3, 2, 1, 3], []]
    counting = CountingBigram.fit(sequences, vocab_size=4)
    assert (counting.counts > 0).all()
    first = torch.tensor([a for s in sequences for a in [0, *s]]).unsqueeze(1)  # (N, 1)
    second = torch.tensor([b for s in sequences for b in [*s, 0]])  # (N,)
    model = NeuralBigram(4)
    optimizer = torch.optim.LBFGS(model.parameters(), max_iter=500, tolerance_grad=1e-10, tolerance_change=1e-12)

    def closure():
        optimizer.zero_grad()
        _, loss = model(first, second)
        loss.backward()
        return loss

    optimizer.step(closure)
    torch.testing.assert_close(model.probabilities().double(), counting.probabilities(), atol=1e-4, rtol=0)
    _, loss = model(first, second)
    assert loss.item() == pytest.approx(counting.nll(sequences), abs=1e-6)


def explicit_forward(model: MLPLanguageModel, idx: torch.Tensor) -> torch.Tensor:
    """The same computation written with one-hot vectors and matrix products only."""
    c = model.config
    onehot = F.one_hot(idx, c.vocab_size).float()  # (B, T, V)
    emb = onehot @ model.embedding.weight  # (B, T, E)
    x = torch.cat([emb[:, t, :] for t in range(c.context_length)], dim=1)  # (B, T*E)
    pre = x @ model.hidden.weight.T + model.hidden.bias
    if c.layer_norm:
        mean = pre.mean(dim=1, keepdim=True)
        var = pre.var(dim=1, unbiased=False, keepdim=True)
        pre = (pre - mean) / torch.sqrt(var + model.norm.eps) * model.norm.weight + model.norm.bias
    return torch.tanh(pre) @ model.output.weight.T + model.output.bias


@pytest.mark.parametrize("layer_norm", [False, True])
@pytest.mark.parametrize("context_length", [1, 3, 8])
def test_mlp_matches_one_hot_matmul(context_length, layer_norm):
    torch.manual_seed(0)
    model = MLPLanguageModel(MLPConfig(vocab_size=11, context_length=context_length, embedding_dim=4,
                                       hidden_dim=16, layer_norm=layer_norm)).eval()
    with torch.no_grad():  # non-trivial norm parameters, so the reference checks them too
        for p in model.norm.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    idx = torch.randint(11, (7, context_length))
    logits, loss = model(idx)
    assert loss is None and logits.shape == (7, 11)
    torch.testing.assert_close(logits, explicit_forward(model, idx))


def test_the_order_of_the_context_matters():
    """Concatenation keeps positions apart: 'ab' and 'ba' are different contexts."""
    torch.manual_seed(0)
    model = MLPLanguageModel(MLPConfig(vocab_size=5, context_length=2, embedding_dim=3, hidden_dim=8))
    logits, _ = model(torch.tensor([[1, 2], [2, 1]]))
    assert not torch.allclose(logits[0], logits[1])


def test_initial_loss_is_near_uniform():
    torch.manual_seed(0)
    model = MLPLanguageModel(MLPConfig(context_length=8, embedding_dim=24, hidden_dim=512))
    idx = torch.randint(27, (512, 8))
    targets = torch.randint(27, (512,))
    _, loss = model(idx, targets)
    assert abs(loss.item() - math.log(27)) < 0.05


def test_dropout_is_off_in_eval_mode():
    torch.manual_seed(0)
    model = MLPLanguageModel(MLPConfig(dropout=0.5))
    idx = torch.randint(27, (4, 3))
    model.eval()
    torch.testing.assert_close(model(idx)[0], model(idx)[0])
    model.train()
    assert not torch.allclose(model(idx)[0], model(idx)[0])


@pytest.mark.parametrize("field", ["vocab_size", "context_length", "embedding_dim", "hidden_dim"])
@pytest.mark.parametrize("value", [0, -3, 2.5, True])
def test_bad_config_names_the_field(field, value):
    error = ValueError if isinstance(value, int) and not isinstance(value, bool) else TypeError
    with pytest.raises(error, match=f"MLPConfig.{field} must be a positive integer"):
        MLPConfig(**{field: value})


def test_bad_dropout_and_bad_vocab():
    with pytest.raises(ValueError, match="dropout"):
        MLPConfig(dropout=1.0)
    with pytest.raises(ValueError, match="vocab_size must be a positive integer"):
        NeuralBigram(0)
    with pytest.raises(TypeError, match="must be an MLPConfig"):
        MLPLanguageModel({"vocab_size": 27})


@pytest.mark.parametrize(
    "idx, error, message",
    [
        (torch.zeros(4, 2, dtype=torch.long), ValueError, r"shape \(batch, context_length=3\), got \(4, 2\)"),
        (torch.zeros(4, dtype=torch.long), ValueError, r"got \(4,\)"),
        (torch.zeros(4, 3), TypeError, "int64 or int32 tensor"),
        (torch.zeros(4, 3, dtype=torch.uint8), TypeError, "int64 or int32 tensor"),
        (torch.full((2, 3), 27), ValueError, r"outside the vocabulary 0..26"),
        (torch.full((2, 3), -1), ValueError, "outside the vocabulary"),
        ([[0, 0, 0]], TypeError, "tensor of token ids, got list"),
    ],
)
def test_bad_input_is_a_clear_error(idx, error, message):
    model = MLPLanguageModel(MLPConfig())
    with pytest.raises(error, match=message):
        model(idx)


def test_bad_targets_shape():
    model = MLPLanguageModel(MLPConfig())
    with pytest.raises(ValueError, match=r"targets must have shape \(4,\)"):
        model(torch.zeros(4, 3, dtype=torch.long), torch.zeros(4, 1, dtype=torch.long))

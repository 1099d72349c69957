"""Attention statistics: hand-worked heads, a brute-force reference, invariants, and errors."""

import math

import pytest
import torch

from llmscratch import GPT, GPTConfig
from llmscratch.analysis import STATISTICS, attention_statistics
from llmscratch.attention import attention_weights, causal_mask


def uniform(T: int) -> torch.Tensor:
    """Causal attention that spreads evenly over the keys it may see: (T, T)."""
    mask = causal_mask(T).double()
    return mask / mask.sum(-1, keepdim=True)


def as_5d(w: torch.Tensor) -> torch.Tensor:
    return w.view(1, 1, 1, *w.shape)  # (L, B, H, T, T) with one of each


def test_uniform_head_by_hand():
    """Query i spreads 1/(i+1) over keys 0..i: distance i/2, entropy ln(i+1), previous = first = current = 1/(i+1)."""
    T, start = 6, 2
    stats = attention_statistics(as_5d(uniform(T)), start=start)
    i = torch.arange(start, T, dtype=torch.float64)
    expected = {"distance": (i / 2).mean(), "entropy": torch.log(i + 1).mean(), "previous": (1 / (i + 1)).mean(),
                "first": (1 / (i + 1)).mean(), "current": (1 / (i + 1)).mean()}
    for name in STATISTICS:
        torch.testing.assert_close(stats[name], expected[name].float().view(1, 1))


def test_sink_and_self_heads_by_hand():
    """All weight on token 0: distance is the mean query position, entropy 0. All on itself: distance 0."""
    T = 5
    sink = torch.zeros(T, T)
    sink[:, 0] = 1
    itself = torch.eye(T)
    stats = attention_statistics(torch.stack([as_5d(sink)[0], as_5d(itself)[0]]), start=1)  # (2, 1, 1, T, T)
    torch.testing.assert_close(stats["distance"], torch.tensor([[2.5], [0.0]]))  # mean of 1, 2, 3, 4
    torch.testing.assert_close(stats["entropy"], torch.zeros(2, 1))
    torch.testing.assert_close(stats["first"], torch.tensor([[1.0], [0.0]]))
    torch.testing.assert_close(stats["current"], torch.tensor([[0.0], [1.0]]))
    torch.testing.assert_close(stats["previous"], torch.tensor([[0.25], [0.0]]))  # only query 1


def brute_force(w: torch.Tensor, start: int) -> dict[str, torch.Tensor]:
    """The same statistics with explicit loops over layers, heads, sequences and queries."""
    L, B, H, T, _ = w.shape
    out = {name: torch.zeros(L, H, dtype=torch.float64) for name in STATISTICS}
    for layer in range(L):
        for h in range(H):
            for b in range(B):
                for i in range(start, T):
                    row = w[layer, b, h, i].double()
                    out["distance"][layer, h] += sum(row[j] * (i - j) for j in range(i + 1))
                    out["entropy"][layer, h] -= sum(row[j] * math.log(row[j]) for j in range(i + 1) if row[j] > 0)
                    out["previous"][layer, h] += row[i - 1]
                    out["first"][layer, h] += row[0]
                    out["current"][layer, h] += row[i]
    n = B * (T - start)
    return {name: (value / n).float() for name, value in out.items()}


@pytest.mark.parametrize("start", [1, 3, 6])
def test_matches_brute_force_on_softmax_weights(start):
    g = torch.Generator().manual_seed(0)
    q, k = torch.randn(2, 3, 2, 7, 4, generator=g), torch.randn(2, 3, 2, 7, 4, generator=g)
    w = attention_weights(q, k, is_causal=True)  # (L=2, B=3, H=2, T=7, T=7)
    stats, ref = attention_statistics(w, start=start), brute_force(w, start)
    for name in STATISTICS:
        assert stats[name].shape == (2, 2)
        torch.testing.assert_close(stats[name], ref[name])


def test_list_of_layers_equals_stacked_tensor_and_model_trace():
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=20, context_length=8, d_model=16, n_layers=3, n_heads=2))
    attention = model.trace(torch.randint(0, 20, (4, 8))).attention  # 3 x (4, 2, 8, 8)
    from_list, from_tensor = attention_statistics(attention), attention_statistics(torch.stack(attention))
    for name in STATISTICS:
        assert from_list[name].shape == (3, 2)
        torch.testing.assert_close(from_list[name], from_tensor[name])
    # Invariants: weights are fractions, distances lie in [0, T-1], entropy in [0, ln T].
    for name in ("previous", "first", "current"):
        assert ((from_list[name] >= 0) & (from_list[name] <= 1)).all()
    assert ((from_list["distance"] >= 0) & (from_list["distance"] <= 7)).all()
    assert ((from_list["entropy"] >= 0) & (from_list["entropy"] <= math.log(8) + 1e-6)).all()


def test_batch_is_averaged():
    """Two sequences, one previous-token and one current-token, average to half of each."""
    T = 4
    prev = torch.zeros(T, T)
    prev[0, 0] = 1
    prev[torch.arange(1, T), torch.arange(T - 1)] = 1
    w = torch.stack([prev, torch.eye(T)]).view(1, 2, 1, T, T)
    stats = attention_statistics(w)
    torch.testing.assert_close(stats["previous"], torch.tensor([[0.5]]))
    torch.testing.assert_close(stats["current"], torch.tensor([[0.5]]))
    torch.testing.assert_close(stats["distance"], torch.tensor([[0.5]]))


@pytest.mark.parametrize(
    "weights, start, message",
    [
        (as_5d(uniform(4)), 0, "start"),
        (as_5d(uniform(4)), 4, "start"),
        (uniform(4), 1, "shape"),
        ([], 1, "list"),
        ([uniform(4).view(1, 1, 4, 4), uniform(5).view(1, 1, 5, 5)], 1, "same shape"),
        (as_5d(2 * uniform(4)), 1, "summing to 1"),
        (as_5d(torch.full((4, 4), 0.25)), 1, "future"),
    ],
)
def test_rejects_bad_input(weights, start, message):
    with pytest.raises(ValueError, match=message):
        attention_statistics(weights, start=start)

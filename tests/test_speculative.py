"""llmscratch.speculative: speculative decoding writes exactly the target model's distribution.

By exact enumeration on tiny GPTs (3 tokens, a few steps): every path through the procedure's
random choices, weighted by its probability, against the product of the target's own next-token
probabilities, for several k and temperatures. Wrong acceptance rules are caught by the same
enumeration. Then the cached models: greedy speculative decoding is the target's greedy text,
and the cache cut back after a rejection gives the probabilities of a fresh pass.
"""

import itertools

import pytest
import torch

from llmscratch import GPT, GPTConfig, generate
from llmscratch.speculative import (
    CachedModel,
    RandomChooser,
    SpeculativeStats,
    exact_distribution,
    speculative_decode,
    speculative_generate,
    verify,
)

pytestmark = pytest.mark.usefixtures("one_thread")

V, PROMPT = 3, [1, 0]


def tiny(seed: int, layers: int, position: str = "learned", vocab: int = V) -> GPT:
    """A random GPT with weights spread (x20) so that its distributions are far from uniform."""
    torch.manual_seed(seed)
    model = GPT(GPTConfig(vocab_size=vocab, context_length=16, d_model=16, n_layers=layers, n_heads=2,
                          position=position)).eval()
    with torch.no_grad():
        for p in model.parameters():
            if p.ndim == 2:
                p.mul_(20.0)
    return model


def table(model: GPT, depth: int, temperature: float):
    """``next_probs`` of `model` for every continuation of PROMPT up to `depth` tokens, computed once
    (the enumeration replays the procedure thousands of times; a lookup keeps that fast)."""
    probs = {}
    with torch.no_grad():
        for length in range(depth + 1):
            for tail in itertools.product(range(V), repeat=length):
                seq = tuple(PROMPT) + tail
                probs[seq] = torch.softmax(model(torch.tensor([seq]))[0][0, -1] / temperature, dim=-1)
    return lambda seq, n: torch.stack([probs[tuple(seq[:len(seq) - n + 1 + i])] for i in range(n)])


def target_distribution(next_probs, n: int) -> dict[tuple[int, ...], float]:
    out = {}
    for seq in itertools.product(range(V), repeat=n):
        out[seq] = 1.0
        for i, x in enumerate(seq):
            out[seq] *= float(next_probs(PROMPT + list(seq[:i]), 1)[0, x])
    return out


def speculative_distribution(target, draft, n: int, k: int, rule=verify) -> dict[tuple[int, ...], float]:
    return exact_distribution(lambda chooser: speculative_decode(target, draft, PROMPT, n, k=k, chooser=chooser,
                                                                 verify_fn=rule)[0])


@pytest.mark.parametrize("n,k,temperature", [(2, 2, 1.0), (3, 1, 1.0), (2, 3, 0.7)])
def test_the_output_distribution_is_the_targets_by_exact_enumeration(n, k, temperature):
    target = table(tiny(0, 2), n + k, temperature)
    draft = table(tiny(1, 1), n + k, temperature)
    expected = target_distribution(target, n)
    got = speculative_distribution(target, draft, n, k)
    assert set(got) <= set(expected) and sum(got.values()) == pytest.approx(1.0, abs=1e-6)
    for seq, prob in expected.items():
        assert got.get(seq, 0.0) == pytest.approx(prob, abs=1e-6), seq
    # The draft really differs from the target, so the equality is not a coincidence.
    assert not torch.allclose(target(PROMPT, 1), draft(PROMPT, 1), atol=0.05)


def wrong_resample_from_p(p, q, drafted, chooser):
    """A plausible slip: after a rejection, draw from p instead of from norm(max(0, p - q))."""
    out = []
    for i, x in enumerate(drafted):
        if not chooser.accept(min(1.0, float(p[i, x] / q[i, x]))):
            return out + [chooser.sample(p[i])]
        out.append(x)
    return out + [chooser.sample(p[len(drafted)])]


def wrong_accept_every_guess(p, q, drafted, chooser):
    return list(drafted) + [chooser.sample(p[len(drafted)])]


@pytest.mark.parametrize("rule", [wrong_resample_from_p, wrong_accept_every_guess])
def test_the_enumeration_catches_a_wrong_acceptance_rule(rule):
    target, draft = table(tiny(0, 2), 4, 1.0), table(tiny(1, 1), 4, 1.0)
    expected, got = target_distribution(target, 2), speculative_distribution(target, draft, 2, 2, rule)
    assert max(abs(got.get(s, 0.0) - p) for s, p in expected.items()) > 0.01


def test_the_hand_worked_round():
    """p = (0.5, 0.5), q = (0.9, 0.1), guess 0: kept with probability 0.5 / 0.9; the residual
    max(0, p - q) = (0, 0.4) normalised is (0, 1), so a rejection always writes 1.
    The first token is 0 with probability 0.9 · 5/9 = 0.5: the target's."""
    p, q = torch.tensor([[0.5, 0.5], [0.5, 0.5]]), torch.tensor([[0.9, 0.1]])
    out = exact_distribution(lambda ch: verify(p, q, [ch.sample(q[0])], ch)[:1])  # the guess drawn from q
    assert out[(0,)] == pytest.approx(0.5) and out[(1,)] == pytest.approx(0.5)
    given_0 = exact_distribution(lambda ch: verify(p, q, [0], ch))  # the guess 0, for certain
    assert given_0[(1,)] == pytest.approx(1 - 0.5 / 0.9)  # rejected: the residual's one token, and stop
    assert given_0[(0, 0)] + given_0[(0, 1)] == pytest.approx(0.5 / 0.9)  # kept, and a bonus token


@pytest.mark.parametrize("position", ["learned", "rope"])
def test_greedy_speculative_decoding_writes_the_targets_greedy_text(position):
    target, draft = tiny(0, 2, position, vocab=20), tiny(1, 1, position, vocab=20)
    for k in (1, 3):
        ids, stats = speculative_generate(target, draft, [3, 4, 5], 10, k=k, temperature=0)
        assert ids == generate(target, torch.tensor([[3, 4, 5]]), 10, temperature=0)[0]
        assert stats.rounds <= 10 and 0 <= stats.acceptance_rate <= 1


def test_a_perfect_draft_is_always_accepted():
    target = tiny(0, 2, vocab=20)
    ids, stats = speculative_generate(target, target, [3, 4], 9, k=2, generator=torch.Generator().manual_seed(0))
    assert stats.acceptance_rate == 1.0 and stats.tokens_per_round == 3.0 and len(ids) == 9


def test_the_cache_cut_back_after_a_rejection_gives_a_fresh_pass():
    model = tiny(0, 2, "rope", vocab=20)
    cached = CachedModel(model)
    cached([1, 2, 3, 4, 5], 2)  # reads 5 tokens
    after_rejection = cached([1, 2, 3, 9, 8, 7], 3)  # shares 3 with the cache: keep 3, read 3
    with torch.no_grad():
        fresh = torch.softmax(model(torch.tensor([[1, 2, 3, 9, 8, 7]]))[0][0, -3:], dim=-1)
    torch.testing.assert_close(after_rejection, fresh, atol=1e-5, rtol=1e-5)
    assert cached.cache.length == 6 and cached.calls == 2


def test_stats_and_bad_arguments():
    assert SpeculativeStats(rounds=2, drafted=8, accepted=6).tokens_per_round == 4.0
    target, other = tiny(0, 1, vocab=20), tiny(0, 1, vocab=21)
    with pytest.raises(ValueError, match="vocabulary"):
        speculative_generate(target, other, [1], 3)
    with pytest.raises(ValueError, match="context_length"):
        speculative_generate(target, target, [1], 14, k=4)
    with pytest.raises(ValueError, match="attention_window"):
        CachedModel(GPT(GPTConfig(vocab_size=20, context_length=16, d_model=16, n_layers=1, n_heads=2,
                                  position="rope", attention_window=4)))
    with pytest.raises(ValueError, match="k"):
        speculative_decode(lambda s, n: None, lambda s, n: None, [1], 3, k=0, chooser=RandomChooser())

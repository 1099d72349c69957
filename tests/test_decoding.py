"""llmscratch.decoding: beam search is greedy with one beam, and finds the best sequence where greedy does not."""

import itertools
import math

import pytest
import torch

from llmscratch import GPT, GPTConfig, beam_search, generate
from llmscratch.decoding import sequence_score


class Table(torch.nn.Module):
    """A model whose next-token log-probabilities depend on the last token only: scores are known exactly."""

    context_length = 3

    def __init__(self, log_probs: torch.Tensor) -> None:
        super().__init__()
        self.log_probs = log_probs

    def forward(self, idx):
        return self.log_probs[idx[:, -1]], None


def _random_table(seed: int, V: int = 4) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.log_softmax(3 * torch.randn(V, V, generator=g), dim=-1).double()


def _exhaustive_best(log_probs: torch.Tensor, start: int, length: int) -> list[int]:
    V = log_probs.shape[0]
    def total(seq):
        return sum(float(log_probs[a, b]) for a, b in zip([start, *seq], seq))
    return list(max(itertools.product(range(V), repeat=length), key=total))


@pytest.mark.parametrize("seed", range(5))
def test_one_beam_is_greedy_on_a_gpt(seed):
    torch.manual_seed(seed)
    model = GPT(GPTConfig(vocab_size=30, context_length=8, d_model=16, n_layers=1, n_heads=2))
    prompt = torch.randint(30, (2, 3), generator=torch.Generator().manual_seed(seed))
    assert beam_search(model, prompt, 12, num_beams=1) == generate(model, prompt, 12, temperature=0)
    assert beam_search(model, prompt, 12, num_beams=1, stop_id=5) == generate(model, prompt, 12, temperature=0,
                                                                                stop_id=5)


@pytest.mark.parametrize("seed", range(8))
def test_enough_beams_find_the_exhaustive_best(seed):
    """With V ** (L - 1) beams nothing is pruned before the last step, so the search is exhaustive."""
    table = _random_table(seed)
    model = Table(table)
    best = _exhaustive_best(table, start=0, length=4)
    assert beam_search(model, torch.tensor([[0]]), 4, num_beams=4**3, length_penalty=0.0) == [best]
    narrow = beam_search(model, torch.tensor([[0]]), 4, num_beams=2, length_penalty=0.0)

    def total(seq):
        return sum(float(table[a, b]) for a, b in zip([0, *seq], seq))
    assert total(best) >= total(narrow[0])  # fewer beams can only miss the best, never beat it


def test_beam_search_beats_greedy_where_greedy_is_short_sighted():
    p = torch.tensor([[1e-9, 0.55, 0.45], [1e-9, 0.5, 0.5], [1e-9, 0.05, 0.95]]).log()
    model = Table(p)
    greedy = generate(model, torch.tensor([[0]]), 2, temperature=0)[0]
    beam = beam_search(model, torch.tensor([[0]]), 2, num_beams=2)[0]
    assert greedy == [1, 1] and beam == [2, 2]
    assert math.exp(p[0, 2] + p[2, 2]) > math.exp(p[0, 1] + p[1, 1])


def test_length_penalty_decides_between_a_short_and_a_long_ending():
    """Token 3 stops. From 0: stop at once (p 0.4, one token), or go to 1 (0.6) and then stop (0.9): two tokens,
    total 0.54. Per-token means (length_penalty 1) prefer the longer ending; a negative penalty, which
    multiplies the (negative) total by a power of the length, prefers the shorter one."""
    p = torch.full((4, 4), 1e-9)
    p[0, 3], p[0, 1] = 0.4, 0.6
    p[1, 3], p[1, 1] = 0.9, 0.1
    model = Table(p.log())
    assert beam_search(model, torch.tensor([[0]]), 3, num_beams=2, stop_id=3, length_penalty=1.0) == [[1]]
    assert sequence_score(math.log(0.4), 1, 1.0) < sequence_score(math.log(0.6 * 0.9), 2, 1.0)
    # With a strong penalty on length (negative), the one-token ending wins.
    assert beam_search(model, torch.tensor([[0]]), 3, num_beams=2, stop_id=3, length_penalty=-2.0) == [[]]


def test_bad_arguments():
    model = Table(_random_table(0))
    with pytest.raises(ValueError, match="num_beams must be a positive integer"):
        beam_search(model, torch.tensor([[0]]), 3, num_beams=0)
    with pytest.raises(ValueError, match=r"idx must have shape \(batch, length >= 1\)"):
        beam_search(model, torch.tensor([0]), 3, num_beams=2)
    with pytest.raises(ValueError, match="max_new_tokens must be >= 0"):
        beam_search(model, torch.tensor([[0]]), -1, num_beams=2)


def test_a_batch_of_prompts_of_different_lengths_continues_each_as_if_alone():
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=30, context_length=8, d_model=16, n_layers=1, n_heads=2))
    prompts = [[1, 2, 3], [4], [5, 6, 7, 8, 9], [10, 11, 12], [13]]
    from llmscratch.sampling import generate_batch

    together = generate_batch(model, prompts, 6, temperature=0)
    alone = [generate(model, torch.tensor([p]), 6, temperature=0)[0] for p in prompts]
    assert together == alone
    stop = alone[0][2]
    stopped = generate_batch(model, prompts, 6, temperature=0, stop_id=stop)
    assert stopped[0] == alone[0][: alone[0].index(stop)]  # the stop token ends that row, not included
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    assert generate_batch(model, prompts, 5, generator=g1) == generate_batch(model, prompts, 5, generator=g2)
    with pytest.raises(ValueError, match="non-empty"):
        generate_batch(model, [[1], []], 3)
    with pytest.raises(ValueError, match="non-empty list"):
        generate_batch(model, [], 3)


def test_distinct_n_and_repeated_ngram_share_by_hand():
    from llmscratch.decoding import distinct_n, repeated_ngram_share

    assert distinct_n([[1, 2, 3, 4]], 2) == 1.0
    assert distinct_n([[7, 7, 7, 7, 7]], 1) == 0.2 and distinct_n([[1, 2], [1, 2]], 2) == 0.5
    assert distinct_n([[1]], 2) == 0.0
    assert repeated_ngram_share([1, 2, 3, 1, 2, 3, 1], 3) == pytest.approx(2 / 5)  # (1,2,3) and (2,3,1) again
    assert repeated_ngram_share([5, 6, 7], 1) == 0.0 and repeated_ngram_share([], 2) == 0.0
    with pytest.raises(ValueError):
        distinct_n([[1, 2]], 0)

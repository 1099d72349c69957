"""Beam search: look for the likeliest continuation instead of sampling one; and how varied a text is.

Greedy decoding takes the most likely token at every step, and can walk past a sequence that is
likelier as a whole because its first token was not the best. Beam search keeps the
`num_beams` best partial sequences (beams) at every step: each beam is extended by each of its
`num_beams` most likely next tokens, and the best `num_beams` of those candidates, by total
log-probability, go on. A beam that produces `stop_id` is finished and set aside.

Finished sequences of different lengths are compared by their total log-probability divided
by ``length ** length_penalty`` (the length counts the generated tokens, the stop token
included): 0 compares raw totals, which favours short sequences since every token costs
probability; 1 compares the mean log-probability per token. With ``num_beams=1`` it is greedy
decoding. Beams still running after `max_new_tokens` are scored the same way.

    >>> import torch
    >>> class Table(torch.nn.Module):  # next-token logits depend on the last token only
    ...     context_length = 4
    ...     def __init__(self, logits):
    ...         super().__init__()
    ...         self.logits = logits
    ...     def forward(self, idx):
    ...         return self.logits[idx[:, -1]], None
    >>> p = torch.tensor([[0.0, 0.55, 0.45], [0.0, 0.5, 0.5], [0.0, 0.05, 0.95]])  # from token 0, 1, 2
    >>> model = Table(p.clamp_min(1e-9).log())
    >>> beam_search(model, torch.tensor([[0]]), 2, num_beams=1)  # greedy: 0.55 * 0.5
    [[1, 1]]
    >>> beam_search(model, torch.tensor([[0]]), 2, num_beams=2)  # 0.45 * 0.95 is likelier
    [[2, 2]]

Two measures describe what a decoding strategy writes. `distinct_n` is the share of the
n-grams in a set of samples that are different from each other (Li et al. 2016): 1 when
nothing repeats, near 0 for a loop. `repeated_ngram_share` is the share of a sample's n-grams
that already occurred earlier in it, the loops that greedy and beam search fall into.

    >>> distinct_n([[1, 2, 1, 2, 1]], 2), repeated_ngram_share([1, 2, 1, 2, 1], 2)
    (0.5, 0.5)

Left out: diverse beam groups, constraints, and the "early stopping" heuristics of larger
libraries (this search always runs `max_new_tokens` steps unless every beam has finished).

References: Li et al., "A Diversity-Promoting Objective Function for Neural Conversation
Models" (NAACL 2016) for distinct-n; the beam search of machine translation (Sutskever et al., "Sequence to Sequence
Learning with Neural Networks", 2014); Wu et al., "Google's Neural Machine Translation System"
(2016) for length normalisation.
"""

from __future__ import annotations

import torch

from .runtime import eval_mode
from .sampling import last_logits

__all__ = ["beam_search", "distinct_n", "repeated_ngram_share", "sequence_score"]


def sequence_score(total_log_prob: float, length: int, length_penalty: float) -> float:
    """The score beams are ranked by: total log-probability / length ** length_penalty."""
    return total_log_prob / max(length, 1) ** length_penalty


@torch.no_grad()
def beam_search(
    model: torch.nn.Module,
    idx: torch.Tensor,
    max_new_tokens: int,
    *,
    num_beams: int,
    length_penalty: float = 1.0,
    stop_id: int | None = None,
) -> list[list[int]]:
    """The best continuation of each row of `idx` (B, T0) that beam search finds; new ids only.

    Rows are searched one after another, with all of a row's beams in one batch. The stop
    token, when a sequence ends with it, is not included in the result.
    """
    if not isinstance(num_beams, int) or isinstance(num_beams, bool) or num_beams < 1:
        raise ValueError(f"num_beams must be a positive integer, got {num_beams!r}")
    if not isinstance(idx, torch.Tensor) or idx.ndim != 2 or idx.shape[1] == 0:
        shape = tuple(idx.shape) if isinstance(idx, torch.Tensor) else type(idx).__name__
        raise ValueError(f"idx must have shape (batch, length >= 1), got {shape}")
    if max_new_tokens < 0:
        raise ValueError(f"max_new_tokens must be >= 0, got {max_new_tokens}")
    with eval_mode(model):
        return [_search_row(model, row, max_new_tokens, num_beams, length_penalty, stop_id) for row in idx]


def _search_row(model, prompt: torch.Tensor, max_new_tokens: int, num_beams: int, length_penalty: float,
                stop_id: int | None) -> list[int]:
    T = model.context_length
    beams: list[tuple[list[int], float]] = [([], 0.0)]  # (new ids, total log-probability)
    finished: list[tuple[list[int], float, int]] = []  # (new ids without the stop, total, length)
    for _ in range(max_new_tokens):
        windows = torch.stack([torch.cat([prompt, prompt.new_tensor(ids)])[-T:] for ids, _ in beams])  # (n, <=T)
        log_probs = torch.log_softmax(last_logits(model, windows).double(), dim=-1)  # (n, V)
        top = log_probs.topk(min(num_beams, log_probs.shape[-1]), dim=-1)  # the best tokens of each beam
        candidates = [(beams[i][0] + [int(t)], beams[i][1] + float(lp))
                      for i in range(len(beams)) for lp, t in zip(top.values[i], top.indices[i])]
        candidates.sort(key=lambda c: c[1], reverse=True)  # stable: ties keep beam, then token order
        beams = []
        for ids, total in candidates:
            if len(beams) == num_beams:
                break
            if stop_id is not None and ids[-1] == stop_id:
                finished.append((ids[:-1], total, len(ids)))
            else:
                beams.append((ids, total))
        if not beams:
            break
    finished += [(ids, total, len(ids)) for ids, total in beams]
    best = max(finished, key=lambda f: sequence_score(f[1], f[2], length_penalty))
    return best[0]


def _ngrams(ids: list[int], n: int) -> list[tuple[int, ...]]:
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    return [tuple(ids[i : i + n]) for i in range(len(ids) - n + 1)]


def distinct_n(samples: list[list[int]], n: int) -> float:
    """Distinct n-grams over all n-grams, pooled over `samples` (0.0 when there are none)."""
    grams = [g for ids in samples for g in _ngrams(list(ids), n)]
    return len(set(grams)) / len(grams) if grams else 0.0


def repeated_ngram_share(ids: list[int], n: int) -> float:
    """The share of the n-grams of `ids` that occurred earlier in `ids` (0.0 when there are none)."""
    seen: set[tuple[int, ...]] = set()
    repeats, grams = 0, _ngrams(list(ids), n)
    for g in grams:
        repeats += g in seen
        seen.add(g)
    return repeats / len(grams) if grams else 0.0


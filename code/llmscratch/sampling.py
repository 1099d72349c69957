"""Turning a model's logits into text: temperature, truncation, penalties, and autoregressive generation.

Temperature divides the logits before the softmax. Below 1 it sharpens the distribution toward
the most likely token (0 means always take it); above 1 it flattens it toward uniform:

    >>> import torch
    >>> logits = torch.log(torch.tensor([0.6, 0.3, 0.1]))
    >>> [round(p, 3) for p in next_token_probs(logits, 1.0).tolist()]
    [0.6, 0.3, 0.1]
    >>> [round(p, 3) for p in next_token_probs(logits, 0.5).tolist()]
    [0.783, 0.196, 0.022]
    >>> next_token_probs(logits, 0).tolist()
    [1.0, 0.0, 0.0]

Truncation removes the unlikely tail before sampling, each rule in its own way (`top_k_mask`,
`top_p_mask`, `min_p_mask`): keep the k most likely tokens; keep the smallest set of most likely
tokens whose probability reaches p (nucleus sampling); keep the tokens at least `min_p` times as
likely as the best one. With probabilities [0.5, 0.3, 0.15, 0.05] (after temperature):

    >>> probs = torch.tensor([0.5, 0.3, 0.15, 0.05])
    >>> top_k_mask(probs, 2).tolist(), top_p_mask(probs, 0.8).tolist(), min_p_mask(probs, 0.25).tolist()
    ([True, True, False, False], [True, True, False, False], [True, True, True, False])

Two penalties act on what was already written: `repetition_penalty` makes every token that
occurred less likely (CTRL's rule: a positive logit is divided by the penalty, a negative one
multiplied), and `no_repeat_ngram_size` forbids any token that would repeat an n-gram.

`generate` feeds the model its own samples, one token at a time. It works with any model that
has a `context_length` attribute and a ``forward(idx) -> (logits, loss)`` returning logits for
the token after each window ((B, V), or (B, T, V) of which the last position is used).
Beam search, which looks for likely sequences rather than sampling, is `llmscratch.decoding`.

With ``use_cache=True`` (a `llmscratch.GPT` only) the model reads the prompt once into a
`llmscratch.kv_cache.KVCache` and then one new token per step, and writes the ids of the
cache-free loop: the logits agree to float rounding (about 1e-7), which could only tell two
tokens apart whose probabilities tie to that precision. Past ``context_length`` the cache-free loop
crops every row to its last ``context_length`` ids, which moves every token to a new position;
appending to a cache cannot do that, so there the cache is refilled from the cropped window at
every step: exact, and no faster than without a cache.

Prompts of different lengths cannot share one tensor without padding, and a GPT without a
padding mask would attend to the padding. `generate_batch` takes them as lists and batches the
rows of each length together: every row is continued exactly as if it were alone, in as many
forward passes per token as there are distinct prompt lengths.

Left out: padding with an attention mask (which turns the groups into one batch), typical
sampling, and speculative decoding (Part 4).

References: Fan et al., "Hierarchical Neural Story Generation" (2018) for top-k; Holtzman et al.,
"The Curious Case of Neural Text Degeneration" (ICLR 2020) for top-p; Nguyen et al., "Turning Up
the Heat: Min-p Sampling" (2024); Keskar et al., "CTRL" (2019) for the repetition penalty; Paulus
et al., "A Deep Reinforced Model for Abstractive Summarization" (2017) for n-gram blocking.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .kv_cache import KVCache
from .runtime import eval_mode

__all__ = ["banned_ngram_tokens", "generate", "generate_batch", "last_logits", "min_p_mask", "next_token_probs",
           "penalize_repetition", "top_k_mask", "top_p_mask"]


def next_token_probs(
    logits: torch.Tensor,
    temperature: float = 1.0,
    *,
    top_k: int | None = None,
    top_p: float | None = None,
    min_p: float | None = None,
) -> torch.Tensor:
    """softmax(logits / temperature) over the last dimension, then truncated and renormalised.

    Temperature 0 is the limit: all probability on the largest logit. The truncation rules
    apply in the order top-k, top-p, min-p, each to what the previous one kept; the most likely
    token always survives.
    """
    _check_sampling(temperature, top_k, top_p, min_p)
    if temperature == 0:
        best = logits.argmax(dim=-1)
        return F.one_hot(best, logits.shape[-1]).to(logits.dtype)
    probs = torch.softmax(logits / temperature, dim=-1)
    if top_k is None and top_p is None and min_p is None:
        return probs
    keep = torch.ones_like(probs, dtype=torch.bool)
    for rule, value in ((top_k_mask, top_k), (top_p_mask, top_p), (min_p_mask, min_p)):
        if value is not None:
            kept = probs * keep
            keep &= rule(kept / kept.sum(dim=-1, keepdim=True), value)
    probs = probs * keep
    return probs / probs.sum(dim=-1, keepdim=True)


def top_k_mask(probs: torch.Tensor, k: int) -> torch.Tensor:
    """True for the `k` most likely tokens of each row (ties broken by position, as `topk` does)."""
    k = min(k, probs.shape[-1])
    keep = torch.zeros_like(probs, dtype=torch.bool)
    return keep.scatter(-1, probs.topk(k, dim=-1).indices, True)


def top_p_mask(probs: torch.Tensor, p: float) -> torch.Tensor:
    """True for the smallest set of most likely tokens whose total probability reaches `p`.

    A token is kept when the probability of the tokens more likely than it is still below `p`,
    so the token that crosses `p` is kept and the most likely token always is.
    """
    sorted_probs, order = probs.sort(dim=-1, descending=True)
    before = sorted_probs.cumsum(dim=-1) - sorted_probs  # (…, V): mass of the more likely tokens
    keep_sorted = before < p
    return torch.zeros_like(keep_sorted).scatter(-1, order, keep_sorted)


def min_p_mask(probs: torch.Tensor, min_p: float) -> torch.Tensor:
    """True for the tokens at least `min_p` times as likely as the most likely token of their row."""
    return probs >= min_p * probs.max(dim=-1, keepdim=True).values


def penalize_repetition(logits: torch.Tensor, previous: torch.Tensor, penalty: float) -> torch.Tensor:
    """Logits (B, V) with every token that occurs in its row of `previous` (B, T) made less likely.

    CTRL's rule: a positive logit is divided by `penalty`, a negative one multiplied by it, so
    the token loses probability whatever the sign (penalty > 1; 1 changes nothing).

    >>> penalize_repetition(torch.tensor([[2.0, -1.0, 0.5]]), torch.tensor([[0, 1]]), 2.0).tolist()
    [[1.0, -2.0, 0.5]]
    """
    seen = torch.zeros_like(logits, dtype=torch.bool).scatter(-1, previous, True)
    penalized = torch.where(logits > 0, logits / penalty, logits * penalty)
    return torch.where(seen, penalized, logits)


def banned_ngram_tokens(ids: list[int], n: int) -> set[int]:
    """The tokens that would complete an n-gram already in `ids` (the last n-1 ids as its start).

    >>> sorted(banned_ngram_tokens([1, 2, 3, 1, 2, 4, 1], n=2))  # after 1 came 2 and 2
    [2]
    >>> sorted(banned_ngram_tokens([1, 2, 3, 1, 2], n=3))  # "1 2" was followed by 3
    [3]
    """
    if len(ids) < n:
        return set()
    start = tuple(ids[len(ids) - n + 1 :])
    return {ids[i + n - 1] for i in range(len(ids) - n + 1) if tuple(ids[i : i + n - 1]) == start}


def _check_sampling(temperature: float, top_k: int | None, top_p: float | None, min_p: float | None) -> None:
    if not isinstance(temperature, (int, float)) or isinstance(temperature, bool):
        raise TypeError(f"temperature must be a number, got {temperature!r}")
    if not temperature >= 0:
        raise ValueError(f"temperature must be >= 0, got {temperature!r}")
    if top_k is not None and (not isinstance(top_k, int) or isinstance(top_k, bool) or top_k < 1):
        raise ValueError(f"top_k must be a positive integer or None, got {top_k!r}")
    if top_p is not None and not 0 < top_p <= 1:
        raise ValueError(f"top_p must be in (0, 1] or None, got {top_p!r}")
    if min_p is not None and not 0 <= min_p <= 1:
        raise ValueError(f"min_p must be in [0, 1] or None, got {min_p!r}")


def last_logits(model: torch.nn.Module, window: torch.Tensor, cache: KVCache | None = None) -> torch.Tensor:
    """The logits (B, V) for the token after each row of `window` (B, T), which follows `cache` if given."""
    logits, _ = model(window) if cache is None else model(window, cache=cache)
    return logits[:, -1, :] if logits.ndim == 3 else logits  # a GPT predicts at every position


@torch.inference_mode()  # like no_grad, and skips autograd's version counters: about 8% faster per step
def generate(
    model: torch.nn.Module,
    idx: torch.Tensor,
    max_new_tokens: int,
    *,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    min_p: float | None = None,
    repetition_penalty: float | None = None,
    no_repeat_ngram_size: int | None = None,
    stop_id: int | None = None,
    generator: torch.Generator | None = None,
    use_cache: bool = False,
) -> list[list[int]]:
    """Continue each row of `idx` (B, T0) by up to `max_new_tokens` sampled ids.

    The model sees the last ``model.context_length`` ids of each row; a model with a fixed
    window (`llmscratch.mlp`) needs ``T0 >= context_length``, so pad short prompts on the left
    (names use the boundary id, exactly as in training). The penalties look at the whole row,
    prompt included. A row ends early when it samples `stop_id`, which is not included.
    Returns the new ids of each row as a list. Temperature 0 is greedy decoding.
    `use_cache` keeps a KV cache between steps (see the module docstring): the same ids, faster.
    """
    _check_sampling(temperature, top_k, top_p, min_p)
    if not isinstance(idx, torch.Tensor) or idx.ndim != 2 or idx.shape[1] == 0:
        shape = tuple(idx.shape) if isinstance(idx, torch.Tensor) else type(idx).__name__
        raise ValueError(f"idx must have shape (batch, length >= 1), got {shape}")
    if max_new_tokens < 0:
        raise ValueError(f"max_new_tokens must be >= 0, got {max_new_tokens}")
    if repetition_penalty is not None and not repetition_penalty > 0:
        raise ValueError(f"repetition_penalty must be positive or None, got {repetition_penalty!r}")
    if no_repeat_ngram_size is not None and (not isinstance(no_repeat_ngram_size, int) or no_repeat_ngram_size < 1):
        raise ValueError(f"no_repeat_ngram_size must be a positive integer or None, got {no_repeat_ngram_size!r}")
    T = model.context_length
    written = idx  # (B, T0 + steps): everything so far, for the penalties
    B = idx.shape[0]
    out: list[list[int]] = [[] for _ in range(B)]
    alive = torch.ones(B, dtype=torch.bool)
    cache = KVCache.for_model(model) if use_cache else None  # a model without a GPTConfig raises here
    with eval_mode(model):
        for _ in range(max_new_tokens):
            if cache is None:
                logits = last_logits(model, written[:, -T:])  # (B, V)
            elif written.shape[1] > T:
                # Cropping shifts every position: refill a fresh cache from the window (exact, not faster).
                cache = KVCache.for_model(model)
                logits = last_logits(model, written[:, -T:], cache)  # (B, V)
            else:
                # The ids the cache has not seen: the whole prompt first, then the last sample.
                logits = last_logits(model, written[:, cache.length:], cache)  # (B, V)
            if repetition_penalty is not None:
                logits = penalize_repetition(logits, written, repetition_penalty)
            if no_repeat_ngram_size is not None:
                for b in range(B):
                    banned = list(banned_ngram_tokens(written[b].tolist(), no_repeat_ngram_size))
                    logits[b, banned] = float("-inf")
            probs = next_token_probs(logits, temperature, top_k=top_k, top_p=top_p, min_p=min_p)  # (B, V)
            nxt = torch.multinomial(probs, 1, generator=generator)  # (B, 1)
            for b in alive.nonzero().flatten().tolist():
                token = int(nxt[b])
                if token == stop_id:
                    alive[b] = False
                else:
                    out[b].append(token)
            if not alive.any():
                break
            written = torch.cat([written, nxt], dim=1)  # (B, T0 + steps + 1)
    return out


def generate_batch(
    model: torch.nn.Module, prompts: list[list[int]], max_new_tokens: int, **options
) -> list[list[int]]:
    """`generate` for prompts of different lengths: the new ids of each prompt, in the order given.

    Prompts of equal length are continued together, one `generate` call per length, in order
    of increasing length, so a shared ``generator=`` makes the whole batch reproducible. The
    `options` are those of `generate` (temperature, top_k, ..., stop_id, generator).

    >>> class Echo(torch.nn.Module):  # always predicts the token it just read
    ...     context_length = 8
    ...     def forward(self, idx):
    ...         return torch.nn.functional.one_hot(idx, 5).float() * 50, None
    >>> generate_batch(Echo(), [[1, 2, 3], [4]], 2, temperature=0)
    [[3, 3], [4, 4]]
    """
    if not isinstance(prompts, (list, tuple)) or not prompts:
        raise ValueError("prompts must be a non-empty list of lists of token ids")
    if any(not isinstance(p, (list, tuple)) or len(p) == 0 for p in prompts):
        raise ValueError("every prompt must be a non-empty list of token ids")
    out: list[list[int]] = [[] for _ in prompts]
    for length in sorted({len(p) for p in prompts}):
        rows = [i for i, p in enumerate(prompts) if len(p) == length]
        idx = torch.tensor([list(prompts[i]) for i in rows], dtype=torch.long)  # (rows, length)
        for i, new in zip(rows, generate(model, idx, max_new_tokens, **options)):
            out[i] = new
    return out


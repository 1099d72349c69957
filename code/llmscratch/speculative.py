"""Speculative decoding: a small draft model guesses k tokens, the big target model checks them in one pass.

Generating with a large model costs one forward pass per token, and on small batches that pass
is mostly fixed cost: reading the weights (or, on a CPU, Python and kernel overhead), whatever
the number of tokens it reads. Scoring k + 1 tokens at once costs little more than scoring one.
So a cheap **draft** model proposes k tokens x_1..x_k, drawing each from its distribution q;
the **target** model reads them all in one pass and gives its distributions p_1..p_{k+1}; and a
rejection rule keeps a prefix of the guesses (Leviathan et al. 2023; Chen et al. 2023):

- accept x_i with probability min(1, p_i(x_i) / q_i(x_i));
- at the first rejection, draw the replacement from norm(max(0, p_i − q_i)) and stop;
- if all k are accepted, draw one more token from p_{k+1}, free.

Whatever the draft, each token written is distributed exactly as the target alone would
sample it: the probability of writing x is q(x)·min(1, p(x)/q(x)) = min(q(x), p(x)) by
acceptance, plus P(reject)·norm(max(0, p − q))(x) = max(0, p(x) − q(x)) by resampling, which sum
to p(x). A good draft only makes it *faster*. Greedy decoding is the case where p and q are
one-hot: a guess is kept when it is the target's argmax, and the result is the target's greedy text.

The proof is checked by enumeration, not sampling: `exact_distribution` runs the procedure
once for every possible outcome of every random choice (every draft token, every accept or
reject, every resampled token), multiplying their probabilities, and returns the exact
probability of each output. The test suite compares that with the target model's own:

    >>> p = lambda seq, n: torch.tensor([[0.7, 0.3]]).repeat(n, 1)  # target: 0 w.p. 0.7, whatever came before
    >>> q = lambda seq, n: torch.tensor([[0.2, 0.8]]).repeat(n, 1)  # a poor draft
    >>> out = exact_distribution(lambda chooser: speculative_decode(p, q, [0], 2, k=2, chooser=chooser)[0])
    >>> {seq: round(prob, 4) for seq, prob in sorted(out.items())}
    {(0, 0): 0.49, (0, 1): 0.21, (1, 0): 0.21, (1, 1): 0.09}

A model is passed as ``next_probs(seq, n)``: the distributions (n, V) of the token after each of
the last n prefixes of `seq` (`CachedModel` makes one from a GPT, with a KV cache that is cut
back to the accepted tokens after every round).

Left out: batches of sequences (each row would accept a different number of tokens), trees of
guesses (Medusa, SpecInfer), and drafts that are the target's own shallow layers.

References: Leviathan, Kalman & Matias, "Fast Inference from Transformers via Speculative
Decoding" (ICML 2023); Chen et al., "Accelerating Large Language Model Decoding with Speculative
Sampling" (2023).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import torch

from .kv_cache import KVCache
from .runtime import eval_mode
from .sampling import next_token_probs

__all__ = ["CachedModel", "Chooser", "RandomChooser", "SpeculativeStats", "exact_distribution",
           "speculative_decode", "speculative_generate", "verify"]

NextProbs = Callable[[list[int], int], torch.Tensor]  # (seq, n) -> (n, V)


class Chooser(Protocol):
    """Where the random choices come from: a generator when sampling, every branch when enumerating."""

    def accept(self, probability: float) -> bool: ...

    def sample(self, probs: torch.Tensor) -> int: ...


class RandomChooser:
    """Random choices from a `torch.Generator` (or the global one)."""

    def __init__(self, generator: torch.Generator | None = None) -> None:
        self.generator = generator

    def accept(self, probability: float) -> bool:
        return float(torch.rand((), generator=self.generator)) < probability

    def sample(self, probs: torch.Tensor) -> int:
        return int(torch.multinomial(probs, 1, generator=self.generator))


def verify(p: torch.Tensor, q: torch.Tensor, drafted: list[int], chooser: Chooser) -> list[int]:
    """The tokens a round writes: the accepted prefix of `drafted`, then one resampled or bonus token.

    `p` (k + 1, V) are the target's distributions after the prefix and after each guess, `q`
    (k, V) the draft's, from which the k guesses in `drafted` were drawn.
    """
    out: list[int] = []
    for i, x in enumerate(drafted):
        if chooser.accept(min(1.0, float(p[i, x]) / float(q[i, x]))):  # q[i, x] > 0: x was drawn from q
            out.append(x)
            continue
        residual = (p[i] - q[i]).clamp(min=0)  # (V,): where the target wants more than the draft gave
        # Rejection has probability sum(max(0, q - p)) = sum(max(0, p - q)) > 0, so the residual is
        # not all zeros; p = q to rounding is the one way here without mass: then draw from p.
        out.append(chooser.sample(residual / residual.sum() if residual.sum() > 0 else p[i]))
        return out
    out.append(chooser.sample(p[len(drafted)]))  # every guess kept: one more token from the same pass
    return out


@dataclass
class SpeculativeStats:
    """Counts of one `speculative_decode` call."""

    rounds: int = 0  # target passes
    drafted: int = 0  # guesses proposed
    accepted: int = 0  # guesses kept

    @property
    def acceptance_rate(self) -> float:
        return self.accepted / self.drafted if self.drafted else math.nan

    @property
    def tokens_per_round(self) -> float:
        """Tokens written per target pass: 1 for plain decoding, up to k + 1 here."""
        return (self.accepted + self.rounds) / self.rounds if self.rounds else math.nan


def speculative_decode(target: NextProbs, draft: NextProbs, prompt: list[int], max_new_tokens: int, *, k: int,
                       chooser: Chooser, verify_fn: Callable = verify) -> tuple[list[int], SpeculativeStats]:
    """Write `max_new_tokens` ids after `prompt`, `k` guesses per round; `verify_fn` is the acceptance rule."""
    if not isinstance(k, int) or k < 1:
        raise ValueError(f"k (guesses per round) must be a positive integer, got {k!r}")
    if not isinstance(max_new_tokens, int) or max_new_tokens < 0:
        raise ValueError(f"max_new_tokens must be a non-negative integer, got {max_new_tokens!r}")
    seq, stats = list(prompt), SpeculativeStats()
    while len(seq) - len(prompt) < max_new_tokens:
        drafted, q_rows = [], []
        for _ in range(k):
            q_rows.append(draft(seq + drafted, 1)[0])  # (V,)
            drafted.append(chooser.sample(q_rows[-1]))
        p = target(seq + drafted, k + 1)  # (k + 1, V): one pass over the guesses
        new = verify_fn(p, torch.stack(q_rows), drafted, chooser)
        stats.rounds, stats.drafted, stats.accepted = stats.rounds + 1, stats.drafted + k, stats.accepted + len(new) - 1
        seq += new
    return seq[len(prompt):len(prompt) + max_new_tokens], stats


class CachedModel:
    """A GPT as ``next_probs(seq, n)``, keeping a KV cache of the longest prefix it has already read.

    Each call cuts the cache back to the tokens `seq` shares with what it holds (a rejected
    guess is forgotten there), reads the rest in one forward pass, and returns the last n
    rows of probabilities at `temperature`.
    """

    def __init__(self, model: torch.nn.Module, temperature: float = 1.0) -> None:
        if getattr(model.config, "attention_window", None) is not None:
            raise ValueError("CachedModel cuts its cache back after a rejection, which a rolling cache "
                             "(attention_window) cannot do: it has dropped the positions it would need")
        self.model, self.temperature = model, temperature
        self.cache, self.tokens = KVCache.for_model(model), []
        self.calls = 0

    def __call__(self, seq: list[int], n: int) -> torch.Tensor:
        if len(seq) > self.model.context_length:
            raise ValueError(f"{len(seq)} tokens, but the model's context_length is {self.model.context_length}")
        keep = 0
        while keep < min(len(self.tokens), len(seq) - n) and self.tokens[keep] == seq[keep]:
            keep += 1
        _crop(self.cache, keep)
        self.tokens = self.tokens[:keep]
        # eval_mode walks every module twice: a cost per call worth skipping when already evaluating.
        with torch.no_grad(), eval_mode(self.model) if self.model.training else contextlib.nullcontext():
            logits, _ = self.model(torch.tensor([seq[keep:]]), cache=self.cache)  # (1, len(seq) - keep, V)
        self.tokens = list(seq)
        self.calls += 1
        return next_token_probs(logits[0, -n:], self.temperature)  # (n, V)


def _crop(cache: KVCache, length: int) -> None:
    """Forget every position of `cache` from `length` on."""
    for layer in range(len(cache.keys)):
        if cache.keys[layer] is not None:
            cache.keys[layer] = cache.keys[layer][:, :, :length] if length else None  # (B, Hkv, length, hs)
            cache.values[layer] = cache.values[layer][:, :, :length] if length else None
    cache.length = min(cache.length, length)


def speculative_generate(target: torch.nn.Module, draft: torch.nn.Module, prompt: list[int], max_new_tokens: int,
                         *, k: int = 4, temperature: float = 1.0,
                         generator: torch.Generator | None = None) -> tuple[list[int], SpeculativeStats]:
    """Speculative decoding with two GPTs of the same vocabulary, one prompt; temperature 0 is greedy.

    The prompt, the new tokens and one round of guesses must fit both models' context.
    """
    if target.vocab_size != draft.vocab_size:
        raise ValueError(f"target and draft must share a vocabulary, got {target.vocab_size} and {draft.vocab_size}")
    room = min(target.context_length, draft.context_length)
    if len(prompt) + max_new_tokens + k > room:
        raise ValueError(f"prompt ({len(prompt)}) + max_new_tokens ({max_new_tokens}) + k ({k}) is more than the "
                         f"shorter context_length ({room})")
    return speculative_decode(CachedModel(target, temperature), CachedModel(draft, temperature), list(prompt),
                              max_new_tokens, k=k, chooser=RandomChooser(generator))


class _Branch(BaseException):
    """A random choice the script does not cover: its possible outcomes and their probabilities.

    A BaseException, so that no ``except Exception`` in the code being enumerated swallows it.
    """

    def __init__(self, options: list[tuple[object, float]]) -> None:
        self.options = options


class _Scripted:
    """A `Chooser` that replays a script of choices and stops at the first choice past its end."""

    def __init__(self, script: tuple[object, ...]) -> None:
        self.script, self.at = script, 0

    def _next(self, options: list[tuple[object, float]]) -> object:
        if self.at == len(self.script):
            raise _Branch([(choice, w) for choice, w in options if w > 0])
        self.at += 1
        return self.script[self.at - 1]

    def accept(self, probability: float) -> bool:
        return self._next([(True, probability), (False, 1.0 - probability)])

    def sample(self, probs: torch.Tensor) -> int:
        return self._next(list(enumerate(probs.double().tolist())))


def exact_distribution(run: Callable[[Chooser], list[int]]) -> dict[tuple[int, ...], float]:
    """The exact probability of every output of the random procedure `run`, by enumerating its choices.

    `run` takes a `Chooser` and must make all its random choices through it. It is replayed
    once per path through its choices (depth first), each path weighted by the product of its
    choices' probabilities: exponential in the number of choices, so for tiny cases only.
    """
    out: dict[tuple[int, ...], float] = {}
    stack: list[tuple[tuple[object, ...], float]] = [((), 1.0)]
    while stack:
        script, weight = stack.pop()
        try:
            result = tuple(run(_Scripted(script)))
        except _Branch as branch:
            stack.extend((script + (choice,), weight * w) for choice, w in branch.options)
            continue
        out[result] = out.get(result, 0.0) + weight
    return out

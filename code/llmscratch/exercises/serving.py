"""Checkers for Part 4's serving chapter: the acceptance rule of speculative decoding."""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable

import torch

from ..speculative import exact_distribution, speculative_decode
from .core import ExerciseError, passed

__all__ = ["check_verify"]

V = 3  # a vocabulary this small lets the checker enumerate every outcome exactly


def _toy(seed: int, sharpness: float) -> Callable[[list[int], int], torch.Tensor]:
    """A made-up model: a fixed random next-token distribution for every prefix, as ``next_probs(seq, n)``."""
    @functools.cache
    def one(prefix: tuple[int, ...]) -> torch.Tensor:
        g = torch.Generator().manual_seed(seed * 1_000_003 + hash(prefix) % 1_000_003)
        return torch.softmax(sharpness * torch.randn(V, generator=g, dtype=torch.float64), dim=-1)  # (V,)

    return lambda seq, n: torch.stack([one(tuple(seq[:len(seq) - n + 1 + i])) for i in range(n)])  # (n, V)


def _target_distribution(target: Callable, prompt: list[int], n: int) -> dict[tuple[int, ...], float]:
    out = {}
    for seq in itertools.product(range(V), repeat=n):
        out[seq] = 1.0
        for i, x in enumerate(seq):
            out[seq] *= float(target(prompt + list(seq[:i]), 1)[0, x])
    return out


def _learner(fn: Callable, where: str) -> Callable:
    """The learner's rule, with its answer checked for shape before the enumeration uses it."""
    def rule(p: torch.Tensor, q: torch.Tensor, drafted: list[int], chooser: object) -> list[int]:
        try:
            out = fn(p, q, list(drafted), chooser)
        except (ExerciseError, NotImplementedError):
            raise
        except Exception as err:  # noqa: BLE001 -- any error in the learner's code is reported with its case
            raise ExerciseError(f"{where}: your function raised {type(err).__name__}: {err}") from err
        if not isinstance(out, (list, tuple)) or not all(isinstance(x, int) for x in out):
            raise ExerciseError(f"{where}: expected a list of token ids (ints), got {out!r}")
        if not 1 <= len(out) <= len(drafted) + 1 or list(out[:len(out) - 1]) != list(drafted[:len(out) - 1]):
            raise ExerciseError(f"{where}: a round writes a prefix of the guesses {list(drafted)} and then one "
                                f"more token, got {list(out)}")
        return list(out)

    return rule


def check_verify(fn: Callable) -> None:
    """Check ``fn(p, q, drafted, chooser) -> tokens``, the acceptance rule of speculative decoding.

    `p` (k + 1, V) are the target's distributions, `q` (k, V) the draft's, `drafted` the k guesses
    drawn from q; ``chooser.accept(prob)`` returns True with probability `prob`, and
    ``chooser.sample(probs)`` draws an index. The checker runs speculative decoding with your rule on
    made-up target and draft models of 3 tokens and computes the exact probability of every output by
    enumerating every random choice: it must be the target's, whatever the draft.
    """
    n_cases = 0
    p, q = torch.tensor([[0.5, 0.5], [0.5, 0.5]]), torch.tensor([[0.9, 0.1]])
    where = "p = (0.5, 0.5), q = (0.9, 0.1), one guess drawn from q"
    first = exact_distribution(lambda ch: _learner(fn, where)(p, q, [ch.sample(q[0])], ch)[:1])
    n_cases += 1
    if abs(first.get((0,), 0.0) - 0.5) > 1e-6:
        raise ExerciseError(f"{where}: the first token written should be 0 with probability 0.5 (the target's), "
                            f"but with your rule it is {first.get((0,), 0.0):.4f}")
    same = exact_distribution(lambda ch: _learner(fn, "p = q")(p, p[:1], [ch.sample(p[0])], ch))
    n_cases += 1
    if any(len(seq) != 2 for seq in same):
        raise ExerciseError("p = q: a draft that agrees with the target should have every guess accepted "
                            "(and then one more token drawn from the last row of p)")
    prompt = [0]
    for seed, k, n, sharp in [(1, 2, 2, 2.0), (2, 1, 3, 3.0), (3, 3, 1, 1.0)]:
        target, draft = _toy(seed, sharp), _toy(seed + 100, sharp)
        where = f"made-up models (seed {seed}), k={k} guesses, {n} tokens"
        rule = _learner(fn, where)
        got = exact_distribution(lambda ch, t=target, d=draft, n=n, k=k, rule=rule:
                                 speculative_decode(t, d, prompt, n, k=k, chooser=ch, verify_fn=rule)[0])
        want = _target_distribution(target, prompt, n)
        n_cases += 1
        seq, error = max(((s, abs(got.get(s, 0.0) - w)) for s, w in want.items()), key=lambda t: t[1])
        if error > 1e-6:
            raise ExerciseError(f"{where}: the output {list(seq)} has probability {got.get(seq, 0.0):.4f} with your "
                                f"rule, but {want[seq]:.4f} under the target alone (after a rejection, which "
                                "distribution should the replacement come from?)")
    passed("check_verify", n_cases)


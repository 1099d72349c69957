"""Checkers for Part 4's mixture of experts: the top-k router."""

from __future__ import annotations

from collections.abc import Callable

import torch

from ..moe import route
from .core import ExerciseError, call_learner, expect_tensor, passed

__all__ = ["check_top_k_routing"]


def _dense(experts: torch.Tensor, gates: torch.Tensor, n_experts: int) -> torch.Tensor:
    """The (N, E) matrix of every expert's weight in each token's sum: 0 for experts not chosen."""
    return torch.zeros(experts.shape[0], n_experts, dtype=gates.dtype).scatter(1, experts, gates)


def _cases() -> list[tuple[str, torch.Tensor, int]]:
    g = torch.Generator().manual_seed(0)
    return [
        ("4 tokens, 2 experts, k=1 (the chapter's example)", torch.tensor([[0.9, 0.1], [0.8, 0.2], [0.6, 0.4],
                                                                              [0.3, 0.7]]).log(), 1),
        ("one token, 3 experts, k=2", torch.tensor([[0.5, 0.3, 0.2]]).log(), 2),
        ("6 tokens, 4 experts, k=1", torch.randn(6, 4, generator=g) * 2, 1),
        ("6 tokens, 8 experts, k=2", torch.randn(6, 8, generator=g) * 2, 2),
        ("5 tokens, 4 experts, k=4 (every expert)", torch.randn(5, 4, generator=g), 4),
        ("large scores, 3 tokens, 4 experts, k=2", torch.randn(3, 4, generator=g) * 60, 2),
    ]


def check_top_k_routing(fn: Callable[[torch.Tensor, int], tuple[torch.Tensor, torch.Tensor]]) -> None:
    """Check ``fn(logits, k) -> (experts, gates)`` against `llmscratch.moe.route`.

    `logits` (N, E) are the router's scores. `experts` (N, k) are the indices of each token's k
    most probable experts (any order) and `gates` (N, k) their weights: the softmax probabilities,
    renormalised over the k chosen experts when k > 1, and the probability itself when k = 1.
    """
    cases = _cases()
    for where, logits, k in cases:
        want = route(logits, k)
        got = call_learner(where, fn, logits.clone(), k)
        if not (isinstance(got, tuple) and len(got) == 2):
            raise ExerciseError(f"{where}: expected a pair (experts, gates), got {type(got).__name__}")
        experts, gates = got
        for name, t in (("experts", experts), ("gates", gates)):
            if not isinstance(t, torch.Tensor) or t.shape != want.experts.shape:
                shape = tuple(t.shape) if isinstance(t, torch.Tensor) else type(t).__name__
                raise ExerciseError(f"{where}: expected {name} of shape {tuple(want.experts.shape)}, got {shape}")
        if experts.dtype != torch.long:
            raise ExerciseError(f"{where}: experts must be integer indices (torch.long), got {experts.dtype}")
        if not torch.equal(experts.sort(-1).values, want.experts.sort(-1).values):
            raise ExerciseError(f"{where}: expected experts {want.experts.tolist()} (in any order), got "
                                f"{experts.tolist()} (are they the k largest, on the right dimension?)")
        probs = logits.softmax(-1)
        sums = gates.detach().double().sum(-1)
        if k == 1 and torch.allclose(sums, torch.ones_like(sums)) and not torch.allclose(want.gates.double(),
                                                                                         sums[:, None]):
            hint = "with k=1, a renormalised gate is always 1: Switch keeps the probability itself"
        elif k > 1 and not torch.allclose(sums, torch.ones_like(sums), atol=1e-5):
            hint = ("your gates do not sum to 1: with k > 1 are they renormalised over the chosen experts?"
                    if torch.allclose(gates.double(), probs.gather(1, experts).double(), atol=1e-5)
                    else "are the gates probabilities, from a softmax over all experts?")
        else:
            hint = "is each gate the softmax probability of its expert (renormalised when k > 1)?"
        expect_tensor(where, _dense(experts, gates.detach().to(want.gates.dtype), logits.shape[1]),
                      _dense(want.experts, want.gates, logits.shape[1]), atol=1e-5, hint=hint)
    passed("check_top_k_routing", len(cases))

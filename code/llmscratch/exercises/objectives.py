"""Checkers for the pretraining objectives: the prefix language model's attention mask.

`check_prefix_mask` runs the learner's ``fn(length, prefix)`` next to `prefix_lm_mask` on
sequences with no prefix, a whole-sequence prefix and the cases between, and names the first
that disagrees, with a question that points at the likely slip (the prefix hidden from the
queries before its end, the causal part opened to the future, the prefix one position off).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from ..attention import prefix_lm_mask
from .core import ExerciseError, call_learner, expect_tensor, passed

__all__ = ["check_prefix_mask"]


def check_prefix_mask(fn: Callable[[int, int], torch.Tensor]) -> None:
    """Check ``fn(length, prefix) -> mask`` against `prefix_lm_mask` for one sequence.

    The mask is a boolean (length, length) tensor, True where query i may see key j: every query
    sees the first `prefix` keys; beyond the prefix, a query sees only itself and the keys before it.
    """
    cases = [(4, 2), (5, 0), (5, 5), (6, 1), (6, 3), (1, 1), (8, 7)]
    for length, prefix in cases:
        where = f"length={length}, prefix={prefix}"
        got = call_learner(where, fn, length, prefix)
        positions = torch.arange(length)
        want = prefix_lm_mask(positions, positions, torch.tensor([prefix]))[0]
        hint = ""
        if isinstance(got, torch.Tensor) and got.shape == want.shape and not torch.equal(got.bool(), want):
            wrong = got.bool() ^ want  # the cells that differ
            rows, cols = wrong.nonzero(as_tuple=True)
            i, j = int(rows[0]), int(cols[0])
            if j < prefix:
                hint = f"key {j} is in the prefix: which queries may see it?"
            elif j > i:
                hint = f"key {j} comes after query {i} and is not in the prefix: may the query see it?"
            else:
                hint = f"query {i} and key {j} <= {i}: does the causal part still hold?"
        expect_tensor(where, got, want, hint=hint)
        if got.dtype != torch.bool:
            raise ExerciseError(f"{where}: the right pattern, but expected a boolean tensor, got dtype {got.dtype}")
    passed("check_prefix_mask", len(cases))

"""Checkers for long context: the sliding-window mask and the online-softmax update.

`check_window_mask` runs the learner's ``fn(length, window)`` next to `sliding_window_mask`;
`check_online_softmax_step` runs ``fn(m, denom, acc, scores, values)`` next to
`online_softmax_step`, one block at a time and then over whole sequences of blocks, where a
forgotten rescale shows. Each names the first case that disagrees, with a question that points
at the likely slip (a band one diagonal too wide, the future let in, the old sums not rescaled
when the maximum moves, NaN from a block that is all masked), never the fix.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from ..attention import sliding_window_mask
from ..tiled_attention import online_softmax_step
from .core import ExerciseError, call_learner, expect_tensor, passed

__all__ = ["check_online_softmax_step", "check_window_mask"]


def check_window_mask(fn: Callable[[int, int], torch.Tensor]) -> None:
    """Check ``fn(length, window) -> mask`` against `sliding_window_mask`.

    The mask is a boolean (length, length) tensor, True where query i may see key j: j is not in
    the future (j <= i) and not more than ``window - 1`` positions back (i - j < window).
    """
    cases = [(4, 2), (6, 3), (5, 1), (3, 5), (8, 8), (1, 1), (10, 4)]
    for length, window in cases:
        where = f"length={length}, window={window}"
        got = call_learner(where, fn, length, window)
        want = sliding_window_mask(length, window)
        hint = ""
        if isinstance(got, torch.Tensor) and got.shape == want.shape and not torch.equal(got, want):
            if bool((got.bool() & ~torch.ones_like(want).tril()).any()):
                hint = "can a query see a key that comes after it?"
            elif not bool(got.bool().diagonal().all()):
                hint = "does each query see itself?"
            else:
                hint = "how many keys does the last query see, itself included?"
        expect_tensor(where, got, want, hint=hint)
        if got.dtype != torch.bool:
            raise ExerciseError(f"{where}: the right pattern, but expected a boolean tensor, got dtype {got.dtype}")
    passed("check_window_mask", len(cases))


def _start(shape: tuple[int, ...], dv: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    return torch.full((*shape, 1), -math.inf), torch.zeros(*shape, 1), torch.zeros(*shape, dv)


def check_online_softmax_step(
    fn: Callable[[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor],
                 tuple[torch.Tensor, torch.Tensor, torch.Tensor]],
) -> None:
    """Check ``fn(m, denom, acc, scores, values) -> (m, denom, acc)`` against `online_softmax_step`.

    `m` and `denom` are (..., L, 1): the running maximum of the scores and the running sum of
    ``exp(score - m)``; `acc` is (..., L, Ev), the running sum of ``exp(score - m) · value``.
    `scores` (..., L, b) are one block of keys' scores, -inf where masked, and `values` (..., b, Ev)
    their values. The start is ``m = -inf``, ``denom = 0``, ``acc = 0``; after the last block,
    ``acc / denom`` must equal the softmax-weighted average of all the values.
    """
    g = torch.Generator().manual_seed(0)
    n = 0
    # One step from the start, one step after a state with a larger and with a smaller maximum.
    m0, d0, a0 = _start((2, 3), 4)
    state = online_softmax_step(m0, d0, a0, torch.randn(2, 3, 5, generator=g), torch.randn(5, 4, generator=g))
    high = torch.randn(2, 3, 2, generator=g) * 4 + 6  # scores well above the first block's maximum
    low = torch.randn(2, 3, 2, generator=g) - 8  # and well below it
    steps = [("the first block, from m = -inf", (m0, d0, a0)),
             ("a second block whose scores are higher than any before", state),
             ("a second block whose scores are lower than any before", state)]
    blocks = [torch.randn(2, 3, 5, generator=g), high, low]
    for (where, (m, d, a)), scores in zip(steps, blocks):
        values = torch.randn(scores.shape[-1], 4, generator=g)  # (b, Ev)
        got = call_learner(where, fn, m.clone(), d.clone(), a.clone(), scores, values)
        want = online_softmax_step(m, d, a, scores, values)
        if not (isinstance(got, tuple) and len(got) == 3):
            raise ExerciseError(f"{where}: expected a tuple (m, denom, acc), got {type(got).__name__}")
        hint = "when the maximum moves, what happens to the sums made relative to the old one?"
        for name, g_t, w_t in zip(("m", "denom", "acc"), got, want):
            expect_tensor(f"{where}, {name}", g_t, w_t, atol=1e-5, rtol=1e-5, hint=hint if name != "m" else "")
        n += 1
    # Whole sequences in blocks: the result must be softmax attention, masks included. With a
    # sliding window, a late query's first blocks are all masked while its maximum is still -inf.
    for L, S, b, window in [(4, 9, 3, None), (6, 6, 2, None), (1, 7, 7, None), (8, 8, 2, 3)]:
        q, k, v = torch.randn(L, 8, generator=g) * 3, torch.randn(S, 8, generator=g) * 3, torch.randn(S, 5, generator=g)
        scores = q @ k.T  # (L, S)
        offset = torch.arange(L).view(-1, 1) - torch.arange(S).view(1, -1)  # (L, S): how far back key j is
        hidden = (offset < 0) | (offset >= window) if window else offset < 0
        scores = scores.masked_fill(hidden, -math.inf)
        want = torch.softmax(scores, dim=-1) @ v  # (L, 5)
        m, d, a = _start((L,), 5)
        where = f"{L} queries over {S} keys in blocks of {b}, " + (f"window {window}" if window else "causal")
        for j in range(0, S, b):
            got = call_learner(where, fn, m, d, a, scores[:, j:j + b], v[j:j + b])
            if not (isinstance(got, tuple) and len(got) == 3):
                raise ExerciseError(f"{where}: expected a tuple (m, denom, acc), got {type(got).__name__}")
            m, d, a = got
        out = a / d if isinstance(a, torch.Tensor) and isinstance(d, torch.Tensor) else a
        hint = ("a block in which a query sees no key at all is all -inf: what is exp(-inf - (-inf))?"
                if isinstance(out, torch.Tensor) and bool(torch.isnan(out).any()) else
                "is every old sum rescaled by exp(m_old - m_new)?")
        expect_tensor(f"{where}: acc / denom after the last block", out, want, atol=1e-5, rtol=1e-4, hint=hint)
        n += 1
    passed("check_online_softmax_step", n)

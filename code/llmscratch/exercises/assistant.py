"""Checkers for Part 5: the loss mask of instruction tuning.

`check_sft_targets` runs the learner's ``fn(ids, prompt_length)`` next to
`llmscratch.instructions.sft_targets` and names the first case that disagrees, with a question
that points at the likely slip (targets not shifted by one, the prompt's last token masked too,
the first response token left out), never the fix.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from ..instructions import sft_targets
from .core import call_learner, expect_tensor, passed

__all__ = ["check_sft_targets"]


def check_sft_targets(fn: Callable[[list[int], int], torch.Tensor]) -> None:
    """Check ``fn(ids, prompt_length) -> targets``: the next-token targets of ``ids[:-1]``, -100 inside the prompt.

    `ids` is one example's token ids, the first `prompt_length` of them the prompt. Position i
    predicts token i + 1; only the predictions of response tokens (and of the end token) count.
    """
    cases = [([5, 6, 7, 8], 2), ([1, 2, 3], 1), ([9, 8, 7, 6, 5, 4], 5), ([4, 4, 4, 4, 4], 3), ([3, 1], 1),
             (list(range(10, 30)), 12)]
    for ids, prompt_length in cases:
        where = f"ids={ids}, prompt_length={prompt_length}"
        got = call_learner(where, fn, ids, prompt_length)
        want = sft_targets(ids, prompt_length)[1]
        hint = ""
        if isinstance(got, torch.Tensor) and got.shape == want.shape and not torch.equal(got, want):
            kept = (got != -100).nonzero().flatten().tolist()
            first = int((want != -100).nonzero()[0])
            if got.tolist() == [-100 if i < first else v for i, v in enumerate(ids[:-1])]:
                hint = "which token does position i predict: token i, or token i + 1?"
            elif kept and kept[0] > first:
                hint = "the last prompt position predicts the first response token: should it be scored?"
            elif kept and kept[0] < first:
                hint = "is a prompt token ever a target?"
        expect_tensor(where, got, want, hint=hint)
    passed("check_sft_targets", len(cases))

"""Checkers for Part 5: the loss mask of instruction tuning, the Bradley–Terry loss, and DPO's loss.

Each runs the learner's function next to the package's and names the first case that disagrees,
with a question that points at the likely slip, never the fix:

- `check_sft_targets` against `llmscratch.instructions.sft_targets` (targets not shifted by one,
  the prompt's last token masked too, the first response token left out);
- `check_bradley_terry` against `llmscratch.reward.bradley_terry_loss` (the sign of the
  difference, a sum instead of a mean, σ instead of log σ);
- `check_dpo_loss` against `llmscratch.preferences.dpo_loss` (β left out, the reference
  subtracted the wrong way round);
- `check_grpo_advantages` against `llmscratch.preferences.grpo_advantages` (the sample standard
  deviation instead of the population one, the mean over all groups instead of each group's, a
  group whose rewards are all equal divided by zero);
- `check_lora_forward` against `llmscratch.lora.LoRALinear` (the scale left out, the frozen
  layer's output or its bias left out);
- `check_shingles` against `llmscratch.dedup.shingles` (no normalising, the last k-gram left out,
  a short text given no shingle).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from ..dedup import shingles
from ..instructions import sft_targets
from ..lora import LoRALinear
from ..preferences import dpo_loss, grpo_advantages
from ..reward import bradley_terry_loss
from .core import ExerciseError, call_learner, expect_tensor, passed

__all__ = ["check_bradley_terry", "check_dpo_loss", "check_grpo_advantages", "check_lora_forward", "check_shingles",
           "check_sft_targets"]


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


def _scalar_hint(got: object, want: torch.Tensor, guesses: dict[str, torch.Tensor]) -> str:
    """The question of the first guessed slip whose value the learner's answer equals."""
    if not isinstance(got, torch.Tensor) or got.shape != want.shape:
        return ""
    for question, value in guesses.items():
        if torch.allclose(got.float(), value, atol=1e-5) and not torch.allclose(value, want, atol=1e-5):
            return question
    return ""


def check_bradley_terry(fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> None:
    """Check ``fn(chosen_rewards, rejected_rewards) -> loss``: the mean of −log σ(r_chosen − r_rejected)."""
    g = torch.Generator().manual_seed(0)
    cases = [(torch.tensor([1.0]), torch.tensor([0.0])), (torch.tensor([0.0, 2.0]), torch.tensor([1.0, -1.0])),
             (torch.randn(5, generator=g), torch.randn(5, generator=g)), (torch.zeros(3), torch.zeros(3))]
    for chosen, rejected in cases:
        where = f"chosen={chosen.tolist()}, rejected={rejected.tolist()}"
        got = call_learner(where, fn, chosen.clone(), rejected.clone())
        want = bradley_terry_loss(chosen, rejected)
        d = chosen - rejected
        hint = _scalar_hint(got, want, {
            "which reward should be the larger one for the loss to be small?": -F.logsigmoid(-d).mean(),
            "is the loss a mean or a sum over the pairs?": -F.logsigmoid(d).sum(),
            "is it the probability, or its logarithm, that the loss takes?": -torch.sigmoid(d).mean(),
        })
        expect_tensor(where, got, want, hint=hint)
    passed("check_bradley_terry", len(cases))


def check_dpo_loss(fn: Callable[..., torch.Tensor]) -> None:
    """Check ``fn(policy_chosen, policy_rejected, ref_chosen, ref_rejected, beta) -> loss``, the mean DPO loss."""
    g = torch.Generator().manual_seed(1)
    cases = [(torch.tensor([-1.0]), torch.tensor([-3.0]), torch.tensor([-2.0]), torch.tensor([-2.0]), 0.5),
             (torch.tensor([-4.0, -1.0]), torch.tensor([-2.0, -5.0]), torch.tensor([-3.0, -1.5]),
              torch.tensor([-2.5, -4.0]), 0.1),
             (*(-torch.rand(4, generator=g) * 10 for _ in range(4)), 1.0)]
    for pc, pr, rc, rr, beta in cases:
        where = f"policy=({pc.tolist()}, {pr.tolist()}), reference=({rc.tolist()}, {rr.tolist()}), beta={beta}"
        got = call_learner(where, fn, pc.clone(), pr.clone(), rc.clone(), rr.clone(), beta)
        want = dpo_loss(pc, pr, rc, rr, beta)[0]
        hint = _scalar_hint(got, want, {
            "where does beta enter?": -F.logsigmoid((pc - rc) - (pr - rr)).mean(),
            "is each log-ratio the policy minus the reference, or the other way round?":
                -F.logsigmoid(beta * ((rc - pc) - (rr - pr))).mean(),
            "does the reference matter?": -F.logsigmoid(beta * (pc - pr)).mean(),
        })
        expect_tensor(where, got, want, hint=hint)
    passed("check_dpo_loss", len(cases))


def check_grpo_advantages(fn: Callable[[torch.Tensor], torch.Tensor]) -> None:
    """Check ``fn(rewards) -> advantages`` for (prompts, group) rewards: each reward minus its group's mean, over the
    group's population standard deviation, and 0 for a group whose rewards are all equal."""
    cases = [torch.tensor([[1.0, 0.0, 0.0, 0.0]]), torch.tensor([[1.0, 0.0], [0.0, 0.0]]),
             torch.tensor([[1.0, 1.0, 0.0, 1.0], [0.0, 1.0, 0.0, 0.0], [1.0, 1.0, 1.0, 1.0]]),
             torch.tensor([[0.0, 1.0, 1.0, 0.0, 1.0, 0.0, 0.0, 0.0]])]
    for rewards in cases:
        where = f"rewards={rewards.tolist()}"
        got = call_learner(where, fn, rewards.clone())
        want = grpo_advantages(rewards)
        hint = ""
        if isinstance(got, torch.Tensor) and got.shape == want.shape and not torch.allclose(got.float(), want):
            if torch.isnan(got).any() or torch.isinf(got).any():
                hint = "what should a group whose rewards are all equal get?"
            elif torch.allclose(got.float(), grpo_advantages(rewards) * torch.sqrt(
                    torch.tensor((rewards.shape[1] - 1) / rewards.shape[1])), atol=1e-5):
                hint = "which standard deviation: divide by the group size, or by one less?"
            elif torch.allclose(got.float().sum(), torch.tensor(0.0), atol=1e-4) and \
                    not torch.allclose(got.float().sum(dim=1), torch.zeros(rewards.shape[0]), atol=1e-4):
                hint = "is each answer compared with its own group, or with every answer of the batch?"
        expect_tensor(where, got, want, hint=hint)
    passed("check_grpo_advantages", len(cases))


def check_lora_forward(fn: Callable[..., torch.Tensor]) -> None:
    """Check ``fn(x, weight, bias, a, b, scale) -> y``: a frozen linear layer plus the scaled low-rank update."""
    g = torch.Generator().manual_seed(2)
    cases = [(3, 4, 1, 2.0, 2), (5, 6, 2, 1.0, 3), (8, 4, 4, 0.5, 6)]
    for d_in, d_out, rank, alpha, rows in cases:
        base = torch.nn.Linear(d_in, d_out)
        layer = LoRALinear(base, rank, alpha)
        with torch.no_grad():
            for p in (base.weight, base.bias, layer.lora_a, layer.lora_b):
                p.copy_(torch.randn(p.shape, generator=g))
        x = torch.randn(rows, d_in, generator=g)
        where = f"x {tuple(x.shape)}, weight {d_out}x{d_in}, rank {rank}, scale {layer.scale:g}"
        weight, bias, a, b = (t.detach().clone() for t in (base.weight, base.bias, layer.lora_a, layer.lora_b))
        got = call_learner(where, fn, x.clone(), weight, bias, a, b, layer.scale)
        with torch.no_grad():
            want = layer(x)
            update = x @ a.T @ b.T
            frozen = x @ weight.T + bias
        hint = ""
        if isinstance(got, torch.Tensor) and got.shape == want.shape and not torch.allclose(got, want, atol=1e-5):
            if torch.allclose(got, frozen + update, atol=1e-5):
                hint = "where does the scale alpha / rank enter?"
            elif torch.allclose(got, layer.scale * update, atol=1e-5) or torch.allclose(got, frozen - bias, atol=1e-5):
                hint = "the adapter adds to the frozen layer's output: is all of W x + b there?"
            elif torch.allclose(got, x @ weight.T + layer.scale * update, atol=1e-5):
                hint = "is the frozen layer's bias there?"
        expect_tensor(where, got, want, hint=hint)
    passed("check_lora_forward", len(cases))


def check_shingles(fn: Callable[[str, int], set]) -> None:
    """Check ``fn(text, k) -> set of str``: the character k-grams of the normalized text (`dedup.normalize`)."""
    cases = [("Abc, de!", 3), ("Reverse the letters of: honest", 5), ("What is 12 + 30?", 4), ("Ay.", 5),
             ("  Two   SPACES  ", 2)]
    for text, k in cases:
        where = f"text={text!r}, k={k}"
        got = call_learner(where, fn, text, k)
        want = shingles(text, k)
        if not isinstance(got, (set, frozenset)):
            raise ExerciseError(f"{where}: expected a set of strings, got {type(got).__name__}")
        if got != want:
            raw = {text[i:i + k] for i in range(len(text) - k + 1)}
            hint = ""
            if not got:
                hint = "what should a text shorter than k give, so that it can still be compared?"
            elif got == raw:
                hint = "are the texts normalized first (lowercase, no punctuation, single spaces)?"
            elif got < want and len(want - got) == 1:
                hint = "how many k-grams does a text of n characters have?"
            missing, extra = sorted(want - got)[:3], sorted(got - want)[:3]
            raise ExerciseError(f"{where}: {len(got)} shingles, expected {len(want)}; missing {missing}, "
                                f"unexpected {extra}" + (f". Hint: {hint}" if hint else ""))
    passed("check_shingles", len(cases))

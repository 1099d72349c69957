"""Part 5's checkers accept the package's functions and reject the slips learners make."""

import pytest
import torch
import torch.nn.functional as F

from llmscratch.exercises import (
    ExerciseError,
    check_bradley_terry,
    check_dpo_loss,
    check_grpo_advantages,
    check_lora_forward,
    check_sft_targets,
    check_shingles,
)
from llmscratch.instructions import sft_targets
from llmscratch.preferences import dpo_loss, grpo_advantages
from llmscratch.reward import bradley_terry_loss


def test_the_package_passes(capsys):
    check_sft_targets(lambda ids, p: sft_targets(ids, p)[1])
    assert "check_sft_targets: all 6 cases" in capsys.readouterr().out


def unshifted(ids, p):  # position i "predicts" token i
    return torch.tensor([-100 if i < p - 1 else t for i, t in enumerate(ids[:-1])])


def first_response_dropped(ids, p):
    y = torch.tensor(ids[1:])
    y[:p] = -100
    return y


def prompt_kept(ids, p):
    return torch.tensor(ids[1:])


def too_long(ids, p):
    y = torch.tensor(ids)
    y[:p] = -100
    return y


@pytest.mark.parametrize("wrong,message", [
    (unshifted, "token i, or token i \\+ 1"),
    (first_response_dropped, "should it be scored"),
    (prompt_kept, "is a prompt token ever a target"),
    (too_long, "expected shape \\(3,\\)"),
])
def test_slips_are_rejected(wrong, message):
    with pytest.raises(ExerciseError, match=message):
        check_sft_targets(wrong)


def test_the_preference_checkers_pass_the_package(capsys):
    check_bradley_terry(bradley_terry_loss)
    check_dpo_loss(lambda *args: dpo_loss(*args)[0])
    out = capsys.readouterr().out
    assert "check_bradley_terry: all 4 cases" in out and "check_dpo_loss: all 3 cases" in out


@pytest.mark.parametrize("wrong,message", [
    (lambda c, r: -F.logsigmoid(r - c).mean(), "which reward should be the larger"),
    (lambda c, r: -F.logsigmoid(c - r).sum(), "mean or a sum"),
    (lambda c, r: -torch.sigmoid(c - r).mean(), "its logarithm"),
])
def test_bradley_terry_slips_are_rejected(wrong, message):
    with pytest.raises(ExerciseError, match=message):
        check_bradley_terry(wrong)


@pytest.mark.parametrize("wrong,message", [
    (lambda pc, pr, rc, rr, b: -F.logsigmoid((pc - rc) - (pr - rr)).mean(), "where does beta enter"),
    (lambda pc, pr, rc, rr, b: -F.logsigmoid(b * ((rc - pc) - (rr - pr))).mean(), "the other way round"),
    (lambda pc, pr, rc, rr, b: -F.logsigmoid(b * (pc - pr)).mean(), "does the reference matter"),
])
def test_dpo_slips_are_rejected(wrong, message):
    with pytest.raises(ExerciseError, match=message):
        check_dpo_loss(wrong)


def test_the_advantage_checker_passes_the_package_and_rejects_slips(capsys):
    check_grpo_advantages(grpo_advantages)
    assert "check_grpo_advantages: all 4 cases" in capsys.readouterr().out

    def sample_std(r):
        c = r - r.mean(dim=1, keepdim=True)
        s = r.std(dim=1, keepdim=True)
        return torch.where(s > 0, c / s.clamp(min=1e-6), torch.zeros_like(c))

    def no_zero_guard(r):
        return (r - r.mean(dim=1, keepdim=True)) / r.std(dim=1, correction=0, keepdim=True)

    def whole_batch(r):
        return (r - r.mean()) / r.std(correction=0)

    for wrong, message in ((sample_std, "one less"), (no_zero_guard, "all equal"), (whole_batch, "its own group")):
        with pytest.raises(ExerciseError, match=message):
            check_grpo_advantages(wrong)


def test_the_lora_checker_passes_the_forward_and_rejects_slips(capsys):
    def right(x, w, b, a, bb, scale):
        return x @ w.T + b + scale * (x @ a.T) @ bb.T

    check_lora_forward(right)
    assert "check_lora_forward: all 3 cases" in capsys.readouterr().out
    slips = ((lambda x, w, b, a, bb, s: x @ w.T + b + (x @ a.T) @ bb.T, "alpha / rank"),
             (lambda x, w, b, a, bb, s: s * (x @ a.T) @ bb.T, "all of W x"),
             (lambda x, w, b, a, bb, s: x @ w.T + s * (x @ a.T) @ bb.T, "bias"),
             (lambda x, w, b, a, bb, s: x @ w + b, "raised"))  # a wrong shape: W not transposed
    for wrong, message in slips:
        with pytest.raises(ExerciseError, match=message):
            check_lora_forward(wrong)


def test_the_shingle_checker_passes_the_package_and_rejects_slips(capsys):
    from llmscratch.dedup import normalize, shingles

    check_shingles(shingles)
    assert "check_shingles: all 5 cases" in capsys.readouterr().out

    def raw(text, k):
        return {text[i:i + k] for i in range(len(text) - k + 1)}

    def last_left_out(text, k):
        t = normalize(text)
        return {t[i:i + k] for i in range(len(t) - k)} if len(t) > k else {t}

    def nothing_for_short(text, k):
        t = normalize(text)
        return {t[i:i + k] for i in range(len(t) - k + 1)}

    for wrong, message in ((raw, "normalized"), (last_left_out, "how many k-grams"), (nothing_for_short, "shorter"),
                           (lambda text, k: sorted(shingles(text, k)), "a set")):
        with pytest.raises(ExerciseError, match=message):
            check_shingles(wrong)

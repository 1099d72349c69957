"""llmscratch.exercises.blocks: each checker passes the package's answer and rejects a learner's real slips."""

import pytest
import torch
import torch.nn.functional as F

from llmscratch.exercises import (
    ExerciseError,
    check_block,
    check_layernorm,
    check_logit_lens,
    check_parameter_count,
    check_rmsnorm,
)
from llmscratch.model import parameter_formula


def right_layernorm(x, weight, bias, eps):
    return F.layer_norm(x, (x.shape[-1],), weight, bias, eps)


def test_layernorm_checker_passes_the_reference(capsys):
    check_layernorm(right_layernorm)
    assert "check_layernorm: all 5 cases" in capsys.readouterr().out


def _ln(x, weight, bias, eps, *, unbiased=False, eps_outside=False, dim=-1):
    centred = x - x.mean(dim, keepdim=True)
    std = x.var(dim, keepdim=True, unbiased=unbiased).sqrt()
    return weight * centred / ((std + eps) if eps_outside else (std**2 + eps).sqrt()) + bias


@pytest.mark.parametrize(
    "wrong, message",
    [
        (lambda x, w, b, eps: _ln(x, w, b, eps, unbiased=True), "dividing the variance by d - 1"),
        (lambda x, w, b, eps: _ln(x, w, b, eps, eps_outside=True), "adding eps after the square root"),
        (lambda x, w, b, eps: _ln(x, w, b, eps, dim=0), "normalising over the first dimension"),
        (lambda x, w, b, eps: w * x / (x.pow(2).mean(-1, keepdim=True) + eps).sqrt() + b, "does not subtract the mean"),
        (lambda x, w, b, eps: _ln(x, w, b * 0, eps), "the shift is missing"),
    ],
)
def test_layernorm_checker_rejects_plausible_slips(wrong, message):
    with pytest.raises(ExerciseError, match=message):
        check_layernorm(wrong)


def test_layernorm_checker_names_the_case_and_the_values():
    with pytest.raises(ExerciseError, match=r"random x of shape \(2, 5, 8\): expected .* at index"):
        check_layernorm(lambda x, w, b, eps: _ln(x, w, b, eps, unbiased=True))
    with pytest.raises(ExerciseError, match="expected a tensor"):
        check_layernorm(lambda x, w, b, eps: x.tolist())


def right_rmsnorm(x, weight, eps):
    return weight * x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps)


def test_rmsnorm_checker_passes_the_reference(capsys):
    check_rmsnorm(right_rmsnorm)
    assert "check_rmsnorm: all 5 cases" in capsys.readouterr().out


@pytest.mark.parametrize(
    "wrong, message",
    [
        (lambda x, w, eps: _ln(x, w, 0.0, eps), "subtracting the mean first"),
        (lambda x, w, eps: w * x / (x.pow(2).mean(-1, keepdim=True).sqrt() + eps), "adding eps after the square root"),
        (lambda x, w, eps: w * x / (x.pow(2).mean(-1, keepdim=True) + eps), "is a root missing"),
        (lambda x, w, eps: w * x / (x.pow(2).sum(-1, keepdim=True) + eps).sqrt(), "sum of squares or their mean"),
        (lambda x, w, eps: w * x / (x.pow(2).mean(0, keepdim=True) + eps).sqrt(), "over which dimension"),
    ],
)
def test_rmsnorm_checker_rejects_plausible_slips(wrong, message):
    with pytest.raises(ExerciseError, match=message):
        check_rmsnorm(wrong)


def right_block(x, block):
    x = x + block.attention(block.norm_1(x))
    return x + block.feed_forward(block.norm_2(x))


def test_block_checker_passes_the_reference(capsys):
    check_block(right_block)
    assert "check_block: all 3 cases" in capsys.readouterr().out


def normed_stream(x, block):
    x = block.norm_1(x)
    x = x + block.attention(x)
    x = block.norm_2(x)
    return x + block.feed_forward(x)


def post_norm(x, block):
    x = block.norm_1(x + block.attention(x))
    return block.norm_2(x + block.feed_forward(x))


@pytest.mark.parametrize(
    "wrong, message",
    [
        # the feed-forward branch reads the stream from before attention (a parallel block)
        (lambda x, b: x + b.attention(b.norm_1(x)) + b.feed_forward(b.norm_2(x)), "stream from before attention"),
        # no additions at all
        (lambda x, b: b.feed_forward(b.norm_2(b.attention(b.norm_1(x)))), "no residual connections"),
        # the norm applied to the stream rather than inside the branch
        (normed_stream, "is the norm inside the branch"),
        # the original Transformer's arrangement: a different answer, with or without the right sublayers
        (post_norm, "matches post-norm"),
    ],
)
def test_block_checker_rejects_plausible_slips(wrong, message):
    with pytest.raises(ExerciseError, match=message):
        check_block(wrong)


def test_parameter_count_checker(capsys):
    check_parameter_count(lambda config: parameter_formula(config)["total"])
    assert "check_parameter_count: all 8 cases" in capsys.readouterr().out

    def tied_twice(c):  # counts the shared matrix as embedding and as output layer
        return parameter_formula(c)["total"] + (c.vocab_size * c.d_model if c.tie_weights else 0)

    with pytest.raises(ExerciseError, match="is a tied output layer counted once"):
        check_parameter_count(tied_twice)

    def no_final_norm(c):
        return parameter_formula(c)["total"] - 2 * c.d_model

    with pytest.raises(ExerciseError, match="final norm"):
        check_parameter_count(no_final_norm)

    def no_positions(c):
        return parameter_formula(c)["total"] - c.context_length * c.d_model

    with pytest.raises(ExerciseError, match="position table"):
        check_parameter_count(no_positions)

    def always_tied(c):  # forgets the untied head
        from dataclasses import replace
        return parameter_formula(replace(c, tie_weights=True))["total"]

    with pytest.raises(ExerciseError, match=r"tie_weights=False: expected .*own V x d_model matrix"):
        check_parameter_count(always_tied)

    def four_d_always(c):  # ignores the config's d_ff
        from dataclasses import replace
        return parameter_formula(replace(c, d_ff=None))["total"]

    with pytest.raises(ExerciseError, match="d_ff=100: is the feed-forward width read from it"):
        check_parameter_count(four_d_always)
    with pytest.raises(ExerciseError, match="expected an int"):
        check_parameter_count(lambda c: float(parameter_formula(c)["total"]))


def right_lens(model, idx):
    with torch.no_grad():
        return torch.stack([model.lm_head(model.final_norm(h)) for h in model.trace(idx).hidden])


def test_logit_lens_checker(capsys):
    check_logit_lens(right_lens)
    assert "check_logit_lens: all 2 cases" in capsys.readouterr().out

    def without_norm(model, idx):
        return torch.stack([model.lm_head(h) for h in model.trace(idx).hidden])

    with pytest.raises(ExerciseError, match="skips the final norm"):
        check_logit_lens(without_norm)

    def blocks_only(model, idx):  # forgets layer 0, the embeddings
        return right_lens(model, idx)[1:]

    with pytest.raises(ExerciseError, match="embeddings, read out too"):
        check_logit_lens(blocks_only)

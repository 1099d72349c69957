"""llmscratch.exercises.modern: each checker passes the package's answer and rejects a learner's real slips."""

import pytest
import torch
import torch.nn.functional as F

from llmscratch.config import GPTConfig
from llmscratch.exercises import ExerciseError, check_swiglu, check_swiglu_width
from llmscratch.model import parameter_formula


def right_swiglu(x, gate, up, down):
    return (F.silu(x @ gate) * (x @ up)) @ down


def test_swiglu_checker_passes_the_reference(capsys):
    check_swiglu(right_swiglu)
    assert "check_swiglu: all 4 cases" in capsys.readouterr().out


@pytest.mark.parametrize(
    "wrong, message",
    [
        (lambda x, g, u, d: (torch.sigmoid(x @ g) * (x @ u)) @ d, "is SiLU the sigmoid alone"),
        (lambda x, g, u, d: (F.silu(x @ u) * (x @ g)) @ d, "which projection goes through SiLU"),
        (lambda x, g, u, d: (F.gelu(x @ g) * (x @ u)) @ d, "which nonlinearity"),
        (lambda x, g, u, d: F.silu(x @ g) @ d, "what does the gate multiply"),
        (lambda x, g, u, d: F.silu((x @ g) * (x @ u)) @ d, "SiLU after multiplying"),
        (lambda x, g, u, d: (F.relu(x @ g) * (x @ u)) @ d, "then @ down"),
        (lambda x, g, u, d: (F.silu(x @ g) * (x @ u)) @ d[:, :1], "expected shape"),
    ],
)
def test_swiglu_checker_rejects_slips(wrong, message):
    with pytest.raises(ExerciseError, match=message):
        check_swiglu(wrong)


def right_width(d_model, d_ff, bias):
    def params(width, matrices):
        return matrices * d_model * width + bias * ((matrices - 1) * width + d_model)

    return min(range(1, 2 * d_ff + 2), key=lambda w: abs(params(w, 3) - params(d_ff, 2)))


def test_width_checker_passes_a_from_scratch_answer(capsys):
    check_swiglu_width(right_width)
    assert "check_swiglu_width: all 5 cases" in capsys.readouterr().out
    config = GPTConfig(d_model=64, n_heads=4, n_layers=1, bias=True)
    assert parameter_formula(config)["feed_forward"] == 2 * 64 * 256 + 256 + 64  # what right_width matches


@pytest.mark.parametrize(
    "wrong, message",
    [
        (lambda d_model, d_ff, bias: round(8 * d_model / 3), "which is closer"),
        (lambda d_model, d_ff, bias: int(2 * d_ff / 3), "expected width 171, got 170"),
        (lambda d_model, d_ff, bias: d_ff // 2, "three matrices"),
        (lambda d_model, d_ff, bias: 2 * d_ff / 3, "expected an int"),
    ],
)
def test_width_checker_rejects_slips(wrong, message):
    with pytest.raises(ExerciseError, match=message):
        check_swiglu_width(wrong)

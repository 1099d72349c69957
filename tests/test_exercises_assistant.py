"""The SFT-target checker accepts the package's function and rejects the slips learners make."""

import pytest
import torch

from llmscratch.exercises import ExerciseError, check_sft_targets
from llmscratch.instructions import sft_targets


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

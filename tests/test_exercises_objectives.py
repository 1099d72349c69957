"""The prefix-mask checker accepts the package's mask and rejects the slips learners make."""

import pytest
import torch

from llmscratch.attention import prefix_lm_mask
from llmscratch.exercises import ExerciseError, check_prefix_mask


def package(length, prefix):
    positions = torch.arange(length)
    return prefix_lm_mask(positions, positions, torch.tensor([prefix]))[0]


def test_the_package_passes(capsys):
    check_prefix_mask(package)
    assert "check_prefix_mask: all 7 cases" in capsys.readouterr().out


def causal_only(length, prefix):
    return torch.ones(length, length, dtype=torch.bool).tril()


def future_open(length, prefix):
    return torch.ones(length, length, dtype=torch.bool)


def off_by_one(length, prefix):
    return package(length, max(prefix - 1, 0))


@pytest.mark.parametrize("wrong,message", [
    (causal_only, "in the prefix: which queries may see it"),
    (future_open, "comes after query"),
    (off_by_one, "in the prefix"),
    (lambda length, prefix: package(length, prefix).int(), "boolean"),
])
def test_slips_are_rejected(wrong, message):
    with pytest.raises(ExerciseError, match=message):
        check_prefix_mask(wrong)

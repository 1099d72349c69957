"""llmscratch.exercises.serving: the acceptance-rule checker passes the package's rule and rejects wrong ones."""

import pytest

from llmscratch.exercises import ExerciseError, check_verify
from llmscratch.speculative import verify


def test_the_checker_passes_the_package(capsys):
    check_verify(verify)
    assert "check_verify: all" in capsys.readouterr().out


def resample_from_p(p, q, drafted, chooser):
    """The plausible slip: after a rejection, draw the replacement from p itself."""
    out = []
    for i, x in enumerate(drafted):
        if not chooser.accept(min(1.0, float(p[i, x] / q[i, x]))):
            return out + [chooser.sample(p[i])]
        out.append(x)
    return out + [chooser.sample(p[len(drafted)])]


def accept_if_likelier(p, q, drafted, chooser):
    """Keeps a guess exactly when the target likes it at least as much as the draft: no randomness."""
    out = []
    for i, x in enumerate(drafted):
        if p[i, x] < q[i, x]:
            residual = (p[i] - q[i]).clamp(min=0)
            return out + [chooser.sample(residual / residual.sum())]
        out.append(x)
    return out + [chooser.sample(p[len(drafted)])]


def no_bonus_but_returns_nothing(p, q, drafted, chooser):
    return []


@pytest.mark.parametrize("wrong,message", [(resample_from_p, "probability"), (accept_if_likelier, "probability"),
                                           (no_bonus_but_returns_nothing, "prefix of the guesses")])
def test_the_checker_rejects_plausible_wrong_rules(wrong, message):
    with pytest.raises(ExerciseError, match=message):
        check_verify(wrong)

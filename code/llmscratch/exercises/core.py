"""What every checker shares: the error it raises and the line it prints when all cases pass."""

from __future__ import annotations

from collections.abc import Callable

import torch

__all__ = ["ExerciseError"]


class ExerciseError(AssertionError):
    """The learner's function disagreed with the package on the case the message names."""


# Tracebacks name it where learners import it from.
ExerciseError.__module__ = "llmscratch.exercises"


def passed(name: str, n: int) -> None:
    print(f"✓ {name}: all {n} cases agree with the package")


def call_learner(where: str, fn: Callable, *args: object) -> object:
    """Call the learner's function on one case; an error it raises becomes an `ExerciseError` naming the case.

    A `NotImplementedError` (an exercise's stub, not yet written) and an `ExerciseError` pass
    through unchanged.
    """
    try:
        return fn(*args)
    except (ExerciseError, NotImplementedError):
        raise
    except Exception as err:  # noqa: BLE001 -- any error in the learner's code is reported with its case
        raise ExerciseError(f"{where}: your function raised {type(err).__name__}: {err}") from err


def expect_tensor(where: str, got: object, want: torch.Tensor, *, atol: float = 1e-5, rtol: float = 1e-5,
                  hint: str = "") -> None:
    """Raise `ExerciseError` unless `got` is a tensor of `want`'s shape whose values match it.

    The message names the case (`where`), then the first thing that differs: the type, the
    shape, or the first entry that is off (its index, the expected and the returned value),
    followed by `hint` -- a question that points at the likely slip, never the answer.
    """
    if not isinstance(got, torch.Tensor):
        raise ExerciseError(f"{where}: expected a tensor, got {type(got).__name__}")
    if got.shape != want.shape:
        raise ExerciseError(f"{where}: expected shape {tuple(want.shape)}, got {tuple(got.shape)}")
    if want.dtype == torch.bool or not want.is_floating_point():
        bad = got != want
    else:
        g, w = got.detach().to(torch.float64), want.detach().to(torch.float64)
        bad = ~torch.isclose(g, w, rtol=rtol, atol=atol, equal_nan=False)
    if bool(bad.any()):
        idx = tuple(int(i) for i in bad.nonzero()[0])
        where_idx = f" at index {idx}" if idx else ""
        raise ExerciseError(f"{where}: expected {want[idx].item():.6g}{where_idx}, got {got[idx].item():.6g}"
                            + (f" ({hint})" if hint else ""))

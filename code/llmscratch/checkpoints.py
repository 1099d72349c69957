"""Training checkpoints: everything a run needs to continue exactly where it stopped.

A checkpoint holds the model's weights, the optimizer's state, the step, the training
history, the training configuration, and every random state the run draws from (the batch
generator, torch's CPU generator, and the CUDA generators when there are any). It is written
atomically (`llmscratch.fileio`): a crash while saving leaves the previous checkpoint intact,
never half a file. `load_checkpoint` refuses anything that is not one of ours, with a message
that says what is wrong; `restore_checkpoint` also refuses a checkpoint written for another
model or another training configuration, since continuing it would be a different run.

Left out: keeping several checkpoints, and sharded or asynchronous saving (one small model on
one device needs neither).
"""

from __future__ import annotations

import os
import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch

from .fileio import atomic_path

__all__ = ["CHECKPOINT_FORMAT", "CHECKPOINT_VERSION", "CheckpointError", "load_checkpoint", "restore_checkpoint",
           "save_checkpoint"]

CHECKPOINT_FORMAT = "llmscratch.checkpoint"
CHECKPOINT_VERSION = 1
# TrainConfig fields added after version 1 checkpoints were written, with the behaviour those had.
PREDATED_DEFAULTS = {"accumulation_steps": 1, "precision": "fp32", "keep_best": False}


class CheckpointError(ValueError):
    """A checkpoint is missing, unreadable, or was written by a different model or config."""


def save_checkpoint(
    path: str | os.PathLike,
    *,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    train_config: dict[str, Any],
    step: int,
    history: dict[str, list],
    batch_rng: torch.Generator,
    extras: dict[str, Any] | None = None,
) -> None:
    """Write the state of a training run to `path`, atomically.

    `extras` holds whatever else the run must carry to continue exactly: the best weights so
    far, a gradient scaler's state. It is handed back by `restore_checkpoint`.
    """
    state = {
        "format": CHECKPOINT_FORMAT,
        "version": CHECKPOINT_VERSION,
        "train_config": train_config,
        "step": step,
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "history": history,
        "batch_rng": batch_rng.get_state(),
        "torch_rng": torch.get_rng_state(),
        "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "extras": extras or {},
    }
    with atomic_path(Path(path)) as tmp:
        torch.save(state, tmp)


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Read a checkpoint written by `save_checkpoint`; `CheckpointError` if missing or unreadable."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, EOFError, pickle.UnpicklingError, zipfile.BadZipFile, ValueError) as err:
        raise CheckpointError(f"{path} is not a readable checkpoint (truncated or corrupt?): {err}") from None
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path} is not an {CHECKPOINT_FORMAT} file")
    if state.get("version") != CHECKPOINT_VERSION:
        raise CheckpointError(f"{path} has version {state.get('version')!r}; this code reads {CHECKPOINT_VERSION}")
    return state


def _plain(value: Any) -> Any:
    """Tuples as lists, so that a config read back compares equal to the one written."""
    return list(value) if isinstance(value, tuple) else value


def restore_checkpoint(
    path: str | os.PathLike,
    *,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    train_config: dict[str, Any],
    batch_rng: torch.Generator,
) -> tuple[int, dict[str, list], dict[str, Any]]:
    """Load the checkpoint at `path` into the run's objects; return its step, history and extras.

    The checkpoint must have been written with the same `train_config` and for a model with
    the same parameters, else `CheckpointError` says what differs.
    """
    state = load_checkpoint(path)
    try:
        # A field the checkpoint predates must still have the value that checkpoint ran with.
        saved = {**PREDATED_DEFAULTS, **state["train_config"]}
        differ = [k for k in train_config if _plain(saved.get(k)) != _plain(train_config[k])]
        if differ:
            detail = ", ".join(f"{k}: {saved.get(k)!r} there, {train_config[k]!r} here" for k in differ)
            raise CheckpointError(f"{path} was written with a different TrainConfig ({detail})")
        try:
            model.load_state_dict(state["model"])
        except RuntimeError as err:
            raise CheckpointError(f"{path} holds weights for a different model: {err}") from None
        optimizer.load_state_dict(state["optimizer"])
        batch_rng.set_state(state["batch_rng"])
        torch.set_rng_state(state["torch_rng"])
        if state.get("cuda_rng") and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["cuda_rng"])
        return int(state["step"]), state["history"], state.get("extras", {})
    except CheckpointError:
        raise
    except (KeyError, TypeError, ValueError, RuntimeError) as err:
        raise CheckpointError(f"{path} is incomplete or malformed ({type(err).__name__}: {err})") from None

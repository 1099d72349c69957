"""Where and how a model runs: evaluation mode for the length of a block, and the device.

Scoring, sampling and drawing a model all want it in evaluation mode (dropout off) and want
to leave it as they found it, even when something inside raises:

    >>> import torch
    >>> model = torch.nn.Dropout(0.5)
    >>> with eval_mode(model):
    ...     model.training
    False
    >>> model.training
    True

`resolve_device("auto")` picks CUDA, then Apple's MPS, then the CPU; the scripts take it as
``--device auto``. The chapters run on the CPU.

Left out: several devices, and mixed precision (Part 3).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch

__all__ = ["DEVICES", "device_of", "eval_mode", "resolve_device"]

DEVICES = ("auto", "cpu", "cuda", "mps")


@contextmanager
def eval_mode(model: torch.nn.Module) -> Iterator[torch.nn.Module]:
    """Put `model` in evaluation mode inside the block; restore its previous mode on the way out."""
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)


def device_of(model: torch.nn.Module) -> torch.device:
    """The device of the model's first parameter: where its inputs must go (the CPU without parameters)."""
    return next((p.device for p in model.parameters()), torch.device("cpu"))


def resolve_device(name: str = "auto") -> torch.device:
    """A `torch.device` from "auto", "cpu", "cuda" or "mps"; "auto" takes the fastest one present.

    >>> resolve_device("cpu")
    device(type='cpu')
    """
    if name not in DEVICES:
        raise ValueError(f"device must be one of {DEVICES}, got {name!r}")
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' was asked for, but torch sees no CUDA GPU")
    if name == "mps" and not torch.backends.mps.is_available():
        raise ValueError("device 'mps' was asked for, but torch sees no Apple GPU")
    return torch.device(name)

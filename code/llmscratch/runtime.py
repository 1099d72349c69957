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

`autocast(device, precision)` runs a forward pass in mixed precision: matrix products in
bfloat16 ("bf16") or float16 ("fp16"), while the weights, the reductions and the optimizer
stay in float32. bfloat16 keeps float32's exponent range, so it needs nothing else; float16
does not, and its gradients need a loss scaler (`torch.amp.GradScaler`, which the trainer
adds). Whether it is faster depends on the hardware: GPUs since 2020 and CPUs with AVX-512
BF16 or AMX multiply bfloat16 natively; elsewhere it is emulated and slower than float32.

Left out: several devices (the scaling-out chapter of Part 3), float8.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext

import torch

__all__ = ["DEVICES", "PRECISIONS", "autocast", "device_of", "eval_mode", "resolve_device"]

DEVICES = ("auto", "cpu", "cuda", "mps")
# The number formats of a forward pass: float32 throughout, or mixed with bfloat16 or float16.
PRECISIONS = ("fp32", "bf16", "fp16")


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


def autocast(device: torch.device | str, precision: str = "fp32") -> AbstractContextManager:
    """A context in which forward passes on `device` run at `precision` ("fp32" changes nothing).

    >>> with autocast("cpu", "bf16"):
    ...     (torch.ones(2, 2) @ torch.ones(2, 2)).dtype
    torch.bfloat16
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    if precision == "fp32":
        return nullcontext()
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(torch.device(device).type, dtype=dtype)

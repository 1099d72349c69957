"""Long inputs: a trained GPT given a sliding window, the loss at lengths it never trained on, and
an honest measurement of what attention costs as the input grows.

    windowed = with_window(model, 256)  # the same weights; each query now sees 256 keys at most

`with_window` turns any GPT into a sliding-window one without training: the same weights under
a config whose ``attention_window`` is set. With RoPE, ALiBi or no positions such a model reads
inputs of any length, and generates past ``context_length`` with a rolling KV cache
(`llmscratch.kv_cache`) whose memory stops growing at the window. Every query then sees at most
as many keys as in training; whether the model copes with the rest (deeper layers summarising
more than it ever saw) is an empirical question, which `length_losses` answers position by position.

`peak_memory` measures the memory a call really takes on Linux: it returns freed heap to the
kernel (``malloc_trim``), resets the process's peak resident size (writing 5 to
``/proc/self/clear_refs``), runs the call, and reads the new peak (``VmHWM``) minus the resident
size before it. That is what the operating system had to give the process, every allocation of
PyTorch's CPU allocator included, rounded to 4 kB pages. So that a freed tensor's memory really
goes back (and a later tensor is counted again), it first fixes glibc's ``mmap`` threshold at
128 KiB for the rest of the process: every larger allocation is then its own mapping, unmapped
when freed (glibc would otherwise raise the threshold as it goes, and serve tensors of up to
32 MiB from a heap whose freed pages stay resident). It is the right tool for large tensors
(megabytes); a few kilobytes of bookkeeping are within its noise.

On macOS and Windows, which have no resettable peak, `peak_memory` counts tensors instead
(`tensor_peak_memory`): it watches every tensor PyTorch makes inside the call, adds each new
storage's bytes when it appears and takes them off when it is freed, and reports the highest
total. That sees what the Python code allocates, not the allocator's rounding nor the scratch
memory a fused kernel uses inside one operation, so it reads low for fused kernels.

    >>> from llmscratch import GPTConfig
    >>> with_window(GPT(GPTConfig(n_layers=1, position="rope")), 8).config.attention_window
    8

Left out: training with a window (here it is only switched on at inference), RoPE rescalings
(position interpolation, NTK, YaRN) that stretch a model to longer inputs, and attention sinks.

References: Press et al., "Train Short, Test Long" (ICLR 2022); Beltagy et al., "Longformer"
(2020); Xiao et al., "Efficient Streaming Language Models with Attention Sinks" (ICLR 2024);
Chen et al., "Extending Context Window of Large Language Models via Positional Interpolation" (2023).
"""

from __future__ import annotations

import ctypes
import math
import re
import sys
import time
import weakref
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

from .evaluation import position_losses
from .model import GPT
from .runtime import eval_mode

__all__ = ["char_lengths", "length_losses", "length_report", "peak_memory", "sequence_nlls",
           "tensor_peak_memory", "time_call", "with_window"]


def with_window(model: GPT, window: int | None) -> GPT:
    """A copy of `model` whose attention sees at most `window` keys back (None: the whole prefix).

    The weights are copied, not retrained; the copy is in evaluation mode on the model's device.
    The course model with ``with_window(model, 256)`` sees exactly what it saw in training at
    every position, and generates 512 tokens (or any number) with a rolling cache.
    """
    if not isinstance(model, GPT):
        raise TypeError(f"model must be a llmscratch GPT, got {type(model).__name__}")
    config = replace(model.config, attention_window=window)  # GPTConfig validates the window
    copy = GPT(config).to(next(model.parameters()).device)
    copy.load_state_dict(model.state_dict())
    return copy.eval()


_M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter number (malloc.h)


def _status_bytes(key: str) -> int:
    match = re.search(rf"^{key}:\s+(\d+) kB", Path("/proc/self/status").read_text(), re.MULTILINE)
    if match is None:
        raise RuntimeError(f"/proc/self/status has no {key} line")
    return int(match.group(1)) * 1024


def peak_memory(fn: Callable[[], Any]) -> tuple[Any, int]:
    """Run ``fn()``; return its result and the peak memory it added, in bytes (see the module docstring).

    On Linux the operating system's count; elsewhere `tensor_peak_memory`. The result is
    returned, so the caller decides what stays alive: a tensor returned by `fn` counts in the
    peak, as it must.
    """
    if not sys.platform.startswith("linux"):
        return tensor_peak_memory(fn)
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(_M_MMAP_THRESHOLD, 128 * 1024)  # large blocks: mapped on malloc, unmapped on free
        libc.malloc_trim(0)  # hand freed heap back, so reusing it shows up again
    except (OSError, AttributeError):  # a libc other than glibc: large blocks may then be undercounted
        pass
    before = _status_bytes("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")  # reset the peak to the current resident size
    result = fn()
    return result, max(0, _status_bytes("VmHWM") - before)


class _TensorBytes(TorchDispatchMode):
    """Counts the bytes of the storages that operations create while it is active, until each is freed."""

    def __init__(self) -> None:
        super().__init__()
        self.live: dict[int, int] = {}  # storage address -> bytes
        self.current = self.peak = 0

    def _free(self, address: int) -> None:
        self.current -= self.live.pop(address, 0)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # noqa: ANN001, ANN204
        out = func(*args, **(kwargs or {}))
        for t in tree_leaves(out):
            if isinstance(t, torch.Tensor) and t.device.type == "cpu":
                storage = t.untyped_storage()
                address = storage.data_ptr()
                if address and address not in self.live:  # a new storage, not a view of one already counted
                    self.live[address] = storage.nbytes()
                    self.current += storage.nbytes()
                    self.peak = max(self.peak, self.current)
                    # Freed when the last tensor that holds the storage goes: track the storage's owner.
                    weakref.finalize(t._base if t._base is not None else t, self._free, address)
        return out


def tensor_peak_memory(fn: Callable[[], Any]) -> tuple[Any, int]:
    """Run ``fn()``; return its result and the peak bytes of the tensors it created and had alive at once.

    Portable (no operating-system counters): every operation's new output storage is counted
    until it is freed. Blind to memory a single fused operation uses inside itself.
    """
    with _TensorBytes() as counter:
        result = fn()
    return result, counter.peak


def time_call(fn: Callable[[], Any], repeats: int = 3) -> float:
    """The fastest of `repeats` runs of ``fn()``, in seconds (the fastest is the least disturbed)."""
    if not isinstance(repeats, int) or repeats < 1:
        raise ValueError(f"repeats must be a positive integer, got {repeats!r}")
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


@torch.no_grad()
def length_losses(
    model: GPT, stream: torch.Tensor, lengths: Sequence[int], windows: Sequence[int | None] = (None,)
) -> dict[tuple[int, int | None], torch.Tensor]:
    """Loss per position (nats) of `model` at each input length, without and with sliding windows.

    ``{(length, window): (length,) tensor}``, each from `evaluation.position_losses` on the
    consecutive, non-overlapping sequences of that length cut from `stream` (so a longer length
    scores fewer sequences of the same text). A learned position table refuses lengths past
    ``context_length`` with `ValueError`, as the model does.
    """
    if not isinstance(model, GPT):
        raise TypeError(f"model must be a llmscratch GPT, got {type(model).__name__}")
    out = {}
    for window in windows:
        windowed = model if window == model.config.attention_window else with_window(model, window)
        for length in lengths:
            out[(length, window)] = position_losses(windowed, stream, length)  # (length,)
    return out


@torch.no_grad()
def sequence_nlls(model: GPT, stream: torch.Tensor, length: int, sequences: int | None = None,
                  batch_size: int = 8) -> torch.Tensor:
    """The loss (nats) of every target of the first `sequences` non-overlapping pieces of `stream`: (n, length).

    The pieces are those of `evaluation.position_losses` (length + 1 consecutive ids each, the
    input and, shifted by one, the targets); its curve is the mean of this over the rows.
    """
    if stream.ndim != 1 or not isinstance(length, int) or length <= 0:
        raise ValueError(f"need a 1-D stream and a positive length, got shape {tuple(stream.shape)} and {length!r}")
    n = len(stream) // (length + 1) if sequences is None else sequences
    if not 0 < n <= len(stream) // (length + 1):
        raise ValueError(f"a stream of {len(stream)} tokens holds {len(stream) // (length + 1)} sequences of "
                         f"{length} + 1, asked for {n}")
    pieces = stream[: n * (length + 1)].view(n, length + 1)  # (n, length + 1)
    rows = []
    with eval_mode(model):
        for i in range(0, n, batch_size):
            chunk = pieces[i : i + batch_size]  # (b, length + 1)
            logits, _ = model(chunk[:, :-1])  # (b, length, V)
            rows.append(F.cross_entropy(logits.transpose(1, 2), chunk[:, 1:], reduction="none").float())  # (b, length)
    return torch.cat(rows)


def char_lengths(tokenizer: Any, vocab_size: int) -> torch.Tensor:
    """Characters each token id stands for, (vocab_size,): ``len(tokenizer.decode([i]))``."""
    return torch.tensor([len(tokenizer.decode([i])) for i in range(vocab_size)], dtype=torch.float64)


def length_report(nlls: torch.Tensor, targets: torch.Tensor, chars: torch.Tensor) -> dict[str, Any]:
    """Summaries of a (n, length) loss matrix whose targets are `targets` (n, length).

    Nats per token, bits per character (the total in bits over the characters the targets
    spell, `char_lengths`), the mean of each sequence, and the curve over positions.
    """
    if nlls.shape != targets.shape:
        raise ValueError(f"nlls {tuple(nlls.shape)} and targets {tuple(targets.shape)} differ in shape")
    total = float(nlls.double().sum())
    return {
        "sequences": nlls.shape[0],
        "nats_per_token": round(total / nlls.numel(), 5),
        "bits_per_char": round(total / math.log(2) / float(chars[targets].sum()), 5),
        "per_sequence": [round(x, 5) for x in nlls.double().mean(1).tolist()],
        "curve": [round(x, 4) for x in nlls.double().mean(0).tolist()],
    }

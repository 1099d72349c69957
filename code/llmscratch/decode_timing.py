"""Timing generation: new tokens per second, and the time of each step, with and without a KV cache.

What the KV-cache chapter measures and ``python -m llmscratch.scripts.kv_cache_speed`` commits.
Times are CPU time of this process by default (``time.process_time``), not wall time: on a
machine that other work shares, the wall clock also counts the waits for a core, which are not
the cache's doing. With one torch thread, the figures are what one core delivers.

    >>> import torch
    >>> from llmscratch import GPT, GPTConfig
    >>> model = GPT(GPTConfig(vocab_size=20, context_length=8, d_model=16, n_layers=1, n_heads=2)).eval()
    >>> rate, ids = tokens_per_second(model, torch.tensor([[1, 2]]), 4, use_cache=True)
    >>> rate > 0, len(ids[0]), len(step_times(model, torch.tensor([[1, 2]]), 50, use_cache=False))
    (True, 4, 7)

Left out: GPU timing (it needs ``torch.cuda.synchronize`` around each call), batches of prompts
(the serving chapter measures those), and warm-up runs (the best of ``repeats`` stands in).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import torch

from .kv_cache import KVCache
from .sampling import generate, last_logits

__all__ = ["LENGTHS", "PROMPT", "speed_table", "step_times", "tokens_per_second"]

PROMPT = "ROMEO:\n"
# New tokens timed by default; the script adds the rest of the window (context_length - prompt) and 512.
LENGTHS = (16, 32, 64, 128)


def tokens_per_second(model: torch.nn.Module, prompt: torch.Tensor, new_tokens: int, use_cache: bool,
                      repeats: int = 1,
                      clock: Callable[[], float] = time.process_time) -> tuple[float, list[list[int]]]:
    """Best-of-`repeats` new tokens per second of greedy `generate`, and the ids it wrote.

    The default `clock` is the process's CPU time, not the wall clock: on a machine shared with
    other work, waiting for a core does not count, so with one torch thread the figure is what one
    core delivers. Pass ``time.perf_counter`` for wall time.
    """
    best, ids = float("inf"), []
    for _ in range(repeats):
        start = clock()
        ids = generate(model, prompt, new_tokens, temperature=0, use_cache=use_cache)
        best = min(best, clock() - start)
    return new_tokens / best, ids


@torch.inference_mode()
def step_times(model: torch.nn.Module, prompt: torch.Tensor, new_tokens: int, use_cache: bool,
               clock: Callable[[], float] = time.process_time) -> list[float]:
    """CPU seconds of each greedy step's forward pass (the first one reads the prompt): `new_tokens` floats.

    The same steps as `generate` inside the model's window; stops at ``model.context_length`` ids.
    """
    ids = prompt  # (1, T0 + steps)
    cache = KVCache.for_model(model) if use_cache else None
    times = []
    for _ in range(min(new_tokens, model.context_length - prompt.shape[1] + 1)):
        t0 = clock()
        window = ids if cache is None else ids[:, cache.length:]  # everything, or what the cache has not seen
        logits = last_logits(model, window, cache)  # (1, V)
        times.append(clock() - t0)
        ids = torch.cat([ids, logits.argmax(-1, keepdim=True)], dim=1)  # (1, T0 + steps + 1)
    return times


def speed_table(model: torch.nn.Module, prompt: torch.Tensor, lengths: Sequence[int], repeats: int) -> list[dict]:
    """One row per length: tokens per second without and with the cache, their ratio, and whether the ids agree."""
    rows = []
    for n in lengths:
        slow, ids_slow = tokens_per_second(model, prompt, n, False, repeats)
        fast, ids_fast = tokens_per_second(model, prompt, n, True, repeats)
        rows.append({"new_tokens": n, "no_cache_tokens_per_second": round(slow, 2),
                     "cache_tokens_per_second": round(fast, 2), "speed_up": round(fast / slow, 3),
                     "same_ids": ids_fast == ids_slow,
                     "past_window": prompt.shape[1] + n > model.context_length + 1})
        print(f"{n:>5} new tokens: {slow:8.1f} tok/s without, {fast:8.1f} with the cache, {fast / slow:5.2f}x",
              flush=True)
    return rows

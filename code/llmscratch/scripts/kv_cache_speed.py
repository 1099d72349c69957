"""How much faster does the KV cache make generation with the course model? Tokens per second, with and without.

    python -m llmscratch.scripts.kv_cache_speed     # writes data/kv_cache_speed.json, a few minutes on one thread

Greedy decoding from a short prompt ("ROMEO:\\n") with `llmscratch.generate`, without and with
``use_cache=True``, for several numbers of new tokens (`LENGTHS`, and the rest of the model's
window); new tokens per second for both, the best of ``--repeats`` runs, and a check that both
wrote the same ids. Also the time of each single step, by position, for one run of each.
Times are CPU time of this process (``time.process_time``), not wall time: on a machine that
other work shares, the wall clock also counts the waits for a core.

What to expect: without a cache, step t runs t tokens through all six blocks; with one, a single
token, plus attention over t cached keys. The saving grows with the generated length until the
row fills the model's window (``context_length`` = 256): from there the cache-free loop crops
the window, which shifts every position, and the cached loop refills its cache from the cropped
window at every step, so both cost about the same per token.

Timings depend on the machine and on what else runs on it: the JSON records the hardware and
the thread count, and the chapter measures a short version live.
"""

import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from ..course import load_course_model
from ..kv_cache import KVCache
from ..sampling import generate, last_logits
from .cli import commit_result, default_out, script_parser, start

__all__ = ["LENGTHS", "PROMPT", "step_times", "tokens_per_second"]

MODULE = "llmscratch.scripts.kv_cache_speed"
OUT = "data/kv_cache_speed.json"
PROMPT = "ROMEO:\n"
# New tokens; the rest of the window (context_length - prompt) and 512 are added by `main`.
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


def main(argv: Sequence[str] | None = None) -> int:
    parser = script_parser(MODULE, __doc__)
    parser.add_argument("--repeats", type=int, default=3, help="runs per measurement; the fastest counts (default 3)")
    parser.add_argument("--lengths", type=int, nargs="+", help="numbers of new tokens (default: LENGTHS, the "
                                                               "rest of the window, and 512)")
    args = parser.parse_args(argv)
    device, started = start(args)
    model, tokenizer = load_course_model(verify=False)  # tests/test_course.py checks the weights
    prompt = torch.tensor([tokenizer.encode(PROMPT)])  # (1, T0)
    window = model.context_length - prompt.shape[1] + 1  # new tokens whose every step fits the window
    lengths = args.lengths or [*LENGTHS, window, 512]
    rows = speed_table(model, prompt, lengths, args.repeats)
    steps = {"no_cache": step_times(model, prompt, window, False), "cache": step_times(model, prompt, window, True)}
    result: dict[str, Any] = {
        "what": "greedy generation with the course model from the prompt 'ROMEO:\\n', without and with the KV "
                "cache: new tokens per CPU second of this process (best of repeats), and the CPU seconds of each "
                "step inside the window",
        "prompt_tokens": prompt.shape[1],
        "context_length": model.context_length,
        "window_new_tokens": window,
        "repeats": args.repeats,
        "rows": rows,
        "step_seconds": {k: [round(t, 6) for t in v] for k, v in steps.items()},
    }
    commit_result(Path(args.out) if args.out else default_out(OUT), result, MODULE, argv, started, None, device)
    return 0


if __name__ == "__main__":
    sys.exit(main())

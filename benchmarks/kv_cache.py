"""How much faster does the KV cache make generation with the course model?

    LLMSCRATCH_DATA_MIRROR=../shared/data .venv/bin/python benchmarks/kv_cache.py [--threads 1] [--repeats 3]

Greedy decoding from a short prompt ("ROMEO:\\n") with `llmscratch.generate`, once without and
once with ``use_cache=True``, for several numbers of new tokens; prints new tokens per second
for both and their ratio, and checks that both wrote the same ids. Times are the best of
``--repeats`` runs, on CPU, with ``--threads`` PyTorch threads.

What to expect: without a cache, step t runs t tokens through all six blocks; with one, a
single token, plus attention over t cached keys. The saving grows with the generated length
until the row fills the model's window (``context_length`` = 256): from there the cache-free
loop crops the window, which shifts every position, and the cached loop refills its cache
from the cropped window at every step, so both cost the same per token. The last length,
past the window, shows that.

Timings depend on the machine and on what else runs on it; they are printed, not tested.
"""

from __future__ import annotations

import argparse
import platform
import time

import torch

from llmscratch import generate, load_course_model


def tokens_per_second(model: torch.nn.Module, prompt: torch.Tensor, new_tokens: int, use_cache: bool,
                      repeats: int) -> tuple[float, list[list[int]]]:
    """Best-of-`repeats` new tokens per second of greedy `generate`, and the ids it wrote."""
    best, ids = float("inf"), []
    for _ in range(repeats):
        start = time.perf_counter()
        ids = generate(model, prompt, new_tokens, temperature=0, use_cache=use_cache)
        best = min(best, time.perf_counter() - start)
    return new_tokens / best, ids


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lengths", type=int, nargs="+", default=None,
                        help="numbers of new tokens (default: 32 64 128, the rest of the window, and 512)")
    parser.add_argument("--threads", type=int, default=1, help="PyTorch CPU threads (default 1)")
    parser.add_argument("--repeats", type=int, default=3, help="runs per measurement; the fastest counts")
    parser.add_argument("--prompt", default="ROMEO:\n")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    model, tokenizer = load_course_model(verify=False)  # tests/test_course.py checks the weights
    prompt = torch.tensor([tokenizer.encode(args.prompt)])  # (1, T0)
    window = model.context_length - prompt.shape[1]  # new tokens that fit the window
    lengths = args.lengths or [32, 64, 128, window, 512]
    print(f"course model: {model.num_parameters():,} parameters, context {model.context_length}, "
          f"prompt {prompt.shape[1]} tokens; torch {torch.__version__}, {args.threads} thread(s), "
          f"{platform.processor() or platform.machine()}")
    print(f"{'new tokens':>10} {'no cache tok/s':>15} {'cache tok/s':>12} {'speed-up':>9}")
    for n in lengths:
        slow, ids_slow = tokens_per_second(model, prompt, n, False, args.repeats)
        fast, ids_fast = tokens_per_second(model, prompt, n, True, args.repeats)
        same = "" if ids_fast == ids_slow else "  (ids differ!)"
        note = "  (past the window)" if n > window else ""
        print(f"{n:>10} {slow:>15.1f} {fast:>12.1f} {fast / slow:>8.2f}x{same}{note}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""How much faster does the KV cache make generation with the course model? (prints only)

    LLMSCRATCH_DATA_MIRROR=../shared/data .venv/bin/python benchmarks/kv_cache.py [--threads 1] [--repeats 3]

A printing front end to `llmscratch.scripts.kv_cache_speed`, which measures the same table and
commits it with provenance (``python -m llmscratch.scripts.kv_cache_speed``, read by the KV-cache
chapter); see that module for what is measured and what to expect.
Timings depend on the machine and on what else runs on it; they are printed, not tested.
"""

from __future__ import annotations

import argparse
import platform

import torch

from llmscratch import load_course_model
from llmscratch.scripts.kv_cache_speed import LENGTHS, PROMPT, speed_table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lengths", type=int, nargs="+", default=None,
                        help="numbers of new tokens (default: 16 32 64 128, the rest of the window, and 512)")
    parser.add_argument("--threads", type=int, default=1, help="PyTorch CPU threads (default 1)")
    parser.add_argument("--repeats", type=int, default=3, help="runs per measurement; the fastest counts")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    model, tokenizer = load_course_model(verify=False)  # tests/test_course.py checks the weights
    prompt = torch.tensor([tokenizer.encode(PROMPT)])  # (1, T0)
    window = model.context_length - prompt.shape[1] + 1  # new tokens whose every step fits the window
    print(f"course model: {model.num_parameters():,} parameters, context {model.context_length}, "
          f"prompt {prompt.shape[1]} tokens; torch {torch.__version__}, {args.threads} thread(s), "
          f"{platform.processor() or platform.machine()}")
    rows = speed_table(model, prompt, args.lengths or [*LENGTHS, window, 512], args.repeats)
    if not all(row["same_ids"] for row in rows):
        print("the cached and cache-free runs wrote different ids!")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

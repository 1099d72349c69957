"""How much faster does the KV cache make generation with the course model? Tokens per second, with and without.

    python -m llmscratch.scripts.kv_cache_speed     # writes data/kv_cache_speed.json, a few minutes on one thread
    python -m llmscratch.scripts.kv_cache_speed --window 256 --lengths 512 --out data/kv_cache_rolling.json

Greedy decoding from a short prompt ("ROMEO:\\n") with `llmscratch.generate`, without and with
``use_cache=True``, for several numbers of new tokens (`LENGTHS`, and the rest of the model's
window); new tokens per second for both, the best of ``--repeats`` runs, and a check that both
wrote the same ids. Also the time of each single step, by position, for one run of each.
With ``--window W`` the model is the course model with sliding-window attention over W keys
(`llmscratch.long_context.with_window`): at W = 256 it computes exactly what the course model
computes inside its window, and past it the cache rolls (keeps the last W positions) instead of
being refilled, while the cache-free loop feeds the whole receptive field.
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
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from ..course import load_course_model
from ..decode_timing import LENGTHS, PROMPT, speed_table, step_times
from ..long_context import with_window
from .cli import commit_result, default_out, script_parser, start

MODULE = "llmscratch.scripts.kv_cache_speed"
OUT = "data/kv_cache_speed.json"


def main(argv: Sequence[str] | None = None) -> int:
    parser = script_parser(MODULE, __doc__)
    parser.add_argument("--repeats", type=int, default=3, help="runs per measurement; the fastest counts (default 3)")
    parser.add_argument("--lengths", type=int, nargs="+", help="numbers of new tokens (default: LENGTHS, the "
                                                               "rest of the window, and 512)")
    parser.add_argument("--window", type=int, help="sliding-window attention over this many keys (a rolling cache)")
    args = parser.parse_args(argv)
    device, started = start(args)
    model, tokenizer = load_course_model(verify=False)  # tests/test_course.py checks the weights
    if args.window is not None:
        model = with_window(model, args.window)
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
        "attention_window": model.config.attention_window,
        "window_new_tokens": window,
        "repeats": args.repeats,
        "rows": rows,
        "step_seconds": {k: [round(t, 6) for t in v] for k, v in steps.items()},
    }
    commit_result(Path(args.out) if args.out else default_out(OUT), result, MODULE, argv, started, None, device)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The course model past its training length, with and without a sliding window at inference.

    python -m llmscratch.scripts.long_context      # writes data/part4_long_context.json

The course model (RoPE, trained on sequences of 256 tokens) scores the whole validation split
cut into non-overlapping sequences of 256, 512, 1024 and 2048 tokens, once as trained (every
query sees the whole prefix) and once with each window of `WINDOWS` switched on at inference
(`llmscratch.long_context.with_window`; no training). For each it records nats per token, bits
per character, the mean of every sequence, and the loss at every position (`length_report`).
The long-context chapter reads the file and recomputes the first sequences live.
"""

import sys
from collections.abc import Sequence
from pathlib import Path

from ..course import course_model_record, load_course_model
from ..experiments import shakespeare_bpe_splits
from ..long_context import char_lengths, length_report, sequence_nlls, with_window
from .cli import commit_result, default_out, script_parser, start

MODULE = "llmscratch.scripts.long_context"
OUT = "data/part4_long_context.json"
LENGTHS = (256, 512, 1024, 2048)
WINDOWS = (None, 256, 128, 64)


def main(argv: Sequence[str] | None = None) -> int:
    parser = script_parser(MODULE, __doc__)
    parser.add_argument("--lengths", type=int, nargs="+", default=list(LENGTHS))
    parser.add_argument("--val-tokens", type=int, help="score only the first N validation tokens (a quick trial)")
    args = parser.parse_args(argv)
    device, started = start(args)
    model, tokenizer = load_course_model()  # verified against its record
    _, splits, chars = shakespeare_bpe_splits()
    stream = splits["val"] if args.val_tokens is None else splits["val"][: args.val_tokens]
    per_char = char_lengths(tokenizer, model.config.vocab_size)
    runs = []
    for window in WINDOWS:
        windowed = with_window(model, window)
        for length in args.lengths:
            if window is not None and window >= length:
                continue  # the same as no window
            nlls = sequence_nlls(windowed, stream, length)  # (n, length)
            n = nlls.shape[0]
            targets = stream[: n * (length + 1)].view(n, length + 1)[:, 1:]  # (n, length)
            row = {"length": length, "window": window, **length_report(nlls, targets, per_char)}
            print(f"length {length:5d} window {window!s:>4}: {row['nats_per_token']:.4f} nats/token, "
                  f"{row['bits_per_char']:.4f} bits/char over {n} sequences", flush=True)
            runs.append(row)
    result = {
        "what": "The course model (RoPE, trained at 256 tokens) on the validation split cut into non-overlapping "
                "sequences of each length, without a window (window null) and with a sliding window switched on "
                "at inference. nats_per_token and bits_per_char over every target; per_sequence: the mean loss "
                "of each sequence in order; curve: the mean loss at each position",
        "model": course_model_record()["provenance"]["git_commit"],
        "context_length": model.config.context_length,
        "val_tokens": len(stream),
        "val_chars": chars["val"] if args.val_tokens is None else None,
        "runs": runs,
    }
    commit_result(Path(args.out) if args.out else default_out(OUT), result, MODULE, argv, started, None, device)
    return 0


if __name__ == "__main__":
    sys.exit(main())

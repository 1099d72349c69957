"""How fast is our BPE trainer, and does it compress as well as Hugging Face's?

    LLMSCRATCH_DATA_MIRROR=../shared/data .venv/bin/python benchmarks/bpe_speed.py [--repeats 3]

Everything runs on one CPU core: the process pins itself to core 0 before importing anything
that might start threads, and Hugging Face `tokenizers` (Rust, normally parallel) is told to
use one thread. Three trainers learn a vocabulary of the same size from the same text:

* ours, fast: `BPETokenizer.train` (incremental pair-count updates);
* ours, naive: ``BPETokenizer.train(..., naive=True)`` (recount every pair after every merge);
* Hugging Face ``tokenizers``: a byte-level BPE with the same GPT-2 pre-tokenization regex.

Times are the best of ``--repeats`` runs and include pre-tokenization. Then compression: each
tokenizer is trained on the first 90% of Tiny Shakespeare and encodes the last 10%; we report
UTF-8 bytes per token (higher is better compression).
"""

from __future__ import annotations

import os

# Before any import that may start a thread pool.
if hasattr(os, "sched_setaffinity"):
    os.sched_setaffinity(0, {0})
os.environ["TOKENIZERS_PARALLELISM"] = "false"
os.environ["RAYON_NUM_THREADS"] = "1"

import argparse  # noqa: E402
import platform  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402

import tokenizers  # noqa: E402
from tokenizers import decoders, models, pre_tokenizers, trainers  # noqa: E402

from llmscratch import BPETokenizer, load_text  # noqa: E402

EOT = "<|endoftext|>"


def hf_train(text: str, vocab_size: int) -> tokenizers.Tokenizer:
    """Hugging Face's byte-level BPE, configured like ours: GPT-2 regex, 256 byte tokens, one special."""
    tok = tokenizers.Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[EOT],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator([text], trainer)  # one string: the regex sees the text exactly as ours does
    return tok


def best_time(fn: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--vocab-size", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--naive-repeats", type=int, default=1, help="the naive trainer takes seconds per run")
    args = parser.parse_args()
    V = args.vocab_size

    text = load_text("tinyshakespeare")
    cores = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else "unpinned"
    print(f"Tiny Shakespeare: {len(text):,} characters; vocabulary {V} (256 bytes + merges + {EOT})")
    print(f"{platform.processor() or platform.machine()}, Python {platform.python_version()}, "
          f"tokenizers {tokenizers.__version__}, CPU cores allowed: {cores}\n")

    fast = best_time(lambda: BPETokenizer.train(text, V, [EOT]), args.repeats)
    naive = best_time(lambda: BPETokenizer.train(text, V, [EOT], naive=True), args.naive_repeats)
    hf = best_time(lambda: hf_train(text, V), args.repeats)
    ours = BPETokenizer.train(text, V, [EOT])
    # A fresh tokenizer each time, so that its per-pre-token cache starts empty.
    encode_ours = best_time(lambda: BPETokenizer(ours.merges, [EOT]).encode(text), args.repeats)
    hf_tok = hf_train(text, V)
    encode_hf = best_time(lambda: hf_tok.encode(text), args.repeats)

    print(f"{'trainer (full text, one core)':34} {'seconds':>9} {'time/fast':>9}")
    for name, seconds in [("ours, fast (incremental)", fast), ("ours, naive (recount every merge)", naive),
                          ("Hugging Face tokenizers (Rust)", hf)]:
        print(f"{name:34} {seconds:9.3f} {seconds / fast:8.1f}x")
    print(f"{'encode the full text, ours':34} {encode_ours:9.3f}   (starting from an empty cache)")
    print(f"{'encode the full text, HF':34} {encode_hf:9.3f}")
    naive_tok = BPETokenizer.train(text, V, [EOT], naive=True)
    assert naive_tok.merges == ours.merges
    hf_bpt_full = len(text.encode("utf-8")) / len(hf_tok.encode(text).ids)
    ours_bpt_full = len(text.encode("utf-8")) / len(ours.encode(text))
    print(f"fast and naive learn identical merges; on the training text ours gives {ours_bpt_full:.4f} "
          f"bytes/token, HF {hf_bpt_full:.4f}\n")

    cut = int(0.9 * len(text))
    train, held_out = text[:cut], text[cut:]
    n_bytes = len(held_out.encode("utf-8"))
    print(f"compression on held-out text (train on the first 90%, encode the last {len(held_out):,} characters)")
    print(f"{'vocab':>6} {'ours bytes/token':>17} {'HF bytes/token':>15} {'ours/HF':>8}")
    for size in sorted({300, V, 1024, 4096}):
        ours_bpt = n_bytes / len(BPETokenizer.train(train, size, [EOT]).encode(held_out))
        hf_bpt = n_bytes / len(hf_train(train, size).encode(held_out).ids)
        print(f"{size:>6} {ours_bpt:17.4f} {hf_bpt:15.4f} {ours_bpt / hf_bpt:8.4f}")


if __name__ == "__main__":
    main()

"""Command line: ``python -m llmscratch.bpe train --vocab-size 512 --out data/bpe_tokenizer.json``.

Trains a byte-level BPE tokenizer on a whole corpus (Tiny Shakespeare by default) with the fast
trainer and writes it as JSON, with a record of how it was made (`llmscratch.provenance`).
The course commits the result; the BPE chapter loads it.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from ..data import DATASETS, load_text, results_dir
from ..provenance import provenance
from .tokenizer import BPETokenizer


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(prog="python -m llmscratch.bpe")
    sub = parser.add_subparsers(dest="command", required=True)
    train = sub.add_parser("train", help="train a tokenizer on a corpus and save it as JSON")
    train.add_argument("--corpus", default="tinyshakespeare", choices=sorted(DATASETS))
    train.add_argument("--vocab-size", type=int, default=512, help="bytes + merges + special tokens")
    train.add_argument("--special", nargs="*", default=["<|endoftext|>"], help="special tokens")
    train.add_argument("--out", type=Path, default=None, help="default: data/bpe_tokenizer.json")
    args = parser.parse_args(argv)

    text = load_text(args.corpus)
    start = time.perf_counter()
    tok = BPETokenizer.train(text, args.vocab_size, special_tokens=args.special)
    seconds = time.perf_counter() - start
    # Training is deterministic (ties are broken by id), so there is no seed to record.
    tok.provenance = provenance(["python", "-m", "llmscratch.bpe", *argv], seconds, libraries=["regex"])
    tok.provenance["corpus"] = {"name": args.corpus, "characters": len(text), "sha256": DATASETS[args.corpus].sha256}
    out = args.out if args.out is not None else results_dir() / "bpe_tokenizer.json"
    tok.save(out)
    print(f"{tok} trained in {seconds:.2f} s on {len(text):,} characters of {args.corpus}; wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

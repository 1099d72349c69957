"""Byte-pair encoding, byte-level and GPT-2 style, in three modules and a command line.

- `llmscratch.bpe.pretokenization`: cutting text into pieces that merges never cross;
- `llmscratch.bpe.train`: learning the merges, a naive reference trainer and a fast one;
- `llmscratch.bpe.tokenizer`: `BPETokenizer`, which encodes, decodes, saves and loads;
- ``python -m llmscratch.bpe train``: trains the course's tokenizer and writes it to ``data/``.
"""

from .pretokenization import GPT2_PATTERN, pretokenize, split_special
from .tokenizer import BPETokenizer
from .train import count_pairs, merge, train_fast, train_naive

__all__ = [
    "GPT2_PATTERN",
    "BPETokenizer",
    "count_pairs",
    "merge",
    "pretokenize",
    "split_special",
    "train_fast",
    "train_naive",
]

"""llmscratch: the code of the course, one module per idea.

The chapters import the public API from here: ``from llmscratch import load_text, CharTokenizer``.
"""

from .bigram import CountingBigram
from .data import DATASETS, DataError, load_text, train_val_test_split
from .tokenizers import CharTokenizer, TokenizerFileError

__all__ = [
    "DATASETS",
    "CharTokenizer",
    "CountingBigram",
    "DataError",
    "TokenizerFileError",
    "load_text",
    "train_val_test_split",
]
__version__ = "0.1.0"

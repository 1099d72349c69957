"""Pre-tokenization: cut text into chunks that byte-pair merges are never allowed to cross.

Two cuts happen before any merging. First, special tokens such as ``<|endoftext|>`` are cut
out whole (`split_special`), so that no merge can ever glue one to its neighbours. Then a regular
expression cuts the rest into *pre-tokens* (`pretokenize`): words with their leading space,
runs of digits, runs of punctuation, runs of whitespace.

    >>> pretokenize("Hello, world!  It's 2024.")
    ['Hello', ',', ' world', '!', ' ', ' It', "'s", ' 2024', '.']

GPT-2 introduced this kind of split (Radford et al., 2019) so that the vocabulary is not spent
on every combination of a word with the punctuation next to it (``dog.``, ``dog!``, ``dog?``).
`GPT2_PATTERN` below is written for this course; it makes the same cuts as GPT-2's published
pattern. It needs the third-party `regex` module: the standard `re` has no ``\\p{L}``
(any letter, in any script) or ``\\p{N}`` (any digit).

Left out: the more elaborate patterns of later models (GPT-4 caps digit runs at three and
treats case differently) and any text normalisation (Unicode NFC, lower-casing): the
tokenizers in this course round-trip text byte for byte.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import regex

__all__ = ["GPT2_PATTERN", "pretokenize", "split_special"]

_ALTERNATIVES = (
    r"'(?:[sdmt]|ll|ve|re)",  # English contractions: 's 'd 'm 't 'll 've 're
    r" ?\p{L}+",  # a word in any script, keeping one leading space: " world"
    r" ?\p{N}+",  # a run of digits, with one leading space
    r" ?[^\s\p{L}\p{N}]+",  # punctuation, symbols, emoji, combining marks
    r"\s+(?!\S)",  # whitespace, leaving its last space to the word that follows
    r"\s+",  # whitespace at the very end of the text
)
# The first alternative that matches at a position wins, so the order above matters.
GPT2_PATTERN = "|".join(_ALTERNATIVES)


@functools.lru_cache(maxsize=16)
def _compiled(pattern: str) -> regex.Pattern:
    return regex.compile(pattern)


def pretokenize(text: str, pattern: str | None = GPT2_PATTERN) -> list[str]:
    """Cut `text` into pre-tokens; ``pattern=None`` keeps it whole.

    The pieces always join back into `text`. A custom pattern that would drop characters (one
    that does not match everywhere) raises `ValueError` rather than losing them silently.

    >>> pretokenize("  two  spaces")
    [' ', ' two', ' ', ' spaces']
    """
    if pattern is None:
        return [text] if text else []
    pieces = _compiled(pattern).findall(text)
    if sum(map(len, pieces)) != len(text):  # cheap: findall only ever drops characters
        raise ValueError(f"the pre-tokenization pattern {pattern!r} does not match every character of the text")
    return pieces


def split_special(text: str, special_tokens: Sequence[str]) -> list[str]:
    """Cut `text` around every occurrence of a special token, keeping the tokens.

    Special tokens land at odd positions and ordinary text at even positions (which may be
    empty strings), so the caller can tell them apart without comparing strings:

    >>> split_special("a<|endoftext|>b", ["<|endoftext|>"])
    ['a', '<|endoftext|>', 'b']

    When one special token is a prefix of another, the longer one wins.
    """
    if not special_tokens:
        return [text]
    longest_first = sorted(special_tokens, key=len, reverse=True)
    # One capturing group: regex.split then returns the separators too, at odd positions.
    return _compiled("(" + "|".join(map(regex.escape, longest_first)) + ")").split(text)

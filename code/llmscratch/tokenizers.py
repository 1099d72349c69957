"""Tokenizers: text to a list of integer ids and back.

`CharTokenizer` gives every distinct character its own id. Special tokens (a start/end
marker such as ``"."`` for names, or ``"<|endoftext|>"``) come first in the vocabulary and are
matched whole, so a special token in the text always becomes exactly one id.

    >>> tok = CharTokenizer.train("hello", special_tokens=["."])
    >>> tok.tokens
    ['.', 'e', 'h', 'l', 'o']
    >>> tok.encode("hello."), tok.decode([2, 1, 3, 3, 4])
    ([2, 1, 3, 3, 4, 0], 'hello')

Errors are loud: a character the vocabulary lacks, an id outside it, or a saved file that
does not parse all raise `ValueError` (`TokenizerFileError` for files) with the culprit named.

Left out here: subword tokenizers (byte-pair encoding comes with Part 1's BPE chapter).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

from .fileio import atomic_write_text

__all__ = ["CharTokenizer", "TokenizerFileError"]


class TokenizerFileError(ValueError):
    """A saved tokenizer file is missing, does not parse, or is not one this class wrote."""


def read_tokenizer_file(path: Path, fmt: str, version: int) -> dict:
    """The JSON object in `path`, checked to be a `fmt` file of `version`.

    Every way it can fail raises `TokenizerFileError` naming the file: missing, not JSON,
    another format, another version. The caller checks the fields it needs.
    """
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise TokenizerFileError(f"{path}: no such tokenizer file") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise TokenizerFileError(f"{path} is not valid JSON: {err}") from None
    if not isinstance(data, dict) or data.get("format") != fmt:
        found = data.get("format") if isinstance(data, dict) else type(data).__name__
        raise TokenizerFileError(f"{path} is not a {fmt} file (format: {found!r})")
    if data.get("version") != version:
        raise TokenizerFileError(f"{path} has version {data.get('version')!r}; this code reads version {version}")
    return data


class CharTokenizer:
    """One id per character, special tokens first.

    Build it from text with `CharTokenizer.train(text)`, or from an explicit list of
    characters with `CharTokenizer(chars, special_tokens)`.
    """

    FORMAT = "llmscratch.CharTokenizer"
    VERSION = 1

    def __init__(self, chars: Iterable[str], special_tokens: Sequence[str] = ()) -> None:
        chars = list(chars)
        special_tokens = list(special_tokens)
        for c in chars:
            if not isinstance(c, str) or len(c) != 1:
                raise ValueError(f"every character must be a string of length 1, got {c!r}")
        for s in special_tokens:
            if not isinstance(s, str) or not s:
                raise ValueError(f"special tokens must be non-empty strings, got {s!r}")
        tokens = special_tokens + chars
        if len(set(tokens)) != len(tokens):
            dupes = sorted({t for t in tokens if tokens.count(t) > 1})
            raise ValueError(f"duplicate tokens in the vocabulary: {dupes}")
        self.special_tokens: list[str] = special_tokens
        self.tokens: list[str] = tokens  # id -> string
        self.stoi: dict[str, int] = {t: i for i, t in enumerate(tokens)}
        # Longest special token first, so that "<|a|>" wins over a special "<" if both exist.
        ordered = sorted(special_tokens, key=len, reverse=True)
        self._special_re = re.compile("(" + "|".join(map(re.escape, ordered)) + ")") if ordered else None

    @classmethod
    def train(cls, text: str | Iterable[str], special_tokens: Sequence[str] = ()) -> CharTokenizer:
        """The sorted set of characters in `text` (a string or an iterable of strings).

        Characters of the special tokens are not added unless they also occur on their own.
        """
        pieces = [text] if isinstance(text, str) else list(text)
        seen: set[str] = set()
        for piece in pieces:
            parts = [piece]
            for s in special_tokens:  # remove special tokens before collecting characters
                parts = [p for part in parts for p in part.split(s)]
            for part in parts:
                seen.update(part)
        return cls(sorted(seen), special_tokens)

    @property
    def vocab_size(self) -> int:
        return len(self.tokens)

    def encode(self, text: str) -> list[int]:
        """Map `text` to ids; raises `ValueError` on a character outside the vocabulary."""
        parts = self._special_re.split(text) if self._special_re else [text]
        ids: list[int] = []
        for i, part in enumerate(parts):
            if i % 2 == 1:  # re.split with one group puts the matches at odd positions
                ids.append(self.stoi[part])
                continue
            for ch in part:
                try:
                    ids.append(self.stoi[ch])
                except KeyError:
                    raise ValueError(
                        f"character {ch!r} (U+{ord(ch):04X}) is not in the vocabulary "
                        f"of {self.vocab_size} tokens"
                    ) from None
        return ids

    def decode(self, ids: Iterable[int]) -> str:
        """Map ids back to text; raises `ValueError` on an id outside ``range(vocab_size)``."""
        out = []
        for i in ids:
            i = int(i)
            if not 0 <= i < self.vocab_size:
                raise ValueError(f"id {i} is outside the vocabulary (0..{self.vocab_size - 1})")
            out.append(self.tokens[i])
        return "".join(out)

    def save(self, path: str | os.PathLike) -> None:
        """Write the vocabulary as JSON, atomically."""
        data = {
            "format": self.FORMAT,
            "version": self.VERSION,
            "special_tokens": self.special_tokens,
            "chars": self.tokens[len(self.special_tokens) :],
        }
        atomic_write_text(path, json.dumps(data, ensure_ascii=False, indent=1) + "\n")

    @classmethod
    def load(cls, path: str | os.PathLike) -> CharTokenizer:
        """Read a file written by `save`; raises `TokenizerFileError` on anything else."""
        path = Path(path)
        data = read_tokenizer_file(path, cls.FORMAT, cls.VERSION)
        try:
            return cls(data["chars"], data["special_tokens"])
        except (KeyError, TypeError, ValueError) as err:
            raise TokenizerFileError(f"{path} has a malformed vocabulary: {err}") from None

    def __eq__(self, other: object) -> bool:
        return isinstance(other, CharTokenizer) and (
            self.tokens == other.tokens and self.special_tokens == other.special_tokens
        )

    def __repr__(self) -> str:
        return f"CharTokenizer(vocab_size={self.vocab_size}, special_tokens={self.special_tokens})"

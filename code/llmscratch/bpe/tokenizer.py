"""`BPETokenizer`: byte-level byte-pair encoding, GPT-2 style.

Text becomes UTF-8 bytes, so the base vocabulary is the 256 possible bytes and no string is
ever out of vocabulary. Training learns merges of adjacent tokens (`llmscratch.bpe.train`);
encoding replays them, lowest rank first, inside each pre-token; decoding concatenates the
bytes of the tokens.

    >>> tok = BPETokenizer.train("hug pug hugs hug", vocab_size=258)
    >>> tok.merges                  # "u" + "g" (bytes 117, 103) make token 256; "h" + 256 make 257
    [(117, 103), (104, 256)]
    >>> tok.vocab[257], tok.encode(" hug!")
    (b'hug', [32, 257, 33])
    >>> tok.decode([32, 257, 33])
    ' hug!'

The ids: 0..255 are the bytes, ``256 + r`` is the token made by merge number ``r``, and the
special tokens come last. ``vocab_size`` counts all three kinds, as Hugging Face's trainers
do, so ``train(text, 512, ["<|endoftext|>"])`` learns 255 merges.

Decoding an arbitrary id sequence can produce bytes that are not valid UTF-8 (half of a
multi-byte character, say). `decode` replaces such bytes with U+FFFD, as GPT-2's tokenizer
does, rather than raising: a language model may generate any sequence of ids, and a printable
string is more useful than an exception. Use `decode_bytes` for the exact bytes.

Left out: the byte-to-printable-character remapping that GPT-2's files use (we store ids in
JSON, not strings), an ``allowed_special`` switch (special tokens in the text are always
recognised), and loading OpenAI's or Hugging Face's files.
"""

from __future__ import annotations

import heapq
import json
import os
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import regex

from ..fileio import atomic_write_text
from ..tokenizers import TokenizerFileError, read_tokenizer_file
from .pretokenization import GPT2_PATTERN, pretokenize, split_special
from .train import train_fast, train_naive

__all__ = ["BPETokenizer"]

Pair = tuple[int, int]


class BPETokenizer:
    """Merges in order, special tokens, and the pre-tokenization pattern they were learnt with.

    Build one with `BPETokenizer.train`, or from merges you already have with
    ``BPETokenizer(merges, special_tokens, pattern)``.
    """

    FORMAT = "llmscratch.BPETokenizer"
    VERSION = 1

    def __init__(
        self, merges: Sequence[Pair], special_tokens: Sequence[str] = (), pattern: str | None = GPT2_PATTERN
    ) -> None:
        vocab = [bytes([b]) for b in range(256)]
        self.merges: list[Pair] = []
        for r, pair in enumerate(merges):
            a, b = (int(x) for x in pair)
            # A merge may only use tokens that exist before it: ids below its own, 256 + r.
            if not (0 <= a < 256 + r and 0 <= b < 256 + r):
                raise ValueError(f"merge {r} is {pair!r}, but only ids 0..{255 + r} exist at that point")
            self.merges.append((a, b))
            vocab.append(vocab[a] + vocab[b])
        self.ranks: dict[Pair, int] = {pair: r for r, pair in enumerate(self.merges)}
        if len(self.ranks) != len(self.merges):
            raise ValueError("the same pair is merged twice")
        special_tokens = list(special_tokens)
        if any(not isinstance(s, str) or not s for s in special_tokens):
            raise ValueError(f"special tokens must be non-empty strings, got {special_tokens!r}")
        if len(set(special_tokens)) != len(special_tokens):
            raise ValueError(f"duplicate special tokens: {special_tokens!r}")
        self.special_tokens: dict[str, int] = {s: len(vocab) + i for i, s in enumerate(special_tokens)}
        self.vocab: list[bytes] = vocab + [s.encode("utf-8") for s in special_tokens]  # id -> bytes
        if pattern is not None:
            try:
                pretokenize("", pattern)  # compile now, so that a bad pattern fails here
            except regex.error as err:
                raise ValueError(f"the pre-tokenization pattern {pattern!r} is not a valid regex: {err}") from None
        self.pattern = pattern
        self.provenance: dict[str, Any] = {}  # how a saved tokenizer was made, if known
        self._cache: dict[str, list[int]] = {}  # pre-token -> ids; text repeats its words

    @classmethod
    def train(
        cls,
        text: str,
        vocab_size: int,
        special_tokens: Sequence[str] = (),
        pattern: str | None = GPT2_PATTERN,
        *,
        naive: bool = False,
        progress: Any = None,
    ) -> BPETokenizer:
        """Learn ``vocab_size - 256 - len(special_tokens)`` merges from `text`.

        The text is first cut around the special tokens (which are never merged with anything),
        then into pre-tokens by `pattern`; identical pre-tokens are counted once with their
        count. ``naive=True`` uses the slow reference trainer. `progress`, if given, is called
        with the number of merges and returns an iterable to step through (``tqdm.tqdm`` works).
        With fewer distinct pairs than merges asked for, training stops early and the
        vocabulary is smaller.
        """
        n_merges = vocab_size - 256 - len(special_tokens)
        if n_merges < 0:
            raise ValueError(
                f"vocab_size {vocab_size} is too small: byte-level BPE needs 256 byte tokens plus "
                f"{len(special_tokens)} special token(s), so at least {256 + len(special_tokens)}"
            )
        parts = split_special(text, special_tokens)
        pieces: Counter[str] = Counter()
        for part in parts[::2]:  # even positions: ordinary text between special tokens
            pieces.update(pretokenize(part, pattern))
        word_counts = {piece.encode("utf-8"): n for piece, n in pieces.items()}
        if naive:
            merges = train_naive(word_counts, n_merges)
        else:
            steps = progress(range(n_merges)) if progress is not None else None
            merges = train_fast(word_counts, n_merges, steps)
        return cls(merges, special_tokens, pattern)

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    def _merge_ids(self, ids: list[int]) -> list[int]:
        """Apply the merges to one pre-token's byte ids, lowest rank first.

        The textbook loop finds the lowest-ranked adjacent pair, merges all of its occurrences,
        and repeats; each round is a pass over the sequence. Here a heap of
        ``(rank, position)`` does the same in one sweep, which matters for long pieces (with
        ``pattern=None`` a whole text is one piece). A merge can only create pairs of higher
        rank than its own (a pair that contains token ``256 + r`` was learnt after merge
        ``r``), so popping in ``(rank, position)`` order replays the textbook loop exactly.
        """
        symbol = list(ids)  # -1 once merged into the slot to its left
        nxt = list(range(1, len(ids) + 1))
        prev = list(range(-1, len(ids) - 1))
        heap = [(self.ranks[p], i) for i, p in enumerate(zip(ids, ids[1:])) if p in self.ranks]
        heapq.heapify(heap)
        while heap:
            r, i = heapq.heappop(heap)
            j = nxt[i]
            if symbol[i] < 0 or j >= len(ids) or self.ranks.get((symbol[i], symbol[j])) != r:
                continue  # stale: this slot has changed since the entry was pushed
            symbol[i], symbol[j] = 256 + r, -1
            k = nxt[i] = nxt[j]
            if k < len(ids):
                prev[k] = i
                if (rank := self.ranks.get((symbol[i], symbol[k]))) is not None:
                    heapq.heappush(heap, (rank, i))
            h = prev[i]
            if h >= 0 and (rank := self.ranks.get((symbol[h], symbol[i]))) is not None:
                heapq.heappush(heap, (rank, h))
        return [s for s in symbol if s >= 0]

    def _encode_piece(self, piece: str) -> list[int]:
        ids = self._cache.get(piece)
        if ids is None:
            ids = self._merge_ids(list(piece.encode("utf-8")))
            if len(piece) <= 64:  # long pieces rarely repeat; do not let them fill memory
                self._cache[piece] = ids
        return ids

    def encode(self, text: str) -> list[int]:
        """Text to ids. Special tokens become their single id; they are never split.

        Raises `UnicodeEncodeError` (a `ValueError`) for text that is not valid Unicode, which
        in Python means a lone surrogate such as ``"\\ud800"``.
        """
        ids: list[int] = []
        parts = split_special(text, list(self.special_tokens))
        for index, part in enumerate(parts):
            if index % 2:
                ids.append(self.special_tokens[part])
            else:
                for piece in pretokenize(part, self.pattern):
                    ids.extend(self._encode_piece(piece))
        return ids

    def decode_bytes(self, ids: Iterable[int]) -> bytes:
        """The exact bytes of `ids`; raises `ValueError` naming an id outside the vocabulary."""
        out = []
        for i in ids:
            i = int(i)
            if not 0 <= i < len(self.vocab):
                raise ValueError(f"id {i} is outside the vocabulary (0..{len(self.vocab) - 1})")
            out.append(self.vocab[i])
        return b"".join(out)

    def decode(self, ids: Iterable[int]) -> str:
        """Ids to text; invalid UTF-8 (say, half a character) becomes U+FFFD (see the module doc)."""
        return self.decode_bytes(ids).decode("utf-8", errors="replace")

    def token_str(self, i: int) -> str:
        """A token as readable text, for tables and plots: ``' the'``, or ``'\\xe2\\x80'`` for partial characters."""
        raw = self.decode_bytes([i])
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            return str(raw)[2:-1]  # the bytes literal without b'...'

    # Files ---------------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": self.FORMAT,
            "version": self.VERSION,
            "pattern": self.pattern,
            "special_tokens": list(self.special_tokens),
            "merges": [list(pair) for pair in self.merges],  # merge r makes id 256 + r
            "provenance": self.provenance,
        }

    def save(self, path: str | os.PathLike) -> None:
        """Write the tokenizer as JSON (one merge per line, readable in a diff), atomically."""
        data = self.to_dict()
        data["merges"] = "@merges@"  # a placeholder, replaced by one line per merge
        merges = ",\n".join(f"  [{a}, {b}]" for a, b in self.merges)
        text = json.dumps(data, ensure_ascii=False, indent=1)
        text = text.replace('"@merges@"', f"[\n{merges}\n ]" if merges else "[]")
        atomic_write_text(path, text + "\n")

    @classmethod
    def load(cls, path: str | os.PathLike) -> BPETokenizer:
        """Read a file written by `save`; raises `TokenizerFileError` on anything else."""
        path = Path(path)
        data = read_tokenizer_file(path, cls.FORMAT, cls.VERSION)
        try:
            merges = data["merges"]
            if not all(isinstance(m, list) and len(m) == 2 and all(type(x) is int for x in m) for m in merges):
                raise ValueError("every merge must be a list of two integer ids")
            if data["pattern"] is not None and not isinstance(data["pattern"], str):
                raise ValueError("the pattern must be a string or null")
            tok = cls(merges, data["special_tokens"], data["pattern"])
        except (KeyError, TypeError, ValueError) as err:
            raise TokenizerFileError(f"{path} has malformed or inconsistent merges: {err}") from None
        tok.provenance = data.get("provenance") or {}
        return tok

    def __eq__(self, other: object) -> bool:
        return isinstance(other, BPETokenizer) and (
            self.merges == other.merges
            and self.special_tokens == other.special_tokens
            and self.pattern == other.pattern
        )

    def __repr__(self) -> str:
        pattern = "GPT-2" if self.pattern == GPT2_PATTERN else repr(self.pattern)
        return (
            f"BPETokenizer(vocab_size={self.vocab_size}, merges={len(self.merges)}, "
            f"special_tokens={list(self.special_tokens)}, pattern={pattern})"
        )

"""Checkers for the counting and neural language models of Part 1 (bigrams, softmax, MLPs, batches)."""

from __future__ import annotations

__all__: list[str] = []

"""Checkers for tokens: BPE merges, embeddings, and measuring loss in bits per character."""

from __future__ import annotations

__all__: list[str] = []

"""Checkers for the transformer block and the GPT: norms, residuals, the model around them."""

from __future__ import annotations

__all__: list[str] = []

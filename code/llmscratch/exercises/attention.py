"""Checkers for attention: the weighted average, heads, and positions."""

from __future__ import annotations

__all__: list[str] = []

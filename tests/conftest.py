"""Shared test setup: the repository root, and `tools/` importable for the book-tooling tests."""

import sys
from pathlib import Path

from hypothesis import settings

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))

# CI machines are small and shared: judge properties, not speed.
settings.register_profile("ci", deadline=None, max_examples=200)
settings.load_profile("ci")

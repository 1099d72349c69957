"""Shared test setup: the repository root, and `tools/` importable for the book-tooling tests."""

import sys
from pathlib import Path

import pytest
import torch
from hypothesis import settings

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))

# CI machines are small and shared: judge properties, not speed.
settings.register_profile("ci", deadline=None, max_examples=200)
settings.load_profile("ci")


@pytest.fixture(scope="module")
def one_thread():
    """Torch on one thread for a module's tests: models this small only lose from threads, and on a
    busy machine lose a lot (10x was seen here). Use it with ``pytestmark = pytest.mark.usefixtures("one_thread")``."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)

"""Where the course's files are: the root of the checkout the package runs from.

The package lives in ``code/llmscratch`` of the course repository; committed results are in
``data/`` beside ``code/``. One function finds the root, so that no module counts parent
directories of its own file.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["repo_root"]


def repo_root() -> Path | None:
    """The top of the course checkout the package is used from, or None after a plain install.

    A checkout is recognised by its ``_toc.yml`` and ``data/`` folder.
    """
    root = Path(__file__).resolve().parents[2]  # code/llmscratch/paths.py -> the repository
    return root if (root / "_toc.yml").is_file() and (root / "data").is_dir() else None

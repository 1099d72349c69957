"""How a committed result was made: command, commit, seed, hardware, wall time, versions.

Every long run whose output is committed under ``data/`` stores this record next to its
result, so that a reader can tell what produced a number and rerun it:

    >>> record = provenance(["python", "-m", "llmscratch.bpe", "train"], wall_seconds=1.25, libraries=["regex"])
    >>> sorted(record)
    ['command', 'git_commit', 'git_dirty', 'hardware', 'libraries', 'seed', 'wall_seconds']
    >>> record["command"], record["wall_seconds"]
    ('python -m llmscratch.bpe train', 1.25)

``git_dirty`` is true when the working tree had uncommitted changes: the commit alone then
does not pin the code that ran. The git fields are ``None`` outside a git checkout.

Left out: timestamps and host names (they change on every run and identify nothing useful),
and environment capture beyond the named libraries (``pip freeze`` belongs in a lock file).
"""

from __future__ import annotations

import os
import platform
import shlex
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any, Sequence

__all__ = ["provenance"]

REPO = Path(__file__).resolve().parents[2]


def _git(*args: str) -> str | None:
    try:
        done = subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def provenance(
    command: Sequence[str], wall_seconds: float, seed: int | None = None, libraries: Sequence[str] = ()
) -> dict[str, Any]:
    """A JSON-ready record of a run; `command` is its ``argv``, `libraries` are distribution names."""
    commit = _git("rev-parse", "HEAD")
    status = _git("status", "--porcelain") if commit else None
    versions = {}
    for name in ["llmscratch", *libraries]:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return {
        "command": shlex.join(command),
        "git_commit": commit,
        "git_dirty": None if status is None else bool(status),
        "seed": seed,
        "hardware": {
            "machine": platform.machine(),
            "processor": platform.processor() or None,
            "cpu_count": os.cpu_count(),
            "system": platform.platform(),
            "python": platform.python_version(),
        },
        "wall_seconds": round(wall_seconds, 3),
        "libraries": versions,
    }

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

`script_provenance` is what the package's scripts store: `provenance` plus torch's thread
count and `code_sha256`, a hash of the package's source that pins the code even when the
working tree was dirty. `to_json` writes results with number lists on one line.

Left out: timestamps and host names (they change on every run and identify nothing useful),
and environment capture beyond the named libraries (``pip freeze`` belongs in a lock file).
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import re
import shlex
import subprocess
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

from .paths import repo_root

__all__ = ["code_sha256", "provenance", "script_provenance", "to_json"]

def _git(*args: str) -> str | None:
    repo = repo_root()
    if repo is None:
        return None
    try:
        done = subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, timeout=10)
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


def code_sha256() -> str:
    """A hash of the package's source, pinning the code even when the working tree is not committed."""
    digest = hashlib.sha256()
    package = Path(__file__).resolve().parent
    for path in sorted(package.rglob("*.py")):
        digest.update(path.relative_to(package).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def script_provenance(module: str, argv: Sequence[str], wall_seconds: float, seed: int | None) -> dict[str, Any]:
    """The record a script run as ``python -m <module> <argv>`` commits beside its result."""
    import torch

    return {
        **provenance(["python", "-m", module, *argv], wall_seconds=wall_seconds, seed=seed, libraries=["torch"]),
        "torch_threads": torch.get_num_threads(),
        "code_sha256": code_sha256(),
    }


def to_json(result: dict) -> str:
    """Indented JSON, with lists of numbers kept on one line so curves stay compact.

    >>> print(to_json({"loss": [1.5, 2.0]}))
    {
     "loss": [1.5, 2.0]
    }
    """
    text = json.dumps(result, indent=1)
    return re.sub(r"\[\s*([-0-9.eE+,\s]*?)\s*\]", lambda m: "[" + " ".join(m.group(1).split()) + "]", text)

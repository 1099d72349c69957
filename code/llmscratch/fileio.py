"""Writing files so that a crash never leaves a half-written one behind.

`atomic_path(dest)` yields a temporary path in the same directory; when the block finishes
without an exception the temporary file is renamed over `dest` in one step (``os.replace`` is
atomic on POSIX and Windows when both paths are on one file system). On an exception the
temporary file is removed and `dest` is untouched:

    >>> import tempfile, pathlib
    >>> dest = pathlib.Path(tempfile.mkdtemp()) / "out.txt"
    >>> with atomic_path(dest) as tmp:
    ...     _ = tmp.write_text("all or nothing")
    >>> dest.read_text()
    'all or nothing'

Data files, tokenizers and (later) checkpoints are all written this way.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["atomic_path", "atomic_write_text"]


@contextmanager
def atomic_path(dest: str | os.PathLike) -> Iterator[Path]:
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    os.close(fd)
    # mkstemp creates the file private (0600); give the result the usual permissions instead.
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    try:
        yield Path(tmp)
        os.replace(tmp, dest)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def atomic_write_text(dest: str | os.PathLike, text: str) -> None:
    """Write `text` (UTF-8) to `dest` atomically."""
    with atomic_path(dest) as tmp:
        tmp.write_text(text, encoding="utf-8")

"""Corpora by name, verified, cached, and split.

`load_text("names")` returns the text of a corpus, looking in three places in order:

1. the cache directory (``data/`` in a checkout of the course, else ``~/.cache/llmscratch``,
   or whatever ``LLMSCRATCH_DATA_DIR`` names);
2. a mirror directory named by ``LLMSCRATCH_DATA_MIRROR`` (the course's Makefile and CI set it
   to ``../shared/data`` for machines without internet);
3. a download from the corpus's canonical address.

Every way in, the file's SHA-256 is checked against the registry below. A file that does not
match (corrupted, truncated, a different version) is never used: `load_text` raises
`DataError` naming the file and saying what to do. Copies into the cache are atomic (written to
a temporary file, then renamed), so an interrupted download never leaves a half file behind.

Left out on purpose: streaming, compression, and data sets bigger than memory. The course's
corpora are about a megabyte.
"""

from __future__ import annotations

import hashlib
import os
import random
import shutil
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from .fileio import atomic_path
from .paths import repo_root

__all__ = [
    "DATASETS",
    "DataError",
    "Dataset",
    "cache_dir",
    "fetch",
    "load_text",
    "results_dir",
    "train_val_test_split",
]

MIRROR_ENV = "LLMSCRATCH_DATA_MIRROR"
CACHE_ENV = "LLMSCRATCH_DATA_DIR"


class DataError(RuntimeError):
    """A corpus could not be loaded, or what was found does not match its checksum."""


@dataclass(frozen=True)
class Dataset:
    """Where a corpus comes from and what it must hash to."""

    name: str
    filename: str  # the name in the cache and in a mirror directory
    url: str  # canonical address, used only when neither cache nor mirror has the file
    sha256: str  # of the exact bytes; guards against truncation and silent upstream edits
    size: int  # in bytes; lets an error say "truncated" rather than just "different"


DATASETS: dict[str, Dataset] = {
    "tinyshakespeare": Dataset(
        name="tinyshakespeare",
        filename="tinyshakespeare.txt",
        url="https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt",
        sha256="86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed",
        size=1_115_394,
    ),
    "names": Dataset(
        name="names",
        filename="names.txt",
        url="https://raw.githubusercontent.com/karpathy/makemore/master/names.txt",
        sha256="0a30b5557f192f32ab962680889aac5f6fda0f4cecf40a6d0b5694f58ea8cc4d",
        size=228_145,
    ),
}


def cache_dir() -> Path:
    """The directory corpora are cached in.

    ``$LLMSCRATCH_DATA_DIR`` if set; else ``data/`` at the top of the course repository when
    the package is used from a checkout; else ``~/.cache/llmscratch``.
    """
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    repo = repo_root()
    return repo / "data" if repo is not None else Path.home() / ".cache" / "llmscratch"


def results_dir() -> Path:
    """The committed results of long runs: ``data/`` at the top of the course repository.

    Found from the package's own location, so a chapter reads the same files whatever the
    current directory. Raises `DataError` when the package is not used from a checkout of
    the course (a plain ``pip install``): committed results travel with the repository.
    """
    repo = repo_root()
    if repo is None:
        where = Path(__file__).resolve().parent
        raise DataError(f"the package at {where} is not in a checkout of the course, so it has no committed "
                        "results in data/")
    return repo / "data"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _verify(path: Path, ds: Dataset, remedy: str) -> None:
    """Raise `DataError` unless `path` holds exactly the bytes `ds` describes."""
    size = path.stat().st_size
    got = _sha256(path)
    if got == ds.sha256:
        return
    what = "truncated" if size < ds.size else "different from the expected file"
    raise DataError(
        f"{path} is {what}: {size:,} bytes with SHA-256 {got}, "
        f"expected {ds.size:,} bytes with SHA-256 {ds.sha256}. {remedy}"
    )


def _download(ds: Dataset, dest: Path, timeout: float) -> None:
    """Download `ds.url` into `dest`, verifying before the file takes its final name."""
    with atomic_path(dest) as tmp:
        with open(tmp, "wb") as out, urllib.request.urlopen(ds.url, timeout=timeout) as response:
            shutil.copyfileobj(response, out)
        _verify(tmp, ds, f"The download from {ds.url} was incomplete or has changed; try again later.")


def fetch(
    name: str,
    *,
    cache: str | os.PathLike | None = None,
    mirror: str | os.PathLike | None = None,
    timeout: float = 60.0,
) -> Path:
    """Make sure corpus `name` is in the cache, verified, and return its path.

    ``fetch("names")`` returns ``data/names.txt`` in a checkout of the course.
    `cache` and `mirror` default to `cache_dir()` and ``$LLMSCRATCH_DATA_MIRROR``.
    """
    if name not in DATASETS:
        raise DataError(f"unknown corpus {name!r}; known: {', '.join(sorted(DATASETS))}")
    ds = DATASETS[name]
    dest = Path(cache) if cache is not None else cache_dir()
    dest = dest / ds.filename

    # 1. The cache. A bad cached file is an error, not something to paper over silently.
    if dest.exists():
        _verify(dest, ds, "Delete it and run again to fetch a fresh copy.")
        return dest

    # 2. A mirror directory, if one is configured.
    if mirror is None:
        mirror = os.environ.get(MIRROR_ENV) or None
    tried = [str(dest)]
    if mirror is not None:
        mirror_dir = Path(mirror)
        if not mirror_dir.is_dir():
            raise DataError(
                f"the data mirror {mirror_dir} (from {MIRROR_ENV} or the `mirror` argument) "
                "is not a directory; fix the path or unset the variable."
            )
        candidate = mirror_dir / ds.filename
        tried.append(str(candidate))
        if candidate.is_file():
            _verify(candidate, ds, "The mirror holds a bad copy: replace it with the canonical file.")
            with atomic_path(dest) as tmp:
                shutil.copyfile(candidate, tmp)
            return dest

    # 3. The canonical address.
    try:
        _download(ds, dest, timeout)
    except DataError:
        raise
    except OSError as err:  # URLError, timeouts and refused connections are all OSErrors
        raise DataError(
            f"could not get corpus {name!r}: not found in {' or '.join(tried)}, "
            f"and downloading {ds.url} failed ({err}). Without internet, put {ds.filename} "
            f"in a directory and point {MIRROR_ENV} at it."
        ) from err
    return dest


def load_text(name: str, **kwargs) -> str:
    """Return the text of corpus `name` (``"names"`` or ``"tinyshakespeare"``), verified.

    Keyword arguments go to `fetch`.
    """
    return fetch(name, **kwargs).read_text(encoding="utf-8")


T = TypeVar("T")


def train_val_test_split(
    items: Sequence[T], fractions: tuple[float, float, float] = (0.8, 0.1, 0.1), seed: int = 42
) -> tuple[list[T], list[T], list[T]]:
    """Shuffle `items` with a seeded generator and cut them into train, validation and test.

    >>> train, val, test = train_val_test_split(list(range(10)))
    >>> len(train), len(val), len(test)
    (8, 1, 1)

    The same seed gives the same split on every machine (`random.Random` is specified to).
    """
    if len(fractions) != 3 or any(f < 0 for f in fractions) or abs(sum(fractions) - 1) > 1e-9:
        raise ValueError(f"fractions must be three non-negative numbers summing to 1, got {fractions}")
    shuffled = list(items)
    random.Random(seed).shuffle(shuffled)
    n_train = int(fractions[0] * len(shuffled))
    n_val = int(fractions[1] * len(shuffled))
    return (
        shuffled[:n_train],
        shuffled[n_train : n_train + n_val],
        shuffled[n_train + n_val :],
    )


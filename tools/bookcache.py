"""Keep the book's execution cache honest, and fill it from the test run's executions.

myst-nb's cache (``_build/.jupyter_cache``) keys a chapter on its code cells only. Two gaps:

* A change to the package (``code/``), to the pinned requirements or to a committed result
  under ``data/`` changes what a chapter prints without changing its cells, so the cache
  would serve stale outputs. ``prepare`` computes a stamp of those inputs; when it differs
  from the stamp of the last build it clears the cache and Sphinx's saved doctrees, so
  every chapter runs and renders again.
* CI executes every chapter as a test (pytest-nbmake over ``.nbtest/``) and then builds the
  book. Rather than executing each chapter twice, ``prepare`` copies the test run's outputs
  into the cache, but only for a chapter whose code cells are exactly those of the Markdown
  source (read the way myst-nb reads it), whose run had no error, and only when the test run
  saw the same package stamp. Anything else is left for the build to execute.

``python tools/bookcache.py prepare`` (the Makefile runs it before every build)
``python tools/bookcache.py stamp`` (prints the stamp)
"""

from __future__ import annotations

import hashlib
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BUILD = ROOT / "_build"
CACHE = BUILD / ".jupyter_cache"
STAMP = BUILD / ".package-stamp"
NBTEST = ROOT / ".nbtest"

# Large corpora are verified by checksum on load; everything else under data/ is a committed
# result that chapters read.
IGNORED_SUFFIXES = {".pyc", ".txt", ".part"}


def _inputs(root: Path) -> list[Path]:
    files = [root / "requirements.txt", root / "code" / "pyproject.toml"]
    for folder in (root / "code" / "llmscratch", root / "data"):
        for path in sorted(folder.rglob("*")):
            if (
                path.is_file()
                and path.suffix not in IGNORED_SUFFIXES
                and not any(part.startswith(".") or part == "__pycache__" for part in path.relative_to(root).parts)
            ):
                files.append(path)
    return [f for f in files if f.exists()]


def package_stamp(root: Path = ROOT) -> str:
    """A hash of everything besides a chapter's own cells that can change its outputs."""
    digest = hashlib.sha256()
    for path in _inputs(root):
        digest.update(str(path.relative_to(root)).encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()


def _invalidate_if_stale(stamp: str) -> None:
    old = STAMP.read_text().strip() if STAMP.exists() else None
    if old == stamp:
        return
    if old is not None:
        print("bookcache: package, requirements or data changed since the last build; re-executing every chapter")
    for path in (CACHE, BUILD / ".doctrees", BUILD / "jupyter_execute"):
        shutil.rmtree(path, ignore_errors=True)
    BUILD.mkdir(exist_ok=True)
    STAMP.write_text(stamp + "\n")


def _myst_nb_notebook(md: Path):
    """The notebook myst-nb builds from a Markdown chapter (so the cache keys match)."""
    from myst_nb.core.read import read_myst_markdown_notebook
    from myst_parser.config.main import MdParserConfig

    return read_myst_markdown_notebook(md.read_text(encoding="utf-8"), MdParserConfig(), add_source_map=True)


def _has_error(nb) -> bool:
    return any(
        output.get("output_type") == "error" for cell in nb.cells if cell.cell_type == "code" for output in cell.outputs
    )


def _prime_from_tests(stamp: str) -> None:
    stamp_file = NBTEST / ".stamp"
    if not stamp_file.exists() or stamp_file.read_text().strip() != stamp:
        return
    import nbformat
    from jupyter_cache import get_cache
    from jupyter_cache.base import CacheBundleIn

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from notebooks import chapters

    cache = get_cache(str(CACHE))
    primed = []
    for md in chapters():
        executed_path = NBTEST / md.relative_to(ROOT).with_suffix(".ipynb")
        if not executed_path.exists() or executed_path.stat().st_mtime < md.stat().st_mtime:
            continue
        executed = nbformat.read(executed_path, as_version=4)
        code = [c for c in executed.cells if c.cell_type == "code"]
        if _has_error(executed) or any(c.get("execution_count") is None for c in code):
            continue  # not run, or run with an error: let the build execute it
        nb = _myst_nb_notebook(md)
        targets = [c for c in nb.cells if c.cell_type == "code"]
        if [c.source for c in targets] != [c.source for c in code]:
            print(f"bookcache: {md.relative_to(ROOT)}: test notebook differs from the source; not reused")
            continue
        for target, ran in zip(targets, code):
            target.outputs = ran.outputs
            target.execution_count = ran.execution_count
        cache.cache_notebook_bundle(CacheBundleIn(nb, str(md)), check_validity=False, overwrite=True)
        primed.append(str(md.relative_to(ROOT)))
    if primed:
        print(f"bookcache: reusing the test run's execution of {len(primed)} chapter(s): {', '.join(primed)}")


def prepare() -> None:
    stamp = package_stamp()
    _invalidate_if_stale(stamp)
    _prime_from_tests(stamp)


if __name__ == "__main__":
    command = sys.argv[1] if len(sys.argv) > 1 else ""
    if command == "prepare":
        prepare()
    elif command == "stamp":
        print(package_stamp())
    else:
        sys.exit("usage: python tools/bookcache.py prepare|stamp")

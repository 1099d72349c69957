"""Keep the book's execution cache honest, and fill it from the test run's executions.

myst-nb's cache (``_build/.jupyter_cache``) keys a chapter on its code cells only. Two gaps:

* A change to the package (``code/``), to the pinned requirements or to a committed result
  under ``data/`` changes what a chapter prints without changing its cells, so the cache
  would serve stale outputs. ``prepare`` computes a stamp of those inputs; when it differs
  from the stamp of the last build it clears the cache and Sphinx's saved doctrees, so
  every chapter runs and renders again.
* A change to the book's Sphinx extension (``_ext/``) changes how outputs are rendered
  (myst-nb calls its Plotly renderer while reading a page, so the result is in the saved
  doctree), not what a chapter prints. Sphinx does not notice a changed extension, so
  ``prepare`` keeps a second stamp of ``_ext/`` and, when only that one differs, clears the
  doctrees alone: every page is read again from the execution cache, nothing re-executes.
  The stamp covers the extension's JavaScript too: Sphinx copies ``_static`` files on every
  build anyway, but only the pages it rewrites get the new ``?v=`` checksum that makes a
  browser fetch the new file.
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

sys.path.insert(0, str(Path(__file__).resolve().parent))
from toc import ROOT, chapters  # noqa: E402

BUILD = ROOT / "_build"
CACHE = BUILD / ".jupyter_cache"
STAMP = BUILD / ".package-stamp"
EXTENSION_STAMP = BUILD / ".extension-stamp"
NBTEST = ROOT / ".nbtest"

# Large corpora are verified by checksum on load; everything else under data/ is a committed
# result that chapters read.
IGNORED_SUFFIXES = {".pyc", ".txt", ".part"}


def _files_under(root: Path, folder: Path, ignored_suffixes: set[str] = frozenset()) -> list[Path]:
    """The files of `folder`, sorted, leaving out hidden files, caches and build metadata."""
    return [
        path
        for path in sorted(folder.rglob("*"))
        if path.is_file()
        and path.suffix not in ignored_suffixes
        and not any(
            part.startswith(".") or part == "__pycache__" or part.endswith(".egg-info")
            for part in path.relative_to(root).parts
        )
    ]


def _inputs(root: Path) -> list[Path]:
    files = [root / "requirements.txt", root / "code" / "pyproject.toml"]
    for folder in (root / "code" / "llmscratch", root / "data"):
        files += _files_under(root, folder, IGNORED_SUFFIXES)
    return [f for f in files if f.exists()]


def _digest(root: Path, files: list[Path]) -> str:
    digest = hashlib.sha256()
    for path in files:
        digest.update(str(path.relative_to(root)).encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()


def package_stamp(root: Path = ROOT) -> str:
    """A hash of everything besides a chapter's own cells that can change its outputs."""
    return _digest(root, _inputs(root))


def extension_stamp(root: Path = ROOT) -> str:
    """A hash of the book's Sphinx extension (``_ext/``): what can change a page's HTML but not its outputs."""
    return _digest(root, _files_under(root, root / "_ext"))


def _read(path: Path) -> str | None:
    return path.read_text().strip() if path.exists() else None


def _invalidate_if_stale(stamp: str, ext_stamp: str) -> None:
    old, old_ext = _read(STAMP), _read(EXTENSION_STAMP)
    if old != stamp:
        if old is not None:
            print("bookcache: package, requirements or data changed since the last build; re-executing every chapter")
        for path in (CACHE, BUILD / ".doctrees", BUILD / "jupyter_execute"):
            shutil.rmtree(path, ignore_errors=True)
    elif old_ext != ext_stamp:
        if old_ext is not None:
            print("bookcache: the Sphinx extension (_ext/) changed since the last build; re-rendering every page")
        shutil.rmtree(BUILD / ".doctrees", ignore_errors=True)
    BUILD.mkdir(exist_ok=True)
    STAMP.write_text(stamp + "\n")
    EXTENSION_STAMP.write_text(ext_stamp + "\n")


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
    _invalidate_if_stale(stamp, extension_stamp())
    _prime_from_tests(stamp)


if __name__ == "__main__":
    command = sys.argv[1] if len(sys.argv) > 1 else ""
    if command == "prepare":
        prepare()
    elif command == "stamp":
        print(package_stamp())
    else:
        sys.exit("usage: python tools/bookcache.py prepare|stamp")

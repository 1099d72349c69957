"""Chapters as notebooks: for the tests, and for the Colab and Binder buttons.

The chapters are MyST Markdown (``book/**/*.md``); this script turns them into ``.ipynb`` with
jupytext, two ways:

``python tools/notebooks.py nbtest``
    Writes every chapter to ``.nbtest/`` (git-ignored) for pytest-nbmake to execute, with a
    stamp of the package's state so that ``tools/bookcache.py`` can reuse the executions.

``python tools/notebooks.py launch [--check]``
    Writes ``book/**/<chapter>.ipynb`` beside each chapter: committed, output-free notebooks
    that the Colab and Binder buttons open (Colab opens only ``.ipynb`` files). Their first
    cell, when and only when it runs in Colab, clones the repository and installs the package
    from it, so that committed results under ``data/`` are there too. ``--check`` writes
    nothing and exits 1 if a committed notebook is missing or out of date.

The executed chapters are also checked for stray outputs: a cell whose last line is, say,
``torch.manual_seed(0)`` shows ``<torch._C.Generator at 0x7f…>`` on the page, which tells a
reader nothing. ``nbtest`` writes ``.nbtest/conftest.py``, which fails a chapter whose executed
outputs show an object's memory address (`stray_outputs`).
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import jupytext
import nbformat
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bookcache import package_stamp  # noqa: E402
from toc import ROOT, chapters, read_chapter, toc_files  # noqa: E402, F401  (toc_files: for the tests)

NBTEST = ROOT / ".nbtest"

# An object's default repr: "<torch._C.Generator at 0x7f3a…>", "<Foo object at 0x…>".
MEMORY_ADDRESS = re.compile(r"<[\w.]+(?: object)? at 0x[0-9a-fA-F]+>")
# A page's own HTML (the playground's controls) needs the built site's scripts and files; in a
# launch notebook it would show as inert source, so it becomes a line saying where it runs.
RAW_HTML = re.compile(r"```\{raw\} html\n.*?\n```\n?", re.S)
NOT_IN_A_NOTEBOOK = ("> *On the book's page, this is a panel of controls that runs the model in your browser; "
                     "a notebook cannot show it. Open the page on the site, or build the book (`make book`).*\n")

NBTEST_CONFTEST = '''"""Written by tools/notebooks.py nbtest: a chapter fails if its outputs show a memory address."""

import sys
from pathlib import Path

import nbformat
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
from notebooks import stray_outputs  # noqa: E402


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield  # after the call, nbmake has run the chapter and (--overwrite) saved its outputs
    path = Path(str(item.path))
    if report.when == "call" and report.passed and path.suffix == ".ipynb":
        found = stray_outputs(nbformat.read(path, as_version=4))
        if found:
            report.outcome = "failed"
            report.longrepr = "stray outputs (an object's repr, not a result):\\n" + "\\n".join(found)
    return report
'''


def stray_outputs(nb: nbformat.NotebookNode) -> list[str]:
    """Outputs of `nb` that show an object's memory address, as ``"cell N: <text>"`` lines.

    >>> cell = nbformat.v4.new_code_cell("torch.manual_seed(0)", execution_count=1)
    >>> cell.outputs = [nbformat.v4.new_output("execute_result", {"text/plain": "<torch._C.Generator at 0x7f01>"})]
    >>> stray_outputs(nbformat.v4.new_notebook(cells=[cell]))
    ['cell 1: <torch._C.Generator at 0x7f01>']
    """
    found = []
    for i, cell in enumerate(nb.cells, 1):
        for out in cell.get("outputs", []):
            if out.get("output_type") == "stream":
                texts = [out.get("text", "")]
            else:
                texts = [out.get("data", {}).get("text/plain", "")]
            for text in texts:
                text = "".join(text) if isinstance(text, list) else text
                found += [f"cell {i}: {m}" for m in MEMORY_ADDRESS.findall(text)]
    return found


def colab_setup_cell() -> nbformat.NotebookNode:
    """The first cell of a launch notebook: install the package, in Colab only."""
    config = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))
    repo = config["repository"]
    url = repo["url"].rstrip("/")
    branch = repo.get("branch", "main")
    source = (
        "# Colab starts without the course: clone the repository (the package and the results\n"
        "# committed under data/) and install it. Elsewhere (Binder, a local checkout) the package\n"
        "# is already installed, and this cell does nothing.\n"
        "import sys\n"
        "\n"
        'if "google.colab" in sys.modules:\n'
        "    import os\n"
        "\n"
        '    if not os.path.isdir("/content/llmscratch"):\n'
        f"        !git clone --quiet --depth 1 --branch {branch} {url} /content/llmscratch\n"
        '    %pip install --quiet -e "/content/llmscratch/code[notebook]"\n'
        "    # A new editable install is importable only after a restart; the path makes it so now.\n"
        '    sys.path.insert(0, "/content/llmscratch/code")'
    )
    return nbformat.v4.new_code_cell(source, metadata={"tags": ["colab-setup"]})


def launch_notebook(md: Path) -> str:
    nb = read_chapter(md)
    nb.metadata.pop("jupytext", None)
    nb.cells.insert(0, colab_setup_cell())
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            cell.source = RAW_HTML.sub(NOT_IN_A_NOTEBOOK, cell.source)
    # Deterministic cell ids keep regenerated notebooks byte-identical.
    for i, cell in enumerate(nb.cells):
        cell["id"] = f"cell-{i}"
    return nbformat.writes(nb) + "\n"


def write_launch(check: bool) -> int:
    stale = []
    for md in chapters():
        target = md.with_suffix(".ipynb")
        text = launch_notebook(md)
        current = target.read_text(encoding="utf-8") if target.exists() else None
        if current != text:
            stale.append(target.relative_to(ROOT))
            if not check:
                target.write_text(text, encoding="utf-8")
    wanted = {md.with_suffix(".ipynb") for md in chapters()}
    orphans = [p for p in (ROOT / "book").rglob("*.ipynb") if p not in wanted and "_build" not in p.parts]
    if check:
        for path in stale:
            print(f"out of date: {path} (run `make notebooks`)")
        for path in orphans:
            print(f"no chapter for: {path.relative_to(ROOT)}")
        return 1 if stale or orphans else 0
    for path in orphans:
        path.unlink()
        print(f"removed {path.relative_to(ROOT)}")
    for path in stale:
        print(f"wrote {path}")
    return 0


def write_nbtest() -> int:
    written = set()
    for md in chapters():
        target = NBTEST / md.relative_to(ROOT).with_suffix(".ipynb")
        target.parent.mkdir(parents=True, exist_ok=True)
        jupytext.write(read_chapter(md), target, fmt="ipynb")
        written.add(target)
    for path in NBTEST.rglob("*.ipynb"):
        if path not in written:
            path.unlink()
    (NBTEST / "conftest.py").write_text(NBTEST_CONFTEST, encoding="utf-8")
    (NBTEST / ".stamp").write_text(package_stamp() + "\n", encoding="utf-8")
    print(f"converted {len(written)} chapters into {NBTEST.relative_to(ROOT)}/")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("nbtest", help="convert chapters into .nbtest/ for pytest-nbmake")
    launch = sub.add_parser("launch", help="write the Colab/Binder notebooks beside the chapters")
    launch.add_argument("--check", action="store_true", help="only report notebooks that are out of date")
    args = parser.parse_args()
    if args.command == "nbtest":
        return write_nbtest()
    return write_launch(args.check)


if __name__ == "__main__":
    sys.exit(main())

"""The chapters of the book, as the table of contents lists them.

Shared by ``notebooks.py`` (which converts them) and ``bookcache.py`` (which fills the
execution cache with them), so that neither imports the other.
"""

from __future__ import annotations

from pathlib import Path

import jupytext
import nbformat
import yaml

ROOT = Path(__file__).resolve().parents[1]


def toc_files() -> list[Path]:
    """Every file the table of contents names (root and chapters), as paths to sources."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text(encoding="utf-8"))
    entries = [toc["root"]]

    def walk(node: object) -> None:
        if isinstance(node, dict):
            if "file" in node:
                entries.append(node["file"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk({k: v for k, v in toc.items() if k != "root"})
    paths = []
    for entry in entries:
        path = ROOT / entry
        if path.suffix != ".md":
            path = path.with_name(path.name + ".md")
        paths.append(path)
    return paths


def is_notebook(md: Path) -> bool:
    """A chapter with a Jupyter kernel (jupytext front matter), as opposed to a prose page."""
    text = md.read_text(encoding="utf-8")
    return text.startswith("---") and "kernelspec:" in text.split("---", 2)[1]


def chapters() -> list[Path]:
    return [p for p in toc_files() if p.exists() and is_notebook(p)]


def read_chapter(md: Path) -> nbformat.NotebookNode:
    return jupytext.read(md, fmt="md:myst")

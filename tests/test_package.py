"""The package's shape: no import cycles, no borrowed private names, chapters that use the package's
public modules, and committed results that record a clean tree.

Each rule has a checker that takes plain data (sources, an import graph, a record), tested once on
a small bad example, so that a checker that could never fail would be caught here too.
"""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest

import toc

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "code" / "llmscratch"


def module_name(path: Path, package_root: Path = PACKAGE) -> str:
    parts = list(path.relative_to(package_root.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(source: str, name: str, is_package: bool) -> list[tuple[str, list[str]]]:
    """Every (module, [imported names]) that `source` imports, relative imports made absolute.

    All imports count, including those inside functions and under ``if TYPE_CHECKING:``.
    """
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(alias.name, []) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".") if is_package else name.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            names = [alias.name for alias in node.names]
            if not node.module and node.level:  # `from . import x` imports the submodule x
                found += [(f"{target}.{n}", []) for n in names]
            else:
                found.append((target, names))
    return found


def package_graph(package_root: Path = PACKAGE) -> dict[str, set[str]]:
    """Module -> the package modules it imports."""
    paths = {module_name(p, package_root): p for p in package_root.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in paths.items():
        targets = imports_of(path.read_text(encoding="utf-8"), name, path.name == "__init__.py")
        graph[name] = {t for t, _ in targets if t in paths and t != name}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of `graph` as a list of modules (first == last), or None."""
    state: dict[str, int] = {}  # 1 on the current path, 2 done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        state[node] = 2
        path.pop()
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def borrowed_private_names(imports: list[tuple[str, list[str]]]) -> list[str]:
    """``module.name`` for every underscore name imported from another module (dunders allowed)."""
    return [f"{module}.{n}" for module, names in imports for n in names
            if n.startswith("_") and not (n.startswith("__") and n.endswith("__"))]


def chapter_code(md: Path) -> str:
    nb = toc.read_chapter(md)
    lines = []
    for cell in nb.cells:
        if cell.cell_type == "code":
            lines += [line for line in cell.source.splitlines() if not line.lstrip().startswith(("%", "!"))]
    return "\n".join(lines)


def test_the_cycle_finder_finds_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_the_import_reader_resolves_relative_imports():
    source = "from .config import GPTConfig\nfrom ..data import _sha\nfrom . import cli\nif X:\n    import torch\n"
    found = imports_of(source, "llmscratch.scripts.train_gpt", is_package=False)
    assert ("llmscratch.scripts.config", ["GPTConfig"]) in found
    assert ("llmscratch.data", ["_sha"]) in found and ("llmscratch.scripts.cli", []) in found
    assert ("torch", []) in found
    assert borrowed_private_names(found) == ["llmscratch.data._sha"]


def test_the_package_has_no_import_cycles():
    graph = package_graph()
    assert len(graph) > 20 and graph["llmscratch.model"] >= {"llmscratch.config", "llmscratch.blocks"}
    assert find_cycle(graph) is None, f"import cycle: {' -> '.join(find_cycle(graph))}"


def test_the_config_is_at_the_bottom_of_the_model_imports():
    graph = package_graph()
    for layer in ("llmscratch.attention", "llmscratch.blocks", "llmscratch.model"):
        assert "llmscratch.config" in graph[layer], layer
    assert not graph["llmscratch.config"] & {"llmscratch.attention", "llmscratch.blocks", "llmscratch.model"}


def test_the_book_tools_have_no_import_cycles():
    tools = ROOT / "tools"
    names = {p.stem for p in tools.glob("*.py")}
    graph = {p.stem: {t.split(".")[0] for t, _ in imports_of(p.read_text(encoding="utf-8"), p.stem, False)} & names
             - {p.stem} for p in tools.glob("*.py")}
    assert find_cycle(graph) is None, find_cycle(graph)


def test_no_module_imports_another_modules_private_names():
    offenders = []
    for path in [*PACKAGE.rglob("*.py"), *(ROOT / "tools").glob("*.py"), *(ROOT / "_ext").rglob("*.py")]:
        name = module_name(path) if PACKAGE in path.parents else path.stem
        offenders += [f"{path.relative_to(ROOT)}: {n}" for n in
                      borrowed_private_names(imports_of(path.read_text(encoding="utf-8"), name,
                                                        path.name == "__init__.py"))]
    assert not offenders, offenders


def test_chapters_use_the_package_not_its_scripts():
    """Scripts are command lines; what a chapter needs lives in a package module."""
    chapters = toc.chapters()
    assert chapters
    for md in chapters:
        found = imports_of(chapter_code(md), "chapter", is_package=False)
        modules = [module for module, _ in found]
        assert not [m for m in modules if m.startswith("llmscratch.scripts")], md.name
        assert not borrowed_private_names(found), md.name
        assert not re.search(r"\bllmscratch\.scripts\.\w+\.", chapter_code(md)), md.name


def dirty_records(results: dict[str, dict]) -> list[str]:
    """The names of committed results whose provenance is missing, or says the tree was dirty."""
    bad = []
    for name, result in results.items():
        record = result.get("provenance") or result.get("metadata", {}).get("provenance")
        if not record or record.get("git_dirty") is not False or not re.fullmatch(r"[0-9a-f]{40}",
                                                                                     record.get("git_commit") or ""):
            bad.append(name)
    return bad


def test_the_dirty_check_catches_a_dirty_or_missing_record():
    clean = {"provenance": {"git_dirty": False, "git_commit": "a" * 40}}
    assert dirty_records({"ok": clean}) == []
    assert dirty_records({"dirty": {"provenance": {"git_dirty": True, "git_commit": "a" * 40}},
                          "none": {"loss": 1.0}, "no-git": {"provenance": {"git_dirty": None}}}) == [
        "dirty", "none", "no-git"]


@pytest.mark.parametrize("path", sorted((ROOT / "data").glob("*.json")), ids=lambda p: p.name)
def test_every_committed_result_was_made_from_a_clean_tree(path):
    """A commit pins the code only if nothing was uncommitted when the run started."""
    assert dirty_records({path.name: json.loads(path.read_text(encoding="utf-8"))}) == []

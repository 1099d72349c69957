"""The book's structure: every chapter is in the TOC, launch notebooks are current, the cache stamp works."""

import shutil
from pathlib import Path

import yaml

import bookcache
import notebooks

ROOT = Path(__file__).resolve().parents[1]


def test_every_page_is_in_the_toc_and_every_toc_entry_exists():
    listed = {p.resolve() for p in notebooks.toc_files()}
    missing = [p for p in listed if not p.exists()]
    assert not missing, f"in _toc.yml but missing: {missing}"
    pages = {p.resolve() for p in (ROOT / "book").rglob("*.md")}
    orphans = sorted(str(p.relative_to(ROOT)) for p in pages - listed)
    assert not orphans, f"not in _toc.yml (add them, or they are never built): {orphans}"


def test_chapters_are_notebooks_with_a_python_kernel():
    chapters = notebooks.chapters()
    assert chapters, "no executable chapters found"
    for md in chapters:
        nb = notebooks.read_chapter(md)
        assert nb.metadata["kernelspec"]["name"] == "python3", md


def test_launch_notebooks_are_up_to_date():
    """Colab opens book/**/<chapter>.ipynb from the repository; they must match the chapters."""
    assert notebooks.write_launch(check=True) == 0, "run `make notebooks` and commit the result"


def test_launch_buttons_point_at_files_in_the_repository():
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    assert config["repository"]["branch"] == "main"
    assert config["repository"]["path_to_book"] == ""
    assert config["launch_buttons"]["colab_url"] and config["launch_buttons"]["binderhub_url"]
    for md in notebooks.chapters():
        nb_path = md.with_suffix(".ipynb")
        assert nb_path.exists(), f"the Colab button of {md.name} would open a missing {nb_path.name}"
        first = notebooks.nbformat.read(nb_path, as_version=4).cells[0]
        assert '"google.colab" in sys.modules' in first.source and "%pip install" in first.source
        assert config["repository"]["url"] in first.source


def test_binder_installs_what_the_chapters_import():
    reqs = (ROOT / "requirements.txt").read_text()
    for needed in ["jupyter-book", "myst-nb", "torch==", "plotly", "-e ./code"]:
        assert needed in reqs, needed


def _tree(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    for rel in ["requirements.txt", "code/pyproject.toml", "code/llmscratch/bigram.py", "data/README.md"]:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / rel, root / rel)
    return root


def test_package_stamp_tracks_code_and_results_but_not_corpora(tmp_path):
    root = _tree(tmp_path)
    base = bookcache.package_stamp(root)
    (root / "data" / "names.txt").write_text("a cached corpus does not change outputs\n")
    assert bookcache.package_stamp(root) == base
    (root / "code" / "llmscratch" / "__pycache__").mkdir()
    (root / "code" / "llmscratch" / "__pycache__" / "bigram.cpython-311.pyc").write_bytes(b"\0")
    assert bookcache.package_stamp(root) == base
    with open(root / "code" / "llmscratch" / "bigram.py", "a") as f:
        f.write("\n# an edit\n")
    edited = bookcache.package_stamp(root)
    assert edited != base
    (root / "data" / "result.json").write_text("{}")
    assert bookcache.package_stamp(root) != edited


def test_citations_use_the_chapter_key_prefix():
    """Each page cites as {cite:p}`<file stem>-<key>` with a matching :keyprefix: bibliography,
    so the same work can be cited on many pages without a duplicate-citation warning."""
    import re

    for md in (ROOT / "book").rglob("*.md"):
        text = md.read_text(encoding="utf-8")
        keys = [k.strip() for group in re.findall(r"\{cite:[a-z]+\}`([^`]*)`", text) for k in group.split(",")]
        if not keys:
            continue
        prefix = f"{md.stem}-"
        assert all(k.startswith(prefix) for k in keys), (md.name, [k for k in keys if not k.startswith(prefix)])
        assert f":keyprefix: {prefix}" in text, f"{md.name}: its bibliography needs :keyprefix: {prefix}"

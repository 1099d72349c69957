"""The book's structure: every chapter is in the TOC, launch notebooks are current, the cache stamp works."""

import ast
import importlib.metadata
import re
import shutil
import subprocess
import sys
from pathlib import Path

import yaml
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

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


# The headings every chapter of Parts 1 onward has, in this order (tools/chapter_template.md).
CHAPTER_HEADINGS = ["## Overview", "## The insight", "## Exercises", "## Quiz", "## References"]
MAX_CHAPTER_LINES = 750


def test_chapters_follow_the_template():
    """Overview, insight, exercises with a learner-written function checked, a quiz, references; not too long."""
    parts = [md for md in notebooks.chapters() if md.parent.name.startswith("part")]
    assert len(parts) >= 15
    problems = []
    for md in parts:
        text = md.read_text(encoding="utf-8")
        lines = text.splitlines()
        name = str(md.relative_to(ROOT))
        found = [h for h in CHAPTER_HEADINGS if h in lines]
        if found != CHAPTER_HEADINGS or [lines.index(h) for h in found] != sorted(lines.index(h) for h in found):
            problems.append(f"{name}: headings {found}, expected {CHAPTER_HEADINGS} in order")
            continue
        exercises = "\n".join(lines[lines.index("## Exercises"):lines.index("## Quiz")])
        if re.search(r"check_\w+\(\w+", exercises) is None:
            problems.append(f"{name}: no exercise whose function a checker tests")
        if "quiz(" not in "\n".join(lines[lines.index("## Quiz"):lines.index("## References")]):
            problems.append(f"{name}: the Quiz section has no quiz(...)")
        if len(lines) > MAX_CHAPTER_LINES:
            problems.append(f"{name}: {len(lines)} lines (at most {MAX_CHAPTER_LINES}; split it or move code out)")
    assert not problems, "\n".join(problems)


def test_launch_notebooks_are_up_to_date():
    """Colab opens book/**/<chapter>.ipynb from the repository; they must match the chapters."""
    assert notebooks.write_launch(check=True) == 0, "run `make notebooks` and commit the result"


def test_a_launch_notebook_says_where_the_pages_html_controls_run():
    """The playground's raw HTML needs the built site; its notebook says so instead of showing the source."""
    text = notebooks.launch_notebook(ROOT / "book" / "playground.md")
    assert "{raw} html" not in text and "pg-prompt" not in text
    page = (ROOT / "book" / "playground.md").read_text(encoding="utf-8")
    assert text.count("a notebook cannot show it") == page.count("```{raw} html") > 0
    assert "load_export_model" in text  # the code cells stay


# What a Colab runtime has before any install (its kernel is IPython); everything else a
# chapter imports must come with `pip install code[notebook]`.
COLAB_SHIPS = {"torch", "numpy", "matplotlib", "plotly", "tqdm", "regex", "ipython"}


def chapter_sources(md: Path) -> list[str]:
    return [cell.source for cell in notebooks.read_chapter(md).cells if cell.cell_type == "code"]


def imported_modules(sources: list[str]) -> set[str]:
    """Top-level modules that the code cells `sources` import, leaving out the standard library
    and the course package. IPython lines (``%magic``, ``!shell``) become ``pass``."""
    modules = set()
    for source in sources:
        if source.lstrip().startswith("%%"):  # a cell magic: the cell is not Python
            continue
        lines = source.splitlines()
        for i, line in enumerate(lines):
            if line.lstrip().startswith(("%", "!")):
                lines[i] = line[: len(line) - len(line.lstrip())] + "pass"
        for node in ast.walk(ast.parse("\n".join(lines))):
            if isinstance(node, ast.Import):
                modules.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules.add(node.module.split(".")[0])
    return {m for m in modules if m not in sys.stdlib_module_names and m != "llmscratch"}


def imported_distributions(sources: list[str], import_map: dict[str, list[str]]) -> dict[str, str]:
    """Module -> the distribution that provides it (as pip names it), for what `sources` import.
    `import_map` is ``importlib.metadata.packages_distributions()`` or a stand-in; a module that
    no installed distribution provides maps to ``"?<module>"``."""
    return {
        module: canonicalize_name(import_map[module][0]) if module in import_map else f"?{module}"
        for module in sorted(imported_modules(sources))
    }


def pinned(requirements: str) -> set[str]:
    """Names of the distributions that a requirements file pins to one version (``name==version``)."""
    names = set()
    for line in requirements.splitlines():
        try:
            req = Requirement(line.split("#", 1)[0].strip())
        except InvalidRequirement:  # a comment, a blank line or an option (-e, -r, --index-url)
            continue
        if [spec.operator for spec in req.specifier] == ["=="]:
            names.add(canonicalize_name(req.name))
    return names


def unpinned_imports(sources: list[str], requirements: str, import_map: dict[str, list[str]]) -> list[str]:
    """The distributions that the code cells `sources` import but `requirements` does not pin."""
    have = pinned(requirements)
    return sorted(dist for dist in imported_distributions(sources, import_map).values() if dist not in have)


def test_unpinned_imports_finds_a_missing_package():
    sources = [
        "import numpy as np\nimport scipy.stats\nfrom llmscratch import GPT\nimport json, os.path",
        "%matplotlib inline\n!pip list\nif True:\n    %time from plotly import graph_objects\n",
        "%%bash\nimport nothing",
    ]
    import_map = {"numpy": ["numpy"], "scipy": ["scipy"], "plotly": ["plotly"]}
    requirements = "# comment\nnumpy==2.4.6\nplotly>=6  # not pinned\n-e ./code\n"
    assert imported_modules(sources) == {"numpy", "scipy"}  # the magic line's import is not Python
    assert unpinned_imports(sources, requirements, import_map) == ["scipy"]
    assert unpinned_imports(["import yaml_not_installed"], requirements, import_map) == ["?yaml_not_installed"]
    assert unpinned_imports(sources, requirements + "scipy==1.16.0\n", import_map) == []


def test_launch_buttons_point_at_files_in_the_repository():
    """Every chapter's Colab notebook starts with the cell that installs the course in Colab,
    and that install, with what Colab ships, provides every module the chapter imports."""
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    repo = config["repository"]
    assert repo["branch"] == "main"
    assert repo["path_to_book"] == ""
    assert config["launch_buttons"]["colab_url"] and config["launch_buttons"]["binderhub_url"]
    # What `pip install code[notebook]` installs: the package's dependencies and its notebook extra.
    declared = [Requirement(r) for r in importlib.metadata.requires("llmscratch") or []]
    in_colab = COLAB_SHIPS | {
        canonicalize_name(r.name) for r in declared if r.marker is None or r.marker.evaluate({"extra": "notebook"})
    }
    import_map = importlib.metadata.packages_distributions()
    chapters = notebooks.chapters()
    assert chapters
    for md in chapters:
        nb_path = md.with_suffix(".ipynb")
        assert nb_path.exists(), f"the Colab button of {md.name} would open a missing {nb_path.name}"
        first = notebooks.nbformat.read(nb_path, as_version=4).cells[0]
        assert first.cell_type == "code" and "colab-setup" in first.metadata.get("tags", []), nb_path.name
        source = first.source
        assert '"google.colab" in sys.modules' in source, f"{nb_path.name}: the setup must run in Colab only"
        clone = f"git clone --quiet --depth 1 --branch {repo['branch']} {repo['url'].rstrip('/')}"
        assert clone in source, nb_path.name
        assert "%pip install" in source and "code[notebook]" in source, nb_path.name
        missing = {
            module: dist
            for module, dist in imported_distributions(chapter_sources(md), import_map).items()
            if dist not in in_colab
        }
        assert not missing, f"{md.name} imports what Colab lacks and code[notebook] does not install: {missing}"


def test_binder_installs_what_the_chapters_import():
    """Binder installs requirements.txt (through binder/requirements.txt): it must pin the
    distribution behind every module a chapter imports, and install the package."""
    requirements = (ROOT / "requirements.txt").read_text(encoding="utf-8")
    lines = [line.strip() for line in requirements.splitlines()]
    for needed in ["-e ./code", "-e ./_ext"]:
        assert needed in lines, needed
    sources = [source for md in notebooks.chapters() for source in chapter_sources(md)]
    missing = unpinned_imports(sources, requirements, importlib.metadata.packages_distributions())
    # IPython is the kernel the chapters run in: Binder gets it with the pinned ipykernel.
    if "ipython" in missing:
        kernel_needs = {canonicalize_name(Requirement(r).name) for r in importlib.metadata.requires("ipykernel") or []}
        assert "ipykernel" in pinned(requirements) and "ipython" in kernel_needs
        missing.remove("ipython")
    assert not missing, f"requirements.txt does not pin what the chapters import: {missing}"


def _tree(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    for rel in ["requirements.txt", "code/pyproject.toml", "code/llmscratch/bigram.py", "data/README.md",
                "_ext/pyproject.toml", "_ext/llmscratch_book/__init__.py",
                "_ext/llmscratch_book/_static/llmscratch-plotly-theme.js"]:
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


def test_an_extension_change_re_renders_without_re_executing(tmp_path):
    """Editing _ext/ (the Sphinx extension or its JavaScript) changes the extension stamp, which
    clears only the doctrees; the package stamp, which clears the execution cache, stays put."""
    root = _tree(tmp_path)
    package, extension = bookcache.package_stamp(root), bookcache.extension_stamp(root)
    (root / "_ext" / "llmscratch_book.egg-info").mkdir()
    (root / "_ext" / "llmscratch_book.egg-info" / "PKG-INFO").write_text("install metadata\n")
    assert bookcache.extension_stamp(root) == extension
    with open(root / "_ext" / "llmscratch_book" / "_static" / "llmscratch-plotly-theme.js", "a") as f:
        f.write("\n// an edit\n")
    edited = bookcache.extension_stamp(root)
    assert edited != extension
    with open(root / "_ext" / "llmscratch_book" / "__init__.py", "a") as f:
        f.write("\n# an edit\n")
    assert bookcache.extension_stamp(root) != edited
    assert bookcache.package_stamp(root) == package


def test_prepare_clears_what_each_stamp_covers(tmp_path, monkeypatch):
    build = tmp_path / "_build"
    monkeypatch.setattr(bookcache, "BUILD", build)
    monkeypatch.setattr(bookcache, "CACHE", build / ".jupyter_cache")
    monkeypatch.setattr(bookcache, "STAMP", build / ".package-stamp")
    monkeypatch.setattr(bookcache, "EXTENSION_STAMP", build / ".extension-stamp")
    kept = [build / ".jupyter_cache", build / ".doctrees", build / "jupyter_execute"]

    def fill():
        for path in kept:
            path.mkdir(parents=True, exist_ok=True)

    bookcache._invalidate_if_stale("p1", "e1")
    fill()
    bookcache._invalidate_if_stale("p1", "e1")  # nothing changed: everything is kept
    assert all(path.exists() for path in kept)
    bookcache._invalidate_if_stale("p1", "e2")  # the extension changed: re-render only
    assert [path.exists() for path in kept] == [True, False, True]
    fill()
    bookcache._invalidate_if_stale("p2", "e2")  # the package changed: re-execute and re-render
    assert not any(path.exists() for path in kept)


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


def test_the_glossary_lists_the_package_vocabulary():
    """book/glossary.md has an entry for every field of GPTConfig and TrainConfig (and mentions
    the Part 1 configs' fields), and every code-named entry is a field or property of a config."""
    import dataclasses
    import re

    import llmscratch

    text = (ROOT / "book" / "glossary.md").read_text(encoding="utf-8")
    blocks = re.findall(r"^```\{glossary\}\n(.*?)^```$", text, flags=re.M | re.S)
    terms = {line.strip() for block in blocks for line in block.splitlines() if line.strip() and not line[0].isspace()}
    code_terms = {t.strip("`") for t in terms if t.startswith("`")}
    configs = [llmscratch.GPTConfig, llmscratch.TrainConfig, llmscratch.MLPConfig, llmscratch.BagOfEmbeddingsConfig]
    for config in configs[:2]:
        missing = {f.name for f in dataclasses.fields(config)} - code_terms
        assert not missing, f"the glossary has no entry for {config.__name__} fields {sorted(missing)}"
    for config in configs[2:]:
        for field in dataclasses.fields(config):
            entry = f"`{config.__name__}.{field.name}`"
            assert field.name in code_terms or entry in text, (config.__name__, field.name)
    names = {name for config in configs for name in dir(config) if not name.startswith("_")}
    assert not code_terms - names, f"glossary entries that no config has: {sorted(code_terms - names)}"


def test_nbtest_fails_a_chapter_whose_outputs_show_a_memory_address(tmp_path):
    """The conftest that ``notebooks.py nbtest`` writes fails the stray repr, and only it."""
    import nbformat

    (tmp_path / "tools").symlink_to(notebooks.ROOT / "tools")
    folder = tmp_path / ".nbtest"
    folder.mkdir()
    (folder / "conftest.py").write_text(notebooks.NBTEST_CONFTEST, encoding="utf-8")
    sources = {"stray": "class Thing:\n    pass\n\nThing()", "clean": "_ = object()\nprint(2 + 2)"}
    outcomes = {}
    for name, source in sources.items():
        nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source)]), folder / f"{name}.ipynb")
        run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--nbmake",
                              "--overwrite", str(folder / f"{name}.ipynb")], capture_output=True, text=True,
                             cwd=tmp_path)
        outcomes[name] = (run.returncode, run.stdout)
    assert outcomes["clean"][0] == 0, outcomes["clean"][1]
    assert outcomes["stray"][0] != 0 and "stray outputs" in outcomes["stray"][1]
    assert "<__main__.Thing at 0x" in outcomes["stray"][1]


def test_every_diagram_is_shown_in_its_chapter_with_its_alt_text():
    """The figure's alt text is the diagram's own description (llmscratch.diagrams), word for word."""
    from llmscratch.diagrams import DIAGRAMS

    for name, diagram in DIAGRAMS.items():
        chapter = (ROOT / diagram.chapter).read_text(encoding="utf-8")
        assert f"```{{figure}} ../diagrams/{name}.svg\n:alt: {diagram.alt}\n" in chapter, name

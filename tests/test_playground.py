"""The playground page: the files the book's build writes for it (llmscratch_book.playground), the code it
shows, and the page itself in headless Chromium, driven through its controls and compared with the package
(tools/playground_check.py, which `make browser-check` also runs on the built book)."""

import hashlib
import json
import re
import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest

import llmscratch_book
from llmscratch.data import results_dir
from llmscratch.export import export_model, load_export
from llmscratch.instructions import INSTRUCTION_HEADER, RESPONSE_HEADER, TASKS
from llmscratch.reward import load_dpo_model
from llmscratch.sft import load_sft_model
from llmscratch_book import playground

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "book" / "playground.md"

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    folder = tmp_path_factory.mktemp("playground")
    return folder, playground.write_playground(folder)


def test_the_build_writes_three_small_models_the_tokenizer_and_a_manifest(written):
    folder, manifest = written
    assert [m["key"] for m in manifest["models"]] == ["course", "sft", "dpo"]
    assert [m["instruction"] for m in manifest["models"]] == [False, True, True]
    assert all(m["label"] and m["name"] for m in manifest["models"])
    for m in manifest["models"]:
        path = folder / m["file"]
        assert path.stat().st_size == m["bytes"] <= playground.MAX_MODEL_BYTES
        config, _ = load_export(path)
        assert config.vocab_size == 512 and config.position == "rope"  # what gpt.js implements
    assert (folder / "bpe_tokenizer.json").read_bytes() == (results_dir() / "bpe_tokenizer.json").read_bytes()
    assert [e["task"] for e in manifest["examples"]] == list(TASKS)  # one held-out instruction per task
    assert manifest["instruction_format"] == {"before": INSTRUCTION_HEADER, "after": RESPONSE_HEADER}
    assert manifest["stop_token"] == "<|endoftext|>"


@pytest.mark.parametrize("key, load", [("sft", load_sft_model), ("dpo", load_dpo_model)])
def test_the_assistants_are_the_committed_models(written, tmp_path, key, load):
    """Each file is byte for byte what export_model writes for the committed weights."""
    folder, _ = written
    export_model(load()[0], tmp_path / "again.bin", "int8")
    assert (tmp_path / "again.bin").read_bytes() == (folder / f"{key}-int8.bin").read_bytes()


def test_a_rebuild_reuses_the_files_unless_an_input_changed(written):
    folder, manifest = written
    before = {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}
    assert playground.is_current(folder)
    assert playground.write_playground(folder) == manifest
    assert {p.name: p.stat().st_mtime_ns for p in folder.iterdir()} == before  # nothing was rewritten
    text = (folder / playground.MANIFEST).read_text(encoding="utf-8")
    (folder / playground.MANIFEST).write_text(text.replace(manifest["inputs"], "0" * 16), encoding="utf-8")
    assert not playground.is_current(folder)  # the weights, the tokenizer or the exporter changed
    (folder / playground.MANIFEST).write_text(text, encoding="utf-8")
    (folder / "dpo-int8.bin").rename(folder / "moved.bin")
    assert not playground.is_current(folder)  # a file is missing
    (folder / "moved.bin").rename(folder / "dpo-int8.bin")
    assert playground.is_current(folder)


def test_only_the_playground_page_loads_its_script_and_stylesheet():
    added = []
    app = SimpleNamespace(add_js_file=lambda f, **kw: added.append((f, kw)),
                          add_css_file=lambda f, **kw: added.append((f, kw)))
    llmscratch_book._page_context(app, "book/intro", "page.html", {"body": "<p>no playground</p>"}, object())
    assert added == []
    body = '<div class="llmscratch-playground pg-panel" data-state="loading"></div>'
    context = {"body": body, "pathto": page_pathto}
    llmscratch_book._page_context(app, "book/playground", "page.html", context, object())
    import_map = {"body": llmscratch_book._import_map(page_pathto), "type": "importmap", "priority": 499}
    assert added == [(None, import_map), (llmscratch_book.PLAYGROUND_JS, {"type": "module"}),
                     (llmscratch_book.PLAYGROUND_CSS, {})]  # the map before the module that uses it


def page_pathto(path: str, resource: int = 0) -> str:
    """Sphinx's pathto for a resource, from book/playground.html."""
    return f"../{path}"


def test_the_import_map_versions_every_module_the_page_imports():
    """Every module reachable from playground.js has an address that names a digest of its contents."""
    static = llmscratch_book.STATIC_DIR / "playground"
    reached, todo = set(), ["playground.js"]
    while todo:
        for name in re.findall(r'^import .* from "\./([\w.]+)";$', (static / todo.pop()).read_text(), flags=re.M):
            if name not in reached:
                reached.add(name)
                todo.append(name)
    imports = json.loads(llmscratch_book._import_map(page_pathto))["imports"]
    assert set(imports) == {f"../_static/playground/{name}" for name in reached} and reached
    for url, versioned in imports.items():
        digest = hashlib.sha256((static / Path(url).name).read_bytes()).hexdigest()[:12]
        assert versioned == f"{url}?v={digest}"
    assert (llmscratch_book.STATIC_DIR / llmscratch_book.PLAYGROUND_JS).is_file()
    assert (llmscratch_book.STATIC_DIR / llmscratch_book.PLAYGROUND_CSS).is_file()


def javascript_excerpts() -> list[tuple[str, list[str]]]:
    """The JavaScript that the page's literalincludes show, cut as Sphinx cuts it (start-at, end-before)."""
    text = PAGE.read_text(encoding="utf-8")
    excerpts = []
    for path, options in re.findall(r":::\{literalinclude\} (\S+\.js)\n((?::\S+: .*\n)+)", text):
        opts = dict(re.findall(r":(\S+): \"?(.*?)\"?\n", options))
        lines = (PAGE.parent / path).read_text(encoding="utf-8").splitlines()
        starts = [i for i, line in enumerate(lines) if opts["start-at"] in line]
        assert len(starts) == 1, (path, opts["start-at"], "must occur exactly once")
        end = len(lines)
        if "end-before" in opts:
            end = next(i for i in range(starts[0], len(lines)) if opts["end-before"] in lines[i])
        excerpts.append((path, lines[starts[0]:end]))
    return excerpts


def test_the_page_shows_whole_javascript_functions():
    """Each JavaScript excerpt is its comment and one whole function, so a renamed marker cannot cut one short."""
    excerpts = javascript_excerpts()
    assert len(excerpts) == 3
    for path, lines in excerpts:
        code = [line for line in lines if line.strip()]
        assert code[0].startswith("//"), path
        functions = [line for line in code if line.startswith("export function")]
        assert len(functions) == 1 and code[-1] == "}", (path, functions, code[-1])


def minimal_site(folder: Path, files: Path) -> Path:
    """The page's HTML blocks, its script and stylesheet, and the written files, served without Sphinx."""
    text = PAGE.read_text(encoding="utf-8")
    blocks = re.findall(r"```\{raw\} html\n(.*?)```", text, flags=re.S)
    static = folder / "_static" / "playground"
    shutil.copytree(llmscratch_book.STATIC_DIR / "playground", static)
    for path in files.iterdir():
        shutil.copy(path, static / path.name)
    (folder / "book").mkdir()
    (folder / "book" / "playground.html").write_text(
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<link rel="stylesheet" href="../_static/playground/playground.css">'
        f'<script type="importmap">{llmscratch_book._import_map(page_pathto)}</script></head><body>'
        + "\n".join(blocks)
        + '<script type="module" src="../_static/playground/playground.js"></script></body></html>',
        encoding="utf-8",
    )
    return folder


def test_the_page_shows_what_the_package_computes_in_headless_chromium(written, tmp_path):
    pytest.importorskip("playwright")
    import playground_check

    if not Path(playground_check.CHROMIUM).exists():
        pytest.skip(f"{playground_check.CHROMIUM} is not installed")
    site = minimal_site(tmp_path / "site", written[0])
    results, problems = playground_check.check_site(site, speed=0)
    failed = [f"{r['name']}: {r['detail']}" for r in results if r["status"] == "FAIL"]
    assert not failed and not problems, failed + problems
    names = " ".join(r["name"] for r in results)
    for what in ["held-out paragraph", "top 5", "greedy tokens", "attention map", "Stop", "dpo", "375 px"]:
        assert what in names, what

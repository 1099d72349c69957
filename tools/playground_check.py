"""Check the playground's JavaScript engine, and the built playground page, in headless Chromium, against the package.

    python tools/playground_check.py [--dtype int8 float16] [--speed 50] [--keep DIR]
                                     [--site _build/html] [--screenshots DIR] [--page-only]

Writes into a temporary folder the playground's static files (``_ext/llmscratch_book/_static/playground/``),
the course tokenizer, the course model exported by `llmscratch.export.export_model` (one file per
``--dtype``) and, for each, the fixtures of `llmscratch.export.export_fixtures`, computed by the
package on exactly the exported weights. It serves the folder on 127.0.0.1 (a page may not fetch
``file://`` addresses), opens ``checks.html`` in Debian's ``/usr/bin/chromium`` driven by Playwright,
prints every line the page writes, and exits 1 if any says FAIL, if a script throws, or if the
page requests anything outside 127.0.0.1.

``--speed N`` also times N tokens of greedy decoding in the browser with and without the KV
cache, on a fresh page and for the first dtype only (the browser computes in float32 whatever
the file stores), and prints both; speed is reported, never judged. ``--speed 0`` skips it.

Then, when the built book (``--site``, by default ``_build/html``) has the playground page, it checks
that page as a reader would use it (`check_site`): it types into the page's controls, clicks its
buttons, and compares what the page shows (left in data attributes, see ``playground.js``) with
the package on the very files the page downloaded (`llmscratch.export.load_export_model`). It
exits 1 if the page is listed in ``_toc.yml`` but missing from a built site.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path
from urllib.parse import urlparse

from browser_check import CHROMIUM, CHROMIUM_ARGS, serve

ROOT = Path(__file__).resolve().parents[1]
STATIC = ROOT / "_ext" / "llmscratch_book" / "_static" / "playground"


def prepare(folder: Path, dtypes: list[str]) -> dict[str, int]:
    """Fill `folder` with the static files, the tokenizer, and per dtype a model file and its fixtures.

    Returns each model file's size in bytes.
    """
    from llmscratch import load_course_model
    from llmscratch.data import results_dir
    from llmscratch.export import export_fixtures, export_model

    model, tokenizer = load_course_model(verify=False)
    for path in STATIC.iterdir():
        shutil.copy(path, folder / path.name)
    shutil.copy(results_dir() / "bpe_tokenizer.json", folder / "bpe_tokenizer.json")
    sizes = {}
    for dtype in dtypes:
        sizes[dtype] = export_model(model, folder / f"course-{dtype}.bin", dtype)
        export_fixtures(folder / f"fixtures-{dtype}.json", folder / f"course-{dtype}.bin", tokenizer)
    return sizes


def run_page(browser, url: str, timeout_s: float) -> tuple[list[dict], dict | None, list[str]]:
    """Open `url`, wait for the checks to finish; return their results, the speed, and any problems."""
    problems: list[str] = []
    page = browser.new_page()
    page.on("pageerror", lambda exc: problems.append(f"script error: {exc}"))
    page.on("request", lambda r: None if urlparse(r.url).hostname == "127.0.0.1" or r.url.startswith("data:")
            else problems.append(f"requested a resource outside 127.0.0.1: {r.url}"))
    page.goto(url, wait_until="load")
    page.wait_for_function("() => window.playground && window.playground.done", timeout=timeout_s * 1000)
    state = page.evaluate("() => window.playground")
    page.close()
    return state["results"], state["speed"], problems


def check(dtypes: list[str], speed: int = 50, keep: Path | None = None, timeout_s: float = 300) -> dict:
    """Run the checks for each dtype; returns ``{dtype: {"results", "speed", "problems", "bytes"}}``."""
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp:
        folder = keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        sizes = prepare(folder, dtypes)
        server, base = serve(folder)
        out = {}
        try:
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                for i, dtype in enumerate(dtypes):
                    page = f"{base}/checks.html?fixtures=fixtures-{dtype}.json&tokenizer=bpe_tokenizer.json"
                    results, _, problems = run_page(browser, page, timeout_s)
                    measured = None
                    if speed and i == 0:  # on a fresh page: see checks.js
                        more, measured, more_problems = run_page(browser, f"{page}&only=speed&speed={speed}", timeout_s)
                        results, problems = results + more, problems + more_problems
                    out[dtype] = {"results": results, "speed": measured, "problems": problems, "bytes": sizes[dtype]}
                browser.close()
        finally:
            server.shutdown()
    return out


# --- The built page (book/playground.md), driven through its controls. ---

# Text the tokenizer fixtures do not hold: polytonic Greek, French punctuation, German, Danish,
# Cyrillic, Japanese, emoji, a combining accent, a fraction, a tab and Shakespeare.
HELD_OUT = ("Ἐν ἀρχῇ ἦν ὁ λόγος. «Ça va ?» demande l’élève ; Straße, naïve, smörgåsbord, Ærø. "
            "Москва не сразу строилась. 東京は今日も雨です。 🎭🗡️👑 e\u0301 ½ 10 000 km\n\tKING LEAR:\n"
            "Blow, winds, and crack your cheeks! rage! blow!\n")
GREEDY_TOKENS = 50
ATTENTION = (2, 5)  # the layer and head (from 0) whose map is compared
ROOT_STATE = "() => document.querySelector('.llmscratch-playground').dataset"
READY = f"() => ({ROOT_STATE})().state === 'ready' && ({ROOT_STATE})().analysis === 'done'"
FINISHED = "sel => ['length', 'end', 'stopped'].includes(document.querySelector(sel).dataset.state)"


class PageCheck:
    """The references, from the files the page downloads, and the results of comparing with them."""

    def __init__(self, folder: Path):
        from llmscratch.bpe import BPETokenizer
        from llmscratch.data import results_dir
        from llmscratch.export import load_export_model

        self.manifest = json.loads((folder / "models.json").read_text(encoding="utf-8"))
        self.models = {m["key"]: load_export_model(folder / m["file"]) for m in self.manifest["models"]}
        self.tokenizer = BPETokenizer.load(results_dir() / "bpe_tokenizer.json")  # the package's own copy
        self.stop_id = self.tokenizer.special_tokens[self.manifest["stop_token"]]
        self.results: list[dict] = []

    def add(self, ok: bool, name: str, detail: str) -> None:
        self.results.append({"status": "PASS" if ok else "FAIL", "name": name, "detail": detail})

    def greedy(self, key: str, text: str, n: int) -> list[int]:
        import torch

        from llmscratch.sampling import generate

        ids = torch.tensor([self.tokenizer.encode(text)[-self.models[key].config.context_length:]])
        return generate(self.models[key], ids, n, temperature=0, stop_id=self.stop_id)[0]

    def same_ids(self, name: str, got: list[int], want: list[int]) -> None:
        first = next((i for i, (a, b) in enumerate(zip(got, want)) if a != b), None)
        if first is None and len(got) != len(want):
            first = min(len(got), len(want))
        self.add(first is None, name, f"{len(got)} ids, all equal" if first is None else
                 f"{len(got)} ids against {len(want)}; the first difference at {first}")

    def top5(self, page, key: str) -> None:
        import torch

        text = page.input_value("#pg-prompt")
        with torch.no_grad():
            logits, _ = self.models[key](torch.tensor([self.tokenizer.encode(text)]))
        top = torch.softmax(logits[0, -1].double(), -1).topk(5)
        shown = page.eval_on_selector_all("#pg-bars li", "items => items.slice(0, 5).map(li => "
                                          "[Number(li.dataset.id), Number(li.dataset.prob)])")
        ids_equal = [i for i, _ in shown] == top.indices.tolist()
        worst = max(abs(p - q) for (_, p), q in zip(shown, top.values.tolist()))
        self.add(ids_equal and worst <= 1e-3, f"page: the top 5 next tokens the bars show ({key})",
                 f"ids {'equal' if ids_equal else 'DIFFER'}; max |probability difference| {worst:.2e} (tolerance 1e-3)")

    def attention(self, page, key: str, what: str) -> None:
        import torch

        layer, head = ATTENTION
        page.select_option("#pg-layer", str(layer))
        page.select_option("#pg-head", str(head))
        ids = self.tokenizer.encode(page.input_value("#pg-prompt"))
        weights = self.models[key].trace(torch.tensor([ids])).attention[layer][0, head].double()  # (T, T)
        cells = page.eval_on_selector_all("#pg-attention rect[data-w]", "rs => rs.map(r => "
                                          "[Number(r.dataset.q), Number(r.dataset.k), Number(r.dataset.w)])")
        start = int(page.get_attribute("#pg-attention", "data-start"))
        want = [float(weights[q, :start].sum()) if k < 0 else float(weights[q, k]) for q, k, _ in cells]
        worst = max((abs(w - v) for (_, _, w), v in zip(cells, want)), default=float("inf"))
        expected = sum(q - start + 1 + (start > 0) for q in range(start, len(ids)))
        self.add(len(cells) == expected and worst <= 1e-4, f"page: the attention map, layer {layer + 1} head "
                 f"{head + 1}, {what}", f"{len(cells)} cells from position {start}; max |weight difference| "
                 f"{worst:.2e} (tolerance 1e-4)")

    def generate(self, page, n: int, greedy: bool = True) -> dict:
        page.fill("#pg-max", str(n))
        page.check("#pg-greedy" if greedy else "#pg-sample")
        page.click("#pg-generate")
        # Polled every 250 ms, not every frame (Playwright's default), which would slow what it measures.
        page.wait_for_function(FINISHED, arg="#pg-output", timeout=120_000, polling=250)
        return page.eval_on_selector("#pg-output", "o => ({...o.dataset})")


def _ids(text: str | None) -> list[int]:
    return [int(i) for i in text.split()] if text else []


def check_site(site: Path, speed: int = 50, screenshots: Path | None = None, timeout_s: float = 120):
    """Drive the built playground page of `site`; returns ``(results, problems)`` as `check` does."""
    from playwright.sync_api import sync_playwright

    c = PageCheck(site / "_static" / "playground")
    problems: list[str] = []
    server, base = serve(site)
    url = f"{base}/book/playground.html"
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1280, "height": 1000})
            page.on("pageerror", lambda exc: problems.append(f"script error: {exc}"))
            page.on("request", lambda r: None if urlparse(r.url).hostname == "127.0.0.1" or r.url.startswith("data:")
                    else problems.append(f"requested a resource outside 127.0.0.1: {r.url}"))
            page.goto(url, wait_until="load")
            page.wait_for_function(READY, timeout=timeout_s * 1000)

            page.fill("#pg-prompt", HELD_OUT)
            page.wait_for_function(READY)
            c.same_ids("page: the tokens of a held-out paragraph equal BPETokenizer.encode",
                       _ids(page.get_attribute("#pg-tokens", "data-ids")), c.tokenizer.encode(HELD_OUT))
            c.attention(page, "course", f"on the paragraph ({len(c.tokenizer.encode(HELD_OUT))} tokens)")

            # The prompt typed key by key at its end: the page reuses its cache for the unchanged start.
            prompt = c.manifest["prompt"]
            page.fill("#pg-prompt", prompt[:-8])
            page.locator("#pg-prompt").press_sequentially(prompt[-8:], delay=20)
            page.wait_for_function(READY)
            c.top5(page, "course")
            c.attention(page, "course", "on the prompt, typed")
            out = c.generate(page, GREEDY_TOKENS)
            c.same_ids(f"page: {GREEDY_TOKENS} greedy tokens equal generate(..., temperature=0), course model",
                       _ids(out.get("ids")), c.greedy("course", prompt, GREEDY_TOKENS))
            if speed:
                out = c.generate(page, speed)
                c.results.append({"status": "INFO", "name": f"page: speed, {speed} greedy tokens", "detail":
                                  f"{out['tokensPerSecond']} tokens/s decoding; the prompt read in "
                                  f"{float(out['promptSeconds']) * 1000:.0f} ms"})

            page.fill("#pg-max", "1000")
            page.check("#pg-sample")
            page.click("#pg-generate")
            page.wait_for_function("() => (document.querySelector('#pg-output').dataset.ids || '').split(' ').length"
                                   " >= 10")
            page.click(".pg-stop >> nth=0")
            page.wait_for_function(FINISHED, arg="#pg-output")
            out = page.eval_on_selector("#pg-output", "o => ({...o.dataset})")
            n = len(_ids(out.get("ids")))
            c.add(out["state"] == "stopped" and n < 100, "page: Stop ends a sampled generation",
                  f"state {out['state']} after {n} of 1000 tokens")

            page.select_option("#pg-model", "sft")
            page.wait_for_function(f"() => ({ROOT_STATE})().model === 'sft' && ({READY})()", timeout=timeout_s * 1000)
            text = page.input_value("#pg-prompt")
            form = c.manifest["instruction_format"]
            c.add(text.startswith(form["before"]) and text.endswith(form["after"]) and page.is_visible("#pg-example"),
                  "page: the instruction-tuned model gets an instruction prompt", json.dumps(text))
            c.top5(page, "sft")
            page.fill("#pg-max", str(GREEDY_TOKENS))
            page.click("#pg-compare")
            page.wait_for_function("n => Array.from(document.querySelectorAll('#pg-compare-table tbody tr')).filter("
                                   "r => ['length', 'end'].includes(r.dataset.state)).length === n",
                                   arg=len(c.models), timeout=timeout_s * 1000)
            for key in c.models:
                got = _ids(page.get_attribute(f"#pg-compare-table tr[data-model={key}]", "data-ids"))
                c.same_ids(f"page: the compared greedy answer equals generate(..., temperature=0), {key}",
                           got, c.greedy(key, text, GREEDY_TOKENS))

            page.set_viewport_size({"width": 1200, "height": 1600})
            light = page.eval_on_selector(".pg-heat-cell", "r => getComputedStyle(r).fill")
            if screenshots:
                page.screenshot(path=str(screenshots / "playground-light.png"), full_page=True)
            page.evaluate("() => { document.documentElement.dataset.theme = 'dark'; }")
            dark = page.eval_on_selector(".pg-heat-cell", "r => getComputedStyle(r).fill")
            c.add(light != dark, "page: the attention map follows dark mode", f"{light} -> {dark}")
            if screenshots:
                page.screenshot(path=str(screenshots / "playground-dark.png"), full_page=True)
            page.close()

            phone = browser.new_page(viewport={"width": 375, "height": 800})
            phone.on("pageerror", lambda exc: problems.append(f"script error at 375 px: {exc}"))
            phone.goto(url, wait_until="load")
            phone.wait_for_function(READY, timeout=timeout_s * 1000)
            width = phone.evaluate("() => document.documentElement.scrollWidth")
            c.add(width <= 375, "page: nothing wider than a 375 px phone screen", f"the page is {width} px wide")
            if screenshots:
                phone.screenshot(path=str(screenshots / "playground-phone.png"), full_page=True)
            browser.close()
    finally:
        server.shutdown()
    return c.results, problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dtype", nargs="+", default=["int8", "float16"], choices=["int8", "float16", "float32"])
    parser.add_argument("--speed", type=int, default=50, help="greedy tokens to time per path (0: skip)")
    parser.add_argument("--keep", type=Path, default=None, help="write the files here and keep them")
    parser.add_argument("--site", type=Path, default=ROOT / "_build" / "html",
                        help="the built book whose playground page to check, if it has one")
    parser.add_argument("--screenshots", type=Path, default=None, help="save the page's screenshots here")
    parser.add_argument("--page-only", action="store_true", help="check the built page only, not the engine")
    args = parser.parse_args(argv)
    if not Path(CHROMIUM).exists():
        sys.exit(f"error: {CHROMIUM} not found; install Debian's chromium (apt-get install chromium)")
    failures = 0
    runs = {} if args.page_only else check(args.dtype, args.speed, args.keep)
    for dtype, run in runs.items():
        print(f"== {dtype}: the exported course model is {run['bytes']:,} bytes")
        failures += report(run["results"], run["problems"])
    page = args.site / "book" / "playground.html"
    listed = "file: book/playground" in (ROOT / "_toc.yml").read_text(encoding="utf-8")
    if page.is_file():
        print(f"== the built page, {page}")
        results, problems = check_site(args.site, args.speed, args.screenshots)
        failures += report(results, problems)
    elif args.site.is_dir() and listed:
        print(f"FAIL  {page} is missing, though _toc.yml lists book/playground.md: build the book (make book)")
        failures += 1
    else:
        print(f"note: no built playground page at {page}, so the page was not checked")
    print(f"playground-check: {'FAIL' if failures else 'PASS'} ({failures} failures)")
    return 1 if failures else 0


def report(results: list[dict], problems: list[str]) -> int:
    """Print each result and problem; returns how many failed."""
    for r in results:
        print(f"{r['status']:4}  {r['name']}: {r['detail']}")
    for problem in problems:
        print(f"FAIL  {problem}")
    return sum(r["status"] == "FAIL" for r in results) + len(problems)


if __name__ == "__main__":
    sys.exit(main())

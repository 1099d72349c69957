"""Check the playground's JavaScript engine in headless Chromium, against the package.

    python tools/playground_check.py [--dtype int8 float16] [--speed 50] [--keep DIR]

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
"""

from __future__ import annotations

import argparse
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dtype", nargs="+", default=["int8", "float16"], choices=["int8", "float16", "float32"])
    parser.add_argument("--speed", type=int, default=50, help="greedy tokens to time per path (0: skip)")
    parser.add_argument("--keep", type=Path, default=None, help="write the files here and keep them")
    args = parser.parse_args(argv)
    if not Path(CHROMIUM).exists():
        sys.exit(f"error: {CHROMIUM} not found; install Debian's chromium (apt-get install chromium)")
    failures = 0
    for dtype, run in check(args.dtype, args.speed, args.keep).items():
        print(f"== {dtype}: the exported course model is {run['bytes']:,} bytes")
        for r in run["results"]:
            print(f"{r['status']:4}  {r['name']}: {r['detail']}")
        for problem in run["problems"]:
            print(f"FAIL  {problem}")
        failures += sum(r["status"] == "FAIL" for r in run["results"]) + len(run["problems"])
    print(f"playground-check: {'FAIL' if failures else 'PASS'} ({failures} failures)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

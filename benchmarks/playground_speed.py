"""How fast does the playground's JavaScript engine run the course model in headless Chromium? (prints only)

    .venv/bin/python benchmarks/playground_speed.py [--tokens 50] [--repeats 3] [--dtype int8]

Needs Debian's chromium and Playwright (``make browser-check`` installs Playwright into the venv).
Each repeat opens a fresh page of the engine's check harness (``checks.html?only=speed``, see
``checks.js``), lets it compile its loops on 8 tokens, then times ``--tokens`` greedy tokens of
the course model twice: with the KV cache (the prompt read once, then one token per step) and
without one (the whole window every step). The target of issue 13 is 50 tokens/s decoding with
the cache on the course's 2-core CPU machine.

The browser computes in float32 whatever the file stores, so ``--dtype`` changes the download,
not the speed. Timings depend on the machine and on what else runs on it; they are printed, not
tested (``tools/playground_check.py`` checks correctness, and prints one such timing too).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
from browser_check import CHROMIUM, CHROMIUM_ARGS, serve  # noqa: E402
from playground_check import prepare, run_page  # noqa: E402

COLUMNS = (("cache_decode_tokens_per_second", "cached, decoding tok/s"),
           ("cache_first_token_seconds", "prompt read, ms"),
           ("cache_tokens_per_second", "cached, all tok/s"),
           ("no_cache_tokens_per_second", "no cache, tok/s"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=50, help="greedy tokens timed per path (default 50)")
    parser.add_argument("--repeats", type=int, default=3, help="fresh pages measured (default 3)")
    parser.add_argument("--dtype", default="int8", choices=["int8", "float16", "float32"])
    args = parser.parse_args(argv)
    if not Path(CHROMIUM).exists():
        sys.exit(f"error: {CHROMIUM} not found; install Debian's chromium (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        size = prepare(folder, [args.dtype])[args.dtype]
        server, base = serve(folder)
        url = (f"{base}/checks.html?fixtures=fixtures-{args.dtype}.json&tokenizer=bpe_tokenizer.json"
               f"&only=speed&speed={args.tokens}")
        try:
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                for _ in range(args.repeats):
                    results, speed, problems = run_page(browser, url, timeout_s=600)
                    failed = [r for r in results if r["status"] == "FAIL"] + problems
                    if failed or speed is None:
                        sys.exit(f"error: the engine's speed page failed: {failed}")
                    rows.append(speed)
                browser.close()
        finally:
            server.shutdown()

    print(f"The course model ({args.dtype} file, {size:,} bytes) in headless Chromium, {args.tokens} greedy tokens "
          f"after a {rows[0]['prompt_tokens']}-token prompt; {platform.processor() or platform.machine()}, "
          f"{len(os.sched_getaffinity(0))} cores available")
    print("run  " + "  ".join(f"{title:>22}" for _, title in COLUMNS))
    for i, row in enumerate(rows, 1):
        print(f"{i:>3}  " + "  ".join(f"{_shown(key, row[key]):>22}" for key, _ in COLUMNS))
    print("med  " + "  ".join(f"{_shown(key, statistics.median(r[key] for r in rows)):>22}" for key, _ in COLUMNS))
    best = max(r["cache_decode_tokens_per_second"] for r in rows)
    ratio = statistics.median(r["cache_tokens_per_second"] / r["no_cache_tokens_per_second"] for r in rows)
    print(f"fastest cached decoding: {best:.1f} tokens/s (target 50); over all {args.tokens} tokens the cache "
          f"is {ratio:.0f}x faster (median)")
    return 0


def _shown(key: str, value: float) -> str:
    return f"{1000 * value:.0f}" if key.endswith("_seconds") else f"{value:.1f}"


if __name__ == "__main__":
    sys.exit(main())

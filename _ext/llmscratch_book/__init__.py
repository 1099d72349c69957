"""Sphinx glue for the course website: interactive Plotly figures and math, fully offline.

This is the book's tooling, not the course: it lives in its own small distribution,
``llmscratch-book`` (``_ext/``, installed editable by ``requirements.txt``), so the model
package ``llmscratch`` that Colab installs carries no Sphinx code. The book's ``_config.yml``
loads this module as a Sphinx extension, and myst-nb finds `PlotlyMimeRenderer` through the
``myst_nb.mime_renderers`` entry point that ``_ext/pyproject.toml`` declares (myst-nb reads mime
renderers from entry points only, which is why this is an installed distribution rather than a
folder put on ``sys.path``).

Why it exists:

* Plotly's notebook renderer emits only ``application/vnd.plotly.v1+json``. Jupyter and Colab
  draw that natively, but myst-nb has no HTML renderer for it and drops the figure.
  `PlotlyMimeRenderer` turns the figure JSON into a ``<div>`` plus a ``Plotly.newPlot`` call.
  The notebook outputs stay standard, so the execution cache and the notebooks a reader
  downloads are unaffected.
* plotly.js (about 5 MB) is written once to ``_static/plotly.min.js`` from the ``plotly``
  package and loaded only by the pages that have a figure, never inlined per figure and never
  fetched from a CDN.
* ``_static/llmscratch-plotly-theme.js`` (a file beside this module, which Sphinx copies into
  the build's ``_static/``) restyles every figure for the theme's light or dark mode, and again
  whenever the reader switches. Only the pages with a figure load it.
* MathJax is served from ``_static/mathjax`` (from the ``django-static-mathjax`` package),
  replacing Sphinx's default CDN address, so equations render without internet.
* Bibliography labels are unique across chapters (`course_labels`), though each chapter has its
  own bibliography.
* The playground page (``book/playground.md``) runs the course's models in the browser: its
  JavaScript and stylesheet (``_static/playground/``) load only on a page with a
  ``llmscratch-playground`` element, and the models it downloads are exported into the build's
  ``_static/playground/`` when that page is built (`llmscratch_book.playground`).
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

PLOTLY_MIME = "application/vnd.plotly.v1+json"
PLOTLY_JS = "plotly.min.js"
THEME_JS = "llmscratch-plotly-theme.js"
# This extension's own static files (THEME_JS); added to html_static_path, so Sphinx copies them
# into the build's _static/. Not the book's top-level _static/, whose every .js file Jupyter Book
# would load on every page.
STATIC_DIR = Path(__file__).resolve().parent / "_static"
MATHJAX_DIR = "mathjax"
MATHJAX_ENTRY = "tex-mml-chtml.js"
# The parts of MathJax's es5 distribution that tex-mml-chtml.js loads, eagerly or on demand.
MATHJAX_PARTS = (MATHJAX_ENTRY, "input", "output/chtml", "ui", "a11y", "sre", "adaptors")
HTML_BUILDERS = ("html", "dirhtml", "singlehtml")
PLAYGROUND_DOC = "book/playground"
PLAYGROUND_MARKER = 'class="llmscratch-playground'  # the page's root element
PLAYGROUND_JS = "playground/playground.js"
PLAYGROUND_CSS = "playground/playground.css"
# The modules playground.js imports, directly or through another. Sphinx versions the entry's
# address (?v=), not the addresses it imports; the page's import map versions those.
PLAYGROUND_MODULES = ("bpe.js", "gpt.js", "sampling.js", "tensor.js", "views.js")
DEFAULT_HEIGHT_PX = 450


def figure_html(figure: dict[str, Any], div_id: str) -> str:
    """The HTML for one Plotly figure: a div and the script that draws into it.

    The figure JSON is embedded with ``</`` escaped, so a label such as ``</script>`` in the
    data cannot end the script element early.
    """
    layout = figure.get("layout", {}) or {}
    height = layout.get("height") or DEFAULT_HEIGHT_PX
    config = {"responsive": True, "displaylogo": False, **(figure.get("config") or {})}

    def js(value: Any) -> str:
        return json.dumps(value, separators=(",", ":")).replace("</", "<\\/")

    return (
        f'<div class="llmscratch-plotly">'
        f'<div id="{div_id}" class="plotly-graph-div" style="height:{int(height)}px;width:100%;"></div>'
        f"<script>Plotly.newPlot({js(div_id)},{js(figure.get('data', []))},"
        f"{js(layout)},{js(config)});</script></div>"
    )


class PlotlyMimeRenderer:
    """myst-nb mime renderer plugin (see myst-nb's ``MimeRenderPlugin`` protocol)."""

    # Lower is preferred; text/html is 30 for the HTML builders.
    mime_priority_overrides = [(builder, PLOTLY_MIME, 1) for builder in HTML_BUILDERS]

    @staticmethod
    def handle_mime(renderer: Any, data: Any, inline: bool) -> list | None:
        if inline or data.mime_type != PLOTLY_MIME:
            return None
        from docutils import nodes

        figure = data.content if isinstance(data.content, dict) else json.loads(data.string)
        # A stable id keeps rebuilt pages byte-identical when the figure has not changed.
        digest = hashlib.sha1(json.dumps(figure, sort_keys=True).encode()).hexdigest()[:12]
        div_id = f"plotly-{data.cell_index}-{data.output_index}-{digest}"
        html = figure_html(figure, div_id)
        # Not "text_html": the dark theme paints text_html outputs on a light card, which
        # would fight the figure's own dark-mode restyling.
        return [nodes.raw("", html, format="html", classes=["output", "plotly_figure"])]


def _write_if_changed(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists() or path.read_text(encoding="utf-8") != text:
        path.write_text(text, encoding="utf-8")


def _mathjax_source() -> Path | None:
    try:
        import mathjax  # the django-static-mathjax distribution
    except ImportError:
        return None
    root = Path(mathjax.__file__).parent / "static" / "mathjax" / "es5"
    return root if (root / MATHJAX_ENTRY).is_file() else None


def _config_inited(app: Any, config: Any) -> None:
    if str(STATIC_DIR) not in config.html_static_path:
        config.html_static_path.append(str(STATIC_DIR))
    if _mathjax_source() is None:
        from sphinx.util import logging

        logging.getLogger(__name__).warning(
            "django-static-mathjax is not installed: math will load MathJax from a CDN "
            "(install the book's requirements.txt)"
        )
        return
    config.mathjax_path = f"{MATHJAX_DIR}/{MATHJAX_ENTRY}"


def course_labels(bibfiles: list[Path]) -> dict[str, str]:
    """A bibliography label for every key of `bibfiles`, unique across the whole book.

    pybtex's alpha labels ("Kar22") only tell apart entries of one bibliography, but every
    chapter has its own, and Sphinx requires a label to mean one work on every page. Works
    whose alpha labels clash get a letter, in key order (karpathy2022makemore -> Kar22a,
    karpathy2022nanogpt -> Kar22b), wherever they are cited.
    """
    from pybtex.database import parse_file
    from pybtex.style.labels.alpha import LabelStyle

    entries: dict = {}
    for path in bibfiles:
        entries.update(parse_file(str(path)).entries)
    groups: dict[str, list[str]] = {}
    for key in sorted(entries):
        groups.setdefault(LabelStyle().format_label(entries[key]), []).append(key)
    return {key: label + (chr(ord("a") + i) if len(keys) > 1 else "")
            for label, keys in groups.items() for i, key in enumerate(keys)}


def _register_bibliography_style(app: Any, config: Any) -> None:
    """Use alpha labels made unique across chapters (`course_labels`) for every bibliography."""
    from pybtex.plugin import register_plugin
    from pybtex.style.formatting.alpha import Style
    from pybtex.style.labels.alpha import LabelStyle

    labels = course_labels([Path(app.srcdir) / f for f in getattr(config, "bibtex_bibfiles", [])])

    class CourseLabelStyle(LabelStyle):
        def format_labels(self, sorted_entries):
            for entry in sorted_entries:
                # Chapters cite with a prefix (":keyprefix: gpt-"): match the key it ends with.
                key = next((k for k in labels if entry.key == k or entry.key.endswith("-" + k)), None)
                yield labels[key] if key else self.format_label(entry)

    class CourseStyle(Style):
        default_label_style = "llmscratch"

    register_plugin("pybtex.style.labels", "llmscratch", CourseLabelStyle, force=True)
    register_plugin("pybtex.style.formatting", "llmscratch", CourseStyle, force=True)
    config.bibtex_default_style = "llmscratch"


def _dedupe_scripts(context: dict) -> None:
    """Drop repeated inline scripts from a page.

    sphinx-thebe (loaded by Jupyter Book) registers its configuration script on every
    ``env-before-read-docs`` event, which fires more than once per build. The repeated
    ``const THEBE_JS_URL`` declaration then throws a SyntaxError in the browser. (The copies
    differ only in a filename of None versus "", so Sphinx's own check does not catch them.)
    """
    scripts = context.get("script_files")
    if not isinstance(scripts, list):
        return
    seen = set()
    unique = []
    for script in scripts:
        attributes = getattr(script, "attributes", {}) or {}
        key = (str(script.filename or ""), tuple(sorted((k, str(v)) for k, v in attributes.items())))
        if key not in seen:
            seen.add(key)
            unique.append(script)
    scripts[:] = unique  # in place: Sphinx adds this page's own scripts to the same list


def _page_context(app: Any, pagename: str, templatename: str, context: dict, doctree: Any) -> None:
    _dedupe_scripts(context)
    # Only pages that draw a figure pay for plotly.js. It must load before the inline
    # Plotly.newPlot calls in the body, so it is a plain (blocking) script in <head>.
    if doctree is not None and "plotly-graph-div" in context.get("body", ""):
        app.add_js_file(PLOTLY_JS, priority=200)
        app.add_js_file(THEME_JS, priority=201)
    # The playground's engine is a set of ES modules; the entry imports the others.
    if doctree is not None and PLAYGROUND_MARKER in context.get("body", ""):
        app.add_js_file(None, body=_import_map(context["pathto"]), type="importmap", priority=499)
        app.add_js_file(PLAYGROUND_JS, type="module")
        app.add_css_file(PLAYGROUND_CSS)


def _import_map(pathto: Any) -> str:
    """The playground page's import map: each module it imports, at an address that changes with its contents.

    A browser keeps a cached ``gpt.js`` as long as the server lets it, even after a new
    ``playground.js`` arrives; mapping ``.../gpt.js`` to ``.../gpt.js?v=<digest>`` makes a changed
    module a new address, so a page never runs one version of the engine with another's parts.
    """
    imports = {}
    for name in PLAYGROUND_MODULES:
        url = pathto(f"_static/playground/{name}", 1)  # relative to the page, as the browser resolves it
        digest = hashlib.sha256((STATIC_DIR / "playground" / name).read_bytes()).hexdigest()[:12]
        imports[url] = f"{url}?v={digest}"
    return json.dumps({"imports": imports}, indent=1)


def _build_finished(app: Any, exception: Exception | None) -> None:
    if exception is not None or app.builder.name not in HTML_BUILDERS:
        return
    import plotly.offline

    static = Path(app.outdir) / "_static"
    _write_if_changed(static / PLOTLY_JS, plotly.offline.get_plotlyjs())
    source = _mathjax_source()
    if source is not None:
        for part in MATHJAX_PARTS:
            src, dest = source / part, static / MATHJAX_DIR / part
            if src.is_dir():
                shutil.copytree(src, dest, dirs_exist_ok=True)
            else:
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(src, dest)
    if PLAYGROUND_DOC in app.env.found_docs:
        from .playground import write_playground

        write_playground(static / "playground")


def setup(app: Any) -> dict[str, Any]:
    app.connect("config-inited", _config_inited)
    app.connect("config-inited", _register_bibliography_style)
    app.connect("html-page-context", _page_context)
    app.connect("build-finished", _build_finished)
    return {"parallel_read_safe": True, "parallel_write_safe": True, "version": "1"}

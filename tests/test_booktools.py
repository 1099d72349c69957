"""llmscratch_book (the book's Sphinx extension, _ext/): Plotly figures become HTML that draws itself,
and nothing else is touched."""

import json
import re
from types import SimpleNamespace

import plotly.graph_objects as go
import pytest
from docutils import nodes

import llmscratch_book
from llmscratch_book import PLOTLY_MIME, PlotlyMimeRenderer, figure_html


def mime(content, mime_type=PLOTLY_MIME):
    return SimpleNamespace(mime_type=mime_type, content=content, string=content if isinstance(content, str) else None,
                           cell_index=3, output_index=0)


def figure():
    fig = go.Figure(go.Heatmap(z=[[1, 2], [3, 4]], x=["a", "b"], y=["a", "b"]))
    fig.update_layout(title="</script><script>alert(1)</script>", height=321)
    return fig.to_plotly_json()


def test_renders_a_div_and_a_newplot_call():
    [node] = PlotlyMimeRenderer.handle_mime(None, mime(figure()), inline=False)
    assert isinstance(node, nodes.raw) and node["format"] == "html"
    html = node.astext()
    div_id = re.search(r'<div id="([^"]+)" class="plotly-graph-div"', html).group(1)
    assert f'Plotly.newPlot("{div_id}"' in html
    assert "height:321px" in html
    assert "text_html" not in node["classes"]  # the dark theme must not paint it on a light card


def test_json_string_content_is_accepted_and_ids_are_stable():
    fig = figure()
    a = PlotlyMimeRenderer.handle_mime(None, mime(fig), False)[0].astext()
    b = PlotlyMimeRenderer.handle_mime(None, mime(json.dumps(fig)), False)[0].astext()
    assert a == b  # same figure, same HTML: rebuilt pages do not churn


def test_script_breakout_is_escaped():
    html = figure_html(figure(), "x")
    # The only closing script tag is the one we emit; the title's is escaped as <\/script>.
    assert html.count("</script>") == 1
    assert "<\\/script><script>alert(1)<\\/script>" in html


def test_data_round_trips_through_the_embedded_json():
    fig = figure()
    html = figure_html(fig, "fig")
    data_json = re.search(r'Plotly\.newPlot\("fig",(\[.*?\]),\{', html).group(1)
    assert json.loads(data_json.replace("<\\/", "</")) == fig["data"]


@pytest.mark.parametrize("mime_type", ["text/html", "image/png", "application/json"])
def test_other_mime_types_are_left_alone(mime_type):
    assert PlotlyMimeRenderer.handle_mime(None, mime("x", mime_type), False) is None


def test_inline_glue_is_left_to_myst_nb():
    assert PlotlyMimeRenderer.handle_mime(None, mime(figure()), inline=True) is None


def test_plotly_outranks_html_for_html_builders_only():
    overrides = {(b, m): p for b, m, p in PlotlyMimeRenderer.mime_priority_overrides}
    assert overrides[("html", PLOTLY_MIME)] < 30  # myst-nb gives text/html 30
    assert ("latex", PLOTLY_MIME) not in overrides


def test_the_plugin_is_registered_with_myst_nb():
    from myst_nb.core.render import load_mime_renders

    assert PlotlyMimeRenderer in load_mime_renders()


def test_the_theme_script_is_a_static_file_that_sphinx_copies():
    """The theme script ships beside the extension; the extension adds its folder to html_static_path."""
    script = llmscratch_book.STATIC_DIR / llmscratch_book.THEME_JS
    assert script.is_file()
    text = script.read_text(encoding="utf-8")
    assert "data-theme" in text and "Plotly.relayout" in text
    config = SimpleNamespace(html_static_path=["_static"], mathjax_path="")
    llmscratch_book._config_inited(None, config)
    llmscratch_book._config_inited(None, config)  # idempotent
    assert config.html_static_path == ["_static", str(llmscratch_book.STATIC_DIR)]


def test_the_extension_is_not_part_of_the_model_package():
    """Colab installs llmscratch alone; the Sphinx glue must not ride along."""
    import importlib.util

    assert importlib.util.find_spec("llmscratch.booktools") is None


def test_repeated_inline_scripts_are_dropped():
    from sphinx.builders.html._assets import _JavaScript

    scripts = [
        _JavaScript("_static/a.js"),
        _JavaScript(None, body="const X = 1;"),
        _JavaScript("", body="const X = 1;"),  # what sphinx-thebe's second registration looks like
        _JavaScript("_static/a.js"),
    ]
    context = {"script_files": scripts}
    llmscratch_book._dedupe_scripts(context)
    assert context["script_files"] is scripts  # edited in place
    assert [(s.filename, s.attributes) for s in scripts] == [("_static/a.js", {}), (None, {"body": "const X = 1;"})]


def test_mathjax_is_available_offline():
    source = llmscratch_book._mathjax_source()
    assert source is not None and (source / llmscratch_book.MATHJAX_ENTRY).is_file()
    for part in llmscratch_book.MATHJAX_PARTS:
        assert (source / part).exists(), part


def test_bibliography_labels_are_unique_across_the_book():
    """Two works by one author in one year get Kar22a and Kar22b, on every page."""
    from pathlib import Path

    from llmscratch_book import course_labels

    labels = course_labels([Path(__file__).resolve().parents[1] / "book" / "references.bib"])
    assert len(set(labels.values())) == len(labels)
    assert {labels["karpathy2022makemore"], labels["karpathy2022nanogpt"]} == {"Kar22a", "Kar22b"}


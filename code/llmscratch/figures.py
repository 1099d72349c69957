"""Plotly figures the chapters share: one way to draw a training run.

    fig = training_curves({"live": history}, baseline=bigram_val)

`training_curves` draws, for each run, the training loss (a moving average over `smooth`
updates, since one batch's loss is noisy) and the validation estimates, with the learning
rate on a second axis: the three things to watch while a model trains. A run is a
`llmscratch.training.History` or the ``curve`` record a committed run saved
(`History.curve`), which has no learning rates. A horizontal line can mark a baseline, such as
the counting bigram's loss, that every model in a comparison must beat.

The figures are interactive in the book's HTML and in a notebook (hover for values, click a
legend entry to hide a run), and need nothing from the network.

Left out: static (matplotlib) versions; the chapters that need one draw it themselves.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import plotly.graph_objects as go
import torch

from .training import History

__all__ = ["ablation_bars", "attention_panels", "expert_utilisation", "moving_average", "training_curves"]

# One colour per run, in order; the validation curve of a run shares its colour.
RUN_COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f")


def moving_average(values: Sequence[float], window: int) -> list[float]:
    """The mean of each value and the up to `window` - 1 values before it.

    >>> moving_average([1.0, 2.0, 3.0, 4.0], 2)
    [1.0, 1.5, 2.5, 3.5]
    """
    if not isinstance(window, int) or window <= 0:
        raise ValueError(f"window must be a positive integer, got {window!r}")
    out, total = [], 0.0
    for i, v in enumerate(values):
        total += v
        if i >= window:
            total -= values[i - window]
        out.append(total / min(i + 1, window))
    return out


def _series(run: History | Mapping[str, Any], smooth: int) -> tuple[list, list, list, list, list]:
    if isinstance(run, History):
        return run.step, moving_average(run.train_loss, smooth), run.eval_step, run.eval_val, run.lr
    if "train_loss_block_mean" in run:  # a committed curve: already averaged over blocks
        return run["step"], run["train_loss_block_mean"], run["eval_step"], run["eval_val"], []
    raise TypeError(f"a run must be a History or a committed curve record, got {type(run).__name__}")


def training_curves(
    runs: Mapping[str, History | Mapping[str, Any]],
    *,
    smooth: int = 20,
    baseline: float | None = None,
    baseline_name: str = "counting bigram",
    show_lr: bool = True,
    title: str = "Training and validation loss",
    height: int = 440,
) -> go.Figure:
    """Training loss (smoothed) and validation loss of each run; learning rate on a second axis."""
    if not runs:
        raise ValueError("training_curves needs at least one run")
    fig = go.Figure()
    any_lr = False
    for i, (name, run) in enumerate(runs.items()):
        colour = RUN_COLOURS[i % len(RUN_COLOURS)]
        steps, train, eval_step, val, lr = _series(run, smooth)
        fig.add_trace(go.Scatter(x=list(steps), y=[round(v, 4) for v in train], mode="lines", name=f"{name}: train",
                                 legendgroup=name, line={"color": colour, "width": 1.5}))
        fig.add_trace(go.Scatter(x=list(eval_step), y=[round(v, 4) for v in val], mode="lines+markers",
                                 name=f"{name}: val", legendgroup=name,
                                 line={"color": colour, "dash": "dash"}, marker={"size": 5}))
        if show_lr and lr:
            any_lr = True
            fig.add_trace(go.Scatter(x=list(steps), y=list(lr), mode="lines", name=f"{name}: learning rate",
                                     legendgroup=name, yaxis="y2", line={"color": colour, "width": 1, "dash": "dot"},
                                     opacity=0.6))
    if baseline is not None:
        fig.add_hline(y=baseline, line_dash="dot", line_color="#555",
                      annotation_text=baseline_name, annotation_position="bottom left")
    layout: dict[str, Any] = {"title": title, "xaxis_title": "update (step)", "yaxis_title": "loss (nats per token)",
                              "height": height, "template": "plotly_white", "hovermode": "x unified",
                              "legend": {"orientation": "h", "y": -0.2}}
    if any_lr:
        layout["yaxis2"] = {"title": "learning rate", "overlaying": "y", "side": "right", "showgrid": False,
                            "rangemode": "tozero", "exponentformat": "e"}
    fig.update_layout(**layout)
    return fig


def ablation_bars(
    ablated: Mapping[str, Sequence[float]], full: Sequence[float], title: str, unit: str = "nats/char"
) -> go.Figure:
    """Horizontal bars: each ablation's mean loss minus the full model's mean, whiskers its range over seeds.

    `ablated` maps "what was removed" to its runs' losses, `full` holds the full model's. A bar
    is red when its runs and the full model's do not overlap, grey when they do (no measurable
    difference). Bars are sorted by cost, largest first.
    """
    base = sum(full) / len(full)
    rows = sorted(ablated.items(), key=lambda kv: -sum(kv[1]) / len(kv[1]))
    means = [sum(v) / len(v) - base for _, v in rows]
    apart = [max(v) < min(full) or min(v) > max(full) for _, v in rows]
    fig = go.Figure(go.Bar(
        x=means, y=[f"without {k}" for k, _ in rows], orientation="h",
        marker_color=["#d62728" if a else "#bbbbbb" for a in apart],
        error_x={"type": "data", "symmetric": False,
                 "array": [max(v) - base - m for (_, v), m in zip(rows, means)],
                 "arrayminus": [m - (min(v) - base) for (_, v), m in zip(rows, means)]},
        hovertemplate="%{y}: %{x:+.3f} " + unit + " against the full model's mean<extra></extra>"))
    fig.update_layout(title=title, yaxis={"autorange": "reversed"}, height=360, template="plotly_white",
                      xaxis_title=f"change in loss ({unit}); bars: mean, whiskers: range over seeds",
                      margin={"l": 10, "r": 10, "t": 60, "b": 10})
    return fig


def attention_panels(
    maps: Sequence[tuple[str, Any, Sequence[str]]], title: str, height: int = 420
) -> go.Figure:
    """Causal attention weights side by side: one heatmap per ``(name, (T, T) weights, T labels)``.

    Row i is query i, column j key j; the masked future (j > i) is left blank, and every panel
    shares one colour scale from 0 to 1, so that panels can be compared.
    """
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=1, cols=len(maps), subplot_titles=[name for name, _, _ in maps],
                        horizontal_spacing=0.06)
    for col, (_, weights, labels) in enumerate(maps, start=1):
        w = [[round(float(v), 3) if j <= i else None for j, v in enumerate(row)] for i, row in enumerate(weights)]
        fig.add_trace(go.Heatmap(z=w, x=list(labels), y=list(labels), zmin=0, zmax=1, colorscale="Blues",
                                 showscale=col == len(maps), colorbar={"title": "weight"},
                                 hovertemplate="query %{y}<br>key %{x}<br>weight %{z:.3f}<extra></extra>"),
                      row=1, col=col)
        fig.update_yaxes(autorange="reversed", showticklabels=col == 1, tickfont={"size": 8}, row=1, col=col)
        fig.update_xaxes(showticklabels=False, title="key", row=1, col=col)
    fig.update_yaxes(title="query", row=1, col=1)
    fig.update_layout(template="plotly_white", height=height, title=title, margin={"t": 80, "l": 10, "r": 10})
    return fig


def expert_utilisation(
    experts: Sequence[torch.Tensor], tokens: torch.Tensor, n_experts: int, decode: Callable[[list[int]], str],
    examples: int = 6, title: str = "Share of tokens sent to each expert, by layer",
) -> go.Figure:
    """A heat map of the tokens each expert receives (layers down, experts across), hover showing which.

    `experts` holds one (N, k) tensor of routed experts per layer (`llmscratch.moe.Routing.experts`)
    for the N token ids `tokens`; a token counts once for every expert it visits. The hover text of
    a cell lists the `examples` tokens that expert receives most often, decoded with `decode`.
    """
    flat = tokens.flatten().tolist()
    z, hover = [], []
    for layer in experts:
        counts = torch.bincount(layer.flatten(), minlength=n_experts)  # (E,)
        z.append([round(float(c) / float(counts.sum()), 4) for c in counts])
        row = []
        for e in range(n_experts):
            token, _ = (layer == e).nonzero(as_tuple=True)  # the tokens routed to e
            common = Counter(flat[i] for i in token.tolist()).most_common(examples)
            shown = ", ".join(f"{decode([t])!r} ×{n}" for t, n in common) or "none"
            row.append(f"{int(counts[e])} tokens; most often: {shown}")
        hover.append(row)
    layers = [f"layer {i}" for i in range(len(experts))]
    fig = go.Figure(go.Heatmap(z=z, x=[f"expert {e}" for e in range(n_experts)], y=layers, customdata=hover,
                               colorscale="Blues", zmin=0, colorbar={"title": "share"},
                               hovertemplate="%{y}, %{x}: share %{z:.3f}<br>%{customdata}<extra></extra>"))
    fig.update_layout(title=title, height=160 + 70 * len(experts), template="plotly_white",
                      yaxis={"autorange": "reversed"})
    return fig

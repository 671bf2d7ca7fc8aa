"""Plotly charts: token counts by kind per family, token staircases, the scored candidates.

Sweeps use the vectorized `count_tokens_many`, so a chart of a few thousand sizes for every
strategy costs milliseconds. Counts here include the wrapper tokens, like `plan.num_tokens`
and the ledger total. Never imports gradio.
"""
from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import plotly.io as pio

from .engine import count_total_many
from .geometry import Size
from .layout import KINDS
from .ledger import PART_NAMES
from .presets import Preset
from .strategies import STRATEGY_COLORS, hook
from .strategies.base import ChartSpec, Plan, Series
from .views import KIND_COLORS, hex_color

LINE_COLORS = STRATEGY_COLORS  # one per strategy family, distinct from the kind colours' meaning
# Applied to every new figure. Setting it per figure (update_layout(template=...)) copies and
# validates the whole template each time: 8 of the 12 ms a chart takes.
pio.templates.default = "plotly_white"
HEIGHT = 380
SWEEP_POINTS = 800
MIN_SIDE = 8  # px: the smallest side the sweeps draw
MAX_LONG_SIDE = 8000  # px


def _layout(fig: go.Figure, title: str, xaxis: str, yaxis: str = "tokens in total") -> go.Figure:
    fig.update_layout(title=dict(text=title, x=0.01, font=dict(size=15)),
                      height=HEIGHT, margin=dict(l=60, r=20, t=50, b=50), xaxis_title=xaxis,
                      yaxis_title=yaxis, legend=dict(orientation="h", y=-0.22), hovermode="closest")
    return fig


def total_tokens_many(heights, widths, preset: Preset) -> np.ndarray:
    """Placeholders plus special tokens (as `plan.num_tokens`), as float with NaN where rejected."""
    counts = count_total_many(heights, widths, preset).astype(np.float64)
    return np.where(counts >= 0, counts, np.nan)


# ----------------------------------------------------------------------------- compare
def compare_bars(plans: list[Plan]) -> go.Figure:
    """Stacked bars: every plan's tokens by kind, total on top."""
    labels = [f"{p.preset.label}<br>{p.num_crops} crop{'s' if p.num_crops > 1 else ''}" for p in plans]
    fig = go.Figure()
    for kind in KINDS:
        ys = [p.tokens_by_kind.get(kind, 0) for p in plans]
        if any(ys):
            fig.add_bar(x=labels, y=ys, name=PART_NAMES[kind], marker_color=hex_color(KIND_COLORS[kind]),
                        hovertemplate="%{x}<br>" + PART_NAMES[kind] + ": %{y:,}<extra></extra>")
    fig.update_layout(barmode="stack")
    for label, p in zip(labels, plans):
        fig.add_annotation(x=label, y=p.num_tokens, text=f"<b>{p.num_tokens:,}</b>", showarrow=False,
                           yshift=10)
    return _layout(fig, "Tokens in total, by kind: same image, every family", "")


# ----------------------------------------------------------------------------- staircases
def _marker(fig: go.Figure, x: float, y: float, color: str, name: str, text: str) -> None:
    fig.add_scatter(x=[x], y=[y], mode="markers", name=name, showlegend=False,
                    marker=dict(size=12, color=color, symbol="star", line=dict(width=1, color="black")),
                    hovertemplate=text + "<extra>you are here</extra>")


def scale_sweep(size_hw: Size, n: int = SWEEP_POINTS) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Heights and widths of the image scaled (aspect kept) so that its longer side runs
    log-evenly from MIN_SIDE up to MAX_LONG_SIDE (or twice the image), and the longer sides."""
    h, w = size_hw.hw
    top = max(MAX_LONG_SIDE, 2 * max(h, w))
    longs = np.unique(np.round(np.geomspace(MIN_SIDE, top, n)).astype(np.int64))
    scale = longs / max(h, w)
    return (np.maximum(1, np.round(h * scale)).astype(np.int64),
            np.maximum(1, np.round(w * scale)).astype(np.int64), longs)


def staircase_scale(size_hw: Size, presets: list[Preset]) -> go.Figure:
    """Tokens against image size (aspect ratio fixed) for every preset; a star at `size_hw`."""
    hs, ws, longs = scale_sweep(size_hw)
    fig = go.Figure()
    here = max(size_hw.hw)
    for preset in presets:
        color = LINE_COLORS.get(preset.strategy, "#444444")
        ys = total_tokens_many(hs, ws, preset)
        fig.add_scatter(x=longs, y=ys, mode="lines", line_shape="hv", name=preset.label,
                        line=dict(color=color, width=2), customdata=np.stack([ws, hs], -1),
                        hovertemplate="%{customdata[0]}x%{customdata[1]}: %{y:,} tokens<extra>"
                        + preset.label + "</extra>")
        y_here = total_tokens_many([size_hw.height], [size_hw.width], preset)[0]
        if not np.isnan(y_here):
            _marker(fig, here, y_here, color, preset.label, f"{size_hw}: {int(y_here):,} tokens")
    fig.update_xaxes(type="log")
    return _layout(fig, f"Tokens vs image size (aspect ratio {size_hw.width}:{size_hw.height} kept)",
                   "longer side (px, log scale)")


def aspect_sweep(size_hw: Size, n: int = SWEEP_POINTS, max_ratio: float = 16.0):
    """Sizes with the image's pixel count and aspect ratios (w / h) log-even in
    [1/max_ratio, max_ratio], plus the ratios."""
    area = size_hw.area
    ratios = np.geomspace(1 / max_ratio, max_ratio, n)
    hs = np.maximum(1, np.round(np.sqrt(area / ratios))).astype(np.int64)
    ws = np.maximum(1, np.round(np.sqrt(area * ratios))).astype(np.int64)
    return hs, ws, ws / hs


def _ratio_ticks(max_ratio: float = 16.0) -> tuple[list[float], list[str]]:
    vals = [1 / 16, 1 / 8, 1 / 4, 1 / 2, 1, 2, 4, 8, 16]
    vals = [v for v in vals if 1 / max_ratio <= v <= max_ratio]
    text = [f"1:{round(1 / v)}" if v < 1 else f"{round(v)}:1" for v in vals]
    return vals, text


def staircase_aspect(size_hw: Size, presets: list[Preset]) -> go.Figure:
    """Tokens against aspect ratio at the image's pixel count; a star at the image's ratio."""
    hs, ws, ratios = aspect_sweep(size_hw)
    fig = go.Figure()
    here = size_hw.width / size_hw.height
    for preset in presets:
        color = LINE_COLORS.get(preset.strategy, "#444444")
        fig.add_scatter(x=ratios, y=total_tokens_many(hs, ws, preset), mode="lines", line_shape="hv",
                        name=preset.label, line=dict(color=color, width=2),
                        customdata=np.stack([ws, hs], -1),
                        hovertemplate="%{customdata[0]}x%{customdata[1]}: %{y:,} tokens<extra>"
                        + preset.label + "</extra>")
        y_here = total_tokens_many([size_hw.height], [size_hw.width], preset)[0]
        if not np.isnan(y_here):
            _marker(fig, here, y_here, color, preset.label, f"{size_hw}: {int(y_here):,} tokens")
    vals, text = _ratio_ticks()
    fig.update_xaxes(type="log", tickvals=vals, ticktext=text)
    return _layout(fig, f"Tokens vs aspect ratio at {size_hw.area / 1e6:.2f} MP",
                   "aspect ratio width:height (log scale)")


# ----------------------------------------------------------------------------- candidates
def candidates_chart(plan: Plan) -> go.Figure:
    """The numbers the strategy compared, one bar group per candidate, the winner outlined."""
    make = hook(plan.strategy, "candidates_chart")
    spec = make(plan) if make is not None else _generic_candidates(plan)
    fig = go.Figure()
    widths = [3 if i == spec.chosen else 0 for i in range(len(spec.labels))]
    for series in spec.series:
        color = list(series.color) if isinstance(series.color, tuple) else series.color
        fig.add_bar(x=list(spec.labels), y=list(series.values), name=series.name, marker_color=color,
                    marker_line_width=widths, marker_line_color="black")
    for value, name in spec.hlines:
        fig.add_hline(y=value, line_dash="dash", annotation_text=name, line_color="#555555")
    if spec.log_y:
        fig.update_yaxes(type="log")
    fig.update_layout(barmode=spec.barmode)
    _mark_flat_winner(fig, spec)
    fig = _layout(fig, spec.title, spec.x_title, spec.y_title)
    if len(spec.labels) > MANY_LABELS:
        # every label readable: angled, with room below, and the legend above the plot
        fig.update_xaxes(tickangle=-90, automargin=True, tickfont=dict(size=10))
        fig.update_layout(height=HEIGHT + 80, margin=dict(b=110, t=80),
                          legend=dict(orientation="h", y=1.02, yanchor="bottom", x=0))
    return fig


MANY_LABELS = 10  # more candidates than this: angled labels, legend on top
FLAT = 0.02  # a winner whose bars are below this share of the tallest is marked


def _mark_flat_winner(fig: go.Figure, spec: ChartSpec) -> None:
    """A winner with score 0 (InternVL's exact aspect match) has no visible bar: put a marker
    and a label on it, so the chosen candidate is always visible."""
    if spec.chosen is None or spec.chosen < 0 or not spec.series:
        return
    values = [abs(v) for series in spec.series for v in series.values if v == v]
    top = max(values, default=0.0)
    winner = max(abs(series.values[spec.chosen]) for series in spec.series)
    if top > 0 and winner > FLAT * top:
        return
    y = top * 0.06 if top > 0 else 1.0
    if spec.log_y:
        y = max(winner, min((v for v in values if v > 0), default=1.0))
    fig.add_scatter(x=[spec.labels[spec.chosen]], y=[y], mode="markers+text", name="chosen",
                    text=[f"chosen ({winner:g})"], textposition="top center",
                    marker=dict(symbol="triangle-down", size=14, color="black"),
                    hovertemplate="chosen: %{x}<extra></extra>")


def _generic_candidates(plan: Plan) -> ChartSpec:
    """A family without its own chart: the tokens each candidate would cost."""
    cands = plan.candidates
    labels = tuple(f"{c.grid_rows}x{c.grid_cols}" + (" ✓" if c.chosen else "") for c in cands)
    keys = [k for k in cands[0].scores] if cands else []
    series = tuple(Series(k, tuple(float(c.scores.get(k, 0.0)) for c in cands), color)
                   for k, color in zip(keys[:3], ("#009e73", "#d55e00", "#0072b2")))
    return ChartSpec("The options the processor compared", "grid (rows x cols)", "score", labels,
                     series, chosen=next((i for i, c in enumerate(cands) if c.chosen), -1))

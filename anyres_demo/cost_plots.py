"""Plotly charts of what images cost: FLOPs and KV-cache bytes against image size, per family.

The what-if tab's token staircase, in FLOPs and bytes: the image keeps its aspect ratio and is
scaled from a thumbnail to 8000 px on the long side; each family's default checkpoint (and the
chosen model) is planned at every size and costed. Never imports gradio.
"""
from __future__ import annotations

import functools

import numpy as np
import plotly.graph_objects as go

from .architectures import get_architecture
from .cost import image_cost
from .engine import plan_image
from .geometry import Size
from .plots import HEIGHT, LINE_COLORS
from .presets import FAMILY_DEFAULTS, Preset, get_preset

COST_POINTS = 40
MIN_LONG_SIDE = 64
MAX_LONG_SIDE = 8000


def cost_sweep_sizes(size_hw: Size, n: int = COST_POINTS) -> tuple[np.ndarray, list[Size]]:
    """Long sides (geometric steps) and the sizes at the image's aspect ratio."""
    longs = np.unique(np.geomspace(MIN_LONG_SIDE, MAX_LONG_SIDE, n).round().astype(int))
    h, w = size_hw.hw
    sizes = []
    for long_side in longs:
        scale = long_side / max(h, w)
        sizes.append(Size(max(1, round(h * scale)), max(1, round(w * scale))))
    return longs, sizes


def sweep_presets(chosen: Preset | None = None) -> list[Preset]:
    """One checkpoint per family that has an architecture row, the chosen model in its family's place."""
    out = []
    for strategy, repo in FAMILY_DEFAULTS.items():
        preset = chosen if chosen is not None and chosen.strategy == strategy else get_preset(repo)
        if get_architecture(preset.repo_id) is not None:
            out.append(preset)
    if chosen is not None and all(p.repo_id != chosen.repo_id for p in out) and \
            get_architecture(chosen.repo_id) is not None:
        out.append(chosen)
    return out


@functools.lru_cache(maxsize=128)
def _curve(preset: Preset, size_hw: Size) -> tuple[tuple, tuple, tuple]:
    """(long sides, total FLOPs, KV bytes) of one preset over the sweep; cached, so re-drawing the
    same image (another prompt length, another tab visit) costs nothing."""
    longs, sizes = cost_sweep_sizes(size_hw)
    flops, kv = [], []
    for s in sizes:
        try:
            cost = image_cost(plan_image(s, preset))
        except ValueError:  # a size the processor rejects: a gap in the line
            flops.append(None)
            kv.append(None)
            continue
        flops.append(cost.total_flops)
        kv.append(cost.kv_bytes)
    return tuple(int(v) for v in longs), tuple(flops), tuple(kv)


def cost_curves(size_hw: Size, presets: list[Preset]) -> dict[str, dict[str, list]]:
    """repo -> {"long": [...], "flops": [...], "kv": [...]} (None where the size is rejected or the
    architecture lacks a value)."""
    curves = {}
    for preset in presets:
        longs, flops, kv = _curve(preset, size_hw)
        curves[preset.repo_id] = {"long": list(longs), "flops": list(flops), "kv": list(kv),
                                  "strategy": preset.strategy, "label": preset.label}
    return curves


def _figure(curves: dict, key: str, title: str, y_title: str, here: dict[str, float | None],
            here_long: int) -> go.Figure:
    fig = go.Figure()
    for repo, c in curves.items():
        color = LINE_COLORS.get(c["strategy"], "#555555")
        fig.add_scatter(x=c["long"], y=c[key], mode="lines", line_shape="hv", name=c["label"],
                        line=dict(color=color, width=2), connectgaps=False,
                        hovertemplate=c["label"] + "<br>long side %{x} px<br>%{y:.3s}<extra></extra>")
        if here.get(repo) is not None:
            fig.add_scatter(x=[here_long], y=[here[repo]], mode="markers", showlegend=False,
                            marker=dict(color=color, size=10, symbol="diamond", line=dict(color="black", width=1)),
                            hovertemplate=c["label"] + ": your image<br>%{y:.3s}<extra></extra>")
    fig.update_layout(title=dict(text=title, x=0.01, font=dict(size=15)), height=HEIGHT,
                      margin=dict(l=60, r=20, t=50, b=50), xaxis_title="long side of the image (px), same aspect",
                      yaxis_title=y_title, legend=dict(orientation="h", y=-0.22), hovermode="closest")
    fig.update_xaxes(type="log")
    fig.update_yaxes(type="log")
    return fig


def cost_charts(size_hw: Size, chosen: Preset | None = None) -> tuple[go.Figure, go.Figure]:
    """(FLOPs vs size, KV bytes vs size) for every family, with the image marked."""
    presets = sweep_presets(chosen)
    curves = cost_curves(size_hw, presets)
    here_flops, here_kv = {}, {}
    for preset in presets:
        try:
            cost = image_cost(plan_image(size_hw, preset))
            here_flops[preset.repo_id], here_kv[preset.repo_id] = cost.total_flops, cost.kv_bytes
        except ValueError:
            pass
    long_side = max(size_hw.hw)
    return (_figure(curves, "flops", "Compute per image: vision encoder + LLM prefill", "FLOPs",
                    here_flops, long_side),
            _figure(curves, "kv", "KV cache per image (bf16)", "bytes", here_kv, long_side))

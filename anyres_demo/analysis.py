"""The explorer's work, as plain functions: one image + one model -> every view.

`analyze` is the step a user waits for (plan, overlay, crops, token map, ledger), so it draws
from one small display copy of the image and never loops over tokens in Python. `compare` and
`whatif` feed the other tabs. Everything returned is a PIL image, a plotly figure, a string or
a small table; nothing here imports gradio.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from dataclasses import dataclass, field
from typing import Any

import plotly.graph_objects as go
from PIL import Image

from . import ledger, plots, views
from .engine import plan_image, resolve_preset
from .export import snippet
from .geometry import Size
from .layout import Layout, build_layout
from .overrides import SETTING_SPECS, collect_overrides, format_pinpoints
from .presets import FAMILY_DEFAULTS, Preset, get_preset, unusual_settings
from .strategies import STRATEGY_LABELS
from .strategies.base import Plan

COMPARE_SIDE = 460  # px: each family's overlay in the Compare tab


@dataclass(frozen=True)
class Choice:
    """What the user chose: a model and the overrides that apply to it (small and copyable:
    this, with the image size, is all the UI keeps between events)."""

    model: str  # repo id
    overrides: dict[str, Any] = field(default_factory=dict)

    @property
    def preset(self) -> Preset:
        return resolve_preset(self.model, **self.overrides)

    def to_state(self, size_hw: Size) -> dict[str, Any]:
        return {"model": self.model, "overrides": {k: _listify(v) for k, v in self.overrides.items()},
                "size_hw": [size_hw.height, size_hw.width]}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> tuple["Choice", Size]:
        overrides = {k: _tuplify(v) for k, v in state.get("overrides", {}).items()}
        return cls(state["model"], overrides), Size(*state["size_hw"])


def _listify(v: Any) -> Any:
    return [_listify(x) for x in v] if isinstance(v, (tuple, list)) else v


def _tuplify(v: Any) -> Any:
    return tuple(_tuplify(x) for x in v) if isinstance(v, (tuple, list)) else v


def choose(model: str, **values: Any) -> Choice:
    """Validate the model and the settings typed in the UI, keyed by overrides.SETTING_SPECS
    name (ValueError with a message)."""
    preset = get_preset(model)
    overrides = collect_overrides(preset, **values)
    for field_name in list(overrides):  # the checkpoint's own value is no override
        if overrides[field_name] == getattr(preset.settings, field_name, None):
            overrides.pop(field_name)
    preset.with_overrides(**overrides)  # raises ValueError on values the processor would reject
    return Choice(preset.repo_id, overrides)


def checkpoint_settings(model: str) -> dict[str, Any]:
    """The checkpoint's values of every setting the UI shows (None where not applicable)."""
    s = get_preset(model).settings
    out = {}
    for name, spec in SETTING_SPECS.items():
        value = getattr(s, spec.field, None)
        out[name] = format_pinpoints(value) if spec.kind == "pinpoints" and value is not None else value
    return out


# ----------------------------------------------------------------------------- explorer
@dataclass(frozen=True, eq=False)
class Analysis:
    plan: Plan
    layout: Layout
    overlay: Image.Image
    crops: list[tuple[Image.Image, str]]
    crops_exact: bool
    token_map: Image.Image

    @property
    def total(self) -> int:
        return self.plan.num_tokens

    def summary(self) -> str:
        p = self.plan
        counts = ", ".join(f"{n:,} {ledger.PART_NAMES[k]}" for k, n in self.layout.counts_by_kind().items())
        notes = "".join(f"\n\n*Unusual setting: {n}.*"
                        for n in unusual_settings(p.preset.settings, p.preset.strategy))
        details = ("\n\n*Preset details: " + " ".join(p.preset.notes) + "*") if p.preset.notes else ""
        return (f"**{p.preset.label}**, {STRATEGY_LABELS[p.strategy]}: {p.image_hw} image -> "
                f"{p.num_crops} crop{'s' if p.num_crops > 1 else ''} -> {counts}.{notes}{details}")

    def snippet(self, choice: Choice) -> str:
        return snippet(choice.model, self.plan.image_hw, choice.overrides)


def analyze(image: Image.Image, choice: Choice, display: views.Source | None = None) -> Analysis:
    """Plan the image and draw every explorer view from one display copy."""
    plan = plan_image(image, choice.preset)
    layout = build_layout(plan)
    display = display or views.display_source(image)
    # The crops are big resizes (Pillow releases the GIL): render them on a second core while
    # this thread draws the overlay and the token map.
    with ThreadPoolExecutor(max_workers=1) as pool:
        crops = pool.submit(views.crop_gallery, image, plan, display=display)
        overlay = views.overlay(display, plan, layout, caption=False)
        token_map = views.token_map(display, plan, layout)
        gallery, exact = crops.result()
    return Analysis(plan=plan, layout=layout, overlay=overlay, crops=gallery, crops_exact=exact,
                    token_map=token_map)


def click(state: dict[str, Any], x: float, y: float,
          image: "Image.Image | views.Source | None" = None) -> tuple[str, Image.Image | None]:
    """Markdown about the token at pixel (x, y) of the token map drawn for `state`, and (given
    the analysed `image`) the token map again with that token's cell marked (None: no image,
    or nothing drawn there)."""
    choice, size_hw = Choice.from_state(state)
    plan = plan_image(size_hw, choice.preset)
    layout = build_layout(plan)
    info = views.token_at(plan, layout, x, y)
    marked = None
    if image is not None and info is not None:
        rect = views.token_cell_px(plan, layout, info.index)
        if rect is not None:
            marked = views.mark_cell(views.token_map(views.display_source(image), plan, layout), rect)
    return views.describe_token(plan, layout, info), marked


# ----------------------------------------------------------------------------- compare
def family_options() -> list[tuple[str, str]]:
    """(label, family) for every family Compare can show, in FAMILY_DEFAULTS order."""
    return [(STRATEGY_LABELS[name], name) for name in FAMILY_DEFAULTS]


def family_choices(choice: Choice, families: Any = None) -> list[Choice]:
    """One choice per family: the user's own model (and settings) for its family, the family's
    default checkpoint with its own settings for the others. `families` (family names, e.g.
    ["qwen3_vl", "pixtral"]) picks which; None: every family."""
    chosen = get_preset(choice.model)
    picked = list(FAMILY_DEFAULTS) if families is None else list(families)
    unknown = [f for f in picked if f not in FAMILY_DEFAULTS]
    if unknown:
        raise ValueError(f"unknown family {', '.join(map(str, unknown))}; known: {', '.join(FAMILY_DEFAULTS)}")
    if not picked:
        raise ValueError("Pick at least one family to compare.")
    return [choice if chosen.strategy == strategy else Choice(repo)
            for strategy, repo in FAMILY_DEFAULTS.items() if strategy in picked]


def compare(image: "Image.Image | views.Source", choice: Choice, families: Any = None
            ) -> tuple[list[tuple[Image.Image, str]], go.Figure, list[list[Any]]]:
    """The chosen families (default: every one) on the same image: overlays with captions, a
    bar chart, a table. `image` may be the display copy analyze drew from (views.Source):
    nothing is decoded again."""
    display = views.display_source(image, COMPARE_SIDE)
    size_hw = Size.from_pil(display.full_wh)
    plans, gallery, rows = [], [], []
    for c in family_choices(choice, families):
        try:
            plan = plan_image(size_hw, c.preset)
        except ValueError as exc:  # Qwen2-VL above 200:1: the other families still answer
            preset = c.preset
            rows.append([preset.label, STRATEGY_LABELS[preset.strategy], "—", "—", "—", "—",
                         f"cannot process this image: {exc}"])
            continue
        layout = build_layout(plan)
        plans.append(plan)
        gallery.append((views.overlay(display, plan, layout, COMPARE_SIDE, caption=False),
                        f"{plan.preset.label}: {plan.num_tokens:,} tokens in total, {plan.num_crops} crops"))
        rows.append([plan.preset.label, STRATEGY_LABELS[plan.strategy],
                     f"{plan.grid_rows}x{plan.grid_cols}", str(plan.resized_hw), plan.num_crops,
                     plan.num_tokens, plan.formula])
    return gallery, plots.compare_bars(plans), rows


COMPARE_HEADERS = ["model", "strategy", "grid", "resized to", "crops", "tokens in total", "formula"]
COMPARE_WIDTHS = ["15%", "19%", "6%", "9%", "6%", "8%", "37%"]


# ----------------------------------------------------------------------------- what-if
def whatif_presets(qwen_max_pixels: Any = None, internvl_max_tiles: Any = None,
                   gemma4_max_soft_tokens: Any = None) -> list[Preset]:
    """The family defaults with the what-if budgets applied where they belong (Gemma 4's
    soft-token budget is its own control: a ladder of five values, not a slider)."""
    out = []
    for strategy, repo in FAMILY_DEFAULTS.items():
        preset = get_preset(repo)
        overrides = collect_overrides(preset, max_pixels=qwen_max_pixels, max_tiles=internvl_max_tiles,
                                      max_soft_tokens=gemma4_max_soft_tokens)
        try:
            out.append(preset.with_overrides(**overrides))
        except ValueError:  # e.g. a Qwen2-VL budget below Qwen3-VL's 65,536 px floor
            out.append(preset)
    return out


def whatif(width: Any, height: Any, qwen_max_pixels: Any = None, internvl_max_tiles: Any = None,
           gemma4_max_soft_tokens: Any = None) -> tuple[go.Figure, go.Figure, list[list[Any]]]:
    """Staircases for every family around a (width, height) point, and the counts there."""
    size_hw = Size(_side("height", height), _side("width", width))
    presets = whatif_presets(qwen_max_pixels, internvl_max_tiles, gemma4_max_soft_tokens)
    rows = []
    for preset in presets:
        try:
            plan = plan_image(size_hw, preset)
            rows.append([preset.label, plan.num_tokens, plan.formula])
        except ValueError as exc:  # Qwen above 200:1
            rows.append([preset.label, None, str(exc)])
    return plots.staircase_scale(size_hw, presets), plots.staircase_aspect(size_hw, presets), rows


WHATIF_HEADERS = ["model", "tokens in total", "formula"]


def _side(name: str, value: Any) -> int:
    try:
        number = int(round(float(value)))
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number of pixels, got {value!r}") from None
    if number < 1:
        raise ValueError(f"{name} must be at least 1 pixel, got {number}")
    return number

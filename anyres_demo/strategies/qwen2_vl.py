"""Qwen2-VL / Qwen2.5-VL and Qwen3-VL / Qwen3.5 native dynamic resolution.

Mirrors transformers 5.24 `smart_resize` (Qwen2VLImageProcessor) and the 2x2 PatchMerger order.
Spec section 3; the 2026 spec section 1 for Qwen3-VL / Qwen3.5, which are the same algorithm with
the preset's settings (patch 16, so factor 32, and a 65,536 px floor). Nothing here is specific to
one generation: every number comes from the preset's QwenSettings.
"""
from __future__ import annotations

import math

import numpy as np

from ..geometry import Box, Size
from ..layout import KIND_CODE, Layout
from ..presets import Preset, QwenSettings
from .base import Candidate, ChartSpec, CropSpec, Plan, Series, scale_factor


def check_aspect(size_hw: Size, settings: QwenSettings) -> None:
    h, w = size_hw.hw
    ratio = max(h, w) / min(h, w)
    if ratio > settings.max_aspect_ratio:
        raise ValueError(
            f"aspect ratio {ratio:.1f}:1 of a {w}x{h} image is above {settings.max_aspect_ratio:.0f}:1, "
            "which the Qwen processor rejects (smart_resize raises); crop or pad the image first")


def smart_resize(size_hw: Size, settings: QwenSettings, clamp_rounding: bool = False,
                 min_pixels: int | None = None) -> Size:
    """transformers' smart_resize (banker's rounding to the factor, then the pixel budget).

    clamp_rounding=True gives qwen-vl-utils' variant, which clamps the rounded sides to >= factor
    before the budget checks (spec 3.5: they differ only for a short side <= 14 px); min_pixels
    replaces the settings' floor (qwen-vl-utils' 4096 for Qwen3-VL, 2026 spec 1.8).
    """
    check_aspect(size_hw, settings)
    h, w = size_hw.hw
    f = settings.factor
    floor = settings.min_pixels if min_pixels is None else min_pixels
    h_bar, w_bar = round(h / f) * f, round(w / f) * f
    if clamp_rounding:
        h_bar, w_bar = max(f, h_bar), max(f, w_bar)
    if h_bar * w_bar > settings.max_pixels:
        beta = math.sqrt((h * w) / settings.max_pixels)
        h_bar = max(f, math.floor(h / beta / f) * f)
        w_bar = max(f, math.floor(w / beta / f) * f)
    elif h_bar * w_bar < floor:
        beta = math.sqrt(floor / (h * w))
        h_bar = math.ceil(h * beta / f) * f
        w_bar = math.ceil(w * beta / f) * f
    return Size(h_bar, w_bar)


def _candidates(size_hw: Size, s: QwenSettings, resized: Size) -> tuple[Candidate, ...]:
    f = s.factor
    h_bar, w_bar = round(size_hw.height / f) * f, round(size_hw.width / f) * f
    rounded = Candidate(
        grid_rows=h_bar // f, grid_cols=w_bar // f, canvas_hw=Size(h_bar, w_bar),
        scores={"pixels": h_bar * w_bar, "min_pixels": s.min_pixels, "max_pixels": s.max_pixels},
        chosen=(h_bar, w_bar) == resized.hw,
        note=f"each side rounded to a multiple of {f} (banker's rounding)")
    if rounded.chosen:
        return (rounded,)
    over = h_bar * w_bar > s.max_pixels
    why = (f"{h_bar * w_bar} px is above max_pixels {s.max_pixels}: scaled down, sides floored"
           if over else f"{h_bar * w_bar} px is below min_pixels {s.min_pixels}: scaled up, sides ceiled")
    budget = Candidate(
        grid_rows=resized.height // f, grid_cols=resized.width // f, canvas_hw=resized,
        scores={"pixels": resized.area, "min_pixels": s.min_pixels, "max_pixels": s.max_pixels},
        chosen=True, note=why)
    return (rounded, budget)


def plan(size_hw: Size, preset: Preset) -> Plan:
    s: QwenSettings = preset.settings
    resized = smart_resize(size_hw, s)
    f = s.factor
    rows, cols = resized.height // f, resized.width // f
    crop = CropSpec(0, "image", 0, 0, resized, resized, (0, 0),
                    Box(0, 0, resized.width, resized.height),
                    Box(0, 0, size_hw.width, size_hw.height))
    counts = {"image": rows * cols, "wrapper": 2}
    p = s.patch_size
    formula = (f"({resized.height}/{p}) x ({resized.width}/{p}) / {s.merge_size ** 2} = "
               f"{rows} x {cols} = {rows * cols}, plus 2 wrappers = {rows * cols + 2}")
    return Plan(preset=preset, image_hw=size_hw, grid_rows=rows, grid_cols=cols, canvas_hw=resized,
                resized_hw=resized, paste_yx=(0, 0), crops=(crop,),
                candidates_fn=lambda: _candidates(size_hw, s, resized), tokens_by_kind=counts,
                cell_px=f, cells_per_tile=0, divergences=_divergences(size_hw, s, rows * cols),
                formula=formula)


def _divergences(size_hw: Size, s: QwenSettings, tokens: int) -> tuple[str, ...]:
    utils_min = s.min_pixels if s.utils_min_pixels is None else s.utils_min_pixels
    original = smart_resize(size_hw, s, clamp_rounding=True, min_pixels=utils_min)
    o_tokens = original.area // s.factor ** 2
    if o_tokens == tokens:
        return ()
    if utils_min != s.min_pixels:
        return (f"qwen-vl-utils (the authors' resizing helper) floors images at MIN_PIXELS "
                f"{utils_min:,} and clamps each rounded side to at least {s.factor} px, while "
                f"the checkpoint's processor file sets min_pixels {s.min_pixels:,}: qwen-vl-utils "
                f"would resize to {original.width}x{original.height} ({o_tokens} tokens) instead "
                f"of transformers' {tokens}. A pipeline that resizes with qwen-vl-utils and calls "
                "the processor with do_resize=False gets the former. This explorer follows "
                "transformers.",)
    return (f"qwen-vl-utils clamps each rounded side to at least {s.factor} px; transformers does "
            f"not, so a side of {min(size_hw.hw)} px rounds to 0 and the min_pixels branch rescales "
            f"the image. qwen-vl-utils would resize to {original.width}x{original.height} "
            f"({o_tokens} tokens) instead of transformers' {tokens}. This explorer follows transformers.",)


def layout(plan: Plan) -> Layout:
    """<|vision_start|>, the merged 2x2 blocks row-major over the resized image, <|vision_end|>.

    Separable: each token's box is its row's y-extent times its column's x-extent."""
    rows, cols = plan.grid_rows, plan.grid_cols
    h, w = plan.image_hw.hw
    ys = np.minimum(np.arange(rows + 1) * plan.cell_px * (h / plan.resized_hw.height), h)
    xs = np.minimum(np.arange(cols + 1) * plan.cell_px * (w / plan.resized_hw.width), w)
    box = np.full((rows * cols + 2, 4), np.nan)
    grid = box[1:-1].reshape(rows, cols, 4)
    grid[..., 0], grid[..., 2] = xs[None, :-1], xs[None, 1:]
    grid[..., 1], grid[..., 3] = ys[:-1, None], ys[1:, None]
    n = rows * cols
    kind = np.full(n + 2, KIND_CODE["image"], np.int8)
    kind[[0, -1]] = KIND_CODE["wrapper"]
    crop = np.zeros(n + 2, np.int16)
    crop[[0, -1]] = -1
    row = np.concatenate([[-1], np.repeat(np.arange(rows), cols), [-1]]).astype(np.int32)
    col = np.concatenate([[-1], np.tile(np.arange(cols), rows), [-1]]).astype(np.int32)
    return Layout(plan=plan, kind=kind, crop=crop, row=row, col=col, box=box)


def count_many(h: np.ndarray, w: np.ndarray, preset: Preset, original: bool = False) -> np.ndarray:
    """Vectorized placeholder counts; original=True: qwen-vl-utils' clamped rounding."""
    s: QwenSettings = preset.settings
    f = s.factor
    valid = (h >= 1) & (w >= 1)
    h = np.where(valid, h, 1).astype(np.int64)
    w = np.where(valid, w, 1).astype(np.int64)
    valid &= (np.maximum(h, w) / np.minimum(h, w)) <= s.max_aspect_ratio
    h_bar = np.rint(h / f).astype(np.int64) * f
    w_bar = np.rint(w / f).astype(np.int64) * f
    if original:
        h_bar, w_bar = np.maximum(h_bar, f), np.maximum(w_bar, f)
    over = h_bar * w_bar > s.max_pixels
    under = ~over & (h_bar * w_bar < s.min_pixels)
    beta_o = np.sqrt((h * w) / s.max_pixels)
    beta_u = np.sqrt(s.min_pixels / (h * w))
    h_o = np.maximum(f, np.floor(h / beta_o / f).astype(np.int64) * f)
    w_o = np.maximum(f, np.floor(w / beta_o / f).astype(np.int64) * f)
    h_u = np.ceil(h * beta_u / f).astype(np.int64) * f
    w_u = np.ceil(w * beta_u / f).astype(np.int64) * f
    h_bar = np.where(over, h_o, np.where(under, h_u, h_bar))
    w_bar = np.where(over, w_o, np.where(under, w_u, w_bar))
    return np.where(valid, (h_bar // f) * (w_bar // f), -1)


def original_count_many(h: np.ndarray, w: np.ndarray, preset: Preset) -> np.ndarray:
    """qwen-vl-utils' counts, vectorized (the divergence notes' reference)."""
    return count_many(h, w, preset, original=True)


# ----------------------------------------------------------------------------- words and charts
def ledger_how(plan: Plan, kind: str) -> str:
    s = plan.preset.settings
    if kind == "wrapper":
        return f"{plan.preset.wrapper_tokens[0]} and {plan.preset.wrapper_tokens[1]} around the patches"
    rh, rw = plan.resized_hw.hw
    return (f"resized to {rw}x{rh}: {rh // s.patch_size}x{rw // s.patch_size} patches of "
            f"{s.patch_size} px, merged {s.merge_size}x{s.merge_size} -> {plan.grid_rows}x{plan.grid_cols}")


def why_summary(plan: Plan) -> str:
    s = plan.preset.settings
    return (f"{plan.preset.label} has no list of grids: it rounds each side to a multiple of "
            f"{s.factor} and, if the result is outside [min_pixels {s.min_pixels:,}, max_pixels "
            f"{s.max_pixels:,}], rescales keeping the aspect ratio. Result: **{plan.resized_hw}** = "
            f"{plan.grid_rows}x{plan.grid_cols} tokens.")


def resize_note(plan: Plan) -> str:
    factor, _ = scale_factor(plan.image_hw, plan.resized_hw)
    return (f"{plan.image_hw} resized {factor} to {plan.resized_hw} (sides multiples of "
            f"{plan.cell_px}) -> {plan.grid_rows}x{plan.grid_cols} tokens of {plan.cell_px}x"
            f"{plan.cell_px} px.")


def candidates_chart(plan: Plan) -> ChartSpec:
    s = plan.preset.settings
    cands = plan.candidates
    labels = tuple(("side rounding" if i == 0 else "budget rescale") + (" ✓" if c.chosen else "")
                   for i, c in enumerate(cands))
    return ChartSpec(f"Why this size: round to multiples of {s.factor}, then keep within the budget",
                     "", "pixels (log scale)", labels,
                     (Series("pixels after resize", tuple(float(c.scores["pixels"]) for c in cands),
                             "#009e73"),),
                     hlines=((s.min_pixels, "min_pixels"), (s.max_pixels, "max_pixels")), log_y=True,
                     chosen=next(i for i, c in enumerate(cands) if c.chosen))

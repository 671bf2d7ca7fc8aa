"""Pixtral and Mistral Small 3.1 (Mistral3): native resolution with an [IMG_BREAK] after every row.

Mirrors transformers 5.24 `get_resize_output_image_size` (PixtralImageProcessor, called by
PixtralProcessor with patch = patch_size * spatial_merge_size) and `replace_image_token`:
  1. ratio = max(h / L, w / L) with L = longest_edge; if ratio > 1 both sides are divided by it
     and floored (never scaled up);
  2. each side is rounded UP to a multiple of P = patch * merge and the image is resized (bicubic,
     no padding) to that H x W;
  3. the prompt holds, for each of the H/P rows, W/P [IMG] tokens and an [IMG_BREAK]; the very
     last [IMG_BREAK] is an [IMG_END] instead.
Pixtral-12B's vision model flattens its 16 px patch grid row-major; Mistral3's patch merger
unfolds 2x2 blocks of 14 px patches row-major. Either way [IMG] k is cell divmod(k, W/P).
2026 spec section 6.
"""
from __future__ import annotations

import math

import numpy as np

from ..geometry import Box, Size
from ..layout import KIND_CODE, Layout
from ..presets import PixtralSettings, Preset
from .base import Candidate, ChartSpec, CropSpec, Plan, Series, scale_factor

# Image heights transformers' counting helper misreads as a channel axis (2026 spec 6.7).
HELPER_MISREAD_HEIGHTS = (1, 3)


def fit_longest_edge(size_hw: Size, s: PixtralSettings) -> Size:
    """Step 1: scale down (floor) so that neither side exceeds longest_edge; never up."""
    h, w = size_hw.hw
    ratio = max(h / s.longest_edge, w / s.longest_edge)
    if ratio > 1:
        return Size(int(math.floor(h / ratio)), int(math.floor(w / ratio)))
    return size_hw


def resize_hw(size_hw: Size, s: PixtralSettings) -> Size:
    """Steps 1 and 2: the H x W the processor resizes to (multiples of patch * merge). Raises
    ValueError where step 1 floors the short side to 0 px (aspect ratio above longest_edge:1),
    which the processor rejects (it cannot resize to a height or width of 0)."""
    fitted = fit_longest_edge(size_hw, s)
    if min(fitted.hw) < 1:
        raise ValueError(
            f"a {size_hw.width}x{size_hw.height} image scaled to fit the longest edge "
            f"({s.longest_edge} px) keeps 0 px on its short side, which the Pixtral processor "
            f"rejects (aspect ratio {max(size_hw.hw) / min(size_hw.hw):.0f}:1 is above "
            f"{s.longest_edge}:1); crop or pad the image first")
    p = s.token_px
    return Size(math.ceil(fitted.height / p) * p, math.ceil(fitted.width / p) * p)


def _candidates(size_hw: Size, s: PixtralSettings, fitted: Size, resized: Size) -> tuple[Candidate, ...]:
    p, edge = s.token_px, s.longest_edge
    longest = max(size_hw.hw)
    as_is = Size(math.ceil(size_hw.height / p) * p, math.ceil(size_hw.width / p) * p)
    first = Candidate(
        grid_rows=as_is.height // p, grid_cols=as_is.width // p, canvas_hw=as_is,
        scores={"longest_side": longest, "longest_edge": edge},
        chosen=as_is == resized,
        note=(f"longest side {longest} px fits within longest_edge {edge}: kept, each side rounded "
              f"up to a multiple of {p}" if as_is == resized else
              f"longest side {longest} px is above longest_edge {edge}: too big"))
    if first.chosen:
        return (first,)
    scaled = Candidate(
        grid_rows=resized.height // p, grid_cols=resized.width // p, canvas_hw=resized,
        scores={"longest_side": max(fitted.hw), "longest_edge": edge}, chosen=True,
        note=(f"scaled down by {longest / edge:.3f} to {fitted.width}x{fitted.height} (floored), "
              f"then each side rounded up to a multiple of {p}"))
    return (first, scaled)


def plan(size_hw: Size, preset: Preset) -> Plan:
    s: PixtralSettings = preset.settings
    resized = resize_hw(size_hw, s)
    fitted = fit_longest_edge(size_hw, s)
    p = s.token_px
    rows, cols = resized.height // p, resized.width // p
    crop = CropSpec(0, "image", 0, 0, resized, resized, (0, 0),
                    Box(0, 0, resized.width, resized.height),
                    Box(0, 0, size_hw.width, size_hw.height))
    counts = {"patch": rows * cols, "img_break": rows - 1, "img_end": 1}
    formula = (f"({resized.height}/{p}) x ({resized.width}/{p}) = {rows} x {cols} = {rows * cols} [IMG], "
               f"plus {rows - 1} [IMG_BREAK] and 1 [IMG_END] = {rows * (cols + 1)}")
    return Plan(preset=preset, image_hw=size_hw, grid_rows=rows, grid_cols=cols, canvas_hw=resized,
                resized_hw=resized, paste_yx=(0, 0), crops=(crop,),
                candidates_fn=lambda: _candidates(size_hw, s, fitted, resized),
                tokens_by_kind=counts, cell_px=p, cells_per_tile=0,
                divergences=_divergences(size_hw, s, rows * (cols + 1)), formula=formula)


def helper_total(size_hw: Size, s: PixtralSettings) -> int:
    """What transformers' `PixtralProcessor._get_num_multimodal_tokens` returns: it builds an
    (h, w, 3) array and `get_image_size` reads a leading 1 or 3 as channels, i.e. a (w x 3)
    image. The processor itself is right; this only explains the disagreement."""
    h, w = size_hw.hw
    if h in HELPER_MISREAD_HEIGHTS:
        h, w = w, 3
    r = resize_hw(Size(h, w), s)
    return (r.height // s.token_px) * (r.width // s.token_px + 1)


def _divergences(size_hw: Size, s: PixtralSettings, total: int) -> tuple[str, ...]:
    notes = []
    if total == 2 and s.merge_size > 1:  # one [IMG] + [IMG_END]
        notes.append("transformers 5.24's Mistral3 model cannot run an image of a single [IMG] "
                     "token: `get_image_features` squeezes the one feature row away and "
                     "`torch.split` fails (the processor itself accepts it). Seen with the tiny "
                     "test model; the counts here are the processor's.")
    helper = helper_total(size_hw, s)
    if helper == total:
        return tuple(notes)
    return tuple(notes) + (f"transformers' counting helper (`_get_num_multimodal_tokens`) reads an image "
            f"{size_hw.height} px high as channels-first and reports {helper} tokens; the "
            f"processor itself produces {total}. This explorer follows the processor.",)


def layout(plan: Plan) -> Layout:
    """Row by row: W/P [IMG] tokens, then [IMG_BREAK] ([IMG_END] after the last row)."""
    rows, cols = plan.grid_rows, plan.grid_cols
    h, w = plan.image_hw.hw
    ys = np.minimum(np.arange(rows + 1) * plan.cell_px * (h / plan.resized_hw.height), h)
    xs = np.minimum(np.arange(cols + 1) * plan.cell_px * (w / plan.resized_hw.width), w)
    n = rows * (cols + 1)
    box = np.full((rows, cols + 1, 4), np.nan)
    box[:, :cols, 0], box[:, :cols, 2] = xs[None, :-1], xs[None, 1:]
    box[:, :cols, 1], box[:, :cols, 3] = ys[:-1, None], ys[1:, None]
    kind = np.full((rows, cols + 1), KIND_CODE["patch"], np.int8)
    kind[:, cols] = KIND_CODE["img_break"]
    kind[-1, cols] = KIND_CODE["img_end"]
    row = np.repeat(np.arange(rows, dtype=np.int32), cols + 1)
    col = np.tile(np.arange(cols + 1, dtype=np.int32), rows)
    col[cols::cols + 1] = -1  # row ends: the row they end, no column
    crop = np.zeros(n, np.int16)  # every token, the row ends included, belongs to the one view
    return Layout(plan=plan, kind=kind.reshape(n), crop=crop, row=row, col=col,
                  box=box.reshape(n, 4))


def _resized_many(h: np.ndarray, w: np.ndarray, s: PixtralSettings) -> tuple[np.ndarray, np.ndarray]:
    """Vectorized resize_hw: the same float64 operations, so the same floors."""
    hf, wf = h.astype(np.float64), w.astype(np.float64)
    ratio = np.maximum(hf / s.longest_edge, wf / s.longest_edge)
    scale = ratio > 1
    safe = np.where(scale, ratio, 1.0)
    h1 = np.where(scale, np.floor(hf / safe), hf).astype(np.int64)
    w1 = np.where(scale, np.floor(wf / safe), wf).astype(np.int64)
    p = s.token_px
    return -(-h1 // p), -(-w1 // p)  # rows, cols (ceil division)


def _grid_many(h, w, preset: Preset) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    h, w = np.asarray(h), np.asarray(w)
    valid = (h >= 1) & (w >= 1)
    rows, cols = _resized_many(np.where(valid, h, 1), np.where(valid, w, 1), preset.settings)
    return rows, cols, valid & (rows >= 1) & (cols >= 1)  # a side floored to 0: rejected


def count_many(h: np.ndarray, w: np.ndarray, preset: Preset) -> np.ndarray:
    """[IMG] placeholders per size; -1 where the processor rejects the size."""
    rows, cols, valid = _grid_many(h, w, preset)
    return np.where(valid, rows * cols, -1)


def count_many_total(h: np.ndarray, w: np.ndarray, preset: Preset) -> np.ndarray:
    """[IMG] + [IMG_BREAK] + [IMG_END] per size: rows * (cols + 1); -1 where rejected."""
    rows, cols, valid = _grid_many(h, w, preset)
    return np.where(valid, rows * (cols + 1), -1)


# ----------------------------------------------------------------------------- words and charts
def ledger_how(plan: Plan, kind: str) -> str:
    s: PixtralSettings = plan.preset.settings
    rh, rw = plan.resized_hw.hw
    if kind == "img_break":
        return f"one after each of the first {plan.grid_rows - 1} rows of [IMG] tokens"
    if kind == "img_end":
        return "replaces the last row's [IMG_BREAK]"
    merge = (f"{s.patch_size} px patches merged {s.merge_size}x{s.merge_size} -> "
             if s.merge_size > 1 else f"{s.patch_size} px patches, one token each: ")
    return f"resized to {rw}x{rh}: {merge}{plan.grid_rows}x{plan.grid_cols} tokens of {s.token_px} px"


def why_summary(plan: Plan) -> str:
    s: PixtralSettings = plan.preset.settings
    scaled = fit_longest_edge(plan.image_hw, s) != plan.image_hw
    step = (f"its longer side is above longest_edge {s.longest_edge}, so it is scaled down "
            "(sides floored)" if scaled else
            f"it fits within longest_edge {s.longest_edge}, so it keeps its size (never upscaled)")
    return (f"{plan.preset.label} works at native resolution: {step}, then each side is rounded "
            f"up to a multiple of {s.token_px}. Result: **{plan.resized_hw}** = {plan.grid_rows} rows "
            f"of {plan.grid_cols} [IMG] tokens, each row closed by [IMG_BREAK] (the last by [IMG_END]).")


def resize_note(plan: Plan) -> str:
    factor, _ = scale_factor(plan.image_hw, plan.resized_hw, tolerance_px=plan.cell_px)
    return (f"{plan.image_hw} resized {factor} to {plan.resized_hw} "
            f"(sides multiples of {plan.cell_px}) -> {plan.grid_rows} rows x {plan.grid_cols} [IMG] "
            f"+ {plan.grid_rows} row ends.")


def candidates_chart(plan: Plan) -> ChartSpec:
    s: PixtralSettings = plan.preset.settings
    cands = plan.candidates
    labels = tuple(("as is, rounded up" if i == 0 else "scaled to longest_edge") + (" ✓" if c.chosen else "")
                   for i, c in enumerate(cands))
    return ChartSpec(f"Why this size: fit the longest edge ({s.longest_edge} px), round up to {s.token_px}",
                     "", "longest side (px)", labels,
                     (Series("longest side after resize", tuple(float(max(c.canvas_hw.hw)) for c in cands),
                             "#882255"),),
                     hlines=((s.longest_edge, "longest_edge"),),
                     chosen=next(i for i, c in enumerate(cands) if c.chosen))

"""Gemma 4: one aspect-preserving resize to a soft-token budget, sides floored to 48 px.

Mirrors transformers 5.24 `get_aspect_ratio_preserving_size` (image_processing_gemma4.py; the
processor holds an identical copy), `replace_image_token` (`<|image>` + N x `<|image|>` +
`<image|>`) and `Gemma4VisionPooler._avg_pool_by_positions` (3x3 blocks of 16-px patches,
row-major). Spec section 3.

The budget B (70, 140, 280, 560, 1120 soft tokens) is an upper bound: the ideal size that would
hold exactly 9B patches is floored to multiples of 48 on each side, so N = (H/48)(W/48) is
almost always below B (a square gets 256 of 280). Images smaller than the budget are
upscaled (1x1 becomes 768x768 at B = 280).
"""
from __future__ import annotations

import math

import numpy as np

from ..geometry import Box, Size
from ..layout import KIND_CODE, Layout
from ..presets import GEMMA_SOFT_TOKEN_BUDGETS, Gemma4Settings, Preset
from .base import Candidate, ChartSpec, CropSpec, Plan, Series, scale_factor



def ideal_size(size_hw: Size, s: Gemma4Settings) -> tuple[float, float]:
    """The (height, width) that would hold exactly max_patches patches at the image's aspect."""
    h, w = size_hw.hw
    factor = math.sqrt(s.max_patches * s.patch_size ** 2 / (h * w))
    return factor * h, factor * w


def target_size(size_hw: Size, s: Gemma4Settings) -> Size:
    """get_aspect_ratio_preserving_size: floor both ideal sides to multiples of 48; a side that
    floors to 0 becomes 48 and the other floor(long/short) x 48, capped at B x 48."""
    h, w = size_hw.hw
    m = s.cell_size
    ideal_h, ideal_w = ideal_size(size_hw, s)
    th, tw = int(math.floor(ideal_h / m)) * m, int(math.floor(ideal_w / m)) * m
    if th == 0 and tw == 0:
        raise ValueError(f"a {w}x{h} image would resize to 0x0 at {s.max_soft_tokens} soft tokens")
    cap = (s.max_patches // s.pooling_kernel_size ** 2) * m
    if th == 0:
        th, tw = m, min(int(math.floor(w / h)) * m, cap)
    elif tw == 0:
        th, tw = min(int(math.floor(h / w)) * m, cap), m
    if th * tw > s.max_patches * s.patch_size ** 2:
        raise ValueError(f"resizing {w}x{h} to {tw}x{th} exceeds {s.max_patches} patches")
    return Size(th, tw)


def _candidates(size_hw: Size, s: Gemma4Settings, target: Size) -> tuple[Candidate, ...]:
    """The rounding steps for this budget, then the same image under every other budget."""
    m = s.cell_size
    ideal_h, ideal_w = ideal_size(size_hw, s)
    ideal = Size(max(1, round(ideal_h)), max(1, round(ideal_w)))
    floored = Size(int(math.floor(ideal_h / m)) * m, int(math.floor(ideal_w / m)) * m)
    rows = [Candidate(0, 0, ideal, {"tokens": s.max_soft_tokens, "ideal_h": ideal_h, "ideal_w": ideal_w,
                                    "budget": s.max_soft_tokens},
                      note=f"the size that would fill the budget exactly "
                           f"({ideal_w:.1f} x {ideal_h:.1f} px); sides must be multiples of {m}")]
    floored_tokens = (floored.height // m) * (floored.width // m)
    rows.append(Candidate(floored.height // m, floored.width // m, floored,
                          {"tokens": floored_tokens, "budget": s.max_soft_tokens},
                          chosen=floored == target,
                          note=f"each side floored to a multiple of {m}: {floored_tokens} of "
                               f"{s.max_soft_tokens} tokens used"))
    if floored != target:
        tokens = (target.height // m) * (target.width // m)
        rows.append(Candidate(target.height // m, target.width // m, target,
                              {"tokens": tokens, "budget": s.max_soft_tokens}, chosen=True,
                              note=f"a side floored to 0: set to {m} px, the other to "
                                   f"floor(long/short) x {m} (at most {s.max_soft_tokens} x {m})"))
    for budget in GEMMA_SOFT_TOKEN_BUDGETS:
        if budget == s.max_soft_tokens:
            continue
        other = target_size(size_hw, Gemma4Settings(s.patch_size, s.pooling_kernel_size, budget))
        tokens = (other.height // m) * (other.width // m)
        rows.append(Candidate(other.height // m, other.width // m, other,
                              {"tokens": tokens, "budget": budget},
                              note=f"budget {budget}: {tokens} tokens"))
    return tuple(rows)


def plan(size_hw: Size, preset: Preset) -> Plan:
    s: Gemma4Settings = preset.settings
    target = target_size(size_hw, s)
    m = s.cell_size
    rows, cols = target.height // m, target.width // m
    crop = CropSpec(0, "image", 0, 0, target, target, (0, 0), Box(0, 0, target.width, target.height),
                    Box(0, 0, size_hw.width, size_hw.height))
    n = rows * cols
    formula = (f"({target.height}/{m}) x ({target.width}/{m}) = {rows} x {cols} = {n} soft tokens "
               f"(budget {s.max_soft_tokens}, {s.max_soft_tokens - n} unused), plus 2 markers = {n + 2}")
    return Plan(preset=preset, image_hw=size_hw, grid_rows=rows, grid_cols=cols, canvas_hw=target,
                resized_hw=target, paste_yx=(0, 0), crops=(crop,),
                candidates_fn=lambda: _candidates(size_hw, s, target),
                tokens_by_kind={"pooled": n, "wrapper": 2}, cell_px=m, cells_per_tile=0,
                divergences=(), formula=formula)


def layout(plan: Plan) -> Layout:
    """`<|image>`, the 48x48 blocks row-major over the resized image, `<image|>`."""
    rows, cols = plan.grid_rows, plan.grid_cols
    h, w = plan.image_hw.hw
    ys = np.minimum(np.arange(rows + 1) * plan.cell_px * (h / plan.resized_hw.height), h)
    xs = np.minimum(np.arange(cols + 1) * plan.cell_px * (w / plan.resized_hw.width), w)
    n = rows * cols
    box = np.full((n + 2, 4), np.nan)
    grid = box[1:-1].reshape(rows, cols, 4)
    grid[..., 0], grid[..., 2] = xs[None, :-1], xs[None, 1:]
    grid[..., 1], grid[..., 3] = ys[:-1, None], ys[1:, None]
    kind = np.full(n + 2, KIND_CODE["pooled"], np.int8)
    kind[[0, -1]] = KIND_CODE["wrapper"]
    crop = np.zeros(n + 2, np.int16)
    crop[[0, -1]] = -1
    row = np.concatenate([[-1], np.repeat(np.arange(rows), cols), [-1]]).astype(np.int32)
    col = np.concatenate([[-1], np.tile(np.arange(cols), rows), [-1]]).astype(np.int32)
    return Layout(plan=plan, kind=kind, crop=crop, row=row, col=col, box=box)


def target_many(h: np.ndarray, w: np.ndarray, s: Gemma4Settings) -> tuple[np.ndarray, np.ndarray]:
    """target_size for many sizes (same float operations, so the same floors)."""
    h = np.asarray(h, dtype=np.int64)
    w = np.asarray(w, dtype=np.int64)
    m = s.cell_size
    factor = np.sqrt(s.max_patches * s.patch_size ** 2 / (h * w))
    th = np.floor(factor * h / m).astype(np.int64) * m
    tw = np.floor(factor * w / m).astype(np.int64) * m
    cap = (s.max_patches // s.pooling_kernel_size ** 2) * m
    thin_h, thin_w = th == 0, (tw == 0) & (th != 0)
    tw = np.where(thin_h, np.minimum(np.floor(w / h).astype(np.int64) * m, cap), tw)
    th = np.where(thin_h, m, th)
    th = np.where(thin_w, np.minimum(np.floor(h / w).astype(np.int64) * m, cap), th)
    tw = np.where(thin_w, m, tw)
    return th, tw


def count_many(h: np.ndarray, w: np.ndarray, preset: Preset) -> np.ndarray:
    """Soft tokens (H/48)(W/48); -1 for a side below 1 px."""
    s: Gemma4Settings = preset.settings
    h = np.asarray(h, dtype=np.int64)
    w = np.asarray(w, dtype=np.int64)
    valid = (h >= 1) & (w >= 1)
    th, tw = target_many(np.where(valid, h, 1), np.where(valid, w, 1), s)
    return np.where(valid, (th // s.cell_size) * (tw // s.cell_size), -1)


# ---------------------------------------------------------------- words and charts
def ledger_how(plan: Plan, kind: str) -> str:
    s: Gemma4Settings = plan.preset.settings
    if kind == "wrapper":
        return f"{plan.preset.wrapper_tokens[0]} and {plan.preset.wrapper_tokens[1]} around the soft tokens"
    rh, rw = plan.resized_hw.hw
    return (f"resized to {rw}x{rh}: {rh // s.patch_size}x{rw // s.patch_size} patches of {s.patch_size} px, "
            f"pooled {s.pooling_kernel_size}x{s.pooling_kernel_size} -> {plan.grid_rows}x{plan.grid_cols} "
            f"(budget {s.max_soft_tokens}, {s.max_soft_tokens - plan.num_image_tokens} unused)")


def _scale_words(plan: Plan) -> str:
    (h, w), (rh, rw) = plan.image_hw.hw, plan.resized_hw.hw
    f = math.sqrt(rh * rw / (h * w))
    return "upscaled" if f > 1 else "downscaled" if f < 1 else "kept"


def why_summary(plan: Plan) -> str:
    s: Gemma4Settings = plan.preset.settings
    ideal_h, ideal_w = ideal_size(plan.image_hw, s)
    n = plan.num_image_tokens
    small = (" The image is smaller than the budget, so it is **upscaled**."
             if _scale_words(plan) == "upscaled" else "")
    unused = (f" ({s.max_soft_tokens - n} unused: the floor almost never fills a budget exactly)"
              if n < s.max_soft_tokens else " (this thin image happens to fill it)")
    thin = ("; one side floored to 0, so it became 48 px and the other floor(long/short) x 48 "
            f"(at most {s.max_soft_tokens} x 48)" if min(ideal_h, ideal_w) < s.cell_size else "")
    return (f"{plan.preset.label} keeps the aspect ratio and scales the image to the size that "
            f"would hold exactly {s.max_soft_tokens} tokens ({ideal_w:.1f} x {ideal_h:.1f} px), then "
            f"floors each side to a multiple of {s.cell_size} px{thin}: **{plan.resized_hw}** = "
            f"{plan.grid_rows}x{plan.grid_cols} = **{n} of {s.max_soft_tokens}** tokens{unused}.{small}")


def resize_note(plan: Plan) -> str:
    factor, _ = scale_factor(plan.image_hw, plan.resized_hw, tolerance_px=plan.cell_px)
    return (f"{plan.image_hw} {_scale_words(plan)} {factor} to {plan.resized_hw} (sides floored to "
            f"multiples of {plan.cell_px}) -> {plan.grid_rows}x{plan.grid_cols} = "
            f"{plan.num_image_tokens} soft tokens of {plan.cell_px}x{plan.cell_px} px.")


def candidates_chart(plan: Plan) -> ChartSpec:
    s: Gemma4Settings = plan.preset.settings
    cands = plan.candidates
    labels = tuple((c.note.split(":")[0] if c.note.startswith("budget") else
                    ("fill exactly", "floor to 48 px", "thin-image fix")[i]) + (" ✓" if c.chosen else "")
                   for i, c in enumerate(cands))
    return ChartSpec(f"Why this size: fill the budget ({s.max_soft_tokens}), floor to {s.cell_size} px; "
                     "other budgets for comparison", "", "soft tokens", labels,
                     (Series("soft tokens", tuple(float(c.scores["tokens"]) for c in cands),
                             tuple("#4285f4" if c.chosen else "#999999" for c in cands)),),
                     hlines=((float(s.max_soft_tokens), f"budget {s.max_soft_tokens}"),),
                     chosen=next(i for i, c in enumerate(cands) if c.chosen))


TEACHING = {
    "grid": ("**Gemma 4** keeps the aspect ratio and resizes the image to a **soft-token budget** "
             "(70, 140, 280, 560 or 1120; 280 as released). Each token is a 48x48 px block (3x3 "
             "patches of 16 px, average-pooled). Both sides are floored to multiples of 48, so the "
             "budget is almost never filled exactly, and small images are **upscaled**."),
    "crops": ("One image, resized (up or down) so both sides are multiples of 48 px; pixels are only "
              "rescaled to [0, 1], no mean/std normalisation."),
    "whatif": ("Gemma 4's budget is its own control: the same image at 70 ... 1120 tokens. The "
               "steps come from the 48 px floor on each side."),
}


def teaching(view: str) -> str | None:
    return TEACHING.get(view)

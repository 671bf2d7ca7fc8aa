"""Llama 3.2 Vision (mllama), the cross-attention contrast: tiles, but one prompt token.

Mirrors transformers 5.24 MllamaImageProcessor (`get_all_supported_aspect_ratios`,
`get_optimal_tiled_canvas`, `get_image_size_fit_to_canvas`, `pad`, `split_to_tiles`) and
MllamaProcessor, which inserts no expansion: the prompt keeps ONE `<|image|>` per image.
2026 spec section 5.8.

The up-to-4 tiles of 560 px go through the vision tower to tiles x 1601 states, and text tokens
reach them only through the cross-attention layers; no visual token sits in the sequence.
"""
from __future__ import annotations

import functools
import math

import numpy as np

from ..geometry import Box, Size
from ..layout import KIND_CODE, Layout
from ..presets import MllamaSettings, Preset
from .base import Candidate, CropSpec, Plan



@functools.lru_cache(maxsize=16)
def arrangements(max_tiles: int) -> tuple[tuple[int, int], ...]:
    """(rows, cols) in `get_all_supported_aspect_ratios` order (its first element is used as the
    row count); aspect_ratio_ids are 1-based positions in this list."""
    return tuple((a, b) for a in range(1, max_tiles + 1) for b in range(1, max_tiles + 1)
                 if a * b <= max_tiles)


def _scales(size_hw: Size, s: MllamaSettings) -> list[float]:
    h, w = size_hw.hw
    t = s.tile_size
    return [min(c * t / w, r * t / h) for r, c in arrangements(s.max_tiles)]


def optimal_canvas(size_hw: Size, s: MllamaSettings, scales=None) -> int:
    """Index into `arrangements`: the smallest scale >= 1, else the largest below 1; ties by the
    smallest area, first in list order (`get_optimal_tiled_canvas`)."""
    scales = scales or _scales(size_hw, s)
    up = [x for x in scales if x >= 1]
    chosen = min(up) if up else max(scales)
    ties = [i for i, x in enumerate(scales) if x == chosen]
    arr = arrangements(s.max_tiles)
    return min(ties, key=lambda i: arr[i][0] * arr[i][1])


def fit_to_canvas(size_hw: Size, canvas: Size, tile: int) -> Size:
    """`get_image_size_fit_to_canvas`: target sides clipped to [tile, canvas], aspect kept,
    floored, at least 1."""
    h, w = size_hw.hw
    tw, th = min(max(w, tile), canvas.width), min(max(h, tile), canvas.height)
    scale_h, scale_w = th / h, tw / w
    if scale_w < scale_h:
        return Size(min(math.floor(h * scale_w) or 1, th), tw)
    return Size(th, min(math.floor(w * scale_h) or 1, tw))


def _candidates(size_hw: Size, s: MllamaSettings, scales, chosen: int) -> tuple[Candidate, ...]:
    t = s.tile_size
    return tuple(
        Candidate(r, c, Size(r * t, c * t), {"scale": x, "tiles": r * c, "aspect_ratio_id": i + 1},
                  i == chosen, ("chosen: " + ("smallest upscale" if x >= 1 else "least downscale")
                                + ", then smallest canvas") if i == chosen else "")
        for i, ((r, c), x) in enumerate(zip(arrangements(s.max_tiles), scales)))


def plan(size_hw: Size, preset: Preset) -> Plan:
    s: MllamaSettings = preset.settings
    scales = _scales(size_hw, s)
    chosen = optimal_canvas(size_hw, s, scales)
    rows, cols = arrangements(s.max_tiles)[chosen]
    t, (h, w) = s.tile_size, size_hw.hw
    canvas = Size(rows * t, cols * t)
    resized = fit_to_canvas(size_hw, canvas, t)
    sx, sy = w / resized.width, h / resized.height
    crops = []
    for k in range(rows * cols):
        r, c = divmod(k, cols)
        window = Box(c * t, r * t, (c + 1) * t, (r + 1) * t)
        crops.append(CropSpec(k, "tile", r, c, resized, canvas, (0, 0), window,
                              window.scale(sx, sy).clip(size_hw)))
    states = rows * cols * s.states_per_tile
    formula = (f"1 <|image|> in the prompt; cross-attention reads {rows * cols} tiles x "
               f"{s.states_per_tile} vision states = {states} (not in the sequence)")
    return Plan(preset=preset, image_hw=size_hw, grid_rows=rows, grid_cols=cols, canvas_hw=canvas,
                resized_hw=resized, paste_yx=(0, 0), crops=tuple(crops),
                candidates_fn=lambda: _candidates(size_hw, s, scales, chosen),
                tokens_by_kind={"cross_image": 1}, cell_px=s.patch_size,
                cells_per_tile=s.patches_per_side, formula=formula)


def aspect_ratio_id(plan: Plan) -> int:
    """The processor's aspect_ratio_ids value for this plan (1-based)."""
    return arrangements(plan.preset.settings.max_tiles).index((plan.grid_rows, plan.grid_cols)) + 1


def layout(plan: Plan) -> Layout:
    """The single <|image|> token; its box is the whole image (it stands for every tile)."""
    h, w = plan.image_hw.hw
    return Layout(plan=plan, kind=np.array([KIND_CODE["cross_image"]], np.int8),
                  crop=np.zeros(1, np.int16), row=np.zeros(1, np.int32),
                  col=np.zeros(1, np.int32), box=np.array([[0.0, 0.0, w, h]]))


def count_many(h: np.ndarray, w: np.ndarray, preset: Preset) -> np.ndarray:
    h, w = np.asarray(h), np.asarray(w)
    return np.where((h >= 1) & (w >= 1), 1, -1)


def count_many_total(h: np.ndarray, w: np.ndarray, preset: Preset) -> np.ndarray:
    return count_many(h, w, preset)


def tiles_many(h: np.ndarray, w: np.ndarray, preset: Preset) -> np.ndarray:
    """Vectorized tile count (for sweeps of the cross-attention cost)."""
    s: MllamaSettings = preset.settings
    shape = np.shape(h)
    h = np.maximum(np.ravel(h), 1).astype(np.float64)
    w = np.maximum(np.ravel(w), 1).astype(np.float64)
    arr = np.array(arrangements(s.max_tiles), dtype=np.float64)
    t = s.tile_size
    scales = np.minimum(arr[None, :, 1] * t / w[:, None], arr[None, :, 0] * t / h[:, None])
    up = scales >= 1
    chosen = np.where(up.any(1), np.where(up, scales, np.inf).min(1),
                      np.where(up, -np.inf, scales).max(1))
    area = arr[:, 0] * arr[:, 1]
    best = np.argmin(np.where(scales == chosen[:, None], area[None, :], np.inf), axis=1)
    return area[best].astype(np.int64).reshape(shape)


def why_summary(plan: Plan) -> str:
    s: MllamaSettings = plan.preset.settings
    return (f"Of the {len(arrangements(s.max_tiles))} arrangements of up to {s.max_tiles} tiles of "
            f"{s.tile_size} px, **{plan.grid_rows} x {plan.grid_cols}** needs the least scaling; "
            f"the image is resized to {plan.resized_hw} and padded right and bottom. The prompt "
            f"still holds **one** `<|image|>` token: the {plan.num_crops} tiles x "
            f"{s.states_per_tile} vision states reach the text only through cross-attention.")


def resize_note(plan: Plan) -> str:
    return (f"Resized (bilinear, aspect kept) to {plan.resized_hw} and padded at the right and "
            f"bottom to the {plan.canvas_hw} canvas; pixel_values always holds "
            f"{plan.preset.settings.max_tiles} tile slots (unused ones are zeros).")


def ledger_how(plan: Plan, kind: str) -> str:
    s: MllamaSettings = plan.preset.settings
    if kind != "cross_image":
        return ""
    return (f"one per image, whatever its size; cross-attention reads {plan.num_crops} tiles x "
            f"({s.patches_per_side}^2 + 1 CLS) = {plan.num_crops * s.states_per_tile} states")


TEACHING = {
    "grid": ("Up to 4 tiles of 560 px; the arrangement needing the least scaling wins, the image is "
             "padded right and bottom."),
    "crops": ("The tiles the vision tower sees; pixel_values always holds 4 tile slots, unused ones "
              "are zeros (the aspect-ratio mask tells the model which are real)."),
    "token_map": ("There is one <|image|> token in the prompt, whatever the size: the text reads the "
                  "tiles through cross-attention layers, so no cell of the map is a visual token of "
                  "its own."),
    "ledger": ("The context holds 1 image token, but every cross-attention layer attends over "
               "tiles x 1601 vision states: cheap in tokens, not in compute."),
}


def teaching(view: str) -> str | None:
    return TEACHING.get(view)

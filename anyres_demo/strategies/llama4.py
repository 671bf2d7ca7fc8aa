"""Llama 4: 336 px tiles on a best-fit canvas, content top-left, a global tile when tiled.

Mirrors transformers 5.24 Llama4ImageProcessor (`find_supported_resolutions`, `get_best_fit`,
the upscale limit in `_preprocess`, `get_max_res_without_distortion`, `pad_to_best_fit`,
`split_to_tiles`) and `Llama4Processor._prompt_split_image`. 2026 spec sections 5.1-5.7.

The model scatters its 144 features per tile into the `<|patch|>` positions
(config.image_token_index); `processor.image_token_id` is `<|image|>`, one per image, which
marks the global tile (or the only tile).
"""
from __future__ import annotations

import functools
import math

import numpy as np

from ..geometry import Box, Size
from ..layout import KIND_CODE, Layout
from ..presets import Llama4Settings, Preset
from .base import Candidate, CropSpec, Plan



# ----------------------------------------------------------------------------- geometry
@functools.lru_cache(maxsize=32)
def supported_canvases(max_tiles: int, tile: int) -> tuple[tuple[int, int], ...]:
    """(height, width) canvases in transformers' order: tile counts max..1, each count's factor
    pairs (rows ascending), grouped by aspect ratio in first-seen order."""
    groups: dict[float, list[tuple[int, int]]] = {}
    for chunks in range(max_tiles, 0, -1):
        for rows in sorted(d for d in range(1, chunks + 1) if chunks % d == 0):
            groups.setdefault(rows / (chunks // rows), []).append((rows, chunks // rows))
    return tuple((r * tile, c * tile) for group in groups.values() for r, c in group)


def _scales(size_hw: Size, canvases) -> list[float]:
    h, w = size_hw.hw
    return [min(cw / w, ch / h) for ch, cw in canvases]


def best_fit(size_hw: Size, s: Llama4Settings, scales: list[float] | None = None) -> int:
    """Index of the canvas `get_best_fit` picks: the smallest scale >= 1 (the least upscale; the
    largest with resize_to_max_canvas), else the largest scale < 1; then the smallest area,
    first in list order."""
    canvases = supported_canvases(s.max_tiles, s.tile_size)
    scales = scales or _scales(size_hw, canvases)
    up = [x for x in scales if x >= 1]
    chosen = (max(up) if s.resize_to_max_canvas else min(up)) if up else max(scales)
    ties = [i for i, x in enumerate(scales) if x == chosen]
    return min(ties, key=lambda i: canvases[i][0] * canvases[i][1])


def resized_hw(size_hw: Size, canvas_hw: tuple[int, int], s: Llama4Settings) -> Size:
    """The upscale limit (a side grows at most to max(side, tile)) then the aspect-preserving
    fit, floored (`get_max_res_without_distortion`), each side at least 1."""
    h, w = size_hw.hw
    ch, cw = canvas_hw
    if not s.resize_to_max_canvas:
        ch, cw = min(max(h, s.tile_size), ch), min(max(w, s.tile_size), cw)
    if cw / w < ch / h:
        return Size(max(min(math.floor(h * (cw / w)), ch), 1), max(cw, 1))
    return Size(max(ch, 1), max(min(math.floor(w * (ch / h)), cw), 1))


def _candidates(size_hw: Size, s: Llama4Settings, scales, chosen: int) -> tuple[Candidate, ...]:
    canvases, tile = supported_canvases(s.max_tiles, s.tile_size), s.tile_size
    out = []
    for i, ((ch, cw), x) in enumerate(zip(canvases, scales)):
        note = ("chosen: " + ("smallest upscale" if x >= 1 else "least downscale") +
                ", then smallest canvas") if i == chosen else ("upscale" if x >= 1 else "downscale")
        out.append(Candidate(ch // tile, cw // tile, Size(ch, cw),
                             {"scale": x, "tiles": (ch // tile) * (cw // tile), "area": ch * cw},
                             i == chosen, note))
    return tuple(out)


def plan(size_hw: Size, preset: Preset) -> Plan:
    s: Llama4Settings = preset.settings
    canvases = supported_canvases(s.max_tiles, s.tile_size)
    scales = _scales(size_hw, canvases)
    chosen = best_fit(size_hw, s, scales)
    canvas = Size(*canvases[chosen])
    resized = resized_hw(size_hw, canvas.hw, s)
    tile, (h, w) = s.tile_size, size_hw.hw
    rows, cols = canvas.height // tile, canvas.width // tile
    sx, sy = w / resized.width, h / resized.height
    crops = []
    for t in range(rows * cols):
        r, c = divmod(t, cols)
        window = Box(c * tile, r * tile, (c + 1) * tile, (r + 1) * tile)
        crops.append(CropSpec(t, "tile", r, c, resized, canvas, (0, 0), window,
                              window.scale(sx, sy).clip(size_hw)))
    n_tiles = rows * cols
    per = s.cells_per_side ** 2
    if n_tiles > 1:
        crops.append(CropSpec(n_tiles, "thumbnail", -1, -1, Size(tile, tile), Size(tile, tile),
                              (0, 0), Box(0, 0, tile, tile), Box(0, 0, w, h)))
    counts = {"tile": per * n_tiles, "thumbnail": per if n_tiles > 1 else 0,
              "tile_x_sep": rows * (cols - 1) if n_tiles > 1 else 0,
              "tile_y_sep": rows if n_tiles > 1 else 0, "image_marker": 1, "wrapper": 2}
    counts = {k: v for k, v in counts.items() if v}
    specials = sum(v for k, v in counts.items() if k not in ("tile", "thumbnail"))
    formula = (f"{per} x ({n_tiles} tiles + 1 global) = {per * (n_tiles + 1)} <|patch|>, plus "
               f"{specials} markers = {per * (n_tiles + 1) + specials}" if n_tiles > 1 else
               f"{per} <|patch|> (one tile, no global tile), plus 3 markers = {per + 3}")
    return Plan(preset=preset, image_hw=size_hw, grid_rows=rows, grid_cols=cols, canvas_hw=canvas,
                resized_hw=resized, paste_yx=(0, 0), crops=tuple(crops),
                candidates_fn=lambda: _candidates(size_hw, s, scales, chosen),
                tokens_by_kind=counts, cell_px=s.cell_size, cells_per_tile=s.cells_per_side,
                formula=formula)


# ----------------------------------------------------------------------------- layout
def _axis(n_tiles: int, k: int, cell: int, tile: int, scale: float, limit: int) -> tuple:
    starts = (np.arange(n_tiles)[:, None] * tile + np.arange(k)[None, :] * cell).ravel()
    return np.minimum(starts * scale, limit), np.minimum((starts + cell) * scale, limit)


def layout(plan: Plan) -> Layout:
    """<|image_start|>, per tile row: tiles (144 <|patch|> each) joined by <|tile_x_separator|>,
    then <|tile_y_separator|>; then <|image|> and the global tile's 144 <|patch|>;
    <|image_end|>. With one tile: <|image_start|><|image|> 144 <|patch|><|image_end|>.
    Tile cells are on the stitched canvas (12*rows x 12*cols); boxes at x >= nw or y >= nh are
    padding (empty after clipping)."""
    s: Llama4Settings = plan.preset.settings
    k, cell, tile = s.cells_per_side, s.cell_size, s.tile_size
    rows, cols = plan.grid_rows, plan.grid_cols
    h, w = plan.image_hw.hw
    n_tiles = rows * cols
    x0, x1 = _axis(cols, k, cell, tile, w / plan.resized_hw.width, w)
    y0, y1 = _axis(rows, k, cell, tile, h / plan.resized_hw.height, h)
    gx0, gx1 = _axis(1, k, cell, tile, w / tile, w)
    gy0, gy1 = _axis(1, k, cell, tile, h / tile, h)
    kinds, crops, rr, cc, boxes = [], [], [], [], []

    def special(kind: str, row: int = -1):
        kinds.append([KIND_CODE[kind]]), crops.append([-1]), rr.append([row]), cc.append([-1])
        boxes.append(np.full((1, 4), np.nan))

    def cells(kind: str, crop: int, r0: int, c0: int, xa, xb, ya, yb):
        big_r, big_c = r0 + np.repeat(np.arange(k), k), c0 + np.tile(np.arange(k), k)
        kinds.append(np.full(k * k, KIND_CODE[kind])), crops.append(np.full(k * k, crop))
        rr.append(big_r), cc.append(big_c)
        box = np.stack([xa[big_c], ya[big_r], xb[big_c], yb[big_r]], axis=1)
        box[(box[:, 2] <= box[:, 0]) | (box[:, 3] <= box[:, 1])] = np.nan  # wholly in padding
        boxes.append(box)

    special("wrapper")
    if n_tiles > 1:
        for r in range(rows):
            for c in range(cols):
                cells("tile", r * cols + c, r * k, c * k, x0, x1, y0, y1)
                if c < cols - 1:
                    special("tile_x_sep", r)
            special("tile_y_sep", r)
        special("image_marker")
        cells("thumbnail", n_tiles, 0, 0, gx0, gx1, gy0, gy1)
    else:
        special("image_marker")
        cells("tile", 0, 0, 0, x0, x1, y0, y1)
    special("wrapper")
    return Layout(plan=plan, kind=np.concatenate(kinds).astype(np.int8),
                  crop=np.concatenate(crops).astype(np.int16),
                  row=np.concatenate(rr).astype(np.int32), col=np.concatenate(cc).astype(np.int32),
                  box=np.concatenate(boxes))


# ----------------------------------------------------------------------------- counts
def _tiles_many(h, w, s: Llama4Settings):
    """Vectorized tile count of the chosen canvas (same float scales as `best_fit`)."""
    canvases = np.array(supported_canvases(s.max_tiles, s.tile_size), dtype=np.float64)
    scales = np.minimum(canvases[None, :, 1] / w[:, None], canvases[None, :, 0] / h[:, None])
    up = scales >= 1
    pick_up = (np.where(up, scales, -np.inf).max(1) if s.resize_to_max_canvas
               else np.where(up, scales, np.inf).min(1))
    chosen = np.where(up.any(1), pick_up, np.where(up, -np.inf, scales).max(1))
    area = canvases[:, 0] * canvases[:, 1]
    best = np.argmin(np.where(scales == chosen[:, None], area[None, :], np.inf), axis=1)
    return (canvases[best, 0] * canvases[best, 1] / s.tile_size ** 2).astype(np.int64), best, canvases


def count_many(h: np.ndarray, w: np.ndarray, preset: Preset) -> np.ndarray:
    s: Llama4Settings = preset.settings
    shape = np.shape(h)
    h, w = np.ravel(h).astype(np.int64), np.ravel(w).astype(np.int64)
    valid = (h >= 1) & (w >= 1)
    n, _, _ = _tiles_many(np.where(valid, h, 1), np.where(valid, w, 1), s)
    per = s.cells_per_side ** 2
    return np.where(valid, per * (n + (n > 1)), -1).reshape(shape)


def count_many_total(h: np.ndarray, w: np.ndarray, preset: Preset) -> np.ndarray:
    s: Llama4Settings = preset.settings
    shape = np.shape(h)
    h, w = np.ravel(h).astype(np.int64), np.ravel(w).astype(np.int64)
    valid = (h >= 1) & (w >= 1)
    n, _, _ = _tiles_many(np.where(valid, h, 1), np.where(valid, w, 1), s)
    per = s.cells_per_side ** 2
    separators = np.where(n > 1, n, 0)  # rows * (cols - 1) x-separators + rows y-separators
    total = per * (n + (n > 1)) + separators + 3  # + <|image_start|>, <|image|>, <|image_end|>
    return np.where(valid, total, -1).reshape(shape)


# ----------------------------------------------------------------------------- text hooks
def why_summary(plan: Plan) -> str:
    s: Llama4Settings = plan.preset.settings
    chosen = next(c for c in plan.candidates if c.chosen)
    pad = plan.canvas_hw.area - plan.resized_hw.area
    return (f"Of the canvases of up to {s.max_tiles} tiles of {s.tile_size} px, "
            f"**{plan.grid_rows} x {plan.grid_cols}** needs the "
            + ("smallest upscale" if chosen.scores["scale"] >= 1 else "least downscale") +
            f" (scale {chosen.scores['scale']:.3f}), then the smallest area. The image is resized to "
            f"{plan.resized_hw} (a side below {s.tile_size} px is never enlarged beyond "
            f"{s.tile_size}) and padded right and bottom: {pad / plan.canvas_hw.area:.0%} of the "
            f"canvas is padding." + (" A global tile (the whole image squashed to "
                                     f"{s.tile_size} x {s.tile_size}) follows, marked by <|image|>."
                                     if plan.grid_rows * plan.grid_cols > 1 else
                                     " One tile: no global tile is added."))


def resize_note(plan: Plan) -> str:
    return (f"Resized (bilinear, aspect kept) to {plan.resized_hw} and padded at the right and "
            f"bottom to the {plan.canvas_hw} canvas.")


def ledger_how(plan: Plan, kind: str) -> str:
    s: Llama4Settings = plan.preset.settings
    per = s.cells_per_side ** 2
    rows, cols = plan.grid_rows, plan.grid_cols
    return {
        "tile": (f"{rows} x {cols} tiles x {per} ({s.tile_size}/{s.patch_size} = "
                 f"{s.tile_size // s.patch_size} patches per side, pixel shuffle 2x2 -> "
                 f"{s.cells_per_side} x {s.cells_per_side})"),
        "thumbnail": f"global tile ({s.tile_size} x {s.tile_size} squash): {per}",
        "tile_x_sep": f"{rows} rows x ({cols} - 1) between tiles",
        "tile_y_sep": f"one after each of the {rows} rows",
        "image_marker": "<|image|>, once per image (processor.image_token_id; the model fills "
                        "<|patch|>)",
        "wrapper": "<|image_start|> and <|image_end|>",
    }.get(kind, "")


TEACHING = {
    "grid": ("The canvas is the one that needs the least upscaling (or, for big images, the least "
             "downscaling); the image keeps its aspect ratio and sits top-left, the rest is padding. "
             "Sides below 336 px are not enlarged beyond 336."),
    "crops": ("Tiles in reading order, padding included; with more than one tile a global tile (the "
              "whole image squashed to 336 x 336) comes last."),
    "token_map": ("Each tile gives 12 x 12 tokens (24 x 24 patches, pixel shuffle 2x2). Tiles are "
                  "joined by <|tile_x_separator|>, rows end with <|tile_y_separator|>, and <|image|> "
                  "marks the global tile; the model fills only the <|patch|> positions."),
    "ledger": ("processor.image_token_id is <|image|> (one per image); count <|patch|>, the id the "
               "model scatters its features into."),
}


def teaching(view: str) -> str | None:
    return TEACHING.get(view)

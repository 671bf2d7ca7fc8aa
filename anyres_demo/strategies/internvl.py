"""InternVL 2.5 / 3 (transformers-native -hf): closest-aspect tile grid, squash, thumbnail.

Mirrors transformers 5.24 GotOcr2ImageProcessor (`get_all_supported_aspect_ratios`,
`get_optimal_tiled_canvas`, `crop_image_to_patches`) and InternVL's pixel shuffle. Spec section 4.
"""
from __future__ import annotations

import numpy as np

from ..geometry import Box, Size
from ..layout import KIND_CODE, Layout
from ..presets import InternVLSettings, Preset
from .base import Candidate, CropSpec, Plan


def supported_grids(min_tiles: int, max_tiles: int) -> list[tuple[int, int]]:
    """(cols, rows) with min <= cols*rows <= max, cols outer, stably sorted by tile count."""
    grids = [(c, r) for c in range(1, max_tiles + 1) for r in range(1, max_tiles + 1)
             if min_tiles <= c * r <= max_tiles]
    return sorted(grids, key=lambda g: g[0] * g[1])


def optimal_grid(size_hw: Size, s: InternVLSettings) -> tuple[tuple[int, int], list[tuple]]:
    """The (cols, rows) transformers picks, plus a trace of (grid, aspect_diff, took, why)."""
    h, w = size_hw.hw
    aspect, area = w / h, w * h
    best_diff, best = float("inf"), (1, 1)
    trace = []
    for grid in supported_grids(s.min_tiles, s.max_tiles):
        diff = abs(aspect - grid[0] / grid[1])
        if diff < best_diff:
            best_diff, best = diff, grid
            trace.append((grid, diff, True, "closer aspect ratio"))
        elif diff == best_diff and area > 0.5 * s.tile_size * s.tile_size * grid[0] * grid[1]:
            best = grid
            trace.append((grid, diff, True, "same aspect ratio, more tiles, image still covers "
                                            "over half the canvas"))
        else:
            why = ("same aspect ratio, but the image would cover at most half the canvas"
                   if diff == best_diff else "aspect ratio further away")
            trace.append((grid, diff, False, why))
    return best, trace


def _candidates(trace, best, tile: int) -> tuple[Candidate, ...]:
    out = []
    for (cols, rows), diff, took, why in trace:
        out.append(Candidate(grid_rows=rows, grid_cols=cols, canvas_hw=Size(rows * tile, cols * tile),
                             scores={"aspect_diff": diff, "tiles": cols * rows},
                             chosen=(cols, rows) == best,
                             note=("chosen: " if (cols, rows) == best else "") +
                             ("led at its turn: " if took else "") + why))
    return tuple(out)


def plan(size_hw: Size, preset: Preset) -> Plan:
    s: InternVLSettings = preset.settings
    (cols, rows), trace = optimal_grid(size_hw, s)
    tile = s.tile_size
    canvas = Size(rows * tile, cols * tile)
    sx, sy = size_hw.width / canvas.width, size_hw.height / canvas.height
    crops = []
    for t in range(rows * cols):
        r, c = divmod(t, cols)
        window = Box(c * tile, r * tile, (c + 1) * tile, (r + 1) * tile)
        crops.append(CropSpec(t, "tile", r, c, canvas, canvas, (0, 0), window,
                              window.scale(sx, sy).clip(size_hw)))
    if s.use_thumbnail and rows * cols > 1:
        crops.append(CropSpec(len(crops), "thumbnail", -1, -1, Size(tile, tile), Size(tile, tile),
                              (0, 0), Box(0, 0, tile, tile), Box(0, 0, size_hw.width, size_hw.height)))
    per = s.cells_per_side ** 2
    counts = {"tile": per * rows * cols, "wrapper": 2}
    thumb = len(crops) - rows * cols
    if thumb:
        counts["thumbnail"] = per
    formula = (f"{per} x ({rows * cols} tiles" + (" + 1 thumbnail" if thumb else "") +
               f") = {per * len(crops)}, plus <img> and </img> = {per * len(crops) + 2}")
    return Plan(preset=preset, image_hw=size_hw, grid_rows=rows, grid_cols=cols, canvas_hw=canvas,
                resized_hw=canvas, paste_yx=(0, 0), crops=tuple(crops),
                candidates=_candidates(trace, (cols, rows), tile), tokens_by_kind=counts,
                cell_px=s.cell_size, cells_per_tile=s.cells_per_side, formula=formula)


def layout(plan: Plan) -> Layout:
    s: InternVLSettings = plan.preset.settings
    m, cell = s.cells_per_side, s.cell_size
    n_tiles = plan.grid_rows * plan.grid_cols
    k = np.arange(len(plan.crops) * m * m)
    t, (r, c) = k // (m * m), np.divmod(k % (m * m), m)
    is_thumb = t >= n_tiles
    tr, tc = np.divmod(np.minimum(t, n_tiles - 1), plan.grid_cols)
    big_r = np.where(is_thumb, r, tr * m + r)
    big_c = np.where(is_thumb, c, tc * m + c)
    # canvas pixels -> original: tiles scale by original/canvas, the thumbnail by original/tile
    sy = np.where(is_thumb, plan.image_hw.height / s.tile_size, plan.image_hw.height / plan.canvas_hw.height)
    sx = np.where(is_thumb, plan.image_hw.width / s.tile_size, plan.image_hw.width / plan.canvas_hw.width)
    box = np.stack([big_c * cell * sx, big_r * cell * sy, (big_c + 1) * cell * sx,
                    (big_r + 1) * cell * sy], axis=-1)
    box = np.minimum(box, [plan.image_hw.width, plan.image_hw.height] * 2)
    wrap = KIND_CODE["wrapper"]
    body = np.where(is_thumb, KIND_CODE["thumbnail"], KIND_CODE["tile"])
    nan_row = np.full((1, 4), np.nan)
    return Layout(plan=plan,
                  kind=np.concatenate([[wrap], body, [wrap]]).astype(np.int8),
                  crop=np.concatenate([[-1], t, [-1]]).astype(np.int16),
                  row=np.concatenate([[-1], big_r, [-1]]).astype(np.int32),
                  col=np.concatenate([[-1], big_c, [-1]]).astype(np.int32),
                  box=np.concatenate([nan_row, box, nan_row]))


def count_many(h: np.ndarray, w: np.ndarray, preset: Preset) -> np.ndarray:
    s: InternVLSettings = preset.settings
    valid = (h >= 1) & (w >= 1)
    h = np.where(valid, h, 1).astype(np.int64)
    w = np.where(valid, w, 1).astype(np.int64)
    aspect, area = w / h, w * h
    best_diff = np.full(h.shape, np.inf)
    best_n = np.ones(h.shape, np.int64)
    for cols, rows in supported_grids(s.min_tiles, s.max_tiles):
        diff = np.abs(aspect - cols / rows)
        closer = diff < best_diff
        tie = ~closer & (diff == best_diff) & (area > 0.5 * s.tile_size * s.tile_size * cols * rows)
        best_diff = np.where(closer, diff, best_diff)
        best_n = np.where(closer | tie, cols * rows, best_n)
    crops = best_n + np.where((best_n > 1) & s.use_thumbnail, 1, 0)
    return np.where(valid, crops * s.cells_per_side ** 2, -1)

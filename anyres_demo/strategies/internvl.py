"""InternVL 2.5 / 3 (transformers-native -hf): closest-aspect tile grid, squash, thumbnail.

Mirrors transformers 5.24 GotOcr2ImageProcessor (`get_all_supported_aspect_ratios`,
`get_optimal_tiled_canvas`, `crop_image_to_patches`) and InternVL's pixel shuffle. Spec section 4.
"""
from __future__ import annotations

import functools

import numpy as np

from ..geometry import Box, Size
from ..layout import KIND_CODE, Layout
from ..presets import InternVLSettings, Preset
from .base import Candidate, ChartSpec, CropSpec, Plan, Series, scale_factor


@functools.lru_cache(maxsize=64)
def supported_grids(min_tiles: int, max_tiles: int) -> tuple[tuple[int, int], ...]:
    """(cols, rows) with min <= cols*rows <= max, cols outer, stably sorted by tile count."""
    grids = [(c, r) for c in range(1, max_tiles + 1) for r in range(1, max_tiles + 1)
             if min_tiles <= c * r <= max_tiles]
    return tuple(sorted(grids, key=lambda g: g[0] * g[1]))


@functools.lru_cache(maxsize=64)
def original_grids(min_tiles: int, max_tiles: int) -> tuple[tuple[int, int], ...]:
    """The original repo's order (InternVL `dynamic_preprocess`): a set of (cols, rows), then
    sorted by tile count; within one count the set's iteration order decides."""
    grids = set((i, j) for n in range(min_tiles, max_tiles + 1) for i in range(1, n + 1)
                for j in range(1, n + 1) if min_tiles <= i * j <= max_tiles)
    return tuple(sorted(grids, key=lambda g: g[0] * g[1]))


CLOSER = "closer aspect ratio"
TIE_MORE = "same aspect ratio, more tiles, image still covers over half the canvas"
TIE_FEWER = "same aspect ratio, but the image would cover at most half the canvas"
FURTHER = "aspect ratio further away"


def optimal_grid(size_hw: Size, s: InternVLSettings, trace: list | None = None,
                 original: bool = False) -> tuple[int, int]:
    """The (cols, rows) transformers picks (original=True: the original repo's candidate order).
    With a `trace` list, appends (grid, aspect_diff, took, why) for every candidate, in scan
    order."""
    h, w = size_hw.hw
    aspect, area = w / h, w * h
    best_diff, best = float("inf"), (1, 1)
    half_tile_area = 0.5 * s.tile_size * s.tile_size
    for grid in (original_grids if original else supported_grids)(s.min_tiles, s.max_tiles):
        diff = abs(aspect - grid[0] / grid[1])
        if diff < best_diff:
            best_diff, best, took, why = diff, grid, True, CLOSER
        elif diff == best_diff and area > half_tile_area * grid[0] * grid[1]:
            best, took, why = grid, True, TIE_MORE
        else:
            took, why = False, (TIE_FEWER if diff == best_diff else FURTHER)
        if trace is not None:
            trace.append((grid, diff, took, why))
    return best


def _candidates(size_hw: Size, s: InternVLSettings, best) -> tuple[Candidate, ...]:
    trace: list = []
    optimal_grid(size_hw, s, trace)
    tile = s.tile_size
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
    cols, rows = optimal_grid(size_hw, s)
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
                candidates_fn=lambda: _candidates(size_hw, s, (cols, rows)), tokens_by_kind=counts,
                cell_px=s.cell_size, cells_per_tile=s.cells_per_side, formula=formula)


def layout(plan: Plan) -> Layout:
    """<img>, every tile's 16x16 cells (tiles row-major, cells row-major), the thumbnail's,
    </img>. Tile cells are placed on the stitched canvas (16 * rows x 16 * cols); boxes are
    separable in (canvas row, canvas column), so they are broadcast from per-axis extents."""
    s: InternVLSettings = plan.preset.settings
    m, cell = s.cells_per_side, s.cell_size
    rows, cols = plan.grid_rows, plan.grid_cols
    h, w = plan.image_hw.hw
    n_tiles, thumb = rows * cols, len(plan.crops) - rows * cols
    ys = np.minimum(np.arange(rows * m + 1) * cell * (h / plan.canvas_hw.height), h)
    xs = np.minimum(np.arange(cols * m + 1) * cell * (w / plan.canvas_hw.width), w)
    tiles = np.empty((rows, cols, m, m, 4))  # sequence order: tile row, tile col, cell r, cell c
    tiles[..., 0] = xs[:-1].reshape(1, cols, 1, m)
    tiles[..., 2] = xs[1:].reshape(1, cols, 1, m)
    tiles[..., 1] = ys[:-1].reshape(rows, 1, m, 1)
    tiles[..., 3] = ys[1:].reshape(rows, 1, m, 1)
    big_r = np.broadcast_to((np.arange(rows * m)).reshape(rows, 1, m, 1), (rows, cols, m, m))
    big_c = np.broadcast_to((np.arange(cols * m)).reshape(1, cols, 1, m), (rows, cols, m, m))
    t = np.repeat(np.arange(n_tiles), m * m)
    parts_box, parts_row, parts_col = [tiles.reshape(-1, 4)], [big_r.ravel()], [big_c.ravel()]
    if thumb:
        ty = np.minimum(np.arange(m + 1) * cell * (h / s.tile_size), h)
        tx = np.minimum(np.arange(m + 1) * cell * (w / s.tile_size), w)
        tb = np.empty((m, m, 4))
        tb[..., 0], tb[..., 2] = tx[None, :-1], tx[None, 1:]
        tb[..., 1], tb[..., 3] = ty[:-1, None], ty[1:, None]
        parts_box.append(tb.reshape(-1, 4))
        parts_row.append(np.repeat(np.arange(m), m))
        parts_col.append(np.tile(np.arange(m), m))
        t = np.concatenate([t, np.full(m * m, n_tiles)])
    nan_row = np.full((1, 4), np.nan)
    wrap = KIND_CODE["wrapper"]
    body = np.where(t >= n_tiles, KIND_CODE["thumbnail"], KIND_CODE["tile"])
    return Layout(plan=plan,
                  kind=np.concatenate([[wrap], body, [wrap]]).astype(np.int8),
                  crop=np.concatenate([[-1], t, [-1]]).astype(np.int16),
                  row=np.concatenate([[-1], *parts_row, [-1]]).astype(np.int32),
                  col=np.concatenate([[-1], *parts_col, [-1]]).astype(np.int32),
                  box=np.concatenate([nan_row, *parts_box, nan_row]))


def grid_many(h: np.ndarray, w: np.ndarray, preset: Preset, original: bool = False
              ) -> tuple[np.ndarray, np.ndarray]:
    """Vectorized optimal_grid: (cols, rows) arrays; h, w >= 1."""
    s: InternVLSettings = preset.settings
    aspect, area = w / h, w * h
    best_diff = np.full(h.shape, np.inf)
    best_c, best_r = np.ones(h.shape, np.int64), np.ones(h.shape, np.int64)
    for cols, rows in (original_grids if original else supported_grids)(s.min_tiles, s.max_tiles):
        diff = np.abs(aspect - cols / rows)
        closer = diff < best_diff
        tie = ~closer & (diff == best_diff) & (area > 0.5 * s.tile_size * s.tile_size * cols * rows)
        best_diff = np.where(closer, diff, best_diff)
        take = closer | tie
        best_c, best_r = np.where(take, cols, best_c), np.where(take, rows, best_r)
    return best_c, best_r


def count_many(h: np.ndarray, w: np.ndarray, preset: Preset) -> np.ndarray:
    s: InternVLSettings = preset.settings
    valid = (h >= 1) & (w >= 1)
    h = np.where(valid, h, 1).astype(np.int64)
    w = np.where(valid, w, 1).astype(np.int64)
    cols, rows = grid_many(h, w, preset)
    best_n = cols * rows
    crops = best_n + np.where((best_n > 1) & s.use_thumbnail, 1, 0)
    return np.where(valid, crops * s.cells_per_side ** 2, -1)


# ----------------------------------------------------------------------------- words and charts
def ledger_how(plan: Plan, kind: str) -> str:
    s = plan.preset.settings
    m = s.cells_per_side
    per_tile = (f"{s.tile_size} px / {s.patch_size} px patches = {s.tile_size // s.patch_size}^2, "
                f"pixel shuffle x{s.downsample_ratio} -> {m}x{m}")
    if kind == "wrapper":
        return f"{plan.preset.wrapper_tokens[0]} and {plan.preset.wrapper_tokens[1]} around the tiles"
    if kind == "thumbnail":
        return f"whole image squashed to {s.tile_size}x{s.tile_size}, {m}x{m} tokens"
    tiles = plan.grid_rows * plan.grid_cols
    return f"{plan.grid_rows}x{plan.grid_cols} = {tiles} tiles x {m * m} ({per_tile})"


def why_summary(plan: Plan) -> str:
    s = plan.preset.settings
    win = next(c for c in plan.candidates if c.chosen)
    h, w = plan.image_hw.hw
    return (f"InternVL walks every grid with {s.min_tiles} to {s.max_tiles} tiles, fewest tiles "
            f"first, and keeps the one whose aspect ratio is closest to the image's ({w / h:.3f}); "
            f"on a tie it moves to the larger grid only if the image covers more than half of "
            f"that canvas. Winner: **{win.grid_rows}x{win.grid_cols}** (aspect "
            f"{win.grid_cols / win.grid_rows:.3f}).")


def resize_note(plan: Plan) -> str:
    factor, same = scale_factor(plan.image_hw, plan.resized_hw)
    s = plan.preset.settings
    extra = f" + a {s.tile_size}x{s.tile_size} thumbnail" if "thumbnail" in plan.tokens_by_kind else ""
    squash = "" if same else " (squashed: the aspect ratio changes)"
    return (f"{plan.image_hw} resized {factor} to {plan.canvas_hw}{squash} -> "
            f"{plan.grid_rows}x{plan.grid_cols} tiles of {plan.canvas_hw.width // plan.grid_cols} px"
            f"{extra}.")


def candidates_chart(plan: Plan) -> ChartSpec:
    cands = plan.candidates
    labels = tuple(f"{c.grid_rows}x{c.grid_cols}" + (" ✓" if c.chosen else "") for c in cands)
    return ChartSpec("Why this grid: closest aspect ratio (in the order tried)", "grid (rows x cols)",
                     "|image aspect - grid aspect|", labels,
                     (Series("aspect-ratio gap", tuple(float(c.scores["aspect_diff"]) for c in cands),
                             tuple("#d55e00" if c.chosen else "#999999" for c in cands)),),
                     chosen=next(i for i, c in enumerate(cands) if c.chosen))

"""LLaVA-NeXT ("anyres" + "spatial_unpad") and LLaVA-OneVision ("anyres_max_9").

Mirrors transformers 5.24: `select_best_resolution`, `get_patch_output_size`,
`_pad_for_patching`, `divide_to_patches` (LlavaNextImageProcessor) and the models'
`unpad_image` / `pack_image_features`. Spec sections 1 and 2.
"""
from __future__ import annotations

import math

import numpy as np

from ..geometry import Box, Size
from ..layout import KIND_CODE, Layout
from ..presets import LlavaNextSettings, Preset
from .base import Candidate, ChartSpec, CropSpec, Plan, Series, scale_factor


# ----------------------------------------------------------------------------- geometry
def score_canvas(size_hw: Size, canvas_hw: tuple[int, int]) -> tuple[int, int]:
    """(effective, wasted) pixels of fitting the image into a canvas (select_best_resolution)."""
    h, w = size_hw.hw
    ch, cw = canvas_hw
    scale = min(cw / w, ch / h)
    effective = min(int(w * scale) * int(h * scale), w * h)
    return effective, cw * ch - effective


def select_best_resolution(size_hw: Size, pinpoints_hw, scores=None) -> int:
    """Index of the canvas transformers picks: max effective, then min wasted, then list order.
    `scores`: the canvases' (effective, wasted), if already computed."""
    best, best_eff, best_waste = None, 0, float("inf")
    scores = scores or [score_canvas(size_hw, canvas) for canvas in pinpoints_hw]
    for i, (eff, waste) in enumerate(scores):
        if eff > best_eff or (eff == best_eff and waste < best_waste):
            best, best_eff, best_waste = i, eff, waste
    return best


def patch_output_size(size_hw: Size, canvas_hw: tuple[int, int]) -> Size:
    """Aspect-preserving fit inside the canvas, rounding the free side up (get_patch_output_size)."""
    h, w = size_hw.hw
    ch, cw = canvas_hw
    if cw / w < ch / h:
        return Size(min(math.ceil(h * (cw / w)), ch), cw)
    return Size(ch, min(math.ceil(w * (ch / h)), cw))


def unpad_cells(size_hw: Size, features_hw: Size, exact_round: bool = True) -> tuple[int, int, int, int]:
    """Feature rows/cols removed (top, bottom, left, right) by the model's unpad_image.

    transformers rounds `h * (W / w)` to 7 decimals before int(); the original LLaVA repo
    truncates with int() alone (spec 1.5), pass exact_round=False for that.
    """
    h, w = size_hw.hw
    fh, fw = features_hw.hw
    if w / h > fw / fh:
        x = h * (fw / w)
        new_h = int(round(x, 7)) if exact_round else int(x)
        pad = (fh - new_h) // 2
        return (pad, pad, 0, 0)
    x = w * (fh / h)
    new_w = int(round(x, 7)) if exact_round else int(x)
    pad = (fw - new_w) // 2
    return (0, 0, pad, pad)


def downscale_hw(unpadded_hw: Size, settings: LlavaNextSettings) -> Size:
    """OneVision anyres_max_N: bilinear downscale when the grid exceeds ~1.1x N tiles of cells."""
    if settings.max_tiles_downscale is None:
        return unpadded_hw
    h2, w2 = unpadded_hw.hw
    n = settings.features_per_side
    ratio = math.sqrt(h2 * w2 / (settings.max_tiles_downscale * n ** 2))
    if ratio > settings.downscale_threshold:
        return Size(int(h2 // ratio), int(w2 // ratio))
    return unpadded_hw


# ----------------------------------------------------------------------------- plan
CHOSEN_NOTE = "chosen: most image pixels kept, then least waste, then list order"


def _candidates(size_hw: Size, settings: LlavaNextSettings, scores, chosen: int
                ) -> tuple[Candidate, ...]:
    tile, (h, w) = settings.tile_size, size_hw.hw
    return tuple(
        Candidate(ch // tile, cw // tile, Size(ch, cw),
                  {"effective": eff, "wasted": waste, "scale": min(cw / w, ch / h)},
                  i == chosen, CHOSEN_NOTE if i == chosen else "")
        for i, ((ch, cw), (eff, waste)) in enumerate(zip(settings.pinpoints_hw, scores)))


def _crops(size_hw: Size, settings: LlavaNextSettings, canvas: Size, resized: Size,
           paste_yx: tuple[int, int]) -> tuple[CropSpec, ...]:
    """The squashed base image, then the canvas tiles row-major (divide_to_patches)."""
    tile = settings.tile_size
    h, w = size_hw.hw
    base_hw = Size(tile, tile)
    crops = [CropSpec(0, "base", -1, -1, base_hw, base_hw, (0, 0), Box(0, 0, tile, tile),
                      Box(0, 0, w, h))]
    py, px = paste_yx
    rows, cols = canvas.height // tile, canvas.width // tile
    # separable: a tile's source box is its column's x-extent times its row's y-extent,
    # each clipped to the image (an edge tile may be mostly padding)
    xs = _tile_extents(cols, tile, px, w / resized.width, w)
    ys = _tile_extents(rows, tile, py, h / resized.height, h)
    for k in range(rows * cols):
        r, c = divmod(k, cols)
        crops.append(CropSpec(k + 1, "tile", r, c, resized, canvas, paste_yx,
                              Box(c * tile, r * tile, (c + 1) * tile, (r + 1) * tile),
                              Box(xs[c][0], ys[r][0], xs[c][1], ys[r][1])))
    return tuple(crops)


def _tile_extents(n: int, tile: int, paste: int, scale: float, limit: int) -> list[tuple]:
    """[start, end) in original pixels of each of n tiles along one canvas axis, clipped."""
    out = []
    for i in range(n):
        lo = min(max((i * tile - paste) * scale, 0.0), limit)
        out.append((lo, min(max(((i + 1) * tile - paste) * scale, lo), limit)))
    return out


def _original_repo_tokens(size_hw: Size, settings: LlavaNextSettings) -> tuple[int, int, int]:
    """(rows, cols, tokens) under the original LLaVA / LLaVA-NeXT repo's reading: pinpoints as
    (w, h), int() truncation in unpad (spec 1.5), then the same anyres_max_N downscale
    (`int(h // times)`, llava_arch.py) for OneVision."""
    swapped = [(w, h) for h, w in settings.pinpoints_hw]
    ch, cw = swapped[select_best_resolution(size_hw, swapped)]
    n, tile = settings.features_per_side, settings.tile_size
    feats = Size(n * (ch // tile), n * (cw // tile))
    top, bottom, left, right = unpad_cells(size_hw, feats, exact_round=False)
    final = downscale_hw(Size(feats.height - top - bottom, feats.width - left - right), settings)
    return ch // tile, cw // tile, n * n + final.area + final.height


def plan(size_hw: Size, preset: Preset) -> Plan:
    s: LlavaNextSettings = preset.settings
    scores = [score_canvas(size_hw, canvas) for canvas in s.pinpoints_hw]
    chosen = select_best_resolution(size_hw, s.pinpoints_hw, scores)
    canvas = Size(*s.pinpoints_hw[chosen])
    resized = patch_output_size(size_hw, canvas.hw)
    paste_yx = ((canvas.height - resized.height) // 2, (canvas.width - resized.width) // 2)
    rows, cols = canvas.height // s.tile_size, canvas.width // s.tile_size
    n = s.features_per_side
    feats = Size(n * rows, n * cols)
    cut = unpad_cells(size_hw, feats)
    unpadded = Size(feats.height - cut[0] - cut[1], feats.width - cut[2] - cut[3])
    final = downscale_hw(unpadded, s)
    counts = {"base": n * n, "tile": final.area, "newline": final.height}
    formula = f"{n * n} + {final.height}x{final.width} + {final.height} = {sum(counts.values())}"
    if final != unpadded:
        formula += (f" (unpadded {unpadded.height}x{unpadded.width} cells, bilinear-downscaled to "
                    f"{final.height}x{final.width})")
    return Plan(preset=preset, image_hw=size_hw, grid_rows=rows, grid_cols=cols, canvas_hw=canvas,
                resized_hw=resized, paste_yx=paste_yx,
                crops=_crops(size_hw, s, canvas, resized, paste_yx),
                candidates_fn=lambda: _candidates(size_hw, s, scores, chosen), tokens_by_kind=counts,
                features_hw=feats, unpad_cells=cut, unpadded_hw=unpadded, final_hw=final,
                cell_px=s.patch_size, cells_per_tile=n,
                divergences=_divergences(size_hw, preset, rows, cols, sum(counts.values())),
                formula=formula)


def _divergences(size_hw: Size, preset: Preset, rows: int, cols: int, tokens: int) -> tuple[str, ...]:
    """Where the original repo's answer differs from transformers' for this image (the test
    scans every size up to 3000 px per side against `original_count_many`)."""
    o_rows, o_cols, o_tokens = _original_repo_tokens(size_hw, preset.settings)
    repo = "LLaVA-NeXT repo (OneVision's training code)" if preset.settings.max_tiles_downscale \
        else "LLaVA repo"
    if (o_rows, o_cols) != (rows, cols):
        return (
            f"The original {repo} reads each canvas pair as (width, height), transformers as "
            f"(height, width). For this image the tie between canvases is broken by list order, so "
            f"the original picks a {o_rows}x{o_cols} grid ({o_tokens} tokens) where transformers "
            f"picks {rows}x{cols} ({tokens} tokens). This explorer follows transformers.",)
    if o_tokens != tokens:
        return (
            f"The original {repo} truncates with int() when unpadding; float error makes it "
            f"drop more feature rows/columns here ({o_tokens} tokens vs transformers' {tokens}). "
            f"transformers rounds to 7 decimals first, which is the intended result.",)
    return ()


# ----------------------------------------------------------------------------- layout
def layout(plan: Plan) -> Layout:
    """Base tokens (row-major), then H3 rows of W3 grid cells + 1 newline (pack_image_features).

    The grid is separable: a cell's box is its row's y-extent times its column's x-extent, so
    the arithmetic runs per row and per column and is only broadcast into preallocated
    columns (views of the base part and the grid part).
    """
    n = plan.cells_per_tile
    nb, (h3, w3) = n * n, plan.final_hw.hw
    total = nb + h3 * (w3 + 1)
    kind = np.full(total, KIND_CODE["tile"], np.int8)
    crop = np.full(total, -1, np.int16)
    row = np.empty(total, np.int32)
    col = np.empty(total, np.int32)
    box = np.full((total, 4), np.nan)
    kind[:nb], crop[:nb] = KIND_CODE["base"], 0
    row[:nb], col[:nb], box[:nb] = _base_part(plan)
    rows_y, cell_r, row_out = _grid_axis(plan, axis=0)  # per output row: (y0, y1), canvas row
    cols_x, cell_c, col_out = _grid_axis(plan, axis=1)  # per output column
    g_kind = kind[nb:].reshape(h3, w3 + 1)
    g_kind[:, w3] = KIND_CODE["newline"]
    crop[nb:].reshape(h3, w3 + 1)[:, :w3] = (1 + (cell_r // n)[:, None] * plan.grid_cols
                                              + (cell_c // n)[None, :])
    row[nb:].reshape(h3, w3 + 1)[:] = row_out[:, None]
    g_col = col[nb:].reshape(h3, w3 + 1)
    g_col[:, :w3], g_col[:, w3] = col_out[None, :], -1
    g_box = box[nb:].reshape(h3, w3 + 1, 4)[:, :w3]
    g_box[..., 0::2] = cols_x[None, :, :]
    g_box[..., 1::2] = rows_y[:, None, :]
    empty_rows, empty_cols = np.isnan(rows_y[:, 0]), np.isnan(cols_x[:, 0])  # wholly padding
    if empty_rows.any() or empty_cols.any():
        g_box[empty_rows[:, None] | empty_cols[None, :]] = np.nan
    return Layout(plan=plan, kind=kind, crop=crop, row=row, col=col, box=box,
                  blend_fn=_blend_columns if plan.downscaled else None)


def _axis_extent(plan: Plan, cells: np.ndarray, axis: int) -> tuple[np.ndarray, np.ndarray]:
    """Original-pixel start and end of canvas feature cells along one axis (0: y, 1: x).

    Cell R covers canvas pixels [(R // n) * tile + (R % n) * patch, + patch): with SigLIP-384
    (n = 27, 27 * 14 = 378) the last 6 px of every tile fall between cells.
    """
    s: LlavaNextSettings = plan.preset.settings
    n, tile, p = s.features_per_side, s.tile_size, s.patch_size
    start = (cells // n) * tile + (cells % n) * p - plan.paste_yx[axis]
    scale = plan.image_hw.hw[axis] / plan.resized_hw.hw[axis]
    return start * scale, (start + p) * scale


def _grid_axis(plan: Plan, axis: int):
    """Per output row (axis 0) or column (axis 1) of the unpadded / downscaled grid:
    the clipped original-pixel extent (k, 2) (NaN when it lies wholly in padding), the canvas
    cell that names the crop, and the value of the layout's row / col column."""
    top_or_left = plan.unpad_cells[0] if axis == 0 else plan.unpad_cells[2]
    out_len = plan.final_hw.hw[axis]
    idx = np.arange(out_len)
    if plan.downscaled:
        i0, i1, w0, w1 = _bilinear(out_len, plan.unpadded_hw.hw[axis])
        lo, _ = _axis_extent(plan, i0 + top_or_left, axis)
        _, hi = _axis_extent(plan, np.where(w1 > 0, i1, i0) + top_or_left, axis)
        cell, label = np.where(w1 > w0, i1, i0) + top_or_left, idx
    else:
        cell = label = idx + top_or_left
        lo, hi = _axis_extent(plan, cell, axis)
    limit = plan.image_hw.hw[axis]
    ext = np.empty((out_len, 2))
    np.clip(lo, 0, limit, out=ext[:, 0])
    np.clip(hi, 0, limit, out=ext[:, 1])
    ext[ext[:, 1] <= ext[:, 0]] = np.nan
    return ext, cell, label


def _raw_cell_boxes(plan: Plan, rr: np.ndarray, cc: np.ndarray) -> np.ndarray:
    """Original-pixel boxes (n, 4) of canvas feature cells (R, C), not clipped."""
    y0, y1 = _axis_extent(plan, rr, axis=0)
    x0, x1 = _axis_extent(plan, cc, axis=1)
    return np.stack([x0, y0, x1, y1], axis=-1).astype(np.float64)


def _clip(box: np.ndarray, size_hw: Size) -> np.ndarray:
    """Clip to the image; boxes left with no area (cells wholly in padding) become NaN."""
    box[..., 0::2] = np.clip(box[..., 0::2], 0, size_hw.width)
    box[..., 1::2] = np.clip(box[..., 1::2], 0, size_hw.height)
    empty = (box[..., 2] <= box[..., 0]) | (box[..., 3] <= box[..., 1])
    box[empty] = np.nan
    return box


def _base_part(plan: Plan):
    """The squashed base image's n x n cells, row-major: (rows, cols, boxes in original px)."""
    s: LlavaNextSettings = plan.preset.settings
    n, p, tile = s.features_per_side, s.patch_size, s.tile_size
    h, w = plan.image_hw.hw
    ys = np.minimum(np.arange(n + 1) * p * (h / tile), h)
    xs = np.minimum(np.arange(n + 1) * p * (w / tile), w)
    box = np.empty((n, n, 4))
    box[..., 0], box[..., 2] = xs[None, :-1], xs[None, 1:]
    box[..., 1], box[..., 3] = ys[:-1, None], ys[1:, None]
    box = box.reshape(-1, 4)
    box[(box[:, 2] <= box[:, 0]) | (box[:, 3] <= box[:, 1])] = np.nan
    return np.repeat(np.arange(n), n), np.tile(np.arange(n), n), box


def _bilinear(out_len: int, in_len: int):
    """Source indices and weights of F.interpolate(mode='bilinear', align_corners=False)."""
    scale = in_len / out_len
    src = np.maximum((np.arange(out_len) + 0.5) * scale - 0.5, 0.0)
    i0 = np.minimum(src.astype(np.int64), in_len - 1)
    i1 = np.where(i0 < in_len - 1, i0 + 1, i0)
    lam = src - i0
    return i0, i1, 1.0 - lam, lam


def _neighbours(plan: Plan, gr: np.ndarray, gc: np.ndarray):
    """The 2x2 unpadded cells (y0, y1, x0, x1) and weights (wy0, wy1, wx0, wx1) per output cell."""
    (h2, w2), (h3, w3) = plan.unpadded_hw.hw, plan.final_hw.hw
    y0, y1, wy0, wy1 = _bilinear(h3, h2)
    x0, x1, wx0, wx1 = _bilinear(w3, w2)
    return (y0[gr], y1[gr], x0[gc], x1[gc]), (wy0[gr], wy1[gr], wx0[gc], wx1[gc])


def _blend_columns(lay: Layout) -> tuple[np.ndarray, np.ndarray]:
    """(n, 4, 4) boxes and (n, 4) bilinear weights over the whole sequence; base tokens are one
    full-weight part, newline tokens have none."""
    plan = lay.plan
    top, _, left, _ = plan.unpad_cells
    n_base = plan.cells_per_tile ** 2
    h3, w3 = plan.final_hw.hw
    gr, gc = np.divmod(np.arange(h3 * (w3 + 1)), w3 + 1)
    is_nl = gc == w3
    (y0, y1, x0, x1), (wy0, wy1, wx0, wx1) = _neighbours(plan, gr, np.minimum(gc, w3 - 1))
    parts = [(y0, x0, wy0 * wx0), (y0, x1, wy0 * wx1), (y1, x0, wy1 * wx0), (y1, x1, wy1 * wx1)]
    boxes = np.stack([_clip(_raw_cell_boxes(plan, y + top, x + left), plan.image_hw)
                      for y, x, _ in parts], axis=1)
    weights = np.stack([w for _, _, w in parts], axis=1)
    weights[is_nl] = 0.0
    boxes[weights <= 0] = np.nan
    base_boxes = np.full((n_base, 4, 4), np.nan)
    base_boxes[:, 0] = lay.box[:n_base]
    base_weights = np.zeros((n_base, 4))
    base_weights[:, 0] = 1.0
    return np.concatenate([base_boxes, boxes]), np.concatenate([base_weights, weights])


# ----------------------------------------------------------------------------- sweeps
def count_many(h: np.ndarray, w: np.ndarray, preset: Preset, original: bool = False) -> np.ndarray:
    """Vectorized token counts (same arithmetic as plan(), float64 like Python floats).
    original=True: the original repo's answer (pinpoints read as (w, h), int() in unpad)."""
    s: LlavaNextSettings = preset.settings
    valid = (h >= 1) & (w >= 1)
    h = np.where(valid, h, 1).astype(np.int64)
    w = np.where(valid, w, 1).astype(np.int64)
    pinpoints = [(b, a) for a, b in s.pinpoints_hw] if original else s.pinpoints_hw
    best_ch, best_cw = _select_many(h, w, pinpoints)
    n = s.features_per_side
    fh, fw = n * (best_ch // s.tile_size), n * (best_cw // s.tile_size)
    wide = (w / h) > (fw / fh)
    cut = (lambda x: x) if original else (lambda x: np.round(x, 7))
    new_h = cut(h * (fw / w)).astype(np.int64)
    new_w = cut(w * (fh / h)).astype(np.int64)
    h2 = np.where(wide, fh - 2 * ((fh - new_h) // 2), fh)
    w2 = np.where(wide, fw, fw - 2 * ((fw - new_w) // 2))
    if s.max_tiles_downscale is not None:
        ratio = np.sqrt(h2 * w2 / (s.max_tiles_downscale * n ** 2))
        big = ratio > s.downscale_threshold
        safe = np.where(big, ratio, 1.0)
        h2 = np.where(big, np.floor_divide(h2, safe), h2).astype(np.int64)
        w2 = np.where(big, np.floor_divide(w2, safe), w2).astype(np.int64)
    return np.where(valid, n * n + h2 * w2 + h2, -1)


def original_count_many(h: np.ndarray, w: np.ndarray, preset: Preset) -> np.ndarray:
    """The original repo's token counts, vectorized (the divergence notes' reference)."""
    return count_many(h, w, preset, original=True)


def _select_many(h, w, pinpoints_hw):
    best_eff = np.zeros(h.shape, np.int64)
    best_waste = np.full(h.shape, np.inf)
    best_ch = np.zeros(h.shape, np.int64)
    best_cw = np.zeros(h.shape, np.int64)
    for ch, cw in pinpoints_hw:
        scale = np.minimum(cw / w, ch / h)
        eff = np.minimum((w * scale).astype(np.int64) * (h * scale).astype(np.int64), w * h)
        waste = cw * ch - eff
        take = (eff > best_eff) | ((eff == best_eff) & (waste < best_waste))
        best_eff = np.where(take, eff, best_eff)
        best_waste = np.where(take, waste, best_waste)
        best_ch = np.where(take, ch, best_ch)
        best_cw = np.where(take, cw, best_cw)
    return best_ch, best_cw


# ----------------------------------------------------------------------------- words and charts
def ledger_how(plan: Plan, kind: str) -> str:
    s = plan.preset.settings
    n, tile = s.features_per_side, s.tile_size
    h2, w2 = plan.unpadded_hw.hw
    h3, w3 = plan.final_hw.hw
    if kind == "base":
        return f"whole image squashed to {tile}x{tile}: {n}x{n} feature cells"
    if kind == "newline":
        return f"one learned newline token after each of the {h3} rows"
    feats = plan.features_hw
    text = (f"{plan.grid_rows}x{plan.grid_cols} tiles of {n}x{n} cells = {feats.height}x{feats.width}; "
            f"unpadding keeps {h2}x{w2}")
    if plan.downscaled:
        text += f"; bilinear downscale to {h3}x{w3} (at most ~{s.max_tiles_downscale} tiles' worth)"
    return text + f" = {h3 * w3}"


def why_summary(plan: Plan) -> str:
    win = next(c for c in plan.candidates if c.chosen)
    return (f"The processor tries each of the {len(plan.candidates)} canvases in the list and "
            f"keeps the one that preserves the most image pixels, then the one that wastes the "
            f"least padding, then the first in list order. Winner: **{win.canvas_hw}** "
            f"({win.grid_rows}x{win.grid_cols} tiles), keeping {int(win.scores['effective']):,} px "
            f"and wasting {int(win.scores['wasted']):,}.")


def resize_note(plan: Plan) -> str:
    rh, rw = plan.resized_hw.hw
    factor, _ = scale_factor(plan.image_hw, plan.resized_hw)
    py, px = plan.paste_yx
    pad_h = plan.canvas_hw.height - rh
    pad_w = plan.canvas_hw.width - rw
    pad = (f"{py} px padding above, {pad_h - py} below" if pad_h else
           f"{px} px padding left, {pad_w - px} right" if pad_w else "no padding")
    t, b, l_, r = plan.unpad_cells
    drop = (f"; unpadding drops {t}+{b} feature rows" if t + b else
            f"; unpadding drops {l_}+{r} feature columns" if l_ + r else "")
    return (f"{plan.image_hw} resized {factor} to {plan.resized_hw} on a {plan.canvas_hw} canvas "
            f"({plan.grid_rows}x{plan.grid_cols} tiles), {pad}{drop}.")


def candidates_chart(plan: Plan) -> ChartSpec:
    cands = plan.candidates
    labels = tuple(f"{c.canvas_hw}" + (" ✓" if c.chosen else "") for c in cands)
    series = tuple(Series(name, tuple(float(c.scores[key]) for c in cands), color)
                   for key, name, color in (("effective", "image px kept", "#009e73"),
                                            ("wasted", "canvas px wasted", "#d55e00")))
    return ChartSpec("Why this canvas: most pixels kept, then least waste", "canvas (W x H)",
                     "pixels", labels, series,
                     chosen=next(i for i, c in enumerate(cands) if c.chosen))

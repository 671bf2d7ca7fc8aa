"""SmolVLM2 / SmolVLM / Idefics3: longest edge to L, round up to M-px tiles, split, global last.

Mirrors transformers 5.24 SmolVLMImageProcessor / Idefics3ImageProcessor
(`_resize_output_size_rescale_to_max_len`, `_resize_output_size_scale_below_upper_bound`,
`resize_for_vision_encoder`, `split_images`) and the prompt of `_prompt_split_image`
(`smolvlm/processing_smolvlm.py`). 2026 spec section 4.

The image is resized twice (LANCZOS): its long side to exactly L (up or down), then both sides up
to multiples of the tile M (the aspect changes slightly). With L = 4M (every release) the long
side always gives 4 tiles, so the grid depends only on the aspect ratio: even a 1x1 image becomes
4x4 tiles plus the global image, the H2 x W2 image squashed to M x M, appended last.
"""
from __future__ import annotations

import math

import numpy as np

from ..geometry import Box, Size
from ..layout import KIND_CODE, Layout
from ..presets import SMOLVLM_TOKENS, Preset, SmolVLMSettings
from .base import Candidate, CropSpec, Plan



# ----------------------------------------------------------------------------- geometry
def longest_edge_hw(size_hw: Size, s: SmolVLMSettings) -> Size:
    """First resize: long side to exactly L (`_resize_output_size_rescale_to_max_len`, the short
    side int()-truncated, then made even), then the 4096 clamp (`..._scale_below_upper_bound`)."""
    h, w = size_hw.hw
    aspect = w / h
    if w >= h:
        w, h = s.longest_edge, int(s.longest_edge / aspect)
        h += h % 2
    else:
        h, w = s.longest_edge, int(s.longest_edge * aspect)
        w += w % 2
    h, w = max(h, 1), max(w, 1)
    top = s.max_image_size_px
    aspect = w / h
    if w >= h and w > top:
        w, h = top, int(top / aspect)
    elif h > w and h > top:
        h, w = top, int(top * aspect)
    return Size(max(h, 1), max(w, 1))


def vision_encoder_hw(first_hw: Size, s: SmolVLMSettings) -> Size:
    """Second resize (`resize_for_vision_encoder`): both sides up to multiples of M, the short
    one computed from the rounded long one."""
    h, w = first_hw.hw
    m, aspect = s.tile_size, w / h
    if w >= h:
        w = math.ceil(w / m) * m
        h = math.ceil(int(w / aspect) / m) * m
    else:
        h = math.ceil(h / m) * m
        w = math.ceil(int(h * aspect) / m) * m
    return Size(h, w)


def _candidates(size_hw: Size, first: Size, second: Size, s: SmolVLMSettings
                ) -> tuple[Candidate, ...]:
    """The two resizes as steps (there is no choice among grids: the aspect ratio decides)."""
    m = s.tile_size
    rows, cols = second.height // m, second.width // m
    return (
        Candidate(0, 0, first, {"long_side": max(first.hw), "longest_edge": s.longest_edge},
                  False, f"step 1: long side resized to exactly {s.longest_edge} px "
                         f"({size_hw} -> {first}), short side truncated and made even"),
        Candidate(rows, cols, second, {"tiles": rows * cols, "tile": m}, True,
                  f"chosen: step 2 rounds both sides up to multiples of {m} px ({first} -> "
                  f"{second}): {rows} x {cols} tiles + the global image"),
    )


def _tiles_and_global(size_hw: Size, second: Size, s: SmolVLMSettings, split: bool
                      ) -> tuple[CropSpec, ...]:
    m, (h, w) = s.tile_size, size_hw.hw
    global_hw = Size(m, m)
    whole = Box(0, 0, w, h)
    if not split:
        return (CropSpec(0, "thumbnail", -1, -1, global_hw, global_hw, (0, 0), Box(0, 0, m, m), whole),)
    rows, cols = second.height // m, second.width // m
    sx, sy = w / second.width, h / second.height
    crops = []
    for t in range(rows * cols):
        r, c = divmod(t, cols)
        window = Box(c * m, r * m, (c + 1) * m, (r + 1) * m)
        crops.append(CropSpec(t, "tile", r, c, second, second, (0, 0), window,
                              window.scale(sx, sy).clip(size_hw)))
    crops.append(CropSpec(len(crops), "thumbnail", -1, -1, global_hw, global_hw, (0, 0),
                          Box(0, 0, m, m), whole))
    return tuple(crops)


def _special_counts(rows: int, cols: int, s: SmolVLMSettings) -> dict[str, int]:
    if rows == 0:
        return {"fake_token": 2, "global_marker": 1}
    newlines = rows + 1 - (1 if s.merged_double_newline else 0)
    return {"fake_token": rows * cols + 2, "tile_marker": rows * cols, "global_marker": 1,
            "text_newline": newlines}


def plan(size_hw: Size, preset: Preset) -> Plan:
    s: SmolVLMSettings = preset.settings
    m, n = s.tile_size, s.image_seq_len
    if s.do_image_splitting:
        first = longest_edge_hw(size_hw, s)
        second = vision_encoder_hw(first, s)
        split = second.height > m or second.width > m
    else:
        first, second, split = longest_edge_hw(size_hw, s), Size(m, m), False
    rows, cols = (second.height // m, second.width // m) if split else (0, 0)
    crops = _tiles_and_global(size_hw, second, s, split)
    counts = {"tile": n * rows * cols, "thumbnail": n, **_special_counts(rows, cols, s)}
    counts = {k: v for k, v in counts.items() if v}
    specials = sum(v for k, v in counts.items() if k not in ("tile", "thumbnail"))
    formula = (f"{n} x ({rows} x {cols} tiles + 1 global) = {n * len(crops)} <image>, plus "
               f"{specials} markers = {n * len(crops) + specials}" if split else
               f"{n} <image> (one {m} x {m} view), plus 3 markers = {n + 3}")
    return Plan(preset=preset, image_hw=size_hw, grid_rows=rows, grid_cols=cols,
                divergences=_helper_divergence(first, (rows, cols), s) if split else (),
                canvas_hw=second if split else Size(m, m), resized_hw=second if split else Size(m, m),
                paste_yx=(0, 0), crops=crops,
                candidates_fn=lambda: _candidates(size_hw, first, second, s),
                tokens_by_kind=counts, cell_px=s.cell_size, cells_per_tile=s.cells_per_side,
                formula=formula, resize_chain_hw=(first, second) if split else (first,))


def _helper_divergence(first: Size, grid: tuple[int, int], s: SmolVLMSettings) -> tuple[str, ...]:
    """transformers' counting helper (`get_number_of_image_patches`) rounds the short side of the
    first resize up to tiles directly; the processor recomputes it from the rounded long side.
    They agree whenever the longest edge is a multiple of the tile (every release)."""
    m = s.tile_size
    helper = (math.ceil(first.height / m), math.ceil(first.width / m))
    if helper == grid:
        return ()
    return (f"transformers' helper get_number_of_image_patches gives a {helper[0]} x {helper[1]} grid "
            f"for this image, the processor itself {grid[0]} x {grid[1]} (a longest edge of "
            f"{s.longest_edge} px is not a multiple of the {m} px tile). This explorer follows the "
            "processor.",)


# ----------------------------------------------------------------------------- layout
def _grid_boxes(n_rows: int, n_cols: int, cell: float, sy: float, sx: float, size_hw: Size,
                tile_px: int, k: int) -> np.ndarray:
    """(n_rows*k, n_cols*k, 4) boxes of the token cells of an n_rows x n_cols tile grid, each
    tile k x k cells of `cell` px (the tile's last tile_px - k*cell px are seen by no token)."""
    offs = np.arange(k) * cell
    ys = (np.arange(n_rows)[:, None] * tile_px + offs[None, :]).ravel()
    xs = (np.arange(n_cols)[:, None] * tile_px + offs[None, :]).ravel()
    h, w = size_hw.hw
    y0, y1 = np.minimum(ys * sy, h), np.minimum((ys + cell) * sy, h)
    x0, x1 = np.minimum(xs * sx, w), np.minimum((xs + cell) * sx, w)
    box = np.empty((len(ys), len(xs), 4))
    box[..., 0], box[..., 2] = x0[None, :], x1[None, :]
    box[..., 1], box[..., 3] = y0[:, None], y1[:, None]
    return box


def layout(plan: Plan) -> Layout:
    """Every token in prompt order. Per tile row: for each tile <fake><row_r_col_c> + N <image>,
    then "\\n"; then "\\n" (merged with the row's into one "\\n\\n" token when the tokenizer
    does), <fake><global-img> + N <image> + <fake>. Tile cells sit on the stitched canvas
    (k*rows x k*cols), global cells in their own k x k grid."""
    s: SmolVLMSettings = plan.preset.settings
    k, n, m = s.cells_per_side, s.image_seq_len, s.tile_size
    rows, cols = plan.grid_rows, plan.grid_cols
    h, w = plan.image_hw.hw
    kinds, crops, rrs, ccs, boxes = [], [], [], [], []

    def special(kind: str, row: int = -1, col: int = -1):
        kinds.append(np.array([KIND_CODE[kind]]))
        crops.append(np.array([-1]))
        rrs.append(np.array([row]))
        ccs.append(np.array([col]))
        boxes.append(np.full((1, 4), np.nan))

    def cells(kind: str, crop: int, r: np.ndarray, c: np.ndarray, box: np.ndarray):
        kinds.append(np.full(n, KIND_CODE[kind]))
        crops.append(np.full(n, crop))
        rrs.append(r)
        ccs.append(c)
        boxes.append(box)

    if rows:
        grid = _grid_boxes(rows, cols, s.cell_size, h / plan.canvas_hw.height,
                           w / plan.canvas_hw.width, plan.image_hw, m, k)
        local_r, local_c = np.repeat(np.arange(k), k), np.tile(np.arange(k), k)
        for r in range(rows):
            for c in range(cols):
                special("fake_token")
                special("tile_marker", r, c)
                big_r, big_c = r * k + local_r, c * k + local_c
                cells("tile", r * cols + c, big_r, big_c, grid[big_r, big_c])
            special("text_newline", r)
        if not s.merged_double_newline:
            special("text_newline")
    special("fake_token")
    special("global_marker")
    gbox = _grid_boxes(1, 1, s.cell_size, h / m, w / m, plan.image_hw, m, k).reshape(-1, 4)
    cells("thumbnail", rows * cols, np.repeat(np.arange(k), k), np.tile(np.arange(k), k), gbox)
    special("fake_token")
    return Layout(plan=plan, kind=np.concatenate(kinds).astype(np.int8),
                  crop=np.concatenate(crops).astype(np.int16),
                  row=np.concatenate(rrs).astype(np.int32), col=np.concatenate(ccs).astype(np.int32),
                  box=np.concatenate(boxes))


def prompt_tokens(plan: Plan) -> list[str]:
    """The expanded prompt as token strings, as the processor writes it (tests compare this)."""
    names = {"fake_token": SMOLVLM_TOKENS["fake"], "global_marker": SMOLVLM_TOKENS["global"],
             "tile": plan.preset.image_token, "thumbnail": plan.preset.image_token}
    lay = layout(plan)
    from ..layout import KINDS

    out = []
    double = plan.preset.settings.merged_double_newline
    for i in range(len(lay)):
        kind = KINDS[int(lay.kind[i])]
        if kind == "tile_marker":
            out.append(SMOLVLM_TOKENS["row_col"].format(row=lay.row[i] + 1, col=lay.col[i] + 1))
        elif kind == "text_newline":
            last = lay.row[i] == plan.grid_rows - 1
            out.append("\n\n" if double and last else "\n")
        else:
            out.append(names[kind])
    return out


# ----------------------------------------------------------------------------- counts
def _grid_many(h: np.ndarray, w: np.ndarray, s: SmolVLMSettings) -> tuple[np.ndarray, np.ndarray]:
    """Vectorized rows, cols (0, 0 when unsplit) with the same float operations as `plan`."""
    m, L, top = s.tile_size, s.longest_edge, s.max_image_size_px
    land = w >= h
    aspect = w / h
    h1 = np.where(land, np.trunc(L / aspect), L).astype(np.int64)
    w1 = np.where(land, L, np.trunc(L * aspect)).astype(np.int64)
    h1 = np.maximum(np.where(land, h1 + h1 % 2, h1), 1)
    w1 = np.maximum(np.where(land, w1, w1 + w1 % 2), 1)
    a1 = w1 / h1
    over_w, over_h = (w1 >= h1) & (w1 > top), (h1 > w1) & (h1 > top)
    h1, w1 = (np.maximum(np.where(over_w, np.trunc(top / a1), np.where(over_h, top, h1)), 1).astype(np.int64),
              np.maximum(np.where(over_h, np.trunc(top * a1), np.where(over_w, top, w1)), 1).astype(np.int64))
    a1 = w1 / h1
    land = w1 >= h1
    w2 = np.where(land, -(-w1 // m) * m, 0)
    h2 = np.where(land, np.ceil(np.trunc(w2 / a1) / m) * m, -(-h1 // m) * m).astype(np.int64)
    w2 = np.where(land, w2, np.ceil(np.trunc(h2 * a1) / m) * m).astype(np.int64)
    split = (h2 > m) | (w2 > m)
    return np.where(split, h2 // m, 0), np.where(split, w2 // m, 0)


def _tiles_many(h, w, s: SmolVLMSettings):
    valid = (h >= 1) & (w >= 1)
    h = np.where(valid, h, 1).astype(np.int64)
    w = np.where(valid, w, 1).astype(np.int64)
    if not s.do_image_splitting:
        zero = np.zeros(h.shape, np.int64)
        return valid, zero, zero
    rows, cols = _grid_many(h, w, s)
    return valid, rows, cols


def count_many(h: np.ndarray, w: np.ndarray, preset: Preset) -> np.ndarray:
    s: SmolVLMSettings = preset.settings
    valid, rows, cols = _tiles_many(h, w, s)
    return np.where(valid, s.image_seq_len * (rows * cols + 1), -1)


def count_many_total(h: np.ndarray, w: np.ndarray, preset: Preset) -> np.ndarray:
    s: SmolVLMSettings = preset.settings
    valid, rows, cols = _tiles_many(h, w, s)
    n = s.image_seq_len
    split_total = (n + 3) + rows * (cols * (n + 2) + 1) + 1 - int(s.merged_double_newline)
    return np.where(valid, np.where(rows > 0, split_total, n + 3), -1)


# ----------------------------------------------------------------------------- text hooks
def why_summary(plan: Plan) -> str:
    s: SmolVLMSettings = plan.preset.settings
    if not plan.grid_rows:
        return (f"The image is squashed to one {s.tile_size} x {s.tile_size} view "
                f"({s.image_seq_len} tokens); nothing is split.")
    first = plan.resize_chain_hw[0]
    return (f"The long side is resized to exactly {s.longest_edge} px ({plan.image_hw} -> {first}, "
            f"up or down), then both sides are rounded up to multiples of {s.tile_size} px "
            f"({plan.canvas_hw}): **{plan.grid_rows} x {plan.grid_cols} tiles**, decided by the "
            f"aspect ratio alone. A squashed {s.tile_size} x {s.tile_size} global image comes last; "
            f"every tile is preceded by `<fake_token_around_image><row_i_col_j>`.")


def resize_note(plan: Plan) -> str:
    s: SmolVLMSettings = plan.preset.settings
    chain = " -> ".join(str(x) for x in (plan.image_hw, *plan.resize_chain_hw))
    return f"Resized twice with {s.resample} ({chain}); the global view squashes the last to {s.tile_size}x{s.tile_size}."


def ledger_how(plan: Plan, kind: str) -> str:
    s: SmolVLMSettings = plan.preset.settings
    k, n = s.cells_per_side, s.image_seq_len
    per_tile = (f"{s.tile_size}/{s.patch_size} = {s.tile_size // s.patch_size} patches per side, "
                f"pixel shuffle {s.scale_factor}x{s.scale_factor} -> {k} x {k} = {n} per tile")
    return {
        "tile": f"{plan.grid_rows} x {plan.grid_cols} tiles x {n} ({per_tile})",
        "thumbnail": f"the global image squashed to {s.tile_size} x {s.tile_size}: {n}",
        "fake_token": "one before every tile and the global image, one closing the block",
        "tile_marker": "<row_i_col_j> before every tile",
        "global_marker": "<global-img> before the global image",
        "text_newline": ('"\\n" after every row of tiles; the last row\'s and the global image\'s '
                         'leading "\\n" are one "\\n\\n" token' if s.merged_double_newline else
                         '"\\n" after every row of tiles and before the global image'),
    }.get(kind, "")


TEACHING = {
    "grid": ("The long side always becomes 4 tiles (the longest edge is 4 x the tile), so the grid "
             "depends on the aspect ratio alone: a 1x1 image and an 8000x8000 one both get 4x4 "
             "tiles plus the global image."),
    "crops": ("Tiles in reading order, then the global image: the whole (twice resized) image "
              "squashed to one tile. On 384 px tiles the last 6 px of each tile reach no token "
              "(27 patches of 14 px = 378)."),
    "token_map": ("Every tile is preceded by <fake_token_around_image><row_i_col_j>, every row of "
                  "tiles ends with a newline, the global image by <global-img>; these markers have "
                  "no pixels, so the map shows only the <image> cells."),
    "ledger": ("The markers are real prompt tokens: they count towards the context length, so the "
               "total is above the <image> count."),
}


def teaching(view: str) -> str | None:
    return TEACHING.get(view)

"""Pictures of a plan, drawn with numpy / Pillow: the grid overlay, the crops, the token map.

Everything is drawn from one description of the token layout, `panels(plan, layout)`: each
panel is a grid of cells laid over the original image (extended by any padding), every cell
holding the index of the visual token it becomes (or -1). The overlay, the token map and the
click lookup all read the same panels, so a picture and a count can never disagree.

Coordinates: "original px" are pixels of the uploaded image, x right and y down, and may be
negative or beyond the image where LLaVA pads. Sizes are (height, width) as elsewhere; PIL's
(width, height) appears only at calls into PIL.

Speed: nothing loops over tokens in Python. Drawing works on a display copy of at most
~1000 px a side; a 12 MP original is box-reduced once (`Source`) before any resize.
Never imports gradio.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import dataclasses
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from .geometry import Size
from .layout import KIND_CODE, KIND_INFO, KIND_LABELS, KINDS, Layout, TokenInfo
from .render import CUT_FIRST_KINDS, pad_to_canvas, render_crops, resample_of, resize, scaled
from .strategies import hook
from .strategies.base import CropSpec, Plan

# One colour per token kind (layout.KIND_INFO).
KIND_COLORS: dict[str, tuple[int, int, int]] = {k: v.rgb for k, v in KIND_INFO.items()}
KINDS_BY_CODE = dict(enumerate(KINDS))
PAD_RGB = (52, 52, 60)  # padding the processor adds (dark, hatched)
DROP_RGB = (213, 94, 0)  # feature rows / columns that unpadding removes again (hatched red)
GRID_RGB = (255, 255, 255)
TILE_RGB = (255, 255, 0)
TINT = 0.38  # how strongly a token map cell is tinted with its kind's colour

OVERLAY_MAX_SIDE = 900  # overlay drawing, px
DISPLAY_SIDE = 1000  # drawings read a copy of the original reduced to about this size
MAP_PANEL_HEIGHT = 420  # token map: each panel's drawing height, px
MAP_PANEL_MAX_WIDTH = 620
NEWLINE_STRIP = 12  # px: the column of newline markers right of a LLaVA tile panel
TITLE_SIZE = 13  # px: token map panel titles
TITLE_LINE = 17  # px per title line
MIN_SLOT = 230  # px: a token map panel's slot is at least this wide, so its title can wrap
GAP = 14  # px between panels
CROP_MAX_SIDE = 896  # larger crops (Qwen's / Gemma 4's single resized image) are shown scaled
#                      down; Gemma 3's 896 views fit


def hex_color(rgb: tuple[int, int, int]) -> str:
    return "#%02x%02x%02x" % rgb


# ----------------------------------------------------------------------------- source images
@dataclass(frozen=True, eq=False)
class Source:
    """A copy of the original to draw from. The original's full extent (`full_wh` px) lies at
    `box` in `image`'s pixels: a box-reduced copy's last row / column may be partial."""

    image: Image.Image
    full_wh: tuple[int, int]
    box: tuple[float, float, float, float]

    @classmethod
    def of(cls, image: "Image.Image | Source") -> "Source":
        if isinstance(image, Source):
            return image
        rgb = image if image.mode == "RGB" else image.convert("RGB")
        return cls(rgb, rgb.size, (0.0, 0.0, float(rgb.width), float(rgb.height)))

    @property
    def exact(self) -> bool:
        """Still the original's own pixels."""
        return self.image.size == self.full_wh

    def reduce(self, k: int) -> "Source":
        if k < 2:
            return self
        return Source(self.image.reduce(k), self.full_wh, tuple(v / k for v in self.box))

    def covers(self, target_hw: Size) -> bool:
        """At least as many pixels as `target_hw` on both axes (resizing to it never upsamples)."""
        w, h = self.image.size
        return w >= target_hw.width and h >= target_hw.height

    def reduced_to_cover(self, targets_hw) -> "Source":
        """Box-reduced by the largest integer that still covers every target. A box reduction
        followed by a bicubic resize stays within a few grey levels of a full-resolution bicubic
        resize (tests/test_views.py measures it) at a fraction of the cost."""
        w, h = self.image.size
        k = min(min(w / t.width, h / t.height) for t in targets_hw)
        return self.reduce(int(k))

    def resized(self, out_wh: tuple[int, int], resample=Image.Resampling.BILINEAR,
                region: tuple[float, float, float, float] | None = None) -> Image.Image:
        """The original's extent (or `region` of it, in original px) resampled to `out_wh`."""
        if region is None and tuple(out_wh) == self.image.size and self.exact:
            return self.image
        box = self.box
        if region is not None:
            sx, sy = (box[2] - box[0]) / self.full_wh[0], (box[3] - box[1]) / self.full_wh[1]
            box = (box[0] + region[0] * sx, box[1] + region[1] * sy,
                   box[0] + region[2] * sx, box[1] + region[3] * sy)
        return resize(self.image, tuple(out_wh), resample, box=box)


def display_source(image: "Image.Image | Source", max_side: int = DISPLAY_SIDE) -> Source:
    """A copy for drawing: box-reduced by an integer factor to under 2x `max_side` a side."""
    src = Source.of(image)
    return src.reduce(int(max(src.image.size) / max_side))


# ----------------------------------------------------------------------------- panels
@dataclass(frozen=True, eq=False)
class Panel:
    """A grid of token cells over (part of) the original image, in original px.

    Cell (r, c) spans [col_start[c], col_end[c]) x [row_start[r], row_end[r]); pixels between
    cells (SigLIP's 6 px per 384 px tile) belong to no cell.
    """

    key: str  # "base", "tiles", "image", "thumbnail"
    kind: str  # the kind of every token in the grid (newlines aside): a key of KIND_COLORS
    title: str
    extent: tuple[float, float, float, float]  # x0, y0, x1, y1 drawn (padding included)
    row_start: np.ndarray  # (nr,)
    row_end: np.ndarray
    col_start: np.ndarray  # (nc,)
    col_end: np.ndarray
    tokens: np.ndarray  # (nr, nc) token index in the sequence, -1 where no token
    newlines: np.ndarray | None = None  # (nr,) newline token ending row r, -1 if none
    dropped: tuple[tuple[float, float, float, float], ...] = ()  # bands unpadding removes
    tile_grid: tuple[int, int] = (1, 1)  # tiles (rows, cols) evenly dividing the extent
    tile_cells: int = 0  # > 0: tiles are tile_cells x tile_cells cells (generic stitched grids)


def _even(lo: float, hi: float, n: int) -> tuple[np.ndarray, np.ndarray]:
    edges = np.linspace(lo, hi, n + 1)
    return edges[:-1], edges[1:]


def _fill(layout: Layout, kinds: tuple[str, ...], nr: int, nc: int) -> np.ndarray:
    """(nr, nc) grid of the indices of `kinds` tokens, placed by their layout (row, col)."""
    grid = np.full((nr, nc), -1, np.int64)
    idx = np.nonzero(np.isin(layout.kind, [KIND_CODE[k] for k in kinds]) & (layout.col >= 0))[0]
    grid[layout.row[idx], layout.col[idx]] = idx
    return grid


def _canvas_scale(plan: Plan) -> tuple[float, float]:
    """Original px per canvas px (sx, sy)."""
    return (plan.image_hw.width / plan.resized_hw.width, plan.image_hw.height / plan.resized_hw.height)


def canvas_extent(plan: Plan) -> tuple[float, float, float, float]:
    """The whole canvas (image + padding) in original px."""
    sx, sy = _canvas_scale(plan)
    py, px = plan.paste_yx
    return (-px * sx, -py * sy, (plan.canvas_hw.width - px) * sx, (plan.canvas_hw.height - py) * sy)


def _whole(plan: Plan) -> tuple[float, float, float, float]:
    return (0.0, 0.0, float(plan.image_hw.width), float(plan.image_hw.height))


def _llava_feature_edges(plan: Plan) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Start / end (original px) of every canvas feature row and column, before unpadding."""
    s = plan.preset.settings
    n, tile, p = s.features_per_side, s.tile_size, s.patch_size
    sx, sy = _canvas_scale(plan)
    rr = np.arange(plan.features_hw.height)
    cc = np.arange(plan.features_hw.width)
    y0 = ((rr // n) * tile + (rr % n) * p - plan.paste_yx[0]) * sy
    x0 = ((cc // n) * tile + (cc % n) * p - plan.paste_yx[1]) * sx
    return y0, y0 + p * sy, x0, x0 + p * sx


def _kept_bounds(plan: Plan, edges) -> tuple[float, float, float, float]:
    """x0, y0, x1, y1 (original px) of the feature cells unpadding keeps."""
    y0, y1, x0, x1 = edges
    top, bottom, left, right = plan.unpad_cells
    last_r = max(top, len(y0) - bottom - 1)  # unpadding may keep no row at all (aspect > ~600)
    last_c = max(left, len(x0) - right - 1)
    return (float(x0[left]), float(y0[top]), float(x1[last_c]), float(y1[last_r]))


def _llava_dropped(plan: Plan, kept) -> tuple[tuple[float, float, float, float], ...]:
    top, bottom, left, right = plan.unpad_cells
    ex0, ey0, ex1, ey1 = canvas_extent(plan)
    kx0, ky0, kx1, ky1 = kept
    bands = [(ex0, ey0, ex1, ky0) if top else None, (ex0, ky1, ex1, ey1) if bottom else None,
             (ex0, ey0, kx0, ey1) if left else None, (kx1, ey0, ex1, ey1) if right else None]
    return tuple(b for b in bands if b is not None)


def _llava_panels(plan: Plan, layout: Layout) -> list[Panel]:
    s = plan.preset.settings
    n, p, tile = s.features_per_side, s.patch_size, s.tile_size
    h, w = plan.image_hw.hw
    ys, xs = np.arange(n) * p * h / tile, np.arange(n) * p * w / tile
    base = Panel("base", "base", f"base image: {n}x{n} tokens (whole image squashed to {tile}x{tile})",
                 _whole(plan), ys, ys + p * h / tile, xs, xs + p * w / tile,
                 _fill(layout, ("base",), n, n))
    edges = _llava_feature_edges(plan)
    kept = _kept_bounds(plan, edges)
    h3, w3 = plan.final_hw.hw
    nl = np.nonzero(layout.kind == KIND_CODE["newline"])[0]
    if plan.downscaled:
        ry0, ry1 = _even(kept[1], kept[3], h3)
        rx0, rx1 = _even(kept[0], kept[2], w3)
        tokens, newlines = _fill(layout, ("tile",), h3, w3), nl
        title = (f"tiles: {h3}x{w3} tokens (bilinear downscale of {plan.unpadded_hw.height}x"
                 f"{plan.unpadded_hw.width} cells) + {h3} newlines")
    else:
        ry0, ry1, rx0, rx1 = edges
        tokens = _fill(layout, ("tile",), plan.features_hw.height, plan.features_hw.width)
        newlines = np.full(plan.features_hw.height, -1, np.int64)
        newlines[layout.row[nl]] = nl
        title = f"tiles: {h3}x{w3} tokens after unpadding + {h3} newlines"
    tiles = Panel("tiles", "tile", title, canvas_extent(plan), ry0, ry1, rx0, rx1, tokens, newlines,
                  _llava_dropped(plan, kept), tile_grid=(plan.grid_rows, plan.grid_cols))
    return [base, tiles]


def _qwen_panels(plan: Plan, layout: Layout) -> list[Panel]:
    f = plan.cell_px
    sx, sy = _canvas_scale(plan)
    ys, xs = np.arange(plan.grid_rows) * f * sy, np.arange(plan.grid_cols) * f * sx
    return [Panel("image", "image", f"{plan.grid_rows}x{plan.grid_cols} tokens, each a {f}x{f} px patch "
                  f"of the {plan.resized_hw} resize", _whole(plan), ys, ys + f * sy, xs, xs + f * sx,
                  _fill(layout, ("image",), plan.grid_rows, plan.grid_cols))]


def _internvl_panels(plan: Plan, layout: Layout) -> list[Panel]:
    s = plan.preset.settings
    m = s.cells_per_side
    h, w = plan.image_hw.hw
    nr, nc = m * plan.grid_rows, m * plan.grid_cols
    out = [Panel("tiles", "tile", f"tiles: {plan.grid_rows}x{plan.grid_cols} x {m}x{m} tokens "
                 f"(image squashed to {plan.canvas_hw})", _whole(plan), *_even(0, h, nr),
                 *_even(0, w, nc), _fill(layout, ("tile",), nr, nc),
                 tile_grid=(plan.grid_rows, plan.grid_cols))]
    if "thumbnail" in plan.tokens_by_kind:
        out.append(Panel("thumbnail", "thumbnail", f"thumbnail: {m}x{m} tokens (whole image squashed to "
                         f"{s.tile_size}x{s.tile_size})", _whole(plan), *_even(0, h, m),
                         *_even(0, w, m), _fill(layout, ("thumbnail",), m, m)))
    return out


def _edges_from_boxes(index: np.ndarray, lo: np.ndarray, hi: np.ndarray, n: int
                      ) -> tuple[np.ndarray, np.ndarray]:
    """Start / end of each of `n` rows (or columns): the extreme box sides of its tokens."""
    start = np.full(n, np.inf)
    end = np.full(n, -np.inf)
    ok = ~np.isnan(lo)
    np.minimum.at(start, index[ok], lo[ok])
    np.maximum.at(end, index[ok], hi[ok])
    empty = ~np.isfinite(start)  # a row of padding-only cells: share its neighbour's edge
    if empty.any():
        start[empty], end[empty] = np.nan, np.nan
        filled = np.nonzero(~empty)[0]
        start = np.interp(np.arange(n), filled, start[filled]) if len(filled) else np.zeros(n)
        end = np.interp(np.arange(n), filled, end[filled]) if len(filled) else np.zeros(n)
    return start, end


def _generic_panel(layout: Layout, kind: str, idx: np.ndarray, key: str, title: str) -> Panel:
    rows, cols = layout.row[idx], layout.col[idx]
    nr, nc = int(rows.max()) + 1, int(cols.max()) + 1
    box = layout.box[idx]
    ry0, ry1 = _edges_from_boxes(rows, box[:, 1], box[:, 3], nr)
    rx0, rx1 = _edges_from_boxes(cols, box[:, 0], box[:, 2], nc)
    tokens = np.full((nr, nc), -1, np.int64)
    tokens[rows, cols] = idx
    extent = (float(np.nanmin(rx0)), float(np.nanmin(ry0)), float(np.nanmax(rx1)), float(np.nanmax(ry1)))
    return Panel(key, kind, title, extent, ry0, ry1, rx0, rx1, tokens)


def _attach_row_ends(layout: Layout, panel_list: list[Panel], crops_of: list[set[int]]) -> None:
    """Give each panel the row-end tokens (newlines, breaks) of its crops, by grid row."""
    ends = np.nonzero(np.isin(layout.kind, [KIND_CODE[k] for k, v in KIND_INFO.items()
                                            if v.role == "row_end"]))[0]
    for i, (panel, crops) in enumerate(zip(panel_list, crops_of)):
        mine = ends[np.isin(layout.crop[ends], list(crops))]
        mine = mine[(layout.row[mine] >= 0) & (layout.row[mine] < panel.tokens.shape[0])]
        if len(mine):
            newlines = np.full(panel.tokens.shape[0], -1, np.int64)
            newlines[layout.row[mine]] = mine
            panel_list[i] = dataclasses.replace(panel, newlines=newlines)


def generic_panels(plan: Plan, layout: Layout) -> list[Panel]:
    """Panels read off the layout alone (see layout.KIND_INFO): placeholder tokens grouped by
    kind in sequence order; a kind whose (row, col) cells are unique across its crops is one
    stitched grid, otherwise each crop is its own panel. Cell edges come from the boxes."""
    drawn = [KIND_CODE[k] for k, v in KIND_INFO.items() if v.placeholder and v.role in ("detail", "global")]
    idx_all = np.nonzero(np.isin(layout.kind, drawn) & (layout.row >= 0) & (layout.col >= 0))[0]
    order = []
    for code in layout.kind[idx_all]:
        if code not in order:
            order.append(code)
    out, crops_of = [], []
    for code in order:
        kind = KINDS_BY_CODE[int(code)]
        idx = idx_all[layout.kind[idx_all] == code]
        cells = layout.row[idx].astype(np.int64) * (1 << 20) + layout.col[idx]
        crops = np.unique(layout.crop[idx])
        if len(np.unique(cells)) == len(cells):
            groups = [(crops, idx)]
        else:
            groups = [(np.array([c]), idx[layout.crop[idx] == c]) for c in crops]
        for group_crops, gidx in groups:
            label = KIND_INFO[kind].part
            where = (f"crop {int(group_crops[0])}" if len(group_crops) == 1 and len(groups) > 1
                     else f"{len(group_crops)} crops" if len(group_crops) > 1 else "")
            nr, nc = int(layout.row[gidx].max()) + 1, int(layout.col[gidx].max()) + 1
            title = f"{label}{' (' + where + ')' if where else ''}: {nr}x{nc} cells, {len(gidx):,} tokens"
            key = kind if len(groups) == 1 else f"{kind}-{int(group_crops[0])}"
            panel = _generic_panel(layout, kind, gidx, key, title)
            if len(group_crops) > 1 and plan.cells_per_tile:  # a stitched grid of tiles
                panel = dataclasses.replace(panel, tile_cells=plan.cells_per_tile)
            out.append(panel)
            crops_of.append({int(c) for c in group_crops})
    _attach_row_ends(layout, out, crops_of)
    return out


# Families whose panels need more than the layout (LLaVA's unpadding shows the dropped bands).
PANEL_BUILDERS = {
    "llava_next": _llava_panels,
    "llava_onevision": _llava_panels,
    "qwen2_vl": _qwen_panels,
    "internvl": _internvl_panels,
}


def panels(plan: Plan, layout: Layout) -> list[Panel]:
    """The token grids of `plan`, in sequence order (base first for LLaVA, thumbnail last)."""
    build = PANEL_BUILDERS.get(plan.strategy, generic_panels)
    return build(plan, layout)


def cell_index(starts: np.ndarray, ends: np.ndarray, coords: np.ndarray) -> np.ndarray:
    """The cell each coordinate falls in (-1 outside every cell); vectorized."""
    i = np.searchsorted(starts, coords, side="right") - 1
    safe = np.clip(i, 0, len(starts) - 1)
    return np.where((i >= 0) & (coords < ends[safe]), safe, -1)


# ----------------------------------------------------------------------------- drawing helpers
@dataclass(frozen=True)
class Frame:
    """Original px [x0, x1) x [y0, y1) drawn at `scale` drawing px per original px."""

    x0: float
    y0: float
    x1: float
    y1: float
    scale: float

    @property
    def size_wh(self) -> tuple[int, int]:
        return (max(1, round((self.x1 - self.x0) * self.scale)),
                max(1, round((self.y1 - self.y0) * self.scale)))

    def centers(self) -> tuple[np.ndarray, np.ndarray]:
        """Original-px coordinates of the drawing's pixel centres along y and x."""
        w, h = self.size_wh
        return (self.y0 + (np.arange(h) + 0.5) / self.scale, self.x0 + (np.arange(w) + 0.5) / self.scale)

    def to_px(self, x: float, y: float) -> tuple[int, int]:
        return (round((x - self.x0) * self.scale), round((y - self.y0) * self.scale))


def fit_frame(extent: tuple[float, float, float, float], max_w: float, max_h: float) -> Frame:
    x0, y0, x1, y1 = extent
    scale = min(max_w / max(x1 - x0, 1e-9), max_h / max(y1 - y0, 1e-9))
    return Frame(x0, y0, x1, y1, scale)


def paint_image(source: Source, frame: Frame) -> np.ndarray:
    """(h, w, 3) uint8 drawing of the frame: the image where it lies, padding colour elsewhere."""
    w, h = frame.size_wh
    out = np.empty((h, w, 3), np.uint8)
    out[:] = PAD_RGB
    ix0, iy0 = frame.to_px(0, 0)
    ix1, iy1 = frame.to_px(*source.full_wh)
    if ix1 > ix0 and iy1 > iy0:
        pic = np.asarray(source.resized((ix1 - ix0, iy1 - iy0)))
        cx0, cy0 = max(ix0, 0), max(iy0, 0)
        cx1, cy1 = min(ix1, w), min(iy1, h)
        out[cy0:cy1, cx0:cx1] = pic[cy0 - iy0:cy1 - iy0, cx0 - ix0:cx1 - ix0]
    return out


def hatch(arr: np.ndarray, frame: Frame, rect, rgb, alpha: float, slope: int = 1) -> None:
    """Blend `rgb` into the drawing of `rect` (original px x0, y0, x1, y1), twice as strongly
    on diagonal stripes (slope 1: one direction, -1: the other), in place."""
    (x0, y0), (x1, y1) = frame.to_px(rect[0], rect[1]), frame.to_px(rect[2], rect[3])
    h, w = arr.shape[:2]
    x0, x1, y0, y1 = max(x0, 0), min(x1, w), max(y0, 0), min(y1, h)
    if x1 <= x0 or y1 <= y0:
        return
    stripes = (np.arange(y0, y1)[:, None] + slope * np.arange(x0, x1)[None, :]) % 9 < 3
    a = np.where(stripes, round(min(1.0, 2 * alpha) * 256), round(alpha * 256)).astype(np.uint16)[..., None]
    sub = arr[y0:y1, x0:x1]  # integer blend in 1/256ths: at most 255 * 256, fits uint16
    sub[:] = ((sub * (256 - a) + np.asarray(rgb, np.uint16) * a) >> 8).astype(np.uint8)


def padding_rects(frame: Frame, full_wh: tuple[int, int]) -> list[tuple[float, float, float, float]]:
    """The parts of the frame outside the image (what the processor pads)."""
    w, h = full_wh
    fx0, fy0, fx1, fy1 = frame.x0, frame.y0, frame.x1, frame.y1
    return [(fx0, fy0, fx1, 0.0), (fx0, float(h), fx1, fy1), (fx0, 0.0, 0.0, float(h)),
            (float(w), 0.0, fx1, float(h))]


def shade_padding(arr: np.ndarray, frame: Frame, full_wh, dropped) -> None:
    for rect in padding_rects(frame, full_wh):
        hatch(arr, frame, rect, PAD_RGB, 0.55, slope=1)
    for rect in dropped:
        hatch(arr, frame, rect, DROP_RGB, 0.35, slope=-1)


def _edges(idx: np.ndarray, width: int, min_gap: float) -> np.ndarray:
    """Pixel positions where the cell index changes, `width` px wide; none when cells are
    narrower than `min_gap` px on average (lines would hide the picture)."""
    inside = idx >= 0
    cells = np.unique(idx[inside]).size
    if cells == 0 or inside.sum() / cells < min_gap:
        return np.zeros(0, np.int64)
    change = np.nonzero(np.diff(idx) != 0)[0] + 1
    edges = np.unique((change[:, None] + np.arange(width)[None, :] - width // 2).ravel())
    return edges[(edges >= 0) & (edges < idx.size)]


def grid_lines(arr: np.ndarray, rows: np.ndarray, cols: np.ndarray, rgb, alpha: float,
               width: int = 1, min_gap: float = 3.0) -> None:
    """Blend lines into `arr` (h, w, 3) where the per-pixel cell index (`rows` (h,), `cols`
    (w,), -1 = outside) changes, drawn across the grid only."""
    colour = np.asarray(rgb, np.float32)
    for ys, xs in ((_edges(rows, width, min_gap), np.nonzero(cols >= 0)[0]),
                   (np.nonzero(rows >= 0)[0], _edges(cols, width, min_gap))):
        if ys.size and xs.size:
            ix = np.ix_(ys, xs)
            arr[ix] = (arr[ix] * (1 - alpha) + colour * alpha).astype(np.uint8)


@lru_cache(maxsize=8)
def font(size: int) -> ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError):  # Pillow without FreeType: the fixed bitmap font
        return ImageFont.load_default()


def banner(img: Image.Image, lines: list[str], size: int = 14) -> Image.Image:
    """`img` with `lines` of text in a strip below it (the PNG export carries its caption)."""
    f = font(size)
    draw_w = max(img.width, 320)
    wrapped = [piece for line in lines for piece in _wrap(line, f, draw_w - 12)]
    strip_h = 8 + len(wrapped) * (size + 5)
    out = Image.new("RGB", (draw_w, img.height + strip_h), (255, 255, 255))
    out.paste(img, (0, 0))
    d = ImageDraw.Draw(out)
    for i, text in enumerate(wrapped):
        d.text((6, img.height + 5 + i * (size + 5)), text, fill=(20, 20, 20), font=f)
    return out


def _wrap(text: str, f, width: int) -> list[str]:
    """Greedy word wrap by an average character width (one font measurement per call)."""
    per_char = f.getlength(text) / max(len(text), 1)
    words, lines, cur = text.split(), [], ""
    for word in words:
        trial = f"{cur} {word}".strip()
        if cur and len(trial) * per_char > width:
            lines.append(cur)
            cur = word
        else:
            cur = trial
    return lines + [cur] if cur else lines


# ----------------------------------------------------------------------------- overlay
def resize_note(plan: Plan) -> str:
    """How the image was resized, in one sentence with the factors."""
    note = hook(plan.strategy, "resize_note")
    if note is not None:
        return note(plan)
    views_ = [c for c in plan.crops]
    sizes = sorted({str(c.resize_hw) for c in views_})
    return (f"{plan.image_hw} -> {len(views_)} crop{'s' if len(views_) > 1 else ''} "
            f"(resized to {', '.join(sizes)}) -> {plan.num_tokens:,} tokens.")


def overlay(image: "Image.Image | Source", plan: Plan, layout: Layout,
            max_side: int = OVERLAY_MAX_SIDE, caption: bool = True) -> Image.Image:
    """The original with the chosen canvas and grid drawn on it.

    `image`: the original or a `Source` copy of it (pass `display_source(...)` for big
    images). Padding is dark and hatched; feature rows / columns that unpadding drops are
    hatched red the other way; tile borders are yellow, token cells thin white lines. The
    caption under the picture states the resize factor.
    """
    source = Source.of(image)
    panel = _overlay_panel(panels(plan, layout))
    frame = fit_frame(panel.extent, max_side, max_side)
    arr = paint_image(source, frame)
    shade_padding(arr, frame, source.full_wh, panel.dropped)
    ys, xs = frame.centers()
    grid_lines(arr, cell_index(panel.row_start, panel.row_end, ys),
               cell_index(panel.col_start, panel.col_end, xs), GRID_RGB, 0.45, min_gap=4)
    ty, tx = _tile_index(panel, ys, xs)
    grid_lines(arr, ty, tx, TILE_RGB, 1.0, width=2, min_gap=1)
    img = Image.fromarray(arr)
    return banner(img, [resize_note(plan)]) if caption else img


def _overlay_panel(panel_list: list[Panel]) -> Panel:
    """The grid the overlay draws: the tiles / native patches, else the first high-resolution
    (detail) grid of a generic family, else its first grid (a single whole-image view)."""
    for wanted in (lambda p: p.key in ("tiles", "image"), lambda p: KIND_INFO[p.kind].role == "detail"):
        found = next((p for p in panel_list if wanted(p)), None)
        if found is not None:
            return found
    return panel_list[0]


def _tile_index(panel: Panel, ys: np.ndarray, xs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-pixel tile row / column (-1 outside the extent): tiles divide the extent evenly."""
    if panel.tile_cells:  # tile edges are cell edges: every tile_cells-th cell
        ty = cell_index(panel.row_start, panel.row_end, ys)
        tx = cell_index(panel.col_start, panel.col_end, xs)
        return (np.where(ty >= 0, ty // panel.tile_cells, -1),
                np.where(tx >= 0, tx // panel.tile_cells, -1))
    x0, y0, x1, y1 = panel.extent
    ry, rx = (ys - y0) / (y1 - y0), (xs - x0) / (x1 - x0)
    rows, cols = panel.tile_grid
    ty = np.where((ry >= 0) & (ry < 1), np.floor(ry * rows), -1).astype(np.int64)
    tx = np.where((rx >= 0) & (rx < 1), np.floor(rx * cols), -1).astype(np.int64)
    return ty, tx


# ----------------------------------------------------------------------------- token map
@dataclass(frozen=True, eq=False)
class Placed:
    panel: Panel
    frame: Frame
    left: int  # px in the composite
    top: int
    strip: int  # width of the newline strip (0 if none)
    slot: int  # px reserved for the panel and its title

    @property
    def width(self) -> int:
        return self.frame.size_wh[0] + self.strip

    @property
    def height(self) -> int:
        return self.frame.size_wh[1]


def title_lines(panel: Panel, width: int) -> list[str]:
    return _wrap(panel.title, font(TITLE_SIZE), width)


def place(panel_list: list[Panel], height: int = MAP_PANEL_HEIGHT,
          max_width: int = MAP_PANEL_MAX_WIDTH) -> tuple[list[Placed], tuple[int, int]]:
    """Lay panels out left to right, each in a slot at least MIN_SLOT wide under its wrapped
    title; returns placements and the picture's (width, height)."""
    frames = [fit_frame(p.extent, max_width, height) for p in panel_list]
    strips = [NEWLINE_STRIP if p.newlines is not None else 0 for p in panel_list]
    slots = [max(f.size_wh[0] + s, MIN_SLOT) for f, s in zip(frames, strips)]
    lines = max(len(title_lines(p, w)) for p, w in zip(panel_list, slots))
    top = 6 + lines * TITLE_LINE
    placed, left = [], GAP
    for p, f, strip, slot in zip(panel_list, frames, strips, slots):
        placed.append(Placed(p, f, left, top, strip, slot))
        left += slot + GAP
    return placed, (left, top + max(pl.height for pl in placed) + GAP)


def _panel_cells(pl: Placed) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-pixel row and column of the panel's cells (-1 where no token row / column) and
    the (h, w) token index drawn at each pixel (-1 none)."""
    p = pl.panel
    ys, xs = pl.frame.centers()
    ri, ci = cell_index(p.row_start, p.row_end, ys), cell_index(p.col_start, p.col_end, xs)
    live_r, live_c = (p.tokens >= 0).any(axis=1), (p.tokens >= 0).any(axis=0)
    ri = np.where((ri >= 0) & live_r[np.maximum(ri, 0)], ri, -1)  # unpadded rows: no cells
    ci = np.where((ci >= 0) & live_c[np.maximum(ci, 0)], ci, -1)
    tok = p.tokens[np.maximum(ri, 0)][:, np.maximum(ci, 0)]
    return ri, ci, np.where((ri >= 0)[:, None] & (ci >= 0)[None, :], tok, -1)


def tint_rect(pic: np.ndarray, rows: np.ndarray, cols: np.ndarray, rgb) -> None:
    """Blend `rgb` at TINT into the bounding rectangle of the pixels whose row / column index
    is >= 0 (a panel's token cells are one rectangle; unpadded bands lie outside it)."""
    ys, xs = np.nonzero(rows >= 0)[0], np.nonzero(cols >= 0)[0]
    if ys.size == 0 or xs.size == 0:
        return
    sub = pic[ys[0]:ys[-1] + 1, xs[0]:xs[-1] + 1]
    a = round(TINT * 256)
    sub[:] = ((sub.astype(np.uint16) * (256 - a) + np.asarray(rgb, np.uint16) * a) >> 8).astype(np.uint8)


def _paint_panel(arr: np.ndarray, pl: Placed, source: Source, layout: Layout) -> None:
    pic = paint_image(source, pl.frame)
    ri, ci, _ = _panel_cells(pl)
    tint_rect(pic, ri, ci, KIND_COLORS[pl.panel.kind])
    shade_padding(pic, pl.frame, source.full_wh, pl.panel.dropped)
    grid_lines(pic, ri, ci, (20, 20, 20), 0.55, min_gap=3)
    if pl.panel.key == "tiles":
        grid_lines(pic, *_tile_index(pl.panel, *pl.frame.centers()), TILE_RGB, 1.0, width=2, min_gap=1)
    h, w = pic.shape[:2]
    arr[pl.top:pl.top + h, pl.left:pl.left + w] = pic
    if pl.strip:
        nl = np.where(ri >= 0, pl.panel.newlines[np.maximum(ri, 0)], -1)
        strip = np.full((h, pl.strip, 3), 255, np.uint8)
        strip[nl >= 0, 2:] = KIND_COLORS["newline"]
        grid_lines(strip, np.where(nl >= 0, ri, -1), np.zeros(pl.strip, np.int64), (255, 255, 255),
                   1.0, min_gap=3)
        arr[pl.top:pl.top + h, pl.left + w:pl.left + w + pl.strip] = strip


def token_map(image: "Image.Image | Source", plan: Plan, layout: Layout) -> Image.Image:
    """Every visual token as a cell over the image, coloured by kind; newlines in a pink strip
    right of the tile grid; wrapper tokens are counted in the legend (they have no pixels)."""
    source = Source.of(image)
    placed, (w, h) = place(panels(plan, layout))
    arr = np.full((h, w, 3), 255, np.uint8)
    for pl in placed:
        _paint_panel(arr, pl, source, layout)
    img = Image.fromarray(arr)
    d = ImageDraw.Draw(img)
    for pl in placed:
        for i, line in enumerate(title_lines(pl.panel, pl.slot)):
            d.text((pl.left, 4 + i * TITLE_LINE), line, fill=(20, 20, 20), font=font(TITLE_SIZE))
    return banner(img, [legend_text(layout)], size=13)


def legend_text(layout: Layout) -> str:
    counts = layout.counts_by_kind()
    names = {"base": "base", "tile": "tile", "newline": "newline (pink strip)",
             "thumbnail": "thumbnail", "image": "patch",
             "wrapper": "start/end marker (no pixels)"}
    def name(k: str) -> str:  # kinds without a short name: their ledger part
        info = KIND_INFO[k]
        return names.get(k) or (info.part + (" (no pixels)" if info.role == "special" else ""))
    return "Colours: " + ", ".join(f"{name(k)} {n}" for k, n in counts.items()) + \
        f" = {len(layout)} tokens in total. Dark hatching: padding; red hatching: padding rows " \
        "cut from the features again (unpadding)."


def token_at(plan: Plan, layout: Layout, x: float, y: float) -> TokenInfo | None:
    """The token drawn at pixel (x, y) of `token_map`'s picture, or None (background, padding
    cell with no token, a title)."""
    placed, _ = place(panels(plan, layout))
    for pl in placed:
        fw, fh = pl.frame.size_wh
        if not (pl.left <= x < pl.left + pl.width and pl.top <= y < pl.top + pl.height):
            continue
        oy = pl.frame.y0 + (y - pl.top + 0.5) / pl.frame.scale
        r = int(cell_index(pl.panel.row_start, pl.panel.row_end, np.array([oy]))[0])
        if r < 0:
            return None
        if x >= pl.left + fw:  # the newline strip
            idx = int(pl.panel.newlines[r])
        else:
            ox = pl.frame.x0 + (x - pl.left + 0.5) / pl.frame.scale
            c = int(cell_index(pl.panel.col_start, pl.panel.col_end, np.array([ox]))[0])
            idx = int(pl.panel.tokens[r, c]) if c >= 0 else -1
        return layout.token(idx) if idx >= 0 else None
    return None


def token_cell_px(plan: Plan, layout: Layout, index: int) -> tuple[int, int, int, int] | None:
    """The (x0, y0, x1, y1) pixels of token `index`'s cell in `token_map`'s picture (a newline:
    its stretch of the strip), or None for a token that is not drawn (wrappers, markers)."""
    for pl in place(panels(plan, layout))[0]:
        p = pl.panel
        fw, _ = pl.frame.size_wh
        hit = np.argwhere(p.tokens == index)
        if hit.size:
            r, c = hit[0]
            x0, y0 = pl.frame.to_px(p.col_start[c], p.row_start[r])
            x1, y1 = pl.frame.to_px(p.col_end[c], p.row_end[r])
        elif p.newlines is not None and (p.newlines == index).any():
            r = int(np.flatnonzero(p.newlines == index)[0])
            (_, y0), (_, y1) = pl.frame.to_px(0, p.row_start[r]), pl.frame.to_px(0, p.row_end[r])
            x0, x1 = fw, fw + pl.strip
        else:
            continue
        return (pl.left + x0, pl.top + y0, pl.left + max(x1, x0 + 1), pl.top + max(y1, y0 + 1))
    return None


MARK_RGB = ((0, 0, 0), (255, 214, 0))  # outer, inner outline of the clicked cell
MARK_MIN = 10  # px: a tiny cell gets a mark at least this big, centred on it


def mark_cell(picture: Image.Image, rect: tuple[int, int, int, int]) -> Image.Image:
    """A copy of the token map with a black-and-yellow frame around `rect`."""
    x0, y0, x1, y1 = rect
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    half_w, half_h = max(x1 - x0, MARK_MIN) / 2, max(y1 - y0, MARK_MIN) / 2
    box = [round(cx - half_w), round(cy - half_h), round(cx + half_w), round(cy + half_h)]
    out = picture.copy()
    d = ImageDraw.Draw(out)
    d.rectangle([box[0] - 2, box[1] - 2, box[2] + 2, box[3] + 2], outline=MARK_RGB[0], width=2)
    d.rectangle(box, outline=MARK_RGB[1], width=2)
    return out


def describe_token(plan: Plan, layout: Layout, info: TokenInfo | None) -> str:
    """Markdown for a clicked token: its place in the sequence, kind, crop and source box.
    Counted from 1 like the token total; the 0-based index (the JSON export's) in brackets."""
    if info is None:
        return "No token there: click a coloured cell (padding and gaps have no token)."
    n = len(layout)
    lines = [f"**Token {info.index + 1:,} of {n:,}** in the image's part of the prompt "
             f"(index {info.index} counting from 0, as in the exported JSON)",
             f"- kind: **{info.kind}**, {KIND_LABELS[info.kind]}"]
    if info.crop >= 0:
        spec = plan.crops[info.crop]
        lines.append(f"- from crop {info.crop + 1} of {plan.num_crops}: {crop_label(plan, spec)}")
    if info.kind == "newline":
        lines.append(f"- ends feature row {info.row + 1}; a learned vector, it reads no pixels")
    elif info.row >= 0:
        lines.append(f"- cell row {info.row + 1}, column {info.col + 1} of its grid")
    if info.box is not None:
        x0, y0, x1, y1 = info.box
        lines.append(f"- source: x {x0:.0f}-{x1:.0f}, y {y0:.0f}-{y1:.0f} of the original "
                     f"({x1 - x0:.0f}x{y1 - y0:.0f} px)")
    elif info.kind != "newline":
        lines.append("- source: padding only (no original pixels)")
    if info.blended:
        lines.append("- blends up to 4 neighbouring cells (OneVision's bilinear downscale)")
    return "\n".join(lines)


# ----------------------------------------------------------------------------- crops
def crop_label(plan: Plan, spec: CropSpec) -> str:
    size = f"{spec.out_hw.width}x{spec.out_hw.height}"
    if spec.kind == "base":
        return f"base image: the whole image squashed to {size}"
    if spec.kind == "thumbnail":
        return f"thumbnail: the whole image squashed to {size}"
    if spec.kind == "image":
        return f"the whole image resized to {size} (no tiles)"
    return f"tile row {spec.row + 1}, column {spec.col + 1} ({size})"


def _scaled_canvas(source: Source, spec: CropSpec, fill: int, s: float,
                   resample=Image.Resampling.BICUBIC) -> Image.Image:
    """The canvas `spec`'s window is cut from, at scale `s` of its true size (a crop the
    processor cuts before resizing, render.CUT_FIRST_KINDS, resamples only its source box)."""
    size = (scaled(spec.resize_hw.width, s), scaled(spec.resize_hw.height, s))
    region = tuple(spec.source) if spec.kind in CUT_FIRST_KINDS else None
    return pad_to_canvas(source.resized(size, resample, region), spec, fill, s)


def _crop_key(spec: CropSpec, s: float) -> tuple:
    return (spec.resize_hw, spec.canvas_hw, spec.paste_yx, s,
            spec.source if spec.kind in CUT_FIRST_KINDS else None)


def crop_images(image: "Image.Image | Source", plan: Plan, max_side: int = CROP_MAX_SIDE,
                display: Source | None = None) -> tuple[list[Image.Image], bool]:
    """The crops in pixel_values order, and whether they are pixel-exact.

    Exact (`render.render_crops`) when every resize comes from the full original. A big original
    is box-reduced first (`Source.reduced_to_cover`; `display`, a copy already made, is reused
    when it covers a target): same geometry, pixel values within a few grey levels, at a
    fraction of the time. Crops larger than `max_side` (Qwen's single image) are scaled down.
    """
    full = Source.of(image)
    fill = getattr(plan.preset.settings, "pad_fill", 0)
    jobs: dict[tuple, tuple[CropSpec, float]] = {}
    for spec in plan.crops:  # one resize per canvas: the tiles of one canvas share it
        s = min(1.0, max_side / max(spec.out_hw.hw))
        jobs.setdefault(_crop_key(spec, s), (spec, s))
    targets = {key: Size(round(sp.resize_hw.height * s), round(sp.resize_hw.width * s))
               for key, (sp, s) in jobs.items()}
    pool = [display] if display is not None and display.full_wh == full.full_wh else []
    uncovered = [t for t in targets.values() if not any(src.covers(t) for src in pool)]
    if uncovered:
        pool.append(full.reduced_to_cover(uncovered))
    choice = {key: min((c for c in pool if c.covers(t)), key=lambda c: c.image.width, default=full)
              for key, t in targets.items()}
    if all(s == 1.0 for _, s in jobs.values()) and all(c.exact for c in choice.values()):
        return render_crops(full.image, plan), True
    with ThreadPoolExecutor(max_workers=max(1, len(jobs))) as pool:  # resizes release the GIL
        futures = {key: pool.submit(_scaled_canvas, choice[key], spec, fill, s, resample_of(plan))
                   for key, (spec, s) in jobs.items()}
        canvases = {key: f.result() for key, f in futures.items()}
    out = []
    for spec in plan.crops:
        s = min(1.0, max_side / max(spec.out_hw.hw))
        w = spec.window
        out.append(canvases[_crop_key(spec, s)].crop(
            (round(w.x0 * s), round(w.y0 * s), round(w.x1 * s), round(w.y1 * s))))
    return out, False


def crop_gallery(image: "Image.Image | Source", plan: Plan, max_side: int = CROP_MAX_SIDE,
                 display: Source | None = None) -> tuple[list[tuple[Image.Image, str]], bool]:
    """(picture, caption) per crop, in the order the model receives them, and whether the
    pictures are pixel-exact (see `crop_images`)."""
    crops, exact = crop_images(image, plan, max_side, display)
    out = []
    for spec, pic in zip(plan.crops, crops):
        label = f"#{spec.index + 1} {crop_label(plan, spec)}"
        if pic.size != spec.out_hw.wh:
            label += f", shown at {pic.width}x{pic.height}"
        out.append((pic, label))
    return out, exact

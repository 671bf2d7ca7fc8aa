"""Per-token attention scores -> heat over the ORIGINAL image, through the token layout.

Nothing here assumes a square grid: every visual token carries its source box in original
pixels (layout.py), so the same code stitches LLaVA-NeXT tiles back (unpadding and paste
offsets are already in the boxes), spreads LLaVA-OneVision's bilinear-downscaled tokens over
the cells they blend (by their weights), and keeps the global view -- LLaVA's squashed base
image, InternVL's thumbnail -- in its own panel, since it covers the whole image a second time.
Newline tokens cover no pixels; their share is reported as a number.

Scores are renormalised over the image tokens, so each map shows where, within the image, the
attention went; how much went to the image at all (vs text and sinks) is reported beside it.

numpy only (Pillow inside the overlay renderer); never imports torch or gradio.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .layout import KIND_CODE, KIND_INFO, KINDS, Layout, kinds_with_role

CAPTION = (
    "Attention is not an explanation. This map shows where the answer's attention weights "
    "went among the image tokens, averaged over the chosen layers and heads; it does not show "
    "which pixels caused the answer, and a model can attend to a region without using it (or "
    "use one it barely attends to).")
NEWLINE_NOTE = (
    "Newline tokens: LLaVA-NeXT and OneVision append a learned 'newline' token after every row "
    "of the tile grid. It carries no pixels, so its share is given as a number, not drawn.")
SINK_NOTE = (
    "Sinks: some tokens collect a large share of attention whatever the question (the first "
    "token, <|vision_start|> / <img> markers, the first image tokens, newline tokens). Image "
    "tokens with more than {factor:g}x the uniform share are listed; 'hide sinks' leaves them "
    "out before renormalising so the rest of the map stays visible.")
PANEL_LABELS = {"tiles": "high-resolution tiles, stitched onto the original image",
                "image": "native-resolution tokens on the original image",
                "base": "base image (the whole image squashed to one tile)",
                "thumbnail": "thumbnail (the whole image at one tile)"}
SHORT_LABELS = {"tiles": "high-resolution tiles", "image": "image", "base": "base image",
                "thumbnail": "thumbnail"}
DEFAULT_SINK_FACTOR = 20.0


def panel_label(name: str) -> str:
    """A heat panel's caption: the named ones above, else the kind's own label."""
    return PANEL_LABELS.get(name) or (KIND_INFO[name].label if name in KIND_INFO else name)
_DETAIL_KINDS = tuple(KIND_CODE[k] for k in kinds_with_role("detail"))
_GLOBAL_KINDS = tuple(KIND_CODE[k] for k in kinds_with_role("global"))
_ROW_END_KINDS = tuple(KIND_CODE[k] for k in kinds_with_role("row_end"))
DETAIL_PANELS = ("tiles", "image")  # the names map_heat gives the high-resolution panel


# ----------------------------------------------------------------------------- selecting scores
def select_scores(per_layer: np.ndarray, layers: tuple[int, int] | None = None,
                  token: int | None = None) -> np.ndarray:
    """(layers, T, K) captured attention -> (K,): mean over the layer range [lo, hi]
    (inclusive, indices into the first axis), then over all answer tokens or just `token`."""
    arr = np.asarray(per_layer)
    if arr.ndim != 3:
        raise ValueError(f"expected (layers, answer tokens, keys), got shape {arr.shape}")
    lo, hi = (0, arr.shape[0] - 1) if layers is None else (int(layers[0]), int(layers[1]))
    if not 0 <= lo <= hi < arr.shape[0]:
        raise ValueError(f"layer range {lo}..{hi} is outside 0..{arr.shape[0] - 1}")
    arr = arr[lo:hi + 1].mean(axis=0, dtype=np.float64)  # (T, K)
    if token is None:
        return arr.mean(axis=0)
    if not 0 <= token < arr.shape[0]:
        raise ValueError(f"answer token {token} is outside 0..{arr.shape[0] - 1}")
    return arr[token]


def renormalise(scores: np.ndarray, drop: np.ndarray | None = None) -> np.ndarray:
    """Scores as a distribution over image tokens (sum 1); `drop` (indices) are zeroed first."""
    p = np.clip(np.asarray(scores, dtype=np.float64), 0.0, None)
    if drop is not None and len(drop):
        p = p.copy()
        p[np.asarray(drop, dtype=np.int64)] = 0.0
    total = p.sum()
    if total <= 0:
        raise ValueError("the selected tokens received no attention at all")
    return p / total


def find_sinks(p: np.ndarray, factor: float = DEFAULT_SINK_FACTOR) -> np.ndarray:
    """Indices of image tokens holding more than `factor` times the uniform share, largest first."""
    p = np.asarray(p, dtype=np.float64)
    idx = np.flatnonzero(p > factor / max(1, p.shape[0]))
    return idx[np.argsort(-p[idx], kind="stable")]


# ----------------------------------------------------------------------------- rasterising
def rasterize(boxes: np.ndarray, mass: np.ndarray, out_hw: tuple[int, int]) -> np.ndarray:
    """Spread each box's mass uniformly over its area on an (H, W) pixel grid.

    Boxes are (M, 4) x0, y0, x1, y1 in output pixels (fractions allowed). Each pixel gets
    mass x (overlap area / box area), so a box's mass lands only on the pixels it overlaps and
    the part of a box off the grid is dropped (layout boxes are already clipped to the image).
    Exact area coverage via a 2-D difference array: 16 taps per box, then two cumulative sums.
    """
    h, w = out_hw
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    mass = np.asarray(mass, dtype=np.float64).reshape(-1)
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])  # before clipping
    x0, x1 = np.clip(boxes[:, 0], 0, w), np.clip(boxes[:, 2], 0, w)
    y0, y1 = np.clip(boxes[:, 1], 0, h), np.clip(boxes[:, 3], 0, h)
    keep = np.isfinite(area) & (area > 0) & (mass != 0) & (x1 > x0) & (y1 > y0)
    density = mass[keep] / area[keep]
    xi, xv = _edge_taps(x0[keep], x1[keep])  # (m, 4) positions and values along x
    yi, yv = _edge_taps(y0[keep], y1[keep])
    diff = np.zeros((h + 2, w + 2))
    rows = np.broadcast_to(yi[:, :, None], (yi.shape[0], 4, 4))
    cols = np.broadcast_to(xi[:, None, :], (xi.shape[0], 4, 4))
    vals = density[:, None, None] * yv[:, :, None] * xv[:, None, :]
    np.add.at(diff, (rows.ravel(), cols.ravel()), vals.ravel())
    heat = np.cumsum(np.cumsum(diff, axis=0), axis=1)[:h, :w]
    peak = np.abs(heat).max() if heat.size else 0.0
    heat[np.abs(heat) <= peak * 1e-12] = 0.0  # cumulative-sum round-off outside every box
    return heat


def _edge_taps(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Difference taps whose cumulative sum is each pixel's overlap with [a, b)."""
    fa, fb = np.floor(a), np.floor(b)
    idx = np.stack([fa, fa + 1, fb, fb + 1], axis=1).astype(np.int64)
    val = np.stack([1 - (a - fa), a - fa, -(1 - (b - fb)), -(b - fb)], axis=1)
    return idx, val


# ----------------------------------------------------------------------------- mapping
@dataclass(frozen=True)
class Heat:
    """Image-token attention mapped through one layout. Masses are fractions of the image
    tokens' attention (they sum to 1 across panels, newline and padding)."""

    panels: dict[str, np.ndarray]  # panel name -> (H, W) mass per display pixel
    panel_mass: dict[str, float]  # panel name -> its share
    newline_mass: float
    padding_mass: float  # tokens whose cells lie entirely in padding (no box on the image)
    tile_mass: np.ndarray | None  # (grid_rows, grid_cols) share per high-res tile; Qwen: None
    display_hw: tuple[int, int]
    scale_xy: tuple[float, float]  # display pixels per original pixel
    sinks: tuple[tuple[int, str, float], ...]  # (image-token index, kind, share), largest first
    dropped: tuple[int, ...] = ()  # tokens left out before renormalising
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def global_share(self) -> float:
        return sum(v for k, v in self.panel_mass.items() if k not in DETAIL_PANELS)

    @property
    def detail_share(self) -> float:
        return sum(v for k, v in self.panel_mass.items() if k in DETAIL_PANELS)


def display_size(size_hw: tuple[int, int], max_side: int) -> tuple[int, int]:
    """Heat-map size: the longer side becomes `max_side` (up or down), at least 1 px each."""
    h, w = size_hw
    s = max_side / max(h, w)
    return max(1, round(h * s)), max(1, round(w * s))


def _image_rows(layout: Layout) -> np.ndarray:
    return np.flatnonzero(layout.image_token_mask)


def _parts(layout: Layout, rows: np.ndarray, p: np.ndarray):
    """(boxes (M, 4) original px, mass (M,), token row (M,)) -- one part per token, or per blend
    cell for OneVision's downscaled tokens."""
    if layout.blend_weights is None:
        return layout.box[rows], p, rows
    weights = layout.blend_weights[rows]  # (n, 4)
    boxes = layout.blend_boxes[rows]  # (n, 4, 4)
    plain = weights.sum(axis=1) <= 0  # tokens without blend parts (newlines)
    weights = np.where(plain[:, None], [1.0, 0, 0, 0], weights)
    boxes = np.where(plain[:, None, None], np.concatenate(
        [layout.box[rows][:, None], np.full((len(rows), 3, 4), np.nan)], axis=1), boxes)
    mass = p[:, None] * weights
    return boxes.reshape(-1, 4), mass.reshape(-1), np.repeat(rows, 4)


def map_heat(layout: Layout, scores: np.ndarray, max_side: int = 512, hide_sinks: bool = False,
             sink_factor: float = DEFAULT_SINK_FACTOR) -> Heat:
    """Map raw per-image-token scores (layout placeholder order, wrappers excluded) onto the
    original image. Renormalises over image tokens first."""
    rows = _image_rows(layout)
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    if scores.shape[0] != rows.shape[0]:
        raise ValueError(f"{scores.shape[0]} scores for a layout with {rows.shape[0]} image tokens")
    p_raw = renormalise(scores)
    sinks = find_sinks(p_raw, sink_factor)
    dropped = sinks if hide_sinks else np.zeros(0, np.int64)
    p = renormalise(scores, dropped)
    kinds = layout.kind[rows]
    size_hw = layout.plan.image_hw.hw
    out_hw = display_size(size_hw, max_side)
    sx, sy = out_hw[1] / size_hw[1], out_hw[0] / size_hw[0]
    boxes, mass, part_rows = _parts(layout, rows, p)
    part_kind = layout.kind[part_rows]
    scaled = boxes * [sx, sy, sx, sy]
    on_image = np.isfinite(boxes).all(axis=1)
    panels, panel_mass = {}, {}
    for name, codes in _panel_kinds(layout):
        sel = np.isin(part_kind, codes)
        if sel.any():
            panels[name] = rasterize(scaled[sel & on_image], mass[sel & on_image], out_hw)
            panel_mass[name] = float(mass[sel & on_image].sum())
    newline = float(p[np.isin(kinds, _ROW_END_KINDS)].sum())
    padding = float(mass[~on_image & ~np.isin(part_kind, _ROW_END_KINDS)].sum())
    return Heat(panels=panels, panel_mass=panel_mass, newline_mass=newline, padding_mass=padding,
                tile_mass=_tile_mass(layout, boxes, mass, part_kind, on_image),
                display_hw=out_hw, scale_xy=(sx, sy),
                sinks=tuple((int(i), _kind_name(kinds[i]), float(p_raw[i])) for i in sinks),
                dropped=tuple(int(i) for i in dropped),
                notes=_notes(layout, newline, padding))


def _panel_kinds(layout: Layout):
    """(panel name, kind codes): the high-resolution detail, then each whole-image view."""
    tiled = any(c.kind == "tile" for c in layout.plan.crops)
    yield ("tiles" if tiled else "image"), _DETAIL_KINDS
    for code in _GLOBAL_KINDS:
        yield KINDS[code], (code,)


def _kind_name(code) -> str:
    return KINDS[int(code)]


def _tile_mass(layout: Layout, boxes, mass, part_kind, on_image) -> np.ndarray | None:
    """Share of each high-resolution tile: a part belongs to the tile whose source box holds
    its centre (works for OneVision's blended parts too)."""
    plan = layout.plan
    tiles = [c for c in plan.crops if c.kind == "tile"]
    if not tiles:
        return None
    grid = np.zeros((plan.grid_rows, plan.grid_cols))
    sel = (part_kind == KIND_CODE["tile"]) & on_image
    cx = (boxes[sel, 0] + boxes[sel, 2]) / 2
    cy = (boxes[sel, 1] + boxes[sel, 3]) / 2
    m = mass[sel]
    taken = np.zeros(m.shape[0], bool)
    for spec in tiles:
        s = spec.source
        inside = ~taken & (cx >= s.x0) & (cx < s.x1) & (cy >= s.y0) & (cy < s.y1)
        grid[spec.row, spec.col] += m[inside].sum()
        taken |= inside
    return grid


def _notes(layout: Layout, newline: float, padding: float) -> tuple[str, ...]:
    notes = []
    if np.isin(layout.kind, _ROW_END_KINDS).any():
        notes.append(f"{newline:.1%} of the image attention went to newline tokens. "
                     + NEWLINE_NOTE)
    if padding > 0:
        notes.append(f"{padding:.1%} went to tokens whose cells lie entirely in the black padding "
                     "around the resized image (they cover no original pixels).")
    return tuple(notes)


# ----------------------------------------------------------------------------- drawing
def colorize(heat: np.ndarray) -> np.ndarray:
    """(H, W) -> (H, W, 3) uint8, dark blue -> red -> yellow, scaled to the map's maximum."""
    peak = float(heat.max()) if heat.size else 0.0
    t = heat / peak if peak > 0 else np.zeros_like(heat)
    anchors = np.array([[0.05, 0.05, 0.35], [0.55, 0.1, 0.55], [0.9, 0.25, 0.15],
                        [1.0, 0.65, 0.0], [1.0, 1.0, 0.6]])
    pos = np.clip(t, 0, 1) * (len(anchors) - 1)
    i = np.minimum(pos.astype(np.int64), len(anchors) - 2)
    f = (pos - i)[..., None]
    rgb = anchors[i] * (1 - f) + anchors[i + 1] * f
    return np.rint(rgb * 255).astype(np.uint8)


def render_overlay(image, heat: np.ndarray, alpha: float = 0.6):
    """The original image resized to the heat map's size, dimmed, with the colour map blended
    on top in proportion to sqrt(heat / max). Returns a PIL RGB image."""
    from PIL import Image

    h, w = heat.shape
    base = np.asarray(image.convert("RGB").resize((w, h), Image.Resampling.BILINEAR), np.float64)
    peak = float(heat.max()) if heat.size else 0.0
    a = np.zeros((h, w, 1)) if peak <= 0 else alpha * np.sqrt(np.clip(heat / peak, 0, 1))[..., None]
    out = 0.7 * base * (1 - a) + colorize(heat) * a
    return Image.fromarray(np.clip(np.rint(out), 0, 255).astype(np.uint8))


def render_panels(image, heat: Heat, alpha: float = 0.55) -> list[tuple[object, str]]:
    """[(PIL image, caption)] for every panel, detail first, each caption with its share."""
    out = []
    for name, grid in heat.panels.items():
        out.append((render_overlay(image, grid, alpha),
                    f"{panel_label(name)}: {heat.panel_mass[name]:.1%} of the image attention"))
    return out


def summary(heat: Heat, image_share: float | None = None) -> str:
    """Markdown: the split between global view and tiles, per-tile shares, newline and sinks."""
    lines = []
    if image_share is not None:
        lines.append(f"Image tokens received **{image_share:.1%}** of the attention; the rest went "
                     "to text, markers and earlier answer tokens. The maps below are renormalised "
                     "over image tokens.")
    parts = [f"{SHORT_LABELS.get(k, KIND_INFO[k].part if k in KIND_INFO else k)}: {v:.1%}" for k, v in heat.panel_mass.items()]
    if heat.newline_mass:
        parts.append(f"newline tokens: {heat.newline_mass:.1%}")
    lines.append("Split: " + " | ".join(parts))
    if heat.tile_mass is not None and heat.tile_mass.size > 1:
        grid = " / ".join(" ".join(f"{v:.0%}" for v in row) for row in heat.tile_mass)
        lines.append(f"Per tile (rows separated by /): {grid}")
    if heat.sinks:
        listed = ", ".join(f"#{i} ({k}) {s:.1%}" for i, k, s in heat.sinks[:5])
        lines.append(f"Possible sinks among image tokens: {listed}"
                     + (" -- hidden from the maps" if heat.dropped else ""))
    lines.extend(heat.notes)
    lines.append(CAPTION)
    return "\n\n".join(lines)

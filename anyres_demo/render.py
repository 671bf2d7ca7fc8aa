"""Pixels: the crops exactly as the model receives them (before normalisation).

Mirrors the processors' resize -> pad -> tile order. Only Pillow; never imports gradio or torch.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from PIL import Image

from .strategies.base import CropSpec, Plan


# Crops the processor cuts out of the ORIGINAL image before resizing them (Gemma 3's
# pan-and-scan); every other crop is a window of the resized, padded whole image.
CUT_FIRST_KINDS = ("pas_crop",)
RESAMPLE = {"bicubic": Image.Resampling.BICUBIC, "bilinear": Image.Resampling.BILINEAR,
            "lanczos": Image.Resampling.LANCZOS}
BAND_MIN_PIXELS = 1_000_000  # outputs at least this big are resized in horizontal bands
BANDS = 2


def resize(image: Image.Image, size_wh: tuple[int, int],
           resample: Image.Resampling = Image.Resampling.BICUBIC,
           box: tuple[float, float, float, float] | None = None) -> Image.Image:
    """`image.resize(size_wh, resample, box=box)`, in horizontal bands on parallel threads when
    the output is large and its height splits evenly. Pillow clips each output pixel's filter
    support to the whole image, not to the box, so a band of output rows computed from its
    slice of the box gets the same weights; with equal bands the result is pixel-identical to
    one call (tests/test_render.py checks fixed and random sizes; unequal bands are not: float
    rounding of the band's scale can move a fixed-point weight by one)."""
    w, h = size_wh
    x0, y0, x1, y1 = box if box is not None else (0.0, 0.0, float(image.width), float(image.height))
    if w * h < BAND_MIN_PIXELS or h % BANDS:
        return image.resize(size_wh, resample, box=box)
    edges = [round(h * i / BANDS) for i in range(BANDS + 1)]
    scale = (y1 - y0) / h

    def band(i: int) -> Image.Image:
        lo, hi = edges[i], edges[i + 1]
        return image.resize((w, hi - lo), resample, box=(x0, y0 + lo * scale, x1, y0 + hi * scale))

    with ThreadPoolExecutor(max_workers=BANDS) as pool:  # Pillow releases the GIL here
        parts = list(pool.map(band, range(BANDS)))
    out = Image.new(image.mode, size_wh)
    for lo, part in zip(edges, parts):
        out.paste(part, (0, lo))
    return out


def scaled(n: float, scale: float) -> int:
    """A canvas length at `scale` of its true size (1 at least)."""
    return max(1, round(n * scale))


def pad_to_canvas(resized: Image.Image, spec: CropSpec, fill: int, scale: float = 1.0) -> Image.Image:
    """Paste the resized image onto `spec`'s canvas filled with the pad colour (the processors'
    pad step), at `scale` of the true size; a canvas without padding is the image itself."""
    if spec.canvas_hw == spec.resize_hw and spec.paste_yx == (0, 0):
        return resized
    canvas = Image.new("RGB", (scaled(spec.canvas_hw.width, scale), scaled(spec.canvas_hw.height, scale)),
                       (fill, fill, fill))
    canvas.paste(resized, (round(spec.paste_yx[1] * scale), round(spec.paste_yx[0] * scale)))
    return canvas


def resample_of(plan: Plan) -> Image.Resampling:
    """The preset's resampling filter (bicubic unless the settings say otherwise)."""
    return RESAMPLE[getattr(plan.preset.settings, "resample", "bicubic")]


def _canvas(image: Image.Image, spec: CropSpec, fill: int,
            resample: Image.Resampling = Image.Resampling.BICUBIC) -> Image.Image:
    if spec.kind in CUT_FIRST_KINDS:
        s = spec.source
        image = image.crop((int(s.x0), int(s.y0), int(s.x1), int(s.y1)))
    same = tuple(image.size) == spec.resize_hw.wh  # the last step of a resize chain
    return pad_to_canvas(image if same else resize(image, spec.resize_hw.wh, resample), spec, fill)


def _key(spec: CropSpec) -> tuple:
    cut = spec.source if spec.kind in CUT_FIRST_KINDS else None
    return (spec.resize_hw, spec.canvas_hw, spec.paste_yx, cut)


def _make_canvases(image: Image.Image, specs: list[CropSpec], fill: int,
                   resample: Image.Resampling = Image.Resampling.BICUBIC) -> dict:
    """One resize per distinct canvas. Pillow releases the GIL while resampling, so large images
    resize their canvases (base + tiles, tiles + thumbnail) in parallel threads."""
    if len(specs) > 1 and image.width * image.height > 1_000_000:
        with ThreadPoolExecutor(max_workers=len(specs)) as pool:
            made = list(pool.map(lambda sp: _canvas(image, sp, fill, resample), specs))
    else:
        made = [_canvas(image, sp, fill, resample) for sp in specs]
    return {_key(sp): c for sp, c in zip(specs, made)}


def render_crops(image: Image.Image, plan: Plan) -> list[Image.Image]:
    """The crops of `plan` in pixel_values order, as RGB uint8 PIL images.

    Crops that share a resize (all tiles of one canvas) share one resize of the original.
    """
    if tuple(image.size) != plan.image_hw.wh:
        raise ValueError(f"image is {image.size[0]}x{image.size[1]} but the plan is for "
                         f"{plan.image_hw}")
    if image.mode != "RGB":  # convert() always copies: 65 ms on 12 MP
        image = image.convert("RGB")
    fill = getattr(plan.preset.settings, "pad_fill", 0)
    resample = resample_of(plan)
    for size_hw in plan.resize_chain_hw:  # Pillow returns a copy when the size is unchanged
        image = resize(image, size_hw.wh, resample)
    firsts: dict[tuple, CropSpec] = {}
    for spec in plan.crops:
        firsts.setdefault(_key(spec), spec)
    canvases = _make_canvases(image, list(firsts.values()), fill, resample)
    crops = []
    for spec in plan.crops:
        w = spec.window
        crops.append(canvases[_key(spec)].crop((int(w.x0), int(w.y0), int(w.x1), int(w.y1))))
    return crops


"""Pixels: the crops exactly as the model receives them (before normalisation).

Mirrors the processors' resize -> pad -> tile order: one Pillow resize per distinct canvas, so
the crops are the PIL image processors' bytes. Only Pillow; never imports gradio or torch.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from PIL import Image

from .strategies.base import CropSpec, Plan


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


def _canvas(image: Image.Image, spec: CropSpec, fill: int) -> Image.Image:
    # One Pillow call per canvas, exactly as the *Pil image processors make it. (Cutting a big
    # resize into bands is not identical for every size: Pillow rounds each band's float box
    # on its own and picks the vertical pass first for a band of an image over 100:1 tall.)
    return pad_to_canvas(image.resize(spec.resize_hw.wh, Image.Resampling.BICUBIC), spec, fill)


def _key(spec: CropSpec) -> tuple:
    return (spec.resize_hw, spec.canvas_hw, spec.paste_yx)


def _make_canvases(image: Image.Image, specs: list[CropSpec], fill: int) -> dict:
    """One resize per distinct canvas. Pillow releases the GIL while resampling, so large images
    resize their canvases (base + tiles, tiles + thumbnail) in parallel threads."""
    if len(specs) > 1 and image.width * image.height > 1_000_000:
        with ThreadPoolExecutor(max_workers=len(specs)) as pool:
            made = list(pool.map(lambda sp: _canvas(image, sp, fill), specs))
    else:
        made = [_canvas(image, sp, fill) for sp in specs]
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
    firsts: dict[tuple, CropSpec] = {}
    for spec in plan.crops:
        firsts.setdefault(_key(spec), spec)
    canvases = _make_canvases(image, list(firsts.values()), fill)
    crops = []
    for spec in plan.crops:
        w = spec.window
        crops.append(canvases[_key(spec)].crop((int(w.x0), int(w.y0), int(w.x1), int(w.y1))))
    return crops


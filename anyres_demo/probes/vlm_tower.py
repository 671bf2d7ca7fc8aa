"""Vision-tower probe: where the LOADED VLM's own vision encoder looks, on exactly the crops its
processor makes, stitched back onto the original image the way encoder.py stitches the stand-in.

* Crops: the chat's processor, with the explorer's settings (`chat.prepare_turn`, which also
  checks its image-token count against the engine's plan), makes `pixel_values`: LLaVA's
  (1, crops, 3, s, s) and InternVL's (crops, 3, s, s) are the engine's crops in order; Qwen's are
  flattened 14-px patches in 2x2-merge order with `image_grid_thw` (spec 3.4).
* One pass of the vision tower on them. For that pass only, the tower's attention goes through a
  kernel registered with transformers' AttentionInterface (restored afterwards): sdpa computes
  every layer's output as usual, and in the probed layer the kernel recomputes
  softmax(q k^T * scale) in float32 from the very q and k the tower uses (rotary applied), a few
  query rows at a time, never a whole (heads, n, n) tensor.
* Per crop, mean over heads: CLIP (LLaVA-NeXT) and InternViT have a CLS token, so the score is
  the CLS row (CLS column dropped); SigLIP (OneVision) and Qwen's ViT have none, so it is the
  mean attention each patch RECEIVES (column mean over all queries). Normalised to sum 1.
* The probed layer is the last one whose output reaches the LLM: LLaVA-NeXT reads CLIP's
  hidden_states[-2] (`vision_feature_layer`), so its last block is skipped; Qwen2.5-VL's last
  full-attention block (`fullatt_block_indexes`), as the others attend within 112-px windows.
* Patch sequence -> (H/14, W/14) grid: row-major for the tiled towers; Qwen2.5-VL's window order
  undone, then Qwen's 2x2-merge order. A 384 crop gives 27x27 patches: its last 6 px are unseen.

torch and transformers are imported inside functions.
"""
from __future__ import annotations

import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Iterator, Optional, Sequence

import numpy as np
import spaces
from PIL import Image

from ..layout import KIND_INFO
from ..backends import chat
from . import View, strategy_view
from .encoder import (GLOBAL_KINDS, HIGHRES_KINDS, AttentionResult, CropAttention,
                      EncoderSettings, image_share, panel_summary,
                      stitch)

IMPL_NAME = "anyres_vision_probe"
SESSION_ATTR = "_anyres_tower_session"
PROMPT = "Describe the image."  # the processor needs a prompt; only its pixels are used
_CHUNK_ELEMENTS = 1 << 25  # softmax scores held at once: heads x rows x keys (128 MB fp32)
_REGISTER_LOCK = threading.Lock()

LABEL = "the VLM's own vision encoder (last layer)"
NO_MODEL = ("Load a model in the Chat tab first (its 'Load model now' button, or send a "
            "message): this probe runs that model's own vision tower.")
RANDOM_NOTE = ("⚠️ RANDOM WEIGHTS: the loaded model is a tiny random-weight TEST model, so this "
               "map is noise from untrained weights and means nothing.")
TOWER_NAMES = {  # transformers model_type -> the vision tower's name in captions
    "llava_next": "CLIP ViT", "llava_onevision": "SigLIP ViT", "qwen2_vl": "Qwen2-VL ViT",
    "qwen2_5_vl": "Qwen2.5-VL ViT", "internvl": "InternViT",
    "qwen3_vl": "Qwen3-VL ViT", "qwen3_vl_moe": "Qwen3-VL ViT", "qwen3_5": "Qwen3.5 ViT",
    "llava": "Pixtral ViT", "mistral3": "Pixtral ViT (Mistral Small 3.1)"}


class NoModelLoaded(ValueError):
    """The chat has no model loaded, so there is no vision tower to probe."""


@dataclass
class TowerResult(AttentionResult):
    """AttentionResult (attention_panels and crop_panels take it) plus what was probed."""

    layer: int = -1  # 0-based block of the vision tower
    num_layers: int = 0
    has_cls: bool = False  # CLS-to-patch row (True) or mean attention received (False)
    random_weights: bool = False


@dataclass(frozen=True)
class ProbeLayer:
    index: int  # 0-based block in the vision tower
    count: int  # blocks in the tower
    why: str  # for the caption


# ----------------------------------------------------------------------------- the kernel
class _Session:
    """What one pass collects from the probed layer: one score vector per sequence."""

    def __init__(self, patches: int):
        self.patches = patches  # patches per crop (every crop of a view has the same size)
        self.scores: list[np.ndarray] = []  # call / batch order, CLS dropped: (patches,)
        self.has_cls: Optional[bool] = None
        self.heads = 0


def _softmax_rows(q, k, rows: slice, mask, scale: float):
    """(heads, r, keys) float32 post-softmax weights of query rows `rows`, as eager computes
    them; q (heads, n, dim), k (heads, keys, dim) float32."""
    import torch

    scores = torch.matmul(q[:, rows], k.transpose(1, 2)) * scale
    if mask is not None:
        part = mask[:, rows]
        scores = scores.masked_fill(~part, float("-inf")) if part.dtype == torch.bool \
            else scores + part.float()
    return torch.softmax(scores, dim=-1)


def _cls_row(q, k, mask, scale: float):
    """(keys,) CLS-to-all attention, mean over heads."""
    return _softmax_rows(q, k, slice(0, 1), mask, scale)[:, 0].mean(0)


def _received(q, k, mask, scale: float):
    """(keys,) mean attention each key receives: column mean over queries and heads (sums
    to 1 as every row does), in row chunks."""
    import torch

    heads, n = q.shape[0], q.shape[1]
    step = max(1, _CHUNK_ELEMENTS // max(1, heads * k.shape[1]))
    total = torch.zeros(k.shape[1], dtype=torch.float32, device=q.device)
    for start in range(0, n, step):
        total += _softmax_rows(q, k, slice(start, start + step), mask, scale).sum((0, 1))
    return total / (heads * n)


def _record(session: _Session, query, key, attention_mask, scaling) -> None:
    batch, heads, n, dim = query.shape
    if n not in (session.patches, session.patches + 1):
        raise ValueError(f"the probed vision layer saw {n} tokens per sequence, but each crop "
                         f"has {session.patches} patches (expected that, or one more for a CLS "
                         "token)")
    has_cls = n == session.patches + 1
    scale = scaling if scaling is not None else dim ** -0.5
    k = key.float().repeat_interleave(heads // key.shape[1], dim=1)  # as repeat_kv expands
    for b in range(batch):
        mask = None if attention_mask is None else attention_mask[b]
        q = query[b].float()
        weights = _cls_row(q, k[b], mask, scale) if has_cls else _received(q, k[b], mask, scale)
        session.scores.append(weights.double().cpu().numpy()[1 if has_cls else 0:])
    session.has_cls, session.heads = has_cls, heads


def _probe_attention_forward(module, query, key, value, attention_mask, dropout=0.0,
                             scaling=None, is_causal=None, **kwargs):
    """sdpa for the output; plus the probed layer's scores when a session is attached."""
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    session: Optional[_Session] = getattr(module, SESSION_ATTR, None)
    if session is not None:
        _record(session, query, key, attention_mask, scaling)
    return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout,
                                  scaling=scaling, is_causal=is_causal, **kwargs)


def register_probe_kernel() -> None:
    """Register IMPL_NAME with transformers (idempotent): our kernel + sdpa's mask builder."""
    from transformers import AttentionInterface
    from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, sdpa_mask

    with _REGISTER_LOCK:
        AttentionInterface.register(IMPL_NAME, _probe_attention_forward)
        ALL_MASK_ATTENTION_FUNCTIONS.register(IMPL_NAME, sdpa_mask)


# ----------------------------------------------------------------------------- the tower
def vision_tower(model) -> Any:
    """The vision encoder: `visual` (Qwen) or `vision_tower` (LLaVA, InternVL)."""
    base = getattr(model, "model", model)
    for name in ("visual", "vision_tower"):
        tower = getattr(base, name, None)
        if tower is not None:
            return tower
    raise ValueError(f"{type(model).__name__} has no vision tower (visual / vision_tower)")


def attention_blocks(tower) -> list:
    """The tower's self-attention modules in block order (transformers classes that route
    through AttentionInterface; SigLIP's pooling head uses torch's MultiheadAttention)."""
    mods = [m for m in tower.modules() if type(m).__name__.endswith("Attention")
            and type(m).__module__.startswith("transformers.") and hasattr(m, "config")]
    if not mods:
        raise ValueError(f"found no attention layers in {type(tower).__name__}")
    return mods


def probe_layer(model, num_layers: int) -> ProbeLayer:
    """The last block whose output reaches the LLM (see the module docstring)."""
    vision = vision_tower(model).config
    full = getattr(vision, "fullatt_block_indexes", None)
    if full:
        return ProbeLayer(max(full), num_layers, "the last full-attention block; the others "
                          f"attend only within {vision.window_size}-px windows")
    feature = getattr(model.config, "vision_feature_layer", None)
    if feature is None:
        return ProbeLayer(num_layers - 1, num_layers, "the last block")
    picks = feature if isinstance(feature, (list, tuple)) else [feature]
    # hidden_states has num_layers + 1 entries: [0] the embeddings, [k] block k-1's output
    index = max(int(f) % (num_layers + 1) - 1 for f in picks)
    if index < 0:
        raise ValueError(f"vision_feature_layer {feature} selects the patch embeddings, which "
                         "have no attention to show")
    if index == num_layers - 1:
        return ProbeLayer(index, num_layers, "the last block")
    return ProbeLayer(index, num_layers, f"the last block the LLM reads: vision_feature_layer "
                      f"= {feature}, so the blocks after it never reach the LLM")


@contextmanager
def _routed(blocks: Sequence, target, session: _Session) -> Iterator[None]:
    """The tower's attention through our kernel, with the session on the probed block, for
    one pass; the previous implementation (sdpa, eager, ...) is restored even on errors."""
    register_probe_kernel()
    configs = list({id(m.config): m.config for m in blocks}.values())
    saved = [c._attn_implementation_internal for c in configs]
    for c in configs:
        c._attn_implementation_internal = IMPL_NAME
    setattr(target, SESSION_ATTR, session)
    try:
        yield
    finally:
        for c, previous in zip(configs, saved):
            c._attn_implementation_internal = previous
        setattr(target, SESSION_ATTR, None)


def _run_tower(loaded: chat.LoadedModel, tower, inputs: dict, num_crops: int) -> None:
    import torch

    pixels = inputs["pixel_values"].to(loaded.device, loaded.dtype)
    with torch.inference_mode():
        if "image_grid_thw" in inputs:
            tower(pixels, grid_thw=inputs["image_grid_thw"].to(loaded.device))
        else:
            tower(pixel_values=pixels[0, :num_crops] if pixels.dim() == 5 else pixels)


# ----------------------------------------------------------------------------- geometry
def processor_crops(inputs: dict) -> int:
    """How many crops the processor made of one image (pixel_values' crop axis; Qwen: 1)."""
    if "image_grid_thw" in inputs:
        return int(inputs["image_grid_thw"].shape[0])
    pixels = inputs["pixel_values"]
    return int(pixels.shape[1] if pixels.dim() == 5 else pixels.shape[0])


def patch_grid_hw(view: View, patch: int) -> tuple[int, int]:
    """(rows, cols) of patches per crop: floor(side / patch); every crop has the same size."""
    sizes = {(int(c.window.height), int(c.window.width)) for c in view.crops}
    if len(sizes) != 1:
        raise ValueError(f"the view's crops differ in size ({sorted(sizes)}); the probe runs "
                         "them as one batch")
    h, w = sizes.pop()
    return h // patch, w // patch


def _check_qwen_grid(inputs: dict, grid_hw: tuple[int, int]) -> None:
    t, gh, gw = (int(v) for v in inputs["image_grid_thw"][0])
    if t != 1 or (gh, gw) != grid_hw:
        raise ValueError(f"the processor's image_grid_thw ({t}, {gh}, {gw}) does not match the "
                         f"engine's {grid_hw[0]}x{grid_hw[1]} patch grid of one still image")


def window_to_processor(scores: np.ndarray, tower, grid_thw) -> np.ndarray:
    """Qwen2.5-VL: the tower reorders merge units into attention windows (its window_index,
    undone after the merger); put the scores back in pixel_values order."""
    if not hasattr(tower, "permute_input_for_window_attn"):
        return scores
    from transformers.vision_utils import get_vision_window_index

    cfg = tower.config
    index, _ = get_vision_window_index(grid_thw.cpu(), cfg.spatial_merge_size, cfg.window_size,
                                       cfg.patch_size)
    unit = cfg.spatial_merge_size ** 2
    out = np.empty_like(scores)
    out.reshape(-1, unit)[index.numpy()] = scores.reshape(-1, unit)
    return out


def unmerge(scores: np.ndarray, grid_hw: tuple[int, int], merge: int) -> np.ndarray:
    """pixel_values order (H/28, W/28, 2, 2) -> the (H/14, W/14) patch grid (spec 3.4)."""
    rows, cols = grid_hw
    blocks = scores.reshape(rows // merge, cols // merge, merge, merge)
    return blocks.transpose(0, 2, 1, 3).reshape(rows, cols)


def _grids(session: _Session, loaded: chat.LoadedModel, tower, inputs: dict,
           grid_hw: tuple[int, int]) -> list[np.ndarray]:
    """Each crop's scores on its patch grid, normalised to sum 1."""
    if "image_grid_thw" in inputs:
        merged = window_to_processor(session.scores[0], tower, inputs["image_grid_thw"])
        grids = [unmerge(merged, grid_hw, loaded.source.preset.settings.merge_size)]
    else:
        grids = [s.reshape(grid_hw) for s in session.scores]
    return [g / g.sum() for g in grids]


# ----------------------------------------------------------------------------- entry points
def tower_attention(loaded: chat.LoadedModel, image: Image.Image,
                    overrides: Optional[dict] = None) -> TowerResult:
    """The loaded model's own vision tower on the crops its processor makes of `image` (with
    the explorer's `overrides`), as an AttentionResult for attention_panels / crop_panels."""
    start = time.perf_counter()
    overrides = dict(overrides or {})
    image = image.convert("RGB")
    inputs = chat.prepare_turn(loaded, image, [], PROMPT, overrides).inputs
    view = strategy_view(image, loaded.source.preset, **overrides)
    if processor_crops(inputs) != len(view.crops):
        raise ValueError(f"the processor made {processor_crops(inputs)} crops of this image but "
                         f"the engine's plan has {len(view.crops)}")
    patch = loaded.source.preset.settings.patch_size
    grid_hw = patch_grid_hw(view, patch)
    if "image_grid_thw" in inputs:
        _check_qwen_grid(inputs, grid_hw)
    tower = vision_tower(loaded.model)
    blocks = attention_blocks(tower)
    layer = probe_layer(loaded.model, len(blocks))
    session = _Session(grid_hw[0] * grid_hw[1])
    with _routed(blocks, blocks[layer.index], session):
        _run_tower(loaded, tower, inputs, len(view.crops))
    if not session.scores:
        raise RuntimeError(f"block {layer.index} of {type(tower).__name__} did not route its "
                           "attention through AttentionInterface")
    crops = [CropAttention(grid=g, cell_hw=(float(patch), float(patch)),
                           input_hw=(int(s.window.height), int(s.window.width)), downscaled=False)
             for s, g in zip(view.crops, _grids(session, loaded, tower, inputs, grid_hw))]
    result = _assemble(view, crops, loaded, layer, session)
    result.seconds = time.perf_counter() - start
    return result


@spaces.GPU(duration=chat.GPU_SECONDS)
def loaded_tower_attention(image: Image.Image, overrides: Optional[dict] = None,
                           backend: Optional[chat.ChatBackend] = None) -> TowerResult:
    """tower_attention on the chat's loaded model, holding its run lock (no generation runs
    meanwhile); NoModelLoaded when none is loaded. A ZeroGPU allocation on Spaces."""
    backend = backend or chat.BACKEND
    with backend.run_lock:
        loaded = backend.loaded
        if loaded is None:
            raise NoModelLoaded(NO_MODEL)
        return tower_attention(loaded, image, overrides)


# ----------------------------------------------------------------------------- captions
def _assemble(view: View, crops: list[CropAttention], loaded: chat.LoadedModel,
              layer: ProbeLayer, session: _Session) -> TowerResult:
    return TowerResult(view=view, settings=EncoderSettings(mode="last"), crops=crops,
                       highres=stitch(view, crops, HIGHRES_KINDS),
                       global_view=stitch(view, crops, GLOBAL_KINDS),
                       rows=[_row(s, a) for s, a in zip(view.crops, crops)],
                       captions=captions(view, crops, loaded, layer, session),
                       notes=[RANDOM_NOTE] if loaded.random_weights else [],
                       layer=layer.index, num_layers=layer.count, has_cls=bool(session.has_cls),
                       random_weights=loaded.random_weights)


def _row(spec: Any, att: CropAttention) -> dict:
    rows, cols = att.grid.shape
    share = image_share(spec, att)
    return {"crop": spec.index, "kind": spec.kind,
            "tile": f"r{spec.row} c{spec.col}" if spec.kind == "tile" else "",
            "crop size": f"{int(spec.window.width)}x{int(spec.window.height)}",
            "patches": f"{cols}x{rows}",
            "share on image": round(share, 4), "share on padding": round(1.0 - share, 4),
            "top patch share": round(float(att.grid.max()), 4)}


def _method(loaded: chat.LoadedModel, view: View, crops: Sequence[CropAttention],
            session: _Session) -> str:
    tower = TOWER_NAMES.get(loaded.model.config.model_type, "The vision tower")
    if session.has_cls:
        text = (f"{tower}: CLS-to-patch attention (the CLS token's row, its own column dropped), "
                f"mean over {session.heads} heads, renormalised to sum 1 per crop.")
    else:
        text = (f"{tower} has no CLS token, so each patch's score is the mean attention it "
                f"RECEIVES: the column mean over all {session.patches} query patches of the crop "
                f"and over {session.heads} heads (sums to 1 per crop).")
    spec, att = view.crops[0], crops[0]
    seen = int(att.grid.shape[1] * att.cell_hw[1])
    if seen < spec.window.width:
        text += (f" {att.grid.shape[1]}x{att.grid.shape[0]} patches of {int(att.cell_hw[1])} px "
                 f"cover {seen} of {int(spec.window.width)} px: the last "
                 f"{int(spec.window.width) - seen} px of every crop are never seen (no heat).")
    if spec.kind == "image":
        text += (" Qwen's pixel_values hold the patches in 2x2-merge order (spec 3.4); they are "
                 "put back on the patch grid before stitching")
        windows = hasattr(vision_tower(loaded.model), "permute_input_for_window_attn")
        text += ", after undoing the tower's window order." if windows else "."
    return text


def _panel_caption(view: View, kinds: Sequence[str], crops: Sequence[CropAttention]) -> str:
    first = panel_summary(view, kinds, crops)
    if first is None:
        return ""
    spec, att, size, count = first
    grid = f"{att.grid.shape[1]}x{att.grid.shape[0]} patches"
    if spec.kind == "image":
        return f"Native-resolution image ({size} px, {grid}): the VLM's own ViT sees every patch."
    if spec.kind == "tile":
        return (f"{count} tile(s) of {size} px ({grid} each) stitched onto the original; "
                "each tile's map sums to 1 before stitching.")
    if spec.kind not in ("base", "thumbnail"):  # e.g. Gemma 3's pan-and-scan crops
        return (f"{count} {KIND_INFO[spec.kind].part} of {size} px ({grid} each) stitched onto "
                "the original; each crop's map sums to 1 before stitching.")
    name = "Base image" if spec.kind == "base" else "Thumbnail"
    return f"{name}: the whole image squashed to {size} px ({grid}, global view)."


def captions(view: View, crops: Sequence[CropAttention], loaded: chat.LoadedModel,
             layer: ProbeLayer, session: _Session) -> dict:
    model = (f"**{LABEL[0].upper() + LABEL[1:]}**: {loaded.source.label}, block "
             f"{layer.index + 1} of {layer.count} ({layer.why}).")
    if loaded.random_weights:
        model += f"\n\n{RANDOM_NOTE}"
    return {"model": model, "method": _method(loaded, view, crops, session),
            "highres": _panel_caption(view, HIGHRES_KINDS, crops),
            "global": _panel_caption(view, GLOBAL_KINDS, crops), "view": view.label}


__all__ = ["TowerResult", "ProbeLayer", "NoModelLoaded", "tower_attention",
           "loaded_tower_attention", "probe_layer", "vision_tower", "attention_blocks",
           "unmerge", "window_to_processor", "LABEL", "NO_MODEL", "RANDOM_NOTE"]

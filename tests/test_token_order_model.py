"""Token order through the whole processor -> model path, with the real vision towers.

test_token_order feeds synthetic features to the models' packing code. Here nothing is
stubbed: a real image goes through the real processor and the tiny random-weight model's real
forward (vision tower, projector, tile stitching / unpadding / newlines / downscale, pixel
shuffle, patch merger, Qwen2.5's window reordering, placement at the placeholder positions),
and the language model's input embeddings are read with a forward pre-hook.

To make the tower local, the output projections of every attention and MLP block in the
vision tower are zeroed, so each block passes its residual stream through unchanged and a
visual token depends only on its own pixels (the embedding, norms, merger and projector stay
random and real). Then a rectangle of the image is repainted: exactly the sequence positions
whose layout box (or bilinear blend boxes) overlaps the rectangle must change; positions whose
boxes lie away from it (newlines, wrappers, padding, other tiles) must stay bit-identical.
A margin of a few resampled pixels around the rectangle is left undecided (bicubic support).
"""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from anyres_demo import build_layout, plan_image  # noqa: E402
from anyres_demo.backends.tiny_models import build_tiny_model  # noqa: E402
from anyres_demo.layout import KIND_CODE  # noqa: E402
from hf_helpers import FAMILIES, family_preset, noise_image  # noqa: E402
from PIL import Image  # noqa: E402

OUTPUT_PROJECTIONS = {"out_proj", "proj", "projection_layer", "fc2", "down_proj"}
LAYER_STACKS = {"layers", "layer", "blocks"}


def make_tower_local(model) -> int:
    """Zero the attention / MLP output projections of every vision block; returns how many."""
    tower = getattr(model.model, "vision_tower", None) or model.model.visual
    zeroed = 0
    for name, module in tower.named_modules():
        parts = name.split(".")
        if isinstance(module, torch.nn.Linear) and parts[-1] in OUTPUT_PROJECTIONS \
                and LAYER_STACKS & set(parts):
            torch.nn.init.zeros_(module.weight)
            if module.bias is not None:
                torch.nn.init.zeros_(module.bias)
            zeroed += 1
    return zeroed


def llm_inputs(model, processor, preset, image) -> tuple[np.ndarray, np.ndarray]:
    """(input_ids, inputs_embeds) the language model receives for one image and a prompt."""
    seen = {}

    def hook(module, args, kwargs):
        seen["embeds"] = kwargs["inputs_embeds"][0].detach().double().numpy()

    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "describe"}]}]
    prompt = processor.apply_chat_template(messages, add_generation_prompt=True)
    inputs = processor(images=[image], text=[prompt], return_tensors="pt")
    handle = model.model.language_model.register_forward_pre_hook(hook, with_kwargs=True)
    try:
        with torch.no_grad():
            model(**inputs)
    finally:
        handle.remove()
    return inputs["input_ids"][0].numpy(), seen["embeds"]


def image_span(ids: np.ndarray, model, preset, n: int) -> np.ndarray:
    """The n sequence positions of the image: from its start wrapper (Qwen, InternVL) or its
    first placeholder (LLaVA)."""
    first = int(np.flatnonzero(ids == model.config.image_token_id)[0])
    start = first - 1 if preset.wrapper_tokens else first
    return np.arange(start, start + n)


def _token_extents(layout) -> np.ndarray:
    """(n, k, 4) boxes each token reads (its blend parts when the grid was downscaled)."""
    if layout.has_blends:
        boxes = layout.blend_boxes.copy()
        boxes[layout.blend_weights <= 1e-9] = np.nan
        return boxes
    return layout.box[:, None, :]


def _overlaps(boxes: np.ndarray, rect) -> np.ndarray:
    x0, y0, x1, y1 = rect
    with np.errstate(invalid="ignore"):
        hit = (boxes[..., 0] < x1) & (boxes[..., 2] > x0) & (boxes[..., 1] < y1) & (boxes[..., 3] > y0)
    return np.nan_to_num(hit.astype(float)).astype(bool).any(axis=1)


def _margin(plan) -> float:
    """Original pixels a bicubic resample can carry a change: 2 source px per output px at the
    strongest downscale of any crop (plus one for rounding)."""
    h, w = plan.image_hw.hw
    worst = max(max(h / c.resize_hw.height, w / c.resize_hw.width) for c in plan.crops)
    return 2 * max(1.0, worst) + 1


def _repaint(image: Image.Image, rect, seed: int) -> Image.Image:
    x0, y0, x1, y1 = rect
    out = image.copy()
    patch = np.random.default_rng(seed).integers(0, 256, (y1 - y0, x1 - x0, 3), dtype=np.uint8)
    out.paste(Image.fromarray(patch), (x0, y0))
    return out


SIZES_HW = {"llava_next": [(600, 1600), (200, 100)], "llava_onevision": [(1080, 1920), (47, 423)],
            "qwen2_vl": [(300, 800)], "qwen2_5_vl": [(300, 800)], "internvl": [(600, 1600), (91, 37)]}


# The 2024 families; the later ones have their own marker tests (test_token_order_wave1a.py,
# test_gemma_models.py, test_token_order_wave2.py).
@pytest.mark.parametrize("family", [f for f in FAMILIES if f in SIZES_HW])
def test_repainted_region_changes_exactly_the_tokens_the_layout_puts_there(family):
    preset = family_preset(family)
    model, processor = build_tiny_model(preset)
    assert make_tower_local(model) >= 2
    checked = 0
    for size_hw in SIZES_HW[family]:
        plan = plan_image(size_hw, preset)
        layout = build_layout(plan)
        image = noise_image(size_hw, seed=size_hw[0] + size_hw[1])
        ids, base = llm_inputs(model, processor, preset, image)
        span = image_span(ids, model, preset, len(layout))
        placeholder = ids[span] == model.config.image_token_id
        # the processor's sequence has the layout's kinds in the layout's places
        assert np.array_equal(placeholder, layout.kind != KIND_CODE["wrapper"]), size_hw
        extents = _token_extents(layout)
        h, w = size_hw
        m = _margin(plan)
        rects = [(w // 8, h // 5, w // 8 + max(1, w // 3), h // 5 + max(1, h // 3)),
                 (w - max(1, w // 5), h - max(1, h // 6), w, h)]
        for k, rect in enumerate(rects):
            _, after = llm_inputs(model, processor, preset, _repaint(image, rect, seed=k))
            change = np.abs(after[span] - base[span]).max(axis=1)
            inner = (rect[0] + m, rect[1] + m, rect[2] - m, rect[3] - m)
            decided = inner[0] < inner[2] and inner[1] < inner[3]
            must = _overlaps(extents, inner) if decided else np.zeros(len(layout), bool)
            may = _overlaps(extents, (rect[0] - m, rect[1] - m, rect[2] + m, rect[3] + m))
            assert (change[must] > 1e-6).all(), (size_hw, rect, np.flatnonzero(must & (change <= 1e-6))[:10])
            assert (change[~may] == 0).all(), (size_hw, rect, np.flatnonzero(~may & (change > 0))[:10])
            # the text around the image is untouched too
            outside = np.setdiff1d(np.arange(len(ids)), span)
            assert (np.abs(after[outside] - base[outside]).max() == 0)
            checked += int(must.sum())
            assert must.sum() >= decided and (~may).sum() >= len(layout) // 4
    assert checked >= 10

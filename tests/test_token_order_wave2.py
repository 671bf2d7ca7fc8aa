"""Token order of the wave-2 families, from the vision tower to the language model, on tiny
random-weight models built from configs (the real transformers classes).

A marker is planted in ONE patch of ONE crop of the processor's own pixel_values; the vision
towers' attention output projections are zeroed so that patches do not mix (every other step,
the patch embedding, norms, MLPs, the pixel shuffle / adapter and the projector, runs as is).
The model's forward is stopped at the language model's input: exactly one position of
`inputs_embeds` must change, and it must be the layout token of that crop and cell.
Llama 3.2 Vision: the marker must land in the cross-attention states, in the tile slot and
patch the plan says. Spec 4.4, 5.4, 5.8.
"""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from anyres_demo import build_layout, get_preset, plan_image  # noqa: E402
from anyres_demo.backends import hf_processors as hp  # noqa: E402
from anyres_demo.backends.tiny_models import build_tiny_model  # noqa: E402
from anyres_demo.layout import KIND_CODE  # noqa: E402
from hf_helpers import noise_image  # noqa: E402


class _Stop(Exception):
    pass


def _no_mixing(vision: torch.nn.Module) -> None:
    """Zero every attention output projection of the vision tower: each patch then only sees
    itself, so a marker moves exactly the features of its own patch."""
    for name, module in vision.named_modules():
        if isinstance(module, torch.nn.Linear) and name.split(".")[-1] in ("o_proj", "out_proj"):
            torch.nn.init.zeros_(module.weight)
            if module.bias is not None:
                torch.nn.init.zeros_(module.bias)


def _language_inputs(model, inputs: dict, key: str) -> torch.Tensor:
    """What the model hands its language model under `key` (inputs_embeds or
    cross_attention_states), through the model's own forward, stopped right there."""
    seen = {}

    def hook(_module, _args, kwargs):
        value = kwargs[key].detach()
        seen["value"] = value.reshape(-1, value.shape[-1]).clone()  # (positions, hidden)
        raise _Stop

    base = getattr(model, "model", model)
    language = getattr(base, "language_model", None) or base.text_model  # SmolVLM: text_model
    handle = language.register_forward_pre_hook(hook, with_kwargs=True)
    try:
        with torch.no_grad():
            model(**inputs)
    except _Stop:
        pass
    finally:
        handle.remove()
    return seen["value"]


@pytest.fixture(scope="module")
def tiny():
    cache = {}

    def get(name):
        if name not in cache:
            model, processor = build_tiny_model(get_preset(name))
            base = getattr(model, "model", model)
            vision = getattr(base, "vision_model", None) or getattr(model, "vision_model")
            _no_mixing(vision)
            cache[name] = (model.float(), processor)
        return cache[name]
    return get


def _marked(pixel_values: torch.Tensor, crop_index, y: int, x: int, patch: int) -> torch.Tensor:
    marked = pixel_values.clone().float()
    marked[crop_index + (slice(None), slice(y, y + patch), slice(x, x + patch))] = 3.0
    return marked


def _changed_positions(model, inputs, marked, key="inputs_embeds") -> np.ndarray:
    base = _language_inputs(model, {**inputs, "pixel_values": inputs["pixel_values"].float()}, key)
    moved = _language_inputs(model, {**inputs, "pixel_values": marked}, key)
    diff = (moved - base).abs().reshape(base.shape[0], -1).amax(-1)
    return np.flatnonzero(diff.numpy() > 1e-6)


def _expected_token(layout, plan, crop: int, r: int, c: int, k: int) -> int:
    """The layout index of cell (r, c) of `crop`: tiles are on the stitched canvas."""
    spec = plan.crops[crop]
    if spec.kind == "tile":
        r, c = spec.row * k + r, spec.col * k + c
    hits = np.flatnonzero((layout.crop == crop) & (layout.row == r) & (layout.col == c))
    assert hits.size == 1
    return int(hits[0])


def _check_box(layout, plan, token: int, crop: int, y: float, x: float) -> None:
    """The token's original-pixel box contains the marker's centre mapped through the crop."""
    spec = plan.crops[crop]
    win, src = spec.window, spec.source
    if spec.kind == "tile":  # window on the canvas -> original pixels, as the plan maps it
        sy = plan.image_hw.height / spec.resize_hw.height
        sx = plan.image_hw.width / spec.resize_hw.width
        oy, ox = (win.y0 + y) * sy, (win.x0 + x) * sx
    else:
        oy, ox = y * plan.image_hw.height / win.height, x * plan.image_hw.width / win.width
    x0, y0, x1, y1 = layout.box[token]
    if src.area > 0 and oy < plan.image_hw.height and ox < plan.image_hw.width:
        assert x0 - 1e-6 <= ox <= x1 + 1e-6 and y0 - 1e-6 <= oy <= y1 + 1e-6, (token, ox, oy)


CASES = {  # preset -> [(w, h), crop, cell (r, c)]
    "smolvlm2": [((640, 480), 0, (0, 0)), ((640, 480), 5, (8, 3)), ((640, 480), 12, (4, 7)),
                 ((10, 2000), 2, (1, 8))],
    "idefics3": [((1920, 1080), 7, (12, 0)), ((300, 500), 12, (0, 12))],
    "llama-4": [((640, 480), 0, (0, 0)), ((640, 480), 3, (11, 5)), ((640, 480), 4, (6, 6)),
                ((700, 300), 2, (3, 11)), ((100, 100), 0, (11, 11))],
}


@pytest.mark.parametrize("name", list(CASES))
def test_marker_reaches_the_language_model_where_the_layout_says(tiny, name):
    model, processor = tiny(name)
    preset = get_preset(name)
    s = preset.settings
    k = s.cells_per_side
    e = s.cell_size  # token cell side in crop pixels
    for wh, crop, (r, c) in CASES[name]:
        size_hw = (wh[1], wh[0])
        plan = plan_image(size_hw, preset)
        layout = build_layout(plan)
        inputs = hp.processor_outputs(processor, noise_image(size_hw, seed=3), preset)
        pv = inputs["pixel_values"]
        index = (0, crop) if pv.dim() == 5 else (crop,)  # SmolVLM (B, crops, ...); Llama 4 (crops, ...)
        y, x = r * e, c * e  # the top-left patch of the cell
        changed = _changed_positions(model, inputs, _marked(pv, index, y, x, s.patch_size))
        assert len(layout) == inputs["input_ids"].shape[1]  # the prompt is the image block alone
        want = _expected_token(layout, plan, crop, r, c, k)
        assert changed.tolist() == [want], (wh, crop, (r, c), changed[:5], want)
        assert layout.kind[want] in (KIND_CODE["tile"], KIND_CODE["thumbnail"])
        _check_box(layout, plan, want, crop, y + s.patch_size / 2, x + s.patch_size / 2)


def test_llama4_fills_patch_positions_not_the_image_token(tiny):
    model, processor = tiny("llama-4")
    preset = get_preset("llama-4")
    inputs = hp.processor_outputs(processor, noise_image((480, 640), seed=1), preset)
    ids = inputs["input_ids"][0]
    assert int(model.config.image_token_index) == processor.tokenizer.convert_tokens_to_ids("<|patch|>")
    assert int((ids == processor.image_token_id).sum()) == 1  # <|image|>: the global-tile marker
    layout = build_layout(plan_image((480, 640), preset))
    patch = (ids == model.config.image_token_index).numpy()
    placeholders = np.isin(layout.kind, [KIND_CODE["tile"], KIND_CODE["thumbnail"]])
    assert np.array_equal(patch, placeholders)


MLLAMA_CASES = [((640, 480), 1, (39, 0)), ((1920, 1080), 3, (5, 17))]


def test_mllama_marker_reaches_the_cross_attention_states(tiny):
    model, processor = tiny("llama-3.2-vision")
    preset = get_preset("llama-3.2-vision")
    s = preset.settings
    per = s.states_per_tile
    for wh, tile, (r, c) in MLLAMA_CASES:
        size_hw = (wh[1], wh[0])
        plan = plan_image(size_hw, preset)
        inputs = hp.processor_outputs(processor, noise_image(size_hw, seed=5), preset)
        assert plan.num_image_tokens == int((inputs["input_ids"][0] == processor.image_token_id).sum()) == 1
        marked = _marked(inputs["pixel_values"], (0, 0, tile), r * s.patch_size, c * s.patch_size,
                         s.patch_size)
        changed = _changed_positions(model, inputs, marked, key="cross_attention_states")
        # (images * 4 tile slots * 1601 states, hidden): CLS first in each tile, then patches
        assert changed.tolist() == [tile * per + 1 + r * s.patches_per_side + c], (wh, changed[:5])
        assert tile < plan.num_crops and plan.crops[tile].kind == "tile"

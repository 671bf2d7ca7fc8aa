"""The loaded VLM's own vision-tower probe, with tiny random-weight models of every family.

Every family: one map per processor crop, each summing to 1, finite, stitched at the original's
size; the recomputed scores equal transformers' eager attention; Qwen's 2x2-merge order (and
Qwen2.5-VL's window order) is undone, proven by planting all the mass on one known patch; the
tower's attention implementation is restored even when the pass fails; the UI says to load a
model first when none is loaded.
"""
import sys
from types import SimpleNamespace

import gradio as gr
import numpy as np
import pytest
import torch

from anyres_demo.backends import chat
from anyres_demo.probes import vlm_tower as vt
from anyres_demo.probes.encoder import HIGHRES_KINDS, image_share
from anyres_demo.ui import probes as ui_probes
from hf_helpers import FAMILIES as ALL_FAMILIES, FAMILY_REPOS, noise_image

# The vision-tower probe covers the 2024 families; Qwen3-VL / Qwen3.5 / Pixtral / Mistral3 /
# InternVL3.5 towers are not wired into probes/vlm_tower.py yet (see the wave-1a report).
FAMILIES = ALL_FAMILIES[:5]
QWEN_FAMILIES = ("qwen2_vl", "qwen2_5_vl")

IMAGE_HW = (300, 500)
IMAGE = noise_image(IMAGE_HW, seed=3)
# family -> (crops, patch grid per crop, probed block, blocks) for a 500x300 image; the tiny
# towers have 2 blocks (InternViT 1). LLaVA-NeXT reads hidden_states[-2]: block 0 of 2.
EXPECTED = {
    "llava_next": (3, (24, 24), 0, 2),  # base + 1x2 tiles of 336
    "llava_onevision": (3, (27, 27), 1, 2),  # base + 1x2 tiles of 384; 27 * 14 = 378
    "qwen2_vl": (1, (22, 36), 1, 2),  # smart_resize -> 308x504
    "qwen2_5_vl": (1, (22, 36), 1, 2),  # fullatt_block_indexes = [1]
    "internvl": (7, (32, 32), 0, 1),  # 3x2 tiles of 448 + thumbnail
}
CLS_FAMILIES = ("llava_next", "internvl")  # CLIP and InternViT; SigLIP and Qwen's ViT have none


@pytest.fixture(scope="module")
def dirs(tiny_model_dirs):
    return tiny_model_dirs


@pytest.fixture(scope="module")
def models(dirs):
    return {family: chat.load_model(chat.resolve_source(folder)) for family, folder in dirs.items()}


def processor_inputs(loaded) -> dict:
    return chat.prepare_turn(loaded, IMAGE, [], "describe the image").inputs


def processor_crop_count(inputs: dict) -> int:
    if "image_grid_thw" in inputs:
        return int(inputs["image_grid_thw"].shape[0])
    pixels = inputs["pixel_values"]
    return int(pixels.shape[1] if pixels.dim() == 5 else pixels.shape[0])


# ----------------------------------------------------------------------------- every family
@pytest.mark.parametrize("family", FAMILIES)
def test_one_normalised_map_per_processor_crop(family, models):
    loaded = models[family]
    crops, grid_hw, layer, blocks = EXPECTED[family]
    result = vt.tower_attention(loaded, IMAGE)
    assert len(result.crops) == processor_crop_count(processor_inputs(loaded)) == crops
    for att in result.crops:
        assert att.grid.shape == grid_hw
        assert np.isfinite(att.grid).all() and (att.grid >= 0).all()
        assert att.grid.sum() == pytest.approx(1.0, abs=1e-9)
    assert result.highres.shape == IMAGE_HW and np.isfinite(result.highres).all()
    tiles = [(s, a) for s, a in zip(result.view.crops, result.crops) if s.kind in HIGHRES_KINDS]
    # each crop adds exactly its share on the image (padding excluded), averaged over crops
    assert result.highres.sum() == pytest.approx(np.mean([image_share(s, a) for s, a in tiles]),
                                                 abs=1e-4)
    if family.startswith("qwen"):
        assert result.global_view is None
    else:
        assert result.global_view.shape == IMAGE_HW and np.isfinite(result.global_view).all()
    assert (result.layer, result.num_layers) == (layer, blocks)
    assert result.has_cls == (family in CLS_FAMILIES)
    assert result.random_weights and vt.RANDOM_NOTE in result.notes


@pytest.mark.parametrize("family", FAMILIES)
def test_captions_name_the_encoder_the_method_and_the_random_weights(family, models):
    caps = vt.tower_attention(models[family], IMAGE).captions
    assert vt.LABEL.lower() in caps["model"].lower()
    assert "RANDOM WEIGHTS" in caps["model"] and "means nothing" in caps["model"]
    layer, blocks = EXPECTED[family][2:]
    assert f"block {layer + 1} of {blocks}" in caps["model"]
    if family in CLS_FAMILIES:
        assert "CLS-to-patch" in caps["method"]
    else:
        assert "no CLS token" in caps["method"] and "RECEIVES" in caps["method"]
    if family == "llava_onevision":
        assert "last 6 px of every crop are never seen" in caps["method"]
    if family == "qwen2_5_vl":
        assert "full-attention block" in caps["model"] and "window order" in caps["method"]


def test_siglip_never_sees_the_last_6_px_of_a_384_crop(models):
    result = vt.tower_attention(models["llava_onevision"], IMAGE)
    # base image: 500 px wide squashed to 384; crop x >= 378 is original x >= 492.2
    assert result.global_view[:, 493:].sum() == 0.0
    assert result.global_view[:, 480:490].sum() > 0.0


# ----------------------------------------------------------------------------- parity
_REFERENCE = "anyres_test_eager"
_kept: dict = {}


def _eager_recording(module, query, key, value, attention_mask, **kwargs):
    eager = sys.modules[type(module).__module__].eager_attention_forward  # the model's own
    out, weights = eager(module, query, key, value, attention_mask, **kwargs)
    if module is _kept.get("target"):
        _kept["weights"].append(weights.float())
    return out, weights


@pytest.mark.parametrize("family", [f for f in FAMILIES if f != "qwen2_5_vl"])
def test_scores_equal_transformers_eager_attention(family, models):
    """Reference: transformers' eager softmax in the probed block (Qwen2.5-VL's window order is
    covered by the planted test below)."""
    from transformers import AttentionInterface

    loaded = models[family]
    tower = vt.vision_tower(loaded.model)
    blocks = vt.attention_blocks(tower)
    layer = EXPECTED[family][2]
    AttentionInterface.register(_REFERENCE, _eager_recording)
    _kept.update(target=blocks[layer], weights=[])
    tower.config._attn_implementation_internal = _REFERENCE
    try:
        vt._run_tower(loaded, tower, processor_inputs(loaded), EXPECTED[family][0])
    finally:
        tower.config._attn_implementation_internal = "sdpa"
    weights = torch.cat(_kept["weights"]).mean(1).numpy()  # (crops, n, n), mean over heads
    if family in CLS_FAMILIES:
        ref = weights[:, 0, 1:] / weights[:, 0, 1:].sum(-1, keepdims=True)
    else:
        ref = weights.mean(1)
    if family == "qwen2_vl":  # pixel_values order (H/28, W/28, 2, 2) -> rows, cols (spec 3.4)
        rows, cols = EXPECTED[family][1]
        ref = ref.reshape(rows // 2, cols // 2, 2, 2).transpose(0, 2, 1, 3).reshape(1, -1)
    got = np.stack([a.grid.ravel() for a in vt.tower_attention(loaded, IMAGE).crops])
    np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-7)


# ----------------------------------------------------------------------------- Qwen order
def tower_order(loaded) -> list[int]:
    """Measured, not computed: the pixel_values row at each position of the tower's sequence
    (tag the patch embeddings with their row index, read them where block 0 starts)."""
    tower = vt.vision_tower(loaded.model)
    seen = []
    original = tower.patch_embed.forward

    def tagged(x):
        out = original(x).clone()
        out[:, 0] = torch.arange(out.shape[0], dtype=out.dtype)
        return out

    tower.patch_embed.forward = tagged
    hook = tower.blocks[0].register_forward_pre_hook(lambda m, args: seen.append(args[0][:, 0]))
    try:
        vt._run_tower(loaded, tower, processor_inputs(loaded), 1)
    finally:
        hook.remove()
        del tower.patch_embed.forward
    return [int(round(float(v))) for v in seen[0]]


@pytest.mark.parametrize("family", QWEN_FAMILIES)
def test_qwen_unscrambling_puts_a_planted_patch_in_its_own_box(family, models, monkeypatch):
    loaded = models[family]
    rows, cols = EXPECTED[family][1]
    r, c = 9, 13  # outside the first 112-px window; row-major misreading lands at (8, 27)
    row_in_pixel_values = ((r // 2) * (cols // 2) + c // 2) * 4 + (r % 2) * 2 + c % 2  # spec 3.4
    order = tower_order(loaded)
    assert sorted(order) == list(range(rows * cols))
    assert (order != sorted(order)) == (family == "qwen2_5_vl")  # windows reorder the sequence
    position = order.index(row_in_pixel_values)

    def planted(q, k, mask, scale):
        out = torch.zeros(k.shape[1])
        out[position] = 1.0
        return out

    monkeypatch.setattr(vt, "_received", planted)
    result = vt.tower_attention(loaded, IMAGE)
    grid = result.crops[0].grid
    assert grid[r, c] == 1.0 and grid.sum() == 1.0
    (h, w), (rh, rw) = IMAGE_HW, (rows * 14, cols * 14)  # resized 308x504
    y0, y1 = int(np.floor(14 * r * h / rh)), int(np.ceil(14 * (r + 1) * h / rh))
    x0, x1 = int(np.floor(14 * c * w / rw)), int(np.ceil(14 * (c + 1) * w / rw))
    heat = result.highres
    assert heat.sum() == pytest.approx(1.0, abs=1e-6)
    assert heat[y0:y1, x0:x1].sum() == pytest.approx(1.0, abs=1e-6)
    assert heat[y0 + 2:y1 - 2, x0 + 2:x1 - 2].min() > 0  # the patch's interior is lit


# ----------------------------------------------------------------------------- plumbing
def test_attention_implementation_is_restored_even_when_the_pass_fails(models, monkeypatch):
    loaded = models["qwen2_vl"]
    tower = vt.vision_tower(loaded.model)

    def broken(*args):
        raise RuntimeError("planted failure")

    monkeypatch.setattr(vt, "_received", broken)
    with pytest.raises(RuntimeError, match="planted failure"):
        vt.tower_attention(loaded, IMAGE)
    assert tower.config._attn_implementation == "sdpa"
    assert all(getattr(b, vt.SESSION_ATTR, None) is None for b in vt.attention_blocks(tower))


@pytest.mark.parametrize("feature, blocks, full, expected", [
    (-2, 24, None, 22),  # LLaVA-NeXT: CLIP-L's hidden_states[-2] is block 22's output
    (-1, 27, None, 26),  # OneVision: SigLIP-so400m's last block
    ([-2, -5], 24, None, 22),  # several feature layers: the latest one
    (None, 32, [7, 15, 23, 31], 31),  # Qwen2.5-VL: last full-attention block
    (None, 32, None, 31),  # Qwen2-VL
])
def test_probe_layer_is_the_last_block_the_llm_reads(feature, blocks, full, expected):
    vision = SimpleNamespace(fullatt_block_indexes=full, window_size=112)
    model = SimpleNamespace(config=SimpleNamespace(vision_feature_layer=feature),
                            model=SimpleNamespace(visual=SimpleNamespace(config=vision)))
    layer = vt.probe_layer(model, blocks)
    assert (layer.index, layer.count) == (expected, blocks)


def test_probe_layer_refuses_the_patch_embeddings():
    model = SimpleNamespace(config=SimpleNamespace(vision_feature_layer=0),
                            model=SimpleNamespace(visual=SimpleNamespace(config=SimpleNamespace())))
    with pytest.raises(ValueError, match="patch embeddings"):
        vt.probe_layer(model, 24)


# ----------------------------------------------------------------------------- the UI
@pytest.fixture
def backend(monkeypatch):
    fresh = chat.ChatBackend()
    monkeypatch.setattr(chat, "BACKEND", fresh)
    return fresh


@pytest.fixture(scope="module")
def image_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("image") / "noise.png"
    IMAGE.save(path)
    return str(path)


def test_ui_without_a_loaded_model_says_load_one_first(backend, image_path):
    with pytest.raises(gr.Error, match="Load a model in the Chat tab first"):
        ui_probes.on_vlm_attention(image_path, FAMILY_REPOS["qwen2_vl"])
    with pytest.raises(vt.NoModelLoaded, match="Load a model in the Chat tab first"):
        vt.loaded_tower_attention(IMAGE)


def test_ui_shows_the_loaded_models_tower_labelled_as_random_weights(backend, dirs, image_path):
    backend.ensure(chat.resolve_source(dirs["internvl"]))
    panels, crops, note, rows = ui_probes.on_vlm_attention(
        image_path, FAMILY_REPOS["internvl"])
    assert [p[0].size for p in panels] == [IMAGE.size] * 2  # tiles | thumbnail
    assert len(crops) == len(rows) == EXPECTED["internvl"][0]
    assert "own vision encoder (last layer)" in note and "RANDOM WEIGHTS" in note
    assert "but the Chat tab has" not in note
    with pytest.warns(UserWarning, match="but the Chat tab has"):  # what gr.Warning shows
        _, _, note, _ = ui_probes.on_vlm_attention(image_path, FAMILY_REPOS["qwen2_vl"])
    assert "but the Chat tab has InternVL3 1B loaded" in note

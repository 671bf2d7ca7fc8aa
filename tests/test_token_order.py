"""Token order: the layout against the models' own packing code, on tiny random models.

Features that encode where they come from (crop, cell) go through the real transformers code
that orders visual tokens; every output row must land where the layout says:
  * LLaVA-NeXT / OneVision: `pack_image_features` (tile stitching, unpadding, newlines; the
    OneVision bilinear downscale read off one-hot row/column codes as blend weights);
  * InternVL: `get_image_features` with a stub vision tower (CLS drop, pixel shuffle);
  * Qwen2-VL / Qwen2.5-VL: the processor's patchify on a coordinate image, then the vision
    model with its blocks removed (PatchMerger, and Qwen2.5's window reordering undone).
Plus a save / reload / forward round trip of every tiny model. Spec 1.4, 2.4, 3.4, 4.4.
"""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from anyres_demo import build_layout, plan_image  # noqa: E402
from anyres_demo.backends import hf_processors as hp  # noqa: E402
from anyres_demo.backends.tiny_models import build_tiny_model  # noqa: E402
from anyres_demo.layout import KIND_CODE  # noqa: E402
from hf_helpers import (  # noqa: E402
    EXTREME_HW, FAMILIES, QWEN_FAMILIES, SPEC_WH, family_preset, noise_image, size_label,
    solid_image, sweep_sizes_hw)

NEWLINE = -1.0  # value of every channel of the stand-in image_newline vector
SPEC_HW = [(h, w) for w, h in SPEC_WH]


def _some_sweep_sizes(n: int, seed: int) -> list[tuple[int, int]]:
    sizes = sweep_sizes_hw()[len(EXTREME_HW):]
    rng = np.random.default_rng(seed)
    return [sizes[i] for i in rng.choice(len(sizes), n, replace=False)]


@pytest.fixture(scope="module")
def tiny():
    """family -> a fresh tiny random model (built lazily, one per family per module)."""
    cache = {}

    def get(family):
        if family not in cache:
            cache[family] = build_tiny_model(family_preset(family))[0]
        return cache[family]
    return get


def _tokens(layout, kind):
    return np.flatnonzero(layout.kind == KIND_CODE[kind])


# ---------------------------------------------------------------- LLaVA-NeXT
def _pack(model, features, size_hw, **kwargs):
    newline = torch.full((features.shape[-1],), NEWLINE)
    packed, lens = model.model.pack_image_features(
        [features], torch.tensor([list(size_hw)]), image_newline=newline, **kwargs)
    assert int(lens[0]) == packed[0].shape[0]
    return packed[0].numpy()


def _crop_cell_features(plan) -> torch.Tensor:
    """(crops, n*n, 3): each feature says (crop index, row, col) of its cell in its crop."""
    n = plan.cells_per_tile
    r, c = np.divmod(np.arange(n * n), n)
    crop = np.repeat(np.arange(plan.num_crops), n * n).reshape(plan.num_crops, n * n)
    feats = np.stack([crop, np.broadcast_to(r, crop.shape), np.broadcast_to(c, crop.shape)], -1)
    return torch.tensor(feats, dtype=torch.float32)


LLAVA_NEXT_HW = list(dict.fromkeys(SPEC_HW + EXTREME_HW + _some_sweep_sizes(60, seed=11)))


def test_llava_next_pack_order_matches_layout(tiny):
    model = tiny("llava_next")
    preset = family_preset("llava_next")
    for size_hw in LLAVA_NEXT_HW:
        plan = plan_image(size_hw, preset)
        layout = build_layout(plan)
        out = _pack(model, _crop_cell_features(plan), size_hw, vision_feature_select_strategy="default")
        assert out.shape[0] == len(layout) == plan.num_image_tokens, size_hw
        is_newline = (out == NEWLINE).all(axis=1)
        assert np.array_equal(is_newline, layout.kind == KIND_CODE["newline"]), size_hw
        crop, r, c = (out[~is_newline].T).astype(int)
        n = plan.cells_per_tile
        base = crop == 0
        # base: the crop's own 24x24 grid; tiles: canvas cell (R, C) before unpadding
        tile_r, tile_c = np.divmod(np.maximum(crop - 1, 0), plan.grid_cols)
        want_row = np.where(base, r, tile_r * n + r)
        want_col = np.where(base, c, tile_c * n + c)
        lay = ~is_newline
        assert np.array_equal(layout.crop[lay], crop), size_hw
        assert np.array_equal(layout.row[lay], want_row), size_hw
        assert np.array_equal(layout.col[lay], want_col), size_hw
        assert np.array_equal(layout.kind[lay] == KIND_CODE["base"], base), size_hw
        _assert_boxes_inside_crop_sources(plan, layout)


def _assert_boxes_inside_crop_sources(plan, layout):
    """Each token's original-pixel box lies inside the source window of the crop it reads
    (the crops' placement is checked pixel by pixel in test_parity_processors)."""
    has_box = ~np.isnan(layout.box).any(axis=1) & (layout.crop >= 0)
    src = np.array([plan.crops[k].source.as_tuple() for k in layout.crop[has_box]])
    box = layout.box[has_box]
    eps = 1e-6 * max(plan.image_hw.hw)
    assert (box[:, :2] >= src[:, :2] - eps).all() and (box[:, 2:] <= src[:, 2:] + eps).all()


def test_llava_next_newlines_end_every_grid_row(tiny):
    model = tiny("llava_next")
    for size_hw in [(1080, 1920), (2000, 10), (10, 2000)]:
        plan = plan_image(size_hw, family_preset("llava_next"))
        out = _pack(model, _crop_cell_features(plan), size_hw, vision_feature_select_strategy="default")
        h2, w2 = plan.unpadded_hw.hw
        newline_at = np.flatnonzero((out == NEWLINE).all(axis=1))
        # spec 1.4: after the 576 base tokens, H2 rows of W2 cells + 1 newline
        n_base = plan.cells_per_tile ** 2
        assert list(newline_at) == [n_base + (i + 1) * (w2 + 1) - 1 for i in range(h2)]
        layout = build_layout(plan)
        # a newline carries the canvas row it ends, like the tile tokens of that row
        assert np.array_equal(layout.row[newline_at], np.arange(h2) + plan.unpad_cells[0])
        if w2:
            assert np.array_equal(layout.row[newline_at], layout.row[newline_at - 1])


# ---------------------------------------------------------------- LLaVA-OneVision
def _onehot_features(plan) -> tuple[torch.Tensor, int]:
    """(crops, n*n, 1 + H + W): crop index, one-hot canvas row R, one-hot canvas col C (for
    the base crop: its own row / col). Bilinear mixing turns the one-hots into weights."""
    n = plan.cells_per_tile
    H, W = plan.features_hw.hw
    feats = torch.zeros(plan.num_crops, n * n, 1 + H + W)
    r, c = np.divmod(np.arange(n * n), n)
    for k in range(plan.num_crops):
        tr, tc = divmod(k - 1, plan.grid_cols) if k else (0, 0)
        R, C = (r, c) if k == 0 else (tr * n + r, tc * n + c)
        feats[k, :, 0] = k
        feats[k, np.arange(n * n), 1 + R] = 1.0
        feats[k, np.arange(n * n), 1 + H + C] = 1.0
    return feats, H


def _cell_boxes_without_downscale(size_hw, preset) -> dict:
    """(R, C) -> original-pixel box of every kept canvas cell, from the layout of the same
    image with the downscale switched off."""
    layout = build_layout(plan_image(size_hw, preset, downscale_threshold=1e9))
    tiles = _tokens(layout, "tile")
    return {(int(layout.row[t]), int(layout.col[t])): layout.box[t] for t in tiles}


# The model interpolates in float32: weights carry ~1e-5 of error (spec 2.4 measured 1.5e-5).
WEIGHT_TOL = 1e-4


def _same_blend(model_parts, layout_boxes, layout_weights) -> bool:
    """Multiset equality of (box, weight) pairs; NaN boxes (cells wholly in padding) match."""
    remaining = [(b, w) for b, w in zip(layout_boxes, layout_weights) if w > WEIGHT_TOL]
    if len(remaining) != len(model_parts):
        return False
    for box, weight in model_parts:
        hit = [i for i, (b, w) in enumerate(remaining)
               if abs(w - weight) < WEIGHT_TOL and np.allclose(b, box, equal_nan=True)]
        if not hit:
            return False
        remaining.pop(hit[0])
    return True


ONEVISION_HW = list(dict.fromkeys(SPEC_HW + [(1, 200), (200, 1), (3, 3000), (5000, 4)]
                                  + _some_sweep_sizes(12, seed=12)))


@pytest.mark.parametrize("size_hw", ONEVISION_HW, ids=size_label)
def test_onevision_pack_order_and_blend_weights_match_layout(tiny, size_hw):
    model = tiny("llava_onevision")
    preset = family_preset("llava_onevision")
    plan = plan_image(size_hw, preset)
    layout = build_layout(plan)
    feats, H = _onehot_features(plan)
    out = _pack(model, feats, size_hw, vision_aspect_ratio="anyres_max_9")
    assert out.shape[0] == len(layout) == plan.num_image_tokens
    is_newline = (out == NEWLINE).all(axis=1)
    assert np.array_equal(is_newline, layout.kind == KIND_CODE["newline"])
    n_base = plan.cells_per_tile ** 2
    grid = np.flatnonzero(~is_newline)[n_base:]
    row_w, col_w = out[grid, 1:1 + H], out[grid, 1 + H:]
    if not plan.downscaled:
        # every token reads exactly one canvas cell: one-hot survives
        assert np.allclose(row_w.max(1), 1) and np.allclose(col_w.max(1), 1)
        assert np.array_equal(layout.row[grid], row_w.argmax(1))
        assert np.array_equal(layout.col[grid], col_w.argmax(1))
        assert np.array_equal(layout.crop[grid], out[grid, 0].round().astype(int))
        return
    assert layout.has_blends
    box_of = _cell_boxes_without_downscale(size_hw, preset)
    n, cols = plan.cells_per_tile, plan.grid_cols
    h3, w3 = plan.final_hw.hw
    assert np.array_equal(layout.row[grid], np.repeat(np.arange(h3), w3))
    assert np.array_equal(layout.col[grid], np.tile(np.arange(w3), h3))
    for k, token in enumerate(grid):
        rows, cols_ = np.flatnonzero(row_w[k] > WEIGHT_TOL), np.flatnonzero(col_w[k] > WEIGHT_TOL)
        parts = [(box_of[(R, C)], row_w[k, R] * col_w[k, C]) for R in rows for C in cols_
                 if row_w[k, R] * col_w[k, C] > WEIGHT_TOL]
        assert _same_blend(parts, layout.blend_boxes[token], layout.blend_weights[token]), \
            (size_hw, int(token), parts, layout.blend_boxes[token], layout.blend_weights[token])
        top = max(w for _, w in parts)
        nearest = {1 + (R // n) * cols + C // n for R in rows for C in cols_
                   if abs(row_w[k, R] * col_w[k, C] - top) < WEIGHT_TOL}
        assert int(layout.crop[token]) in nearest, (size_hw, int(token))


# ---------------------------------------------------------------- InternVL
class _EncodedInternViT(torch.nn.Module):
    """Stand-in vision tower: CLS then 32x32 patches, each saying (crop, patch row, col)."""

    def __init__(self, patches_per_side: int):
        super().__init__()
        self.side = patches_per_side

    def forward(self, pixel_values, **kwargs):
        from transformers.modeling_outputs import BaseModelOutputWithPooling

        crops = pixel_values.shape[0]
        pr, pc = np.divmod(np.arange(self.side ** 2), self.side)
        feats = np.stack([np.repeat(np.arange(crops), self.side ** 2).reshape(crops, -1),
                          np.broadcast_to(pr, (crops, pr.size)),
                          np.broadcast_to(pc, (crops, pc.size))], -1)
        cls = np.full((crops, 1, 3), -5.0)
        hidden = torch.tensor(np.concatenate([cls, feats], 1), dtype=torch.float32)
        return BaseModelOutputWithPooling(last_hidden_state=hidden)


INTERNVL_HW = list(dict.fromkeys(SPEC_HW[:3] + SPEC_HW[4:8] + [(91, 37), (1, 300)]))


def test_internvl_pixel_shuffle_order_matches_layout():
    preset = family_preset("internvl")
    model, processor = build_tiny_model(preset)
    s = preset.settings
    model.model.vision_tower = _EncodedInternViT(s.tile_size // s.patch_size)
    model.model.multi_modal_projector = torch.nn.Identity()
    m = s.cells_per_side
    for size_hw in INTERNVL_HW:
        out = hp.processor_outputs(processor, solid_image(size_hw), preset)
        with torch.no_grad():
            feats = model.model.get_image_features(
                pixel_values=out["pixel_values"], vision_feature_layer=-1,
                vision_feature_select_strategy="default").pooler_output
        plan = plan_image(size_hw, preset)
        layout = build_layout(plan)
        body = np.flatnonzero(layout.kind != KIND_CODE["wrapper"])
        feats = feats.reshape(-1, 4, 3).numpy()  # (tokens, 4 packed patches, (crop, pr, pc))
        assert feats.shape[0] == body.size == plan.num_image_tokens, size_hw
        crop = feats[:, 0, 0].astype(int)
        assert (feats[:, :, 0] == crop[:, None]).all()  # one crop per token, CLS dropped
        r, c = feats[:, 0, 1].astype(int) // 2, feats[:, 0, 2].astype(int) // 2
        # spec 4.4: token (r, c) packs patches (2r,2c), (2r,2c+1), (2r+1,2c), (2r+1,2c+1)
        want = np.stack([np.stack([2 * r + dy, 2 * c + dx], -1) for dy, dx in
                         ((0, 0), (0, 1), (1, 0), (1, 1))], 1)
        assert np.array_equal(feats[:, :, 1:].astype(int), want), size_hw
        assert np.array_equal(np.arange(body.size) % (m * m), r * m + c)  # row-major cells
        tr, tc = np.divmod(crop, plan.grid_cols)
        thumb = np.array([plan.crops[k].kind == "thumbnail" for k in crop])
        assert np.array_equal(layout.crop[body], crop)
        assert np.array_equal(layout.row[body], np.where(thumb, r, tr * m + r)), size_hw
        assert np.array_equal(layout.col[body], np.where(thumb, c, tc * m + c)), size_hw
        assert np.array_equal(layout.kind[body] == KIND_CODE["thumbnail"], thumb)
        _assert_boxes_inside_crop_sources(plan, layout)


# ---------------------------------------------------------------- Qwen2-VL / Qwen2.5-VL
def _qwen_coordinate_patches(processor, plan):
    """The processor's own pixel_values rows for an image whose pixels hold (y, x), already at
    the resized size: (rows, 3, temporal, 14, 14)."""
    H, W = plan.resized_hw.hw
    yy, xx = torch.meshgrid(torch.arange(H, dtype=torch.float32),
                            torch.arange(W, dtype=torch.float32), indexing="ij")
    image = torch.stack([yy, xx, torch.zeros_like(yy)])
    out = processor.image_processor(images=[image], do_resize=False, do_rescale=False,
                                    do_normalize=False, return_tensors="pt")
    ip = processor.image_processor
    assert out["image_grid_thw"].tolist() == [[1, H // ip.patch_size, W // ip.patch_size]]
    pv = out["pixel_values"]
    return pv, out["image_grid_thw"], pv.reshape(pv.shape[0], 3, ip.temporal_patch_size,
                                                  ip.patch_size, ip.patch_size).numpy()


QWEN_HW = [(300, 500), (1080, 1920), (899, 1024), (2000, 10), (1, 1), (91, 37), (480, 640)]


@pytest.mark.parametrize("family", QWEN_FAMILIES)
def test_qwen_patch_order_matches_layout(family):
    preset = family_preset(family)
    processor = hp.build_processor(preset)
    for size_hw in QWEN_HW:
        plan = plan_image(size_hw, preset)
        layout = build_layout(plan)
        _, _, patches = _qwen_coordinate_patches(processor, plan)
        y0, x0 = patches[:, 0, 0, 0, 0], patches[:, 1, 0, 0, 0]
        p, f = preset.settings.patch_size, preset.settings.factor  # 14 / 28; Qwen3: 16 / 32
        dy, dx = np.mgrid[0:p, 0:p]
        # every row is one 14x14 block, the still image repeated over both frames
        assert np.array_equal(patches[:, 0, 0], y0[:, None, None] + dy)
        assert np.array_equal(patches[:, 1, 0], x0[:, None, None] + dx)
        assert np.array_equal(patches[:, :, 0], patches[:, :, 1])
        # 4 consecutive rows = one merged token: top-left, top-right, bottom-left, bottom-right
        y4, x4 = y0.reshape(-1, 4), x0.reshape(-1, 4)
        assert np.array_equal(y4 - y4[:, :1], np.tile([0, 0, p, p], (len(y4), 1)))
        assert np.array_equal(x4 - x4[:, :1], np.tile([0, p, 0, p], (len(x4), 1)))
        body = np.flatnonzero(layout.kind == KIND_CODE["image"])
        assert body.size == len(y4) == plan.num_image_tokens, size_hw
        assert np.array_equal(layout.row[body] * f, y4[:, 0])
        assert np.array_equal(layout.col[body] * f, x4[:, 0])
        h, w = size_hw
        H, W = plan.resized_hw.hw
        want = np.stack([x4[:, 0] * w / W, y4[:, 0] * h / H,
                         (x4[:, 0] + f) * w / W, (y4[:, 0] + f) * h / H], -1)
        assert np.allclose(layout.box[body], np.minimum(want, [w, h, w, h])), size_hw


class _TopLeftEmbed(torch.nn.Module):
    """Stand-in patch embedding: a row's first pixel (y, x), zero-padded to the width."""

    def __init__(self, width: int, patch: int, temporal: int):
        super().__init__()
        self.width, self.patch, self.temporal = width, patch, temporal
        self.dtype_anchor = torch.nn.Parameter(torch.zeros(()))  # the model reads its dtype

    def forward(self, rows, **kwargs):
        yx = rows.reshape(rows.shape[0], 3, self.temporal, self.patch, self.patch)[:, :2, 0, 0, 0]
        return torch.nn.functional.pad(yx, (0, self.width - 2))


@pytest.mark.parametrize("family", ["qwen2_vl", "qwen2_5_vl"])  # Qwen3: test_token_order_wave1a
def test_qwen_vision_model_merges_4_consecutive_rows_in_llm_order(family):
    """With the ViT blocks removed and the merger's norm/MLP as identities, token k of the
    vision output concatenates processor rows 4k..4k+3; for Qwen2.5 this also checks that the
    112-px window reordering is undone before the LLM."""
    preset = family_preset(family)
    model, processor = build_tiny_model(preset)
    visual = model.model.visual
    width = visual.merger.ln_q.weight.shape[0]
    visual.patch_embed = _TopLeftEmbed(width, preset.settings.patch_size,
                                       preset.settings.temporal_patch_size)
    visual.blocks = torch.nn.ModuleList()
    visual.merger.ln_q = torch.nn.Identity()
    visual.merger.mlp = torch.nn.Identity()
    for size_hw in [(300, 500), (899, 1024), (2000, 10)]:
        plan = plan_image(size_hw, preset)
        pv, thw, patches = _qwen_coordinate_patches(processor, plan)
        with torch.no_grad():
            merged = model.model.get_image_features(pixel_values=pv, image_grid_thw=thw).pooler_output[0]
        got = merged.reshape(-1, 4, width)[:, :, :2].numpy()
        want = np.stack([patches[:, 0, 0, 0, 0], patches[:, 1, 0, 0, 0]], -1).reshape(-1, 4, 2)
        assert got.shape[0] == plan.num_image_tokens
        assert np.array_equal(got, want), size_hw
        if family == "qwen2_5_vl" and plan.grid_cols > 4:
            # the windows really reorder the tokens inside the ViT, so the test sees the undo
            from transformers.vision_utils import get_vision_window_index

            window_index, _ = get_vision_window_index(thw, 2, 112, preset.settings.patch_size)
            assert not np.array_equal(window_index.numpy(), np.arange(got.shape[0]))


# ---------------------------------------------------------------- round trip
@pytest.mark.parametrize("family", FAMILIES)
def test_tiny_model_round_trip_counts_match_plan(family, tmp_path):
    from transformers import AutoModelForImageTextToText, AutoProcessor

    preset = family_preset(family)
    built, built_processor = build_tiny_model(preset, str(tmp_path))
    size = sum(f.stat().st_size for f in tmp_path.iterdir())
    assert size < 2_000_000
    processor = AutoProcessor.from_pretrained(tmp_path)
    model = AutoModelForImageTextToText.from_pretrained(tmp_path).eval()
    assert type(model) is type(built)
    assert type(processor.image_processor) is type(built_processor.image_processor)
    for name, value in built.state_dict().items():
        assert torch.equal(model.state_dict()[name], value), name
    image = noise_image((300, 500), seed=3)
    plan = plan_image(image, preset)
    messages = [{"role": "user", "content": [{"type": "image"},
                                             {"type": "text", "text": "describe this image ."}]}]
    prompt = processor.apply_chat_template(messages, add_generation_prompt=True)
    inputs = processor(images=[image], text=[prompt], return_tensors="pt")
    ids = inputs["input_ids"][0]
    assert int((ids == model.config.image_token_id).sum()) == plan.num_image_tokens
    with torch.no_grad():
        logits = model(**inputs).logits  # raises if features and placeholders disagree
    assert logits.shape[:2] == inputs["input_ids"].shape
    assert logits.shape[-1] == model.config.get_text_config().vocab_size

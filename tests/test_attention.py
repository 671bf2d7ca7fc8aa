"""attention.py: per-token scores -> heat over the original image through the layout.

Exactness: attention planted on one token k lands exactly on the pixels of k's box (display
scale 1:1 with the original image), in k's panel, for every family, LLaVA's unpadded
(letterboxed and pillarboxed) and newline-only cases, OneVision's blended tokens, Qwen and
InternVL's thumbnail.
"""
import json
import math
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from anyres_demo import attention as att
from anyres_demo import build_layout, plan_image
from anyres_demo.layout import KIND_CODE, KINDS

# (model, (height, width)): each case exercises a different piece of the mapping.
CASES = {
    "llava-next-letterbox": ("llava-next", (1080, 1920)),  # unpad rows (top/bottom)
    "llava-next-pillarbox": ("llava-next", (1920, 1080)),  # unpad columns (left/right)
    "llava-next-1x2": ("llava-next", (300, 500)),
    "llava-next-newline-only": ("llava-next", (2000, 10)),  # W2 = 0: only newlines in the grid
    "onevision-plain": ("llava-onevision", (480, 640)),
    "onevision-downscaled": ("llava-onevision", (1080, 1920)),  # bilinear-blended tokens
    "qwen2-vl": ("qwen2-vl", (480, 640)),
    "qwen2-vl-odd": ("qwen2-vl", (899, 1024)),
    "internvl-thumbnail": ("internvl", (480, 640)),
    "internvl-single-tile": ("internvl", (100, 100)),
}
PANEL_OF_KIND = {"tile": "tiles", "base": "base", "thumbnail": "thumbnail", "image": "image"}


def layout_for(case):
    model, hw = CASES[case]
    return build_layout(plan_image(hw, model))


def pixel_span(box):
    """Pixels [floor(x0), ceil(x1)) x [floor(y0), ceil(y1)) a 1:1 box overlaps."""
    x0, y0, x1, y1 = box
    return math.floor(y0), math.ceil(y1), math.floor(x0), math.ceil(x1)


def one_hot(n, k):
    s = np.zeros(n)
    s[k] = 1.0
    return s


def sample_tokens(layout):
    """A few image-token indices of every kind present: first, middle, last."""
    kinds = layout.kind[layout.image_token_mask]
    picks = []
    for code in np.unique(kinds):
        idx = np.flatnonzero(kinds == code)
        picks += [int(idx[0]), int(idx[len(idx) // 2]), int(idx[-1])]
    return sorted(set(picks))


# ----------------------------------------------------------------------------- rasterize
def test_rasterize_spreads_mass_by_overlap_area():
    heat = att.rasterize(np.array([[0.5, 0.0, 2.5, 1.0]]), np.array([1.0]), (2, 4))
    np.testing.assert_allclose(heat, [[0.25, 0.5, 0.25, 0.0], [0, 0, 0, 0]], atol=1e-15)


def test_rasterize_preserves_mass_and_clips_to_the_grid():
    rng = np.random.default_rng(0)
    x0, y0 = rng.uniform(0, 90, 50), rng.uniform(0, 40, 50)
    boxes = np.stack([x0, y0, x0 + rng.uniform(0.1, 20, 50), y0 + rng.uniform(0.1, 20, 50)], 1)
    mass = rng.uniform(0, 1, 50)
    heat = att.rasterize(boxes, mass, (50, 100))
    inside = np.minimum(boxes[:, 2], 100) - boxes[:, 0]
    inside = inside * (np.minimum(boxes[:, 3], 50) - boxes[:, 1])
    full = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    assert heat.sum() == pytest.approx((mass * inside / full).sum(), rel=1e-12)
    assert heat.min() >= 0


def test_rasterize_ignores_empty_and_nan_boxes():
    boxes = np.array([[1.0, 1.0, 1.0, 3.0], [np.nan] * 4, [0.0, 0.0, 1.0, 1.0]])
    heat = att.rasterize(boxes, np.array([5.0, 5.0, 2.0]), (3, 3))
    assert heat.sum() == pytest.approx(2.0)
    assert heat[0, 0] == pytest.approx(2.0)


# ----------------------------------------------------------------------------- planted tokens
@pytest.mark.parametrize("case", list(CASES))
def test_planted_token_lands_in_its_box(case):
    layout = layout_for(case)
    rows = np.flatnonzero(layout.image_token_mask)
    n = rows.shape[0]
    h, w = layout.plan.image_hw.hw
    checked = 0
    for k in sample_tokens(layout):
        kind = KINDS[layout.kind[rows[k]]]
        blended = layout.blend_weights is not None and (layout.blend_weights[rows[k]] > 0).sum() > 1
        if kind == "newline" or blended or np.isnan(layout.box[rows[k]]).any():
            continue
        heat = att.map_heat(layout, one_hot(n, k), max_side=max(h, w))
        assert heat.display_hw == (h, w) and heat.scale_xy == (1.0, 1.0)
        panel = PANEL_OF_KIND[kind]
        grid = heat.panels[panel]
        r0, r1, c0, c1 = pixel_span(layout.box[rows[k]])
        expected = np.zeros((h, w), bool)
        expected[r0:r1, c0:c1] = True
        assert np.array_equal(grid > 0, expected), (case, k, kind)
        assert grid.sum() == pytest.approx(1.0)
        assert heat.panel_mass[panel] == pytest.approx(1.0)
        for other, g in heat.panels.items():
            if other != panel:
                assert g.sum() == 0
        checked += 1
    assert checked >= 2


@pytest.mark.parametrize("case", ["llava-next-letterbox", "llava-next-newline-only",
                                  "onevision-plain"])
def test_newline_tokens_are_reported_not_drawn(case):
    layout = layout_for(case)
    kinds = layout.kind[layout.image_token_mask]
    k = int(np.flatnonzero(kinds == KIND_CODE["newline"])[0])
    heat = att.map_heat(layout, one_hot(kinds.shape[0], k))
    assert heat.newline_mass == pytest.approx(1.0)
    assert all(g.sum() == 0 for g in heat.panels.values())
    assert any("newline" in note for note in heat.notes)


def test_onevision_blended_token_spreads_by_its_weights():
    layout = layout_for("onevision-downscaled")
    rows = np.flatnonzero(layout.image_token_mask)
    weights = layout.blend_weights[rows]
    k = int(np.flatnonzero((weights > 0).sum(1) == 4)[100])  # a token blending four cells
    h, w = layout.plan.image_hw.hw
    heat = att.map_heat(layout, one_hot(rows.shape[0], k), max_side=max(h, w))
    grid = heat.panels["tiles"]
    assert grid.sum() == pytest.approx(1.0)
    covered = np.zeros((h, w), bool)
    for part, weight in zip(layout.blend_boxes[rows[k]], weights[k]):
        r0, r1, c0, c1 = pixel_span(part)
        covered[r0:r1, c0:c1] = True
        box_area = (part[2] - part[0]) * (part[3] - part[1])
        inner = grid[math.ceil(part[1]):math.floor(part[3]), math.ceil(part[0]):math.floor(part[2])]
        # pixels fully inside one part and no other hold weight / area each
        assert inner.max() >= weight / box_area * (1 - 1e-9)
    assert np.array_equal(grid > 0, covered)


@pytest.mark.parametrize("case", ["llava-next-letterbox", "onevision-downscaled",
                                  "internvl-thumbnail"])
def test_tile_mass_goes_to_the_planted_tile(case):
    layout = layout_for(case)
    rows = np.flatnonzero(layout.image_token_mask)
    kinds = layout.kind[rows]
    for k in np.flatnonzero(kinds == KIND_CODE["tile"])[[0, -1]]:
        heat = att.map_heat(layout, one_hot(rows.shape[0], int(k)))
        spec = layout.plan.crops[int(layout.crop[rows[k]])]
        assert heat.tile_mass.sum() == pytest.approx(1.0)
        assert heat.tile_mass[spec.row, spec.col] == pytest.approx(1.0), (case, k)


def test_uniform_scores_split_by_token_counts():
    layout = layout_for("llava-next-letterbox")
    counts = layout.counts_by_kind()
    heat = att.map_heat(layout, np.ones(layout.num_image_tokens))
    n = layout.num_image_tokens
    assert heat.panel_mass["base"] == pytest.approx(counts["base"] / n)
    assert heat.panel_mass["tiles"] + heat.padding_mass == pytest.approx(counts["tile"] / n)
    assert heat.newline_mass == pytest.approx(counts["newline"] / n)
    assert heat.global_share + heat.detail_share + heat.newline_mass + heat.padding_mass == \
        pytest.approx(1.0)
    assert heat.tile_mass.shape == (2, 2)


def test_qwen_has_one_panel_and_no_tiles():
    layout = layout_for("qwen2-vl")
    heat = att.map_heat(layout, np.arange(layout.num_image_tokens, dtype=float) + 1)
    assert list(heat.panels) == ["image"] and heat.tile_mass is None
    assert heat.panel_mass["image"] == pytest.approx(1.0)


def test_map_heat_rejects_a_score_count_mismatch():
    layout = layout_for("qwen2-vl")
    with pytest.raises(ValueError, match="391 image tokens"):
        att.map_heat(layout, np.ones(390))


# ----------------------------------------------------------------------------- scores and sinks
def test_select_scores_layer_range_and_token():
    per_layer = np.arange(3 * 2 * 4, dtype=float).reshape(3, 2, 4)
    np.testing.assert_allclose(att.select_scores(per_layer, (1, 2), 0),
                               per_layer[1:3, 0].mean(0))
    np.testing.assert_allclose(att.select_scores(per_layer), per_layer.mean((0, 1)))
    with pytest.raises(ValueError, match="layer range"):
        att.select_scores(per_layer, (2, 3))
    with pytest.raises(ValueError, match="answer token 5"):
        att.select_scores(per_layer, None, 5)


def test_renormalise_and_sinks():
    scores = np.full(100, 0.001)
    scores[7] = 0.5
    p = att.renormalise(scores)
    assert p.sum() == pytest.approx(1.0)
    assert list(att.find_sinks(p)) == [7]
    layout = layout_for("llava-next-1x2")
    s = np.full(layout.num_image_tokens, 1e-4)
    s[3] = 1.0
    shown = att.map_heat(layout, s)
    hidden = att.map_heat(layout, s, hide_sinks=True)
    assert shown.sinks[0][0] == 3 and shown.sinks[0][1] == "base" and shown.sinks[0][2] > 0.5
    assert hidden.dropped == (3,)
    assert hidden.panel_mass["base"] < shown.panel_mass["base"]
    with pytest.raises(ValueError, match="no attention"):
        att.renormalise(np.zeros(4))


# ----------------------------------------------------------------------------- drawing
def test_overlay_and_summary():
    layout = layout_for("internvl-thumbnail")
    heat = att.map_heat(layout, np.random.default_rng(1).random(layout.num_image_tokens),
                        max_side=256)
    image = Image.new("RGB", (640, 480), (120, 120, 120))
    panels = att.render_panels(image, heat)
    assert [p[0].size for p in panels] == [(256, 192)] * 2
    assert "thumbnail" in panels[1][1]
    text = att.summary(heat, image_share=0.25)
    assert att.CAPTION in text and "25.0%" in text and "Per tile" in text
    rgb = att.colorize(np.array([[0.0, 1.0]]))
    assert rgb.shape == (1, 2, 3) and rgb.dtype == np.uint8 and (rgb[0, 1] > rgb[0, 0]).all()


def test_attention_module_imports_no_torch_or_gradio():
    heavy = ("torch", "gradio", "transformers")
    code = ("import sys, json; import anyres_demo.attention; "
            f"print(json.dumps([m for m in {heavy!r} if m in sys.modules]))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == []

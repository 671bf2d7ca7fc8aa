"""Invariants over every registered preset and awkward sizes (style: timm's test_models)."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from anyres_demo import KINDS, build_layout, count_tokens_many, get_preset, list_presets, plan_image
from anyres_demo.engine import count_total_many
from anyres_demo.layout import KIND_CODE, KIND_INFO
from anyres_demo.strategies import get_strategy

PRESET_IDS = [p.repo_id for p in list_presets()]
AWKWARD = [(1, 1), (1, 200), (200, 1), (1, 7999), (7999, 1), (14, 2800), (2000, 10), (10, 2000),
           (30, 4000), (4000, 30), (336, 336), (448, 448), (384, 384), (1080, 1920), (8000, 8000),
           (1128, 47), (55, 88), (899, 1024), (3, 5), (27, 29)]
sizes_hw = st.tuples(st.integers(1, 9000), st.integers(1, 9000))


def check_invariants(size_hw, repo_id, **overrides):
    if overrides:  # a preset with user settings (Gemma 3's pan-and-scan)
        repo_id = get_preset(repo_id).with_overrides(**overrides)
    try:
        plan = plan_image(size_hw, repo_id)
    except ValueError as exc:  # only Qwen's and Pixtral's aspect limits raise for a positive size
        assert (str(repo_id).startswith("Qwen/") and "above 200:1" in str(exc)) or \
            (plan_strategy(repo_id) == "pixtral" and "keeps 0 px" in str(exc))
        assert count_tokens_many([size_hw[0]], [size_hw[1]], repo_id)[0] == -1
        return
    lay = build_layout(plan)
    h, w = size_hw
    # counts: layout == plan closed form == vectorized sweep
    assert lay.counts_by_kind() == {k: v for k, v in plan.tokens_by_kind.items() if v}
    assert lay.num_image_tokens == plan.num_image_tokens
    assert count_tokens_many([h], [w], repo_id)[0] == plan.num_image_tokens
    assert count_total_many([h], [w], repo_id)[0] == plan.num_tokens == len(lay)
    # boxes inside the image, with area
    ok = ~np.isnan(lay.box).any(axis=1)
    b = lay.box[ok]
    assert (b[:, 0] >= 0).all() and (b[:, 1] >= 0).all()
    assert (b[:, 2] <= w + 1e-9).all() and (b[:, 3] <= h + 1e-9).all()
    assert (b[:, 2] > b[:, 0]).all() and (b[:, 3] > b[:, 1]).all()
    # tokens without a box are exactly newlines / wrappers, plus (LLaVA) cells wholly in padding
    no_box = lay.kind[~ok]
    if plan.strategy in ("qwen2_vl", "internvl", "qwen3_vl", "pixtral"):
        assert all(not KIND_INFO[KINDS[k]].placeholder for k in no_box.tolist())
    # crops: indices in range, every crop feeds some token, crop order contiguous in the sequence
    crops = lay.crop[lay.crop >= 0]
    assert crops.min() >= 0 and crops.max() < plan.num_crops
    assert set(np.unique(crops).tolist()) == expected_crops(plan)
    # wrappers first and last (Qwen, InternVL, Gemma 4) and nowhere else; Gemma 3: one pair
    # around each view, enclosing exactly that view's tokens
    wrap = np.flatnonzero(lay.kind == KIND_CODE["wrapper"])
    if plan.strategy == "gemma3":
        for crop in range(plan.num_crops):
            at = np.flatnonzero(lay.crop == crop)
            assert wrap[2 * crop] == at[0] - 1 and wrap[2 * crop + 1] == at[-1] + 1
            assert at[-1] - at[0] + 1 == at.size  # contiguous
    elif plan.tokens_by_kind.get("wrapper"):
        assert wrap.tolist() == [0, len(lay) - 1]
    else:
        assert wrap.size == 0
    if plan.strategy == "pixtral":
        check_pixtral_row_ends(plan, lay)
    assert count_tokens_total(plan, h, w) == len(lay)


def count_tokens_total(plan, h, w):
    """The vectorized total (placeholders + specials): the family's count_many_total, or the
    seam's default (count_many, plus 2 when the preset has wrappers)."""
    module = get_strategy(plan.strategy)
    if hasattr(module, "count_many_total"):
        return int(module.count_many_total(np.array([h]), np.array([w]), plan.preset)[0])
    return int(module.count_many(np.array([h]), np.array([w]), plan.preset)[0]) + \
        (2 if plan.preset.wrapper_tokens else 0)


def check_pixtral_row_ends(plan, lay):
    """[IMG_BREAK] right after each row's last [IMG] but the last row's, which ends in [IMG_END]."""
    ends = np.flatnonzero(lay.kind != KIND_CODE["patch"])
    step = plan.grid_cols + 1
    assert ends.tolist() == list(range(plan.grid_cols, len(lay), step))
    assert lay.kind[ends[-1]] == KIND_CODE["img_end"]
    assert (lay.kind[ends[:-1]] == KIND_CODE["img_break"]).all()
    assert lay.row[ends].tolist() == list(range(plan.grid_rows))


def plan_strategy(repo_id):
    from anyres_demo import get_preset

    return get_preset(repo_id).strategy


def expected_crops(plan):
    """Crops that feed at least one token: all of them, except that LLaVA's unpadding (and
    OneVision's downscale, which keeps the unpadded extent) can drop whole tiles."""
    if plan.strategy == "mllama":  # one prompt token for every tile (cross-attention)
        return {0}
    if not plan.strategy.startswith("llava"):
        return set(range(plan.num_crops))
    n = plan.cells_per_tile
    top, _, left, _ = plan.unpad_cells
    h2, w2 = plan.unpadded_hw.hw
    rows = {r // n for r in range(top, top + h2)} if w2 else set()
    cols = {c // n for c in range(left, left + w2)} if h2 else set()
    return {0} | {1 + r * plan.grid_cols + c for r in rows for c in cols}


@pytest.mark.parametrize("repo_id", PRESET_IDS)
@pytest.mark.parametrize("size_hw", AWKWARD, ids=[f"{w}x{h}" for h, w in AWKWARD])
def test_invariants_awkward_sizes(size_hw, repo_id):
    check_invariants(size_hw, repo_id)


@pytest.mark.parametrize("repo_id", PRESET_IDS)
@settings(max_examples=40, deadline=None)
@given(size_hw=sizes_hw)
def test_invariants_property(repo_id, size_hw):
    check_invariants(size_hw, repo_id)


# Settings that change a family's layout structure: Gemma 3's pan-and-scan crops (with its
# prompt words and a marker pair per view), up to 16 crops with a small minimum crop size.
SETTINGS_CASES = [("google/gemma-3-4b-it", {"do_pan_and_scan": True}),
                  ("google/gemma-3-4b-it", {"do_pan_and_scan": True, "pan_and_scan_max_num_crops": 16,
                                            "pan_and_scan_min_crop_size": 16}),
                  ("google/gemma-4-E2B-it", {"max_soft_tokens": 1120})]


@pytest.mark.parametrize("repo_id,overrides", SETTINGS_CASES, ids=["pas", "pas-16", "budget-1120"])
@pytest.mark.parametrize("size_hw", AWKWARD, ids=[f"{w}x{h}" for h, w in AWKWARD])
def test_invariants_with_settings(size_hw, repo_id, overrides):
    check_invariants(size_hw, repo_id, **overrides)


def test_llava_order_base_then_rows_with_newlines():
    lay = build_layout(plan_image((1080, 1920), "llava-next"))
    kinds = [KINDS[k] for k in lay.kind]
    assert kinds[:576] == ["base"] * 576
    grid = np.array(kinds[576:]).reshape(28, 49)  # H2 rows of W2 cells + 1 newline
    assert (grid[:, -1] == "newline").all() and (grid[:, :-1] == "tile").all()
    # first grid token: canvas cell (pad_top=10, 0) of tile (0, 0); box starts at the paste edge
    first = lay.token(576)
    assert (first.row, first.col, first.crop) == (10, 0, 1)
    # canvas y 140 - paste 147 -> -7 -> clipped to 0; scale 1920/672
    assert first.box == pytest.approx((0.0, 0.0, 14 * 1920 / 672, 7 * 1080 / 378))
    # cell (R=24, C=24) is the first cell of tile (1, 1) = crop 4
    k = 576 + (24 - 10) * 49 + 24
    assert (lay.token(k).row, lay.token(k).col, lay.token(k).crop) == (24, 24, 4)


def test_llava_extreme_newline_only():
    lay = build_layout(plan_image((2000, 10), "llava-next"))
    assert lay.counts_by_kind() == {"base": 576, "newline": 72}
    assert np.isnan(lay.box[576:]).all()


def test_internvl_order_tiles_then_thumbnail():
    plan = plan_image((1080, 1920), "internvl")  # 4 cols x 2 rows
    lay = build_layout(plan)
    assert lay.kind[0] == lay.kind[-1] == KIND_CODE["wrapper"]
    t = lay.token(1 + 256 * 5 + 17)  # tile 5 = (row 1, col 1), cell (1, 1)
    assert (t.crop, t.row, t.col) == (5, 16 + 1, 16 + 1)
    assert t.box == pytest.approx((17 * 28 * 1920 / 1792, 17 * 28 * 1080 / 896,
                                   18 * 28 * 1920 / 1792, 18 * 28 * 1080 / 896))
    thumb = lay.token(1 + 256 * 8)
    assert (thumb.kind, thumb.crop, thumb.row, thumb.col) == ("thumbnail", 8, 0, 0)
    assert thumb.box == pytest.approx((0, 0, 28 * 1920 / 448, 28 * 1080 / 448))


def test_qwen_order_row_major_merged_blocks():
    lay = build_layout(plan_image((1080, 1920), "qwen2-vl"))  # resized 1092 x 1932 -> 39 x 69
    t = lay.token(1 + 69 * 2 + 3)
    assert (t.kind, t.row, t.col) == ("image", 2, 3)
    assert t.box == pytest.approx((84 * 1920 / 1932, 56 * 1080 / 1092, 112 * 1920 / 1932, 84 * 1080 / 1092))


def test_onevision_downscale_blends_are_honest():
    lay = build_layout(plan_image((1080, 1920), "llava-onevision"))
    assert lay.has_blends
    w = lay.blend_weights
    tiles = lay.kind == KIND_CODE["tile"]
    assert np.allclose(w[tiles].sum(axis=1), 1.0)
    assert (w[lay.kind == KIND_CODE["newline"]] == 0).all()
    assert (np.count_nonzero(w[tiles], axis=1) > 1).any()  # some tokens really blend cells
    info = lay.token(729 + 1)
    assert info.blended
    # the union box covers every contributing cell box
    bb = lay.blend_boxes[729 + 1]
    used = w[729 + 1] > 0
    assert info.box[0] <= bb[used, 0].min() and info.box[2] >= bb[used, 2].max()


def test_onevision_without_downscale_has_no_blends():
    lay = build_layout(plan_image((480, 640), "llava-onevision"))
    assert not lay.has_blends and lay.blend_weights is None


def test_vectorized_counts_match_plans_on_a_sweep():
    rng = np.random.default_rng(7)
    h = np.exp(rng.uniform(0, np.log(8000), 400)).astype(int) + 1
    w = np.exp(rng.uniform(0, np.log(8000), 400)).astype(int) + 1
    for repo_id in PRESET_IDS:
        counts = count_tokens_many(h, w, repo_id)
        for hh, ww, c in zip(h, w, counts):
            try:
                expected = plan_image((int(hh), int(ww)), repo_id).num_image_tokens
            except ValueError:
                expected = -1
            assert c == expected, (repo_id, hh, ww)


def test_token_lookup_rejects_out_of_range():
    lay = build_layout(plan_image((100, 100), "internvl"))
    with pytest.raises(ValueError, match="outside 0..257"):
        lay.token(258)

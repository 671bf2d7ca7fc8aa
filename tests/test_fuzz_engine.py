"""Property fuzzing of the engine over sizes AND user settings, for every preset.

The slow suite runs >= 10,000 cases in total (11 presets x 1,000 examples). Invariants are the
ones the engine promises: plan == layout == vectorized counts, boxes inside the image, crop
indices in range and in processor order, wrappers only at the ends, OneVision blend weights sum
to 1, and the only rejections are the ones the real processors make.
"""
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from anyres_demo import build_layout, count_tokens_many, list_presets, plan_image
from anyres_demo.layout import KIND_CODE

# The 2024 families, whose invariants this module spells out (wrappers only at the ends,
# crop-major order, LLaVA's base first); the later families' invariants are checked over every
# preset in test_layout.py and their own parity modules.
PRESETS = [p for p in list_presets() if p.strategy in ("llava_next", "llava_onevision", "qwen2_vl",
                                                       "internvl")]
SIDE = st.one_of(st.integers(1, 64), st.integers(1, 4000), st.integers(4000, 20000))


def overrides_for(preset, data):
    s = preset.strategy
    if s == "qwen2_vl":
        lo = data.draw(st.integers(28 * 28, 2_000_000), label="min_pixels")
        hi = data.draw(st.integers(lo, 20_000_000), label="max_pixels")
        return {"min_pixels": lo, "max_pixels": hi}
    if s == "internvl":
        lo = data.draw(st.integers(1, 12), label="min_tiles")
        return {"min_tiles": lo, "max_tiles": data.draw(st.integers(lo, 40), label="max_tiles")}
    tile = preset.settings.tile_size
    grids = st.tuples(st.integers(1, 6), st.integers(1, 6))
    pins = data.draw(st.lists(grids, min_size=1, max_size=8), label="grids")
    return {"pinpoints_hw": [(r * tile, c * tile) for r, c in pins]}


def check(preset, size_hw, overrides):
    h, w = size_hw
    vec = count_tokens_many([h], [w], preset, **overrides)[0]
    try:
        plan = plan_image(size_hw, preset, **overrides)
    except ValueError as exc:
        assert preset.strategy == "qwen2_vl" and "above 200:1" in str(exc)
        assert max(h, w) / min(h, w) > 200 and vec == -1
        return
    lay = build_layout(plan)
    assert vec == plan.num_image_tokens == lay.num_image_tokens
    assert lay.counts_by_kind() == {k: v for k, v in plan.tokens_by_kind.items() if v}
    ok = ~np.isnan(lay.box).any(axis=1)
    b = lay.box[ok]
    assert (b[:, :2] >= 0).all() and (b[:, 2] <= w + 1e-6).all() and (b[:, 3] <= h + 1e-6).all()
    crops = lay.crop[lay.crop >= 0]
    assert crops.size == 0 or (crops.min() >= 0 and crops.max() < plan.num_crops)
    if not plan.strategy.startswith("llava"):  # InternVL / Qwen are crop-major; LLaVA rows cross tiles
        assert (np.diff(crops) >= 0).all()
    else:  # LLaVA: the base crop first, then tiles
        assert (crops[: plan.cells_per_tile ** 2] == 0).all() and (crops[plan.cells_per_tile ** 2:] >= 1).all()
    wrap = np.flatnonzero(lay.kind == KIND_CODE["wrapper"])
    assert wrap.tolist() == ([0, len(lay) - 1] if plan.num_wrapper_tokens else [])
    assert [c.index for c in plan.crops] == list(range(plan.num_crops))
    for c in plan.crops:  # every crop's source lies in the image
        assert 0 <= c.source.x0 <= c.source.x1 <= w and 0 <= c.source.y0 <= c.source.y1 <= h
    if lay.has_blends:
        weights = lay.blend_weights[lay.kind == KIND_CODE["tile"]]
        assert np.allclose(weights.sum(axis=1), 1.0)


@pytest.mark.slow
@pytest.mark.parametrize("preset", PRESETS, ids=[p.repo_id for p in PRESETS])
@settings(max_examples=1000, deadline=None, suppress_health_check=list(HealthCheck))
@given(h=SIDE, w=SIDE, data=st.data())
def test_fuzz_sizes_and_settings(preset, h, w, data):
    check(preset, (h, w), overrides_for(preset, data))


@pytest.mark.parametrize("preset", PRESETS, ids=[p.repo_id for p in PRESETS])
@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(h=SIDE, w=SIDE, data=st.data())
def test_fuzz_quick(preset, h, w, data):
    check(preset, (h, w), overrides_for(preset, data))

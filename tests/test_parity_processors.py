"""Parity of the engine with the real transformers processors (built offline, preset values).

For every family (LLaVA-NeXT, LLaVA-OneVision, Qwen2-VL, Qwen2.5-VL, InternVL) the engine's
plan, layout and vectorized counts must give the processor's placeholder-token count, wrapper
count, crop count, canvas and grid:
  * the spec's section 7 vectors, as real images, against the table itself;
  * ~65 extreme and random sizes as real images, against the processor's outputs AND its
    counting API (which is thereby checked against real images);
  * ~550 sizes through the counting API (`_get_num_multimodal_tokens`,
    `get_number_of_image_patches`, the model's `image_size_to_num_patches`);
  * user overrides (Qwen pixel budgets, InternVL tile limits, custom LLaVA canvases).
Qwen must raise ValueError above 200:1 in the processor and in the engine alike.

Crop pixels: `render_crops` against the processor's de-normalised pixel_values. The PIL
backend matches bit for bit. The default torchvision backend is within 2/255 except on very
tall, narrow images (see test_crop_pixels_torchvision_tall_narrow).
"""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("transformers")
pytest.importorskip("torch")

from anyres_demo import count_tokens_many, plan_image  # noqa: E402
from anyres_demo.backends import hf_processors as hp  # noqa: E402
from anyres_demo.geometry import Size  # noqa: E402
from anyres_demo.render import render_crops  # noqa: E402
from hf_helpers import (  # noqa: E402
    FAMILIES, PIXTRAL_FAMILIES, QWEN3_FAMILIES, QWEN_FAMILIES, SPEC_WH, diff, engine_counts, family_preset, freeze, noise_image,
    processor_for, real_image_sizes_hw, size_label, solid_image, spec_expected, sweep_sizes_hw)


def _engine(size_hw, family, overrides=None):
    """engine_counts, or the string 'ValueError' where the engine rejects the size."""
    try:
        return engine_counts(plan_image(size_hw, family_preset(family), **(overrides or {})), family)
    except ValueError:
        return "ValueError"


def _real(processor, size_hw, family, overrides=None):
    preset = family_preset(family).with_overrides(**(overrides or {}))
    try:
        return hp.processor_counts(processor, solid_image(size_hw), preset)
    except ValueError:
        return "ValueError"


def _api(processor, size_hw, family, overrides=None):
    preset = family_preset(family).with_overrides(**(overrides or {}))
    try:
        return hp.processor_counts_from_size(processor, Size(*size_hw), preset)
    except ValueError:
        return "ValueError"


def _mismatch(reference, other):
    """None when `other` agrees with `reference` on all of reference's fields."""
    if isinstance(reference, str) or isinstance(other, str):
        return None if reference == other else (reference, other)
    return diff(reference, other) or None


def _report(bad: dict) -> str:
    lines = [f"{size_label(s)}: {d}" for s, d in list(bad.items())[:12]]
    return f"{len(bad)} sizes disagree (first 12, expected vs got):\n" + "\n".join(lines)


# Qwen3.5 and InternVL3.5 build the same processor classes with the same values as Qwen3-VL
# and InternVL3 (asserted in test_same_processor_as); the costly real-image and pixel tests
# run once per distinct processor, the counting-API sweep and overrides for every family.
SAME_PROCESSOR_AS = {"qwen3_5": "qwen3_vl", "internvl3_5": "internvl"}
PIXEL_FAMILIES = tuple(f for f in FAMILIES if f not in SAME_PROCESSOR_AS)


@pytest.mark.parametrize("family,twin", SAME_PROCESSOR_AS.items())
def test_same_processor_as(family, twin):
    a, b = processor_for(family), processor_for(twin)
    assert type(a) is type(b) and type(a.image_processor) is type(b.image_processor)
    assert a.image_processor.to_dict() == b.image_processor.to_dict()


def expected_rejections(family, sizes) -> int:
    """Qwen raises above 200:1; Pixtral where scaling to the longest edge floors the short side
    to 0 px (aspect above longest_edge:1, e.g. 1x1100 for pixtral-12b); the others never."""
    if family in QWEN_FAMILIES:
        return sum(max(s) / min(s) > 200 for s in sizes)
    if family in PIXTRAL_FAMILIES:
        edge = family_preset(family).settings.longest_edge
        return sum(min(s) * edge < max(s) for s in sizes)
    return 0


# ---------------------------------------------------------------- construction
@pytest.mark.parametrize("family", FAMILIES)
def test_processor_is_what_from_pretrained_builds_with_checkpoint_values(family):
    from transformers.image_processing_backends import TorchvisionBackend
    from transformers.utils import is_torchvision_available

    preset = family_preset(family)
    proc = processor_for(family)
    kind = hp.model_type(preset)
    assert type(proc).__name__ == hp.PROCESSOR_CLASS[kind]
    ip = proc.image_processor
    # with torchvision installed, from_pretrained's default backend is torchvision
    assert isinstance(ip, TorchvisionBackend) == is_torchvision_available()
    s = preset.settings
    assert list(ip.image_mean) == pytest.approx(s.image_mean)
    assert list(ip.image_std) == pytest.approx(s.image_std)
    if family == "llava_next":
        assert (ip.size["shortest_edge"], ip.crop_size["height"], ip.crop_size["width"]) == (336, 336, 336)
        assert [tuple(p) for p in ip.image_grid_pinpoints] == list(s.pinpoints_hw)
        assert (proc.patch_size, proc.num_additional_image_tokens,
                proc.vision_feature_select_strategy) == (14, 1, "default")
    elif family == "llava_onevision":
        assert (ip.size["height"], ip.size["width"]) == (384, 384)
        assert len(ip.image_grid_pinpoints) == 36
        assert (proc.num_image_tokens, proc.vision_feature_select_strategy,
                proc.vision_aspect_ratio) == (729, "full", "anyres_max_9")
    elif family in QWEN3_FAMILIES:  # 2026 spec 1.2: not the class defaults (3136, 1003520, 14)
        assert (ip.size["shortest_edge"], ip.size["longest_edge"]) == (65536, 16777216)
        assert (ip.patch_size, ip.merge_size, ip.temporal_patch_size) == (16, 2, 2)
    elif family in QWEN_FAMILIES:
        assert (ip.size["shortest_edge"], ip.size["longest_edge"]) == (3136, 12845056)
        assert (ip.patch_size, ip.merge_size, ip.temporal_patch_size) == (14, 2, 2)
    elif family in PIXTRAL_FAMILIES:  # 2026 spec 6.1
        want = (1540, 14, 2) if family == "mistral3" else (1024, 16, 1)
        assert (ip.size["longest_edge"], proc.patch_size, proc.spatial_merge_size) == want
        assert ip.patch_size["height"] == want[1]
    else:
        assert (ip.size["height"], ip.size["width"], ip.min_patches, ip.max_patches) == (448, 448, 1, 12)
        assert proc.image_seq_length == 256


@pytest.mark.parametrize("family,setting", [
    ("internvl", {"use_thumbnail": False}),
    ("llava_onevision", {"downscale_threshold": 1.5}),
    ("qwen2_vl", {"max_aspect_ratio": 300.0}),
    ("llava_next", {"pad_fill": 127}),
])
def test_settings_transformers_cannot_express_are_refused(family, setting):
    preset = family_preset(family).with_overrides(**setting)
    with pytest.raises(ValueError, match=str(next(iter(setting.values())))):
        hp.build_processor(preset)


# ---------------------------------------------------------------- spec vectors
@pytest.mark.parametrize("family", PIXEL_FAMILIES)
@pytest.mark.parametrize("wh", SPEC_WH, ids=[f"{w}x{h}" for w, h in SPEC_WH])
def test_spec_vectors_real_image_engine_and_table_agree(family, wh):
    size_hw = (wh[1], wh[0])
    expected = spec_expected(family, wh)
    proc = processor_for(family)
    real = _real(proc, size_hw, family)
    assert not diff(expected, real), f"processor vs spec table: {diff(expected, real)}"
    engine = _engine(size_hw, family)
    assert not diff(real, engine), f"engine vs processor (expected, got): {diff(real, engine)}"
    api = _api(proc, size_hw, family)
    assert not diff(real, api), f"counting API vs processor: {diff(real, api)}"


# ---------------------------------------------------------------- real images, extremes
@pytest.mark.parametrize("family", PIXEL_FAMILIES)
def test_real_images_match_counting_api_and_engine(family):
    proc = processor_for(family)
    sizes = real_image_sizes_hw()
    bad_api, bad_engine, rejected = {}, {}, 0
    for size_hw in sizes:
        real = _real(proc, size_hw, family)
        rejected += real == "ValueError"
        if (m := _mismatch(real, _api(proc, size_hw, family))) is not None:
            bad_api[size_hw] = m
        if (m := _mismatch(real, _engine(size_hw, family))) is not None:
            bad_engine[size_hw] = m
    assert not bad_api, "counting API vs real images: " + _report(bad_api)
    assert not bad_engine, "engine vs real images: " + _report(bad_engine)
    # Qwen rejects exactly the sizes above 200:1 (1x201, 3x601, 7x1401, 10x2001, 1x8000, ...,
    # but not 10x2000); the others accept every size
    over_200 = sum(max(s) / min(s) > 200 for s in sizes)
    assert over_200 >= 18
    assert rejected == expected_rejections(family, sizes)


@pytest.mark.slow
@pytest.mark.parametrize("family", FAMILIES[:5])  # the 2024 families; the newer ones are
def test_full_sweep_real_images_match_engine(family):  # covered by the API sweep + real subset
    """Every sweep size as a real image (up to 64 Mpx): about a minute per family."""
    proc = processor_for(family)
    bad = {}
    for size_hw in sweep_sizes_hw():
        if (m := _mismatch(_real(proc, size_hw, family), _engine(size_hw, family))) is not None:
            bad[size_hw] = m
    assert not bad, "engine vs real images: " + _report(bad)


# ---------------------------------------------------------------- sweep through the API
def _sweep(family, overrides=None, sizes=None):
    """{size: mismatch} between the counting API and the engine, plus the API's counts."""
    proc = processor_for(family, overrides=freeze(overrides or {}))
    bad, counts = {}, {}
    for size_hw in sizes or sweep_sizes_hw():
        api = _api(proc, size_hw, family, overrides)
        counts[size_hw] = -1 if api == "ValueError" else api["num_image_tokens"]
        if (m := _mismatch(api, _engine(size_hw, family, overrides))) is not None:
            bad[size_hw] = m
    return bad, counts


def _check_vectorized(family, counts, overrides=None):
    hw = np.array(list(counts))
    got = count_tokens_many(hw[:, 0], hw[:, 1], family_preset(family), **(overrides or {}))
    want = np.array(list(counts.values()))
    wrong = {tuple(map(int, hw[i])): (int(want[i]), int(got[i])) for i in np.flatnonzero(got != want)}
    assert not wrong, "count_tokens_many vs processor API: " + _report(wrong)


@pytest.mark.parametrize("family", FAMILIES)
def test_sweep_engine_layout_and_vectorized_counts_match_processor_api(family):
    bad, counts = _sweep(family)
    assert len(counts) >= 500
    assert not bad, "engine vs processor API: " + _report(bad)
    _check_vectorized(family, counts)
    rejected = sum(v == -1 for v in counts.values())
    assert rejected == expected_rejections(family, list(counts))
    if family in QWEN_FAMILIES:
        assert rejected >= 30  # every >200:1 size of the sweep, each raising in both


# ---------------------------------------------------------------- overrides
LLAVA_CUSTOM = ((336, 336), (336, 1008), (1008, 336), (672, 1008), (1008, 672), (1344, 336))
OV_3X3 = tuple((384 * i, 384 * j) for i in range(1, 4) for j in range(1, 4))
OVERRIDES = [
    ("qwen2_vl", {"max_pixels": 28 * 28 * 1280}),  # transformers' class default
    ("qwen2_vl", {"min_pixels": 28 * 28 * 256}),
    ("qwen2_5_vl", {"min_pixels": 28 * 28 * 16, "max_pixels": 200704}),
    ("internvl", {"max_tiles": 6}),
    ("internvl", {"min_tiles": 2, "max_tiles": 24}),
    ("qwen3_vl", {"max_pixels": 1280 * 32 * 32}),  # the authors' README example budget
    ("qwen3_vl", {"min_pixels": 256 * 32 * 32}),
    ("qwen3_5", {"min_pixels": 4096}),  # qwen-vl-utils' floor
    ("internvl3_5", {"max_tiles": 6}),
    ("pixtral", {"longest_edge": 512}),
    ("mistral3", {"longest_edge": 896}),
    ("llava_next", {"pinpoints_hw": LLAVA_CUSTOM}),
    ("llava_onevision", {"pinpoints_hw": OV_3X3}),
]
OVERRIDE_IDS = [f"{f}-{'-'.join(o)}" for f, o in OVERRIDES]
OVERRIDE_REAL_HW = [(1080, 1920), (1920, 1080), (300, 500), (899, 1024), (1, 1), (2000, 10),
                    (30, 4000), (2000, 3000), (12, 1500)]


@pytest.mark.parametrize("family,overrides", OVERRIDES, ids=OVERRIDE_IDS)
def test_overrides_match_processor(family, overrides):
    sizes = sweep_sizes_hw()[::2]
    bad, counts = _sweep(family, overrides, sizes)
    assert not bad, f"engine vs processor API with {overrides}: " + _report(bad)
    _check_vectorized(family, counts, overrides)
    _, default_counts = _sweep(family, None, sizes)
    changed = sum(counts[s] != default_counts[s] for s in sizes)
    assert changed >= 10, "the override should change many counts; was it applied?"
    proc = processor_for(family, overrides=freeze(overrides))
    for size_hw in OVERRIDE_REAL_HW:
        real = _real(proc, size_hw, family, overrides)
        assert _mismatch(real, _engine(size_hw, family, overrides)) is None, (size_hw, real)


# ---------------------------------------------------------------- crop pixels
CROP_HW = [(1, 1), (91, 37), (300, 500), (899, 1024), (1080, 1920), (10, 2000), (2000, 3000)]


def _crop_errors(family, size_hw, backend):
    preset = family_preset(family)
    image = noise_image(size_hw, seed=size_hw[0] * 7919 + size_hw[1])
    proc = processor_for(family, backend=backend)
    out = hp.processor_outputs(proc, image, preset)
    theirs = hp.pixel_values_to_uint8(proc, out, preset)
    ours = [np.asarray(c, dtype=np.int16) for c in render_crops(image, plan_image(image, preset))]
    assert [c.shape for c in ours] == [t.shape for t in theirs]
    errors = [np.abs(o - t.astype(np.int16)) for o, t in zip(ours, theirs)]
    return max(int(e.max()) for e in errors), max(float(e.mean()) for e in errors)


@pytest.mark.parametrize("family", PIXEL_FAMILIES)
@pytest.mark.parametrize("size_hw", CROP_HW + [(2000, 10)], ids=size_label)
def test_crop_pixels_pil_backend_bit_exact(family, size_hw):
    """render_crops uses Pillow's bicubic, as the *Pil image processors do: identical bytes."""
    max_err, _ = _crop_errors(family, size_hw, "pil")
    assert max_err == 0


@pytest.mark.parametrize("family", PIXEL_FAMILIES)
@pytest.mark.parametrize("size_hw", CROP_HW, ids=size_label)
def test_crop_pixels_torchvision_backend_within_2(family, size_hw):
    """The default (torchvision) backend: antialiased bicubic on uint8, within 2/255."""
    max_err, _ = _crop_errors(family, size_hw, None)
    assert max_err <= 2


@pytest.mark.parametrize("family", ["llava_next", "llava_onevision", "qwen2_vl", "internvl",
                                    "qwen3_vl", "pixtral"])  # Mistral Small: 20/255 measured
def test_crop_pixels_torchvision_tall_narrow(family):
    """Measured gap, not a tolerance: for images about 100x taller than wide (here 10x2000,
    noise), torchvision's resize rounds its two passes differently from Pillow's and single
    pixels differ by up to ~12/255 (mean below 0.4/255 per crop). Same size on the PIL
    backend: bit exact (above); the wide 2000x10 stays within 2 on torchvision too (above)."""
    max_err, mean_err = _crop_errors(family, (2000, 10), None)
    assert max_err <= 12
    assert mean_err < 0.4

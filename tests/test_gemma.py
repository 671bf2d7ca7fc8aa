"""Gemma 3 and Gemma 4 against the real transformers 5.24 processors, built offline with the
checkpoint values (spec 2026 sections 2 and 3).

  * presets == the spec's checkpoint tables (typed by hand in gemma_helpers);
  * the spec's vectors: engine == table == full processor call;
  * >= 500 sizes per family (1x1, 1xN, Nx1, ratios above 200, 8000x8000, the pan-and-scan and
    48-px thresholds) for each override: engine, layout and vectorized counts == the processor.
    Gemma 3: transformers' counting helper always says 256 (wrong with crops), so sizes go
    through the image processor's own `pan_and_scan_batched` (on a meta tensor) and the
    processor's `replace_image_token`; a subset goes through full processor calls.
    Gemma 4: the counting helper, which agrees with full calls (checked here too);
  * the whole token sequence (soft tokens, markers, blank lines, pan-and-scan words) in order;
  * crops: PIL backend bit exact, torchvision within 2/255, in pixel_values order.
"""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

pytest.importorskip("transformers")
pytest.importorskip("torch")

from anyres_demo import count_tokens_many, get_preset, plan_image  # noqa: E402
from anyres_demo.backends import hf_processors as hp  # noqa: E402
from anyres_demo.geometry import Size  # noqa: E402
from anyres_demo.render import render_crops  # noqa: E402
from anyres_demo.strategies import get_strategy  # noqa: E402
from gemma_helpers import (  # noqa: E402
    BUDGETS, GEMMA3_CHECKPOINT, GEMMA3_PAS_WH, GEMMA3_REPOS, GEMMA3_TOKENS, GEMMA4_280_HW,
    GEMMA4_CHECKPOINT, GEMMA4_REPOS, GEMMA4_TOKENS, GEMMA4_WH, PAS, as_array_hw, gemma_processor,
    gemma_sweep_hw, kinds_of_ids, layout_kind_names)
from hf_helpers import diff, freeze, noise_image, size_label, solid_image  # noqa: E402

G3, G4 = GEMMA3_REPOS[0], GEMMA4_REPOS[0]


def _engine(size_hw, repo, overrides):
    plan = plan_image(size_hw, repo, **overrides)
    # num_wrapper_tokens: the <start_of_image>/<end_of_image> (Gemma 4: <|image>/<image|>) markers
    return {"num_image_tokens": plan.num_image_tokens, "num_wrapper_tokens": plan.tokens_by_kind["wrapper"],
            "num_tokens": plan.num_tokens, "num_crops": plan.num_crops,
            "grid": (plan.grid_rows, plan.grid_cols), "canvas_hw": plan.canvas_hw.hw}


def _api(repo, overrides, size_hw):
    proc = gemma_processor(repo, overrides=freeze(overrides))
    preset = get_preset(repo).with_overrides(**overrides)
    return hp.processor_counts_from_size(proc, Size(*size_hw), preset)


def _real(repo, overrides, size_hw, image=None):
    proc = gemma_processor(repo, overrides=freeze(overrides))
    preset = get_preset(repo).with_overrides(**overrides)
    return hp.processor_counts(proc, image or solid_image(size_hw), preset)


def _report(bad: dict) -> str:
    lines = [f"{size_label(s)}: {d}" for s, d in list(bad.items())[:12]]
    return f"{len(bad)} sizes disagree (first 12):\n" + "\n".join(lines)


# ---------------------------------------------------------------- presets == the spec's tables
@pytest.mark.parametrize("repo", GEMMA3_REPOS + GEMMA4_REPOS)
def test_presets_hold_the_checkpoint_values(repo):
    preset = get_preset(repo)
    table, tokens = ((GEMMA3_CHECKPOINT, GEMMA3_TOKENS) if preset.strategy == "gemma3"
                     else (GEMMA4_CHECKPOINT, GEMMA4_TOKENS))
    assert {k: getattr(preset.settings, k) for k in table} == table
    assert {k: getattr(preset, k) for k in tokens} == tokens
    assert any("third-party" in n for n in preset.notes)  # shown in the UI's preset details


def test_aliases_and_class_defaults_differ_from_checkpoints():
    from transformers import Gemma3ImageProcessor

    assert get_preset("gemma-3").repo_id == G3 and get_preset("gemma-4").repo_id == G4
    assert Gemma3ImageProcessor().size["height"] == 224  # the trap: checkpoint 896
    ip = gemma_processor(G3).image_processor
    assert (ip.size.height, ip.size.width, ip.resample) == (896, 896, 2)


def test_overrides_are_validated():
    with pytest.raises(ValueError, match="300 is not one of"):
        get_preset(G4).with_overrides(max_soft_tokens=300)
    with pytest.raises(ValueError, match="pan_and_scan_max_num_crops is 0, below"):
        get_preset(G3).with_overrides(pan_and_scan_max_num_crops=0)
    with pytest.raises(ValueError, match="pan_and_scan_max_num_crops is 17, above"):
        get_preset(G3).with_overrides(pan_and_scan_max_num_crops=17)
    with pytest.raises(ValueError, match="pan_and_scan_min_crop_size is 4, below"):
        get_preset(G3).with_overrides(pan_and_scan_min_crop_size=4)
    with pytest.raises(ValueError, match="cannot be set"):
        get_preset(G4).with_overrides(do_pan_and_scan=True)


def test_transformers_rejects_an_unsupported_budget_too():
    preset = dataclasses.replace(get_preset(G4), settings=dataclasses.replace(
        get_preset(G4).settings, max_soft_tokens=300))
    with pytest.raises(ValueError, match="300"):
        hp.build_processor(preset)


# ---------------------------------------------------------------- spec vectors
@pytest.mark.parametrize("wh", list(GEMMA3_PAS_WH), ids=[f"{w}x{h}" for w, h in GEMMA3_PAS_WH])
def test_gemma3_spec_vectors(wh):
    size_hw = (wh[1], wh[0])
    crops = GEMMA3_PAS_WH[wh]
    plan_off, plan_on = plan_image(size_hw, G3), plan_image(size_hw, G3, **PAS)
    assert (plan_off.num_image_tokens, plan_off.num_crops, plan_off.tokens_by_kind["wrapper"]) == (256, 1, 2)
    assert plan_on.num_image_tokens == 256 * (1 + len(crops))
    assert plan_on.tokens_by_kind["wrapper"] == 2 * (1 + len(crops))
    assert tuple((int(c.source.width), int(c.source.height)) for c in plan_on.crops[1:]) == crops
    # the real processor, pan-and-scan on and off (10000x1000 only through the pixel-free path)
    for overrides, plan in (({}, plan_off), (PAS, plan_on)):
        ref = _api(G3, overrides, size_hw) if wh == (10000, 1000) else _real(G3, overrides, size_hw)
        assert not diff(ref, _engine(size_hw, G3, overrides)), (overrides, ref)


def test_gemma3_counting_helper_ignores_crops_the_processor_makes():
    proc = gemma_processor(G3, overrides=freeze(PAS))
    for wh, crops in GEMMA3_PAS_WH.items():
        helper = proc._get_num_multimodal_tokens(image_sizes=[(wh[1], wh[0])], **PAS)
        assert helper["num_image_tokens"] == [256]  # spec 2.7: always 256
    assert _real(G3, PAS, (1080, 1920))["num_image_tokens"] == 768


@pytest.mark.parametrize("wh", list(GEMMA4_WH), ids=[f"{w}x{h}" for w, h in GEMMA4_WH])
def test_gemma4_spec_vectors(wh):
    size_hw = (wh[1], wh[0])
    for budget, tokens in zip(BUDGETS, GEMMA4_WH[wh]):
        over = {"max_soft_tokens": budget}
        plan = plan_image(size_hw, G4, **over)
        assert (plan.num_image_tokens, plan.num_special_tokens, plan.num_tokens) == (tokens, 2, tokens + 2)
        assert plan.num_image_tokens <= budget
        api = _api(G4, over, size_hw)
        assert not diff(api, _engine(size_hw, G4, over)), (budget, api)
        if budget in (70, 280, 1120) and wh != (8000, 8000):  # full calls on three budgets
            assert not diff(_real(G4, over, size_hw), api)
    if wh in GEMMA4_280_HW:
        assert plan_image(size_hw, G4).resized_hw.hw == GEMMA4_280_HW[wh]


def test_gemma4_budget_is_never_filled_by_squares_and_small_images_are_upscaled():
    assert [plan_image((500, 500), G4, max_soft_tokens=b).num_image_tokens for b in BUDGETS] == \
        [64, 121, 256, 529, 1089]  # 8^2, 11^2, 16^2, 23^2, 33^2
    assert plan_image((1, 1), G4).resized_hw.hw == (768, 768)


# ---------------------------------------------------------------- sweeps, every override
GEMMA3_OVERRIDES = [{}, PAS, {**PAS, "pan_and_scan_max_num_crops": 2},
                    {**PAS, "pan_and_scan_max_num_crops": 8, "pan_and_scan_min_crop_size": 128},
                    {**PAS, "pan_and_scan_min_crop_size": 512},
                    {**PAS, "pan_and_scan_min_ratio_to_activate": 1.0},
                    {**PAS, "pan_and_scan_min_ratio_to_activate": 2.5},
                    {**PAS, "pan_and_scan_max_num_crops": 1}]
SWEEP_CASES = [(G3, o) for o in GEMMA3_OVERRIDES] + [(G4, {"max_soft_tokens": b}) for b in BUDGETS]
SWEEP_IDS = [f"{r.split('/')[1]}-{'-'.join(f'{k}={v}' for k, v in o.items()) or 'released'}"
             for r, o in SWEEP_CASES]


@pytest.mark.parametrize("repo,overrides", SWEEP_CASES, ids=SWEEP_IDS)
def test_sweep_engine_layout_and_vectorized_counts_match_processor(repo, overrides):
    family = get_preset(repo).strategy
    sizes = gemma_sweep_hw(family)
    assert len(sizes) >= 500
    assert {(1, 1), (8000, 8000), (1, 8000), (8000, 1)} <= set(sizes)
    assert sum(max(s) / min(s) > 200 for s in sizes) >= 30
    bad, api_tokens, api_totals = {}, [], []
    for size_hw in sizes:
        api = _api(repo, overrides, size_hw)
        api_tokens.append(api["num_image_tokens"])
        api_totals.append(api["num_tokens"])
        if d := diff(api, _engine(size_hw, repo, overrides)):
            bad[size_hw] = d
    assert not bad, "engine vs processor: " + _report(bad)
    h, w = as_array_hw(sizes)
    preset = get_preset(repo).with_overrides(**overrides)
    assert (count_tokens_many(h, w, preset) == np.array(api_tokens)).all()
    assert (_totals(preset, h, w) == np.array(api_totals)).all()
    if overrides not in ({}, {"max_soft_tokens": 280}):  # the override really changes counts
        released = count_tokens_many(h, w, get_preset(repo))
        assert (released != np.array(api_tokens)).sum() >= 10


def _totals(preset, h, w):
    module = get_strategy(preset.strategy)
    if hasattr(module, "count_many_total"):
        return module.count_many_total(h, w, preset)
    return module.count_many(h, w, preset) + 2  # the seam's default: two wrappers


# Full processor calls (real pixels) on a subset; the sweeps above cover the rest pixel-free.
REAL_HW = [(1, 1), (1, 2), (2, 1), (1, 200), (201, 1), (3, 601), (1000, 1), (7, 1401),
           (14, 2801), (2000, 10), (30, 4000), (1999, 10), (1080, 1920), (1920, 1080), (899, 1024)]
GEMMA3_REAL_HW = REAL_HW + [(1000, 1199), (1000, 1200), (256, 511), (255, 767), (256, 1024),
                            (1000, 2500), (3001, 1000), (500, 1250), (300, 2000), (1000, 4500)]


@pytest.mark.parametrize("overrides", [PAS, {**PAS, "pan_and_scan_max_num_crops": 8,
                                              "pan_and_scan_min_crop_size": 128}],
                         ids=["pas", "pas-8-crops-128px"])
def test_gemma3_full_processor_calls_agree_with_engine(overrides):
    bad = {}
    for size_hw in GEMMA3_REAL_HW[::2] if len(overrides) > 1 else GEMMA3_REAL_HW:
        real = _real(G3, overrides, size_hw)
        if d := diff(real, _engine(size_hw, G3, overrides)):
            bad[size_hw] = d
        if d := diff(real, _api(G3, overrides, size_hw)):
            bad[size_hw] = ("api", d)
    assert not bad, _report(bad)


def test_gemma4_full_processor_calls_agree_with_engine():
    bad = {}
    for size_hw in REAL_HW:
        for budget in (70, 1120):
            over = {"max_soft_tokens": budget}
            if d := diff(_real(G4, over, size_hw), _engine(size_hw, G4, over)):
                bad[(size_hw, budget)] = d
    assert not bad, _report(bad)


# ---------------------------------------------------------------- the whole sequence, in order
SEQUENCE_CASES = [(G3, {}, (1080, 1920)), (G3, PAS, (1080, 1920)), (G3, PAS, (1920, 1080)),
                  (G3, PAS, (1000, 3000)), (G3, PAS, (300, 2000)), (G3, PAS, (100, 100)),
                  (G3, {**PAS, "pan_and_scan_max_num_crops": 1}, (480, 640)),
                  (G4, {}, (480, 640)), (G4, {"max_soft_tokens": 70}, (2000, 10))]


@pytest.mark.parametrize("repo,overrides,size_hw", SEQUENCE_CASES,
                         ids=[f"{r.split('/')[1]}-{len(o)}-{size_label(s)}" for r, o, s in SEQUENCE_CASES])
def test_layout_is_the_processors_token_sequence(repo, overrides, size_hw):
    proc = gemma_processor(repo, overrides=freeze(overrides))
    preset = get_preset(repo).with_overrides(**overrides)
    ids = hp.processor_outputs(proc, solid_image(size_hw), preset)["input_ids"][0].tolist()
    assert layout_kind_names(plan_image(size_hw, preset)) == kinds_of_ids(ids, proc, preset)


# ---------------------------------------------------------------- crop pixels
CROP_CASES = [(G3, {}, (1, 1)), (G3, {}, (91, 37)), (G3, PAS, (300, 500)), (G3, PAS, (1920, 1080)),
              (G3, PAS, (3001, 1000)), (G3, PAS, (256, 511)), (G4, {}, (1, 1)), (G4, {}, (91, 37)),
              (G4, {}, (1080, 1920)), (G4, {"max_soft_tokens": 1120}, (899, 1024)),
              (G4, {}, (2000, 10)), (G4, {"max_soft_tokens": 70}, (30, 4000))]
CROP_IDS = [f"{r.split('/')[1]}-{len(o)}-{size_label(s)}" for r, o, s in CROP_CASES]


def _crop_errors(repo, overrides, size_hw, backend):
    preset = get_preset(repo).with_overrides(**overrides)
    image = noise_image(size_hw, seed=size_hw[0] * 7919 + size_hw[1])
    proc = gemma_processor(repo, backend=backend, overrides=freeze(overrides))
    theirs = hp.pixel_values_to_uint8(proc, hp.processor_outputs(proc, image, preset), preset)
    ours = [np.asarray(c, dtype=np.int16) for c in render_crops(image, plan_image(image, preset))]
    assert [c.shape for c in ours] == [t.shape for t in theirs]
    return max(int(np.abs(o - t.astype(np.int16)).max()) for o, t in zip(ours, theirs))


@pytest.mark.parametrize("repo,overrides,size_hw", CROP_CASES, ids=CROP_IDS)
def test_crop_pixels_pil_backend_bit_exact(repo, overrides, size_hw):
    assert _crop_errors(repo, overrides, size_hw, "pil") == 0


@pytest.mark.parametrize("repo,overrides,size_hw", CROP_CASES, ids=CROP_IDS)
def test_crop_pixels_torchvision_backend_within_2(repo, overrides, size_hw):
    assert _crop_errors(repo, overrides, size_hw, None) <= 2


def test_settings_rows_parse_what_the_ui_and_cli_send():
    from anyres_demo.overrides import collect_overrides

    g3, g4 = get_preset(G3), get_preset(G4)
    assert collect_overrides(g3, pan_and_scan="on", pan_and_scan_max_crops="3",
                             pan_and_scan_min_ratio="1.5", max_soft_tokens="560") == {
        "do_pan_and_scan": True, "pan_and_scan_max_num_crops": 3,
        "pan_and_scan_min_ratio_to_activate": 1.5}  # Gemma 4's budget is ignored for Gemma 3
    assert collect_overrides(g3, pan_and_scan="checkpoint") == {}
    assert collect_overrides(g4, max_soft_tokens="checkpoint", pan_and_scan="on") == {}
    assert collect_overrides(g4, max_soft_tokens="1120") == {"max_soft_tokens": 1120}
    with pytest.raises(ValueError, match="must be one of 70, 140, 280, 560, 1120"):
        collect_overrides(g4, max_soft_tokens="300")

"""Parity of the wave-2 families with the real transformers 5.24 processors, built offline with
the checkpoint values: SmolVLM2 / SmolVLM / Idefics3, Llama 4 and Llama 3.2 Vision (mllama).

  * golden tables typed from the 2026 spec (4.6, 5.6, 5.8) against the presets' plans;
  * >= 500 sizes against transformers' own geometry (SmolVLM / Idefics3:
    `get_number_of_image_patches`, Idefics3's `_get_num_multimodal_tokens`; Llama 4:
    `find_supported_resolutions` + `get_best_fit`; mllama: `get_optimal_tiled_canvas`), with the
    vectorized counts; none of these processors has a complete token helper, so
  * full processor calls (real images) on the spec vectors and a seeded sample, every field;
  * the user overrides (SmolVLM longest edge, Llama 4 max tiles);
  * crop pixels against the de-normalised pixel_values (PIL backends bit exact).
"""
from __future__ import annotations

import functools
import json

import numpy as np
import pytest

pytest.importorskip("transformers")
pytest.importorskip("torch")

from anyres_demo import build_layout, get_preset, plan_image  # noqa: E402
from anyres_demo.backends import hf_processors as hp  # noqa: E402
from anyres_demo.geometry import Size  # noqa: E402
from anyres_demo.overrides import collect_overrides  # noqa: E402
from anyres_demo.render import render_crops  # noqa: E402
from anyres_demo.strategies import get_strategy  # noqa: E402
from hf_helpers import noise_image, size_label, solid_image, sweep_sizes_hw  # noqa: E402

FAMILY_REPOS = {
    "smolvlm2": "HuggingFaceTB/SmolVLM2-2.2B-Instruct",  # SmolVLMProcessor, 384 / 81
    "smolvlm2_256m": "HuggingFaceTB/SmolVLM2-256M-Video-Instruct",  # SmolVLMProcessor, 512 / 64
    "smolvlm_v1": "HuggingFaceTB/SmolVLM-Instruct",  # Idefics3Processor, 384 / 81
    "idefics3": "HuggingFaceM4/Idefics3-8B-Llama3",  # Idefics3Processor, 364 / 169
    "llama4": "meta-llama/Llama-4-Scout-17B-16E-Instruct",
    "mllama": "meta-llama/Llama-3.2-11B-Vision-Instruct",
}
FAMILIES = tuple(FAMILY_REPOS)


@functools.lru_cache(maxsize=None)
def processor_for(family: str, backend: str | None = None, overrides: tuple = ()):
    preset = get_preset(FAMILY_REPOS[family]).with_overrides(**dict(overrides))
    return hp.build_processor(preset, backend=backend)


def engine(size_hw, family, overrides=None) -> dict:
    """The engine's answer in hp.processor_counts' fields; checks layout, plan and vectorized
    counts agree with each other on the way."""
    preset = get_preset(FAMILY_REPOS[family]).with_overrides(**(overrides or {}))
    plan = plan_image(size_hw, preset)
    layout = build_layout(plan)
    assert len(layout) == plan.num_tokens
    assert layout.counts_by_kind() == plan.tokens_by_kind
    counts = {"num_image_tokens": plan.num_image_tokens, "num_tokens": plan.num_tokens,
              "num_crops": plan.num_crops, "crop_px": int(plan.crops[0].window.width),
              "grid": (plan.grid_rows, plan.grid_cols)}
    if family == "llama4":
        counts["canvas_hw"] = plan.canvas_hw.hw
    if family == "mllama":
        counts["aspect_ratio_id"] = get_strategy("mllama").aspect_ratio_id(plan)
    return counts


def real(size_hw, family, overrides=None) -> dict:
    preset = get_preset(FAMILY_REPOS[family]).with_overrides(**(overrides or {}))
    proc = processor_for(family, overrides=tuple(sorted((overrides or {}).items())))
    return hp.processor_counts(proc, solid_image(size_hw), preset)


def api(size_hw, family, overrides=None) -> dict:
    preset = get_preset(FAMILY_REPOS[family]).with_overrides(**(overrides or {}))
    proc = processor_for(family, overrides=tuple(sorted((overrides or {}).items())))
    return hp.processor_counts_from_size(proc, Size(*size_hw), preset)


def disagreements(reference, other) -> dict:
    return {k: (v, other.get(k)) for k, v in reference.items() if other.get(k) != v}


def report(bad: dict) -> str:
    lines = [f"{size_label(s)}: {d}" for s, d in list(bad.items())[:12]]
    return f"{len(bad)} sizes disagree (first 12, expected vs got):\n" + "\n".join(lines)


# ---------------------------------------------------------------- golden tables (typed from the spec)
# 4.6: (w, h) -> (rows, cols); <image> and total ids per configuration. Totals are the spec's
# minus 1: the spec's tiny tokenizer kept "\n\n" as two tokens, the checkpoint tokenizers (and
# ours, preset.merged_double_newline) hold it as one.
SMOL_GRID_WH = {
    (1, 1): (4, 4), (100, 100): (4, 4), (364, 364): (4, 4), (384, 384): (4, 4), (512, 512): (4, 4),
    (513, 512): (4, 4), (1024, 899): (4, 4), (8000, 8000): (4, 4),
    (640, 480): (3, 4), (1920, 1080): (3, 4), (500, 300): (3, 4),
    (1080, 1920): (4, 3), (2480, 3508): (4, 3), (4000, 30): (1, 4), (30, 4000): (4, 1),
    (10, 2000): (4, 1),
}
SMOL_COUNTS = {  # grid -> {family: (<image>, spec total with two "\n" tokens)}
    (4, 4): {"idefics3": (2873, 2913), "smolvlm2": (1377, 1417), "smolvlm2_256m": (1088, 1128)},
    (3, 4): {"idefics3": (2197, 2228), "smolvlm2": (1053, 1084), "smolvlm2_256m": (832, 863)},
    (4, 3): {"idefics3": (2197, 2229), "smolvlm2": (1053, 1085), "smolvlm2_256m": (832, 864)},
    (1, 4): {"idefics3": (845, 858), "smolvlm2": (405, 418), "smolvlm2_256m": (320, 333)},
    (4, 1): {"idefics3": (845, 861), "smolvlm2": (405, 421), "smolvlm2_256m": (320, 336)},
}
# 5.6: (w, h) -> canvas (H, W), resized (H, W), crops, <|patch|>, x-sep, y-sep, total
LLAMA4_WH = {
    (1, 1): ((336, 336), (336, 336), 1, 144, 0, 0, 147),
    (100, 100): ((336, 336), (336, 336), 1, 144, 0, 0, 147),
    (336, 336): ((336, 336), (336, 336), 1, 144, 0, 0, 147),
    (337, 336): ((336, 672), (336, 337), 3, 432, 1, 1, 437),
    (500, 300): ((336, 672), (300, 500), 3, 432, 1, 1, 437),
    (700, 300): ((336, 1008), (300, 700), 4, 576, 2, 1, 582),
    (640, 480): ((672, 672), (480, 640), 5, 720, 2, 2, 727),
    (1024, 899): ((1008, 1344), (899, 1024), 13, 1872, 9, 3, 1887),
    (1920, 1080): ((1008, 1680), (945, 1680), 16, 2304, 12, 3, 2322),
    (1080, 1920): ((1680, 1008), (1680, 945), 16, 2304, 10, 5, 2322),
    (2480, 3508): ((1680, 1008), (1425, 1008), 16, 2304, 10, 5, 2322),
    (4000, 30): ((336, 4032), (30, 4000), 13, 1872, 11, 1, 1887),
    (30, 4000): ((4032, 336), (4000, 30), 13, 1872, 0, 12, 1887),
    (10, 2000): ((2016, 336), (2000, 10), 7, 1008, 0, 6, 1017),
    (1344, 1344): ((1344, 1344), (1344, 1344), 17, 2448, 12, 4, 2467),
    (1345, 1344): ((1344, 1344), (1343, 1344), 17, 2448, 12, 4, 2467),
    (8000, 8000): ((1344, 1344), (1344, 1344), 17, 2448, 12, 4, 2467),
}
# 5.8: (w, h) -> aspect_ratio_id (1-based into [(1,1),(1,2),(1,3),(1,4),(2,1),(2,2),(3,1),(4,1)])
MLLAMA_WH = {(1, 1): 1, (560, 560): 1, (561, 560): 2, (640, 480): 2, (1920, 1080): 6,
             (1080, 1920): 6, (1120, 1120): 6, (4000, 30): 4, (2000, 500): 4, (10, 2000): 8}


@pytest.mark.parametrize("family", ["idefics3", "smolvlm2", "smolvlm2_256m"])
@pytest.mark.parametrize("wh", list(SMOL_GRID_WH), ids=lambda wh: f"{wh[0]}x{wh[1]}")
def test_smolvlm_golden_table(family, wh):
    plan = plan_image((wh[1], wh[0]), FAMILY_REPOS[family])
    grid = SMOL_GRID_WH[wh]
    image, spec_total = SMOL_COUNTS[grid][family]
    assert (plan.grid_rows, plan.grid_cols) == grid
    assert plan.num_crops == grid[0] * grid[1] + 1
    assert plan.num_image_tokens == image
    assert plan.num_tokens == spec_total - 1


@pytest.mark.parametrize("wh", list(LLAMA4_WH), ids=lambda wh: f"{wh[0]}x{wh[1]}")
def test_llama4_golden_table(wh):
    canvas, resized, crops, patches, x_sep, y_sep, total = LLAMA4_WH[wh]
    plan = plan_image((wh[1], wh[0]), "llama-4")
    assert (plan.canvas_hw.hw, plan.resized_hw.hw, plan.num_crops) == (canvas, resized, crops)
    assert plan.num_image_tokens == patches
    assert plan.tokens_by_kind.get("tile_x_sep", 0) == x_sep
    assert plan.tokens_by_kind.get("tile_y_sep", 0) == y_sep
    assert plan.num_tokens == total


@pytest.mark.parametrize("wh", list(MLLAMA_WH), ids=lambda wh: f"{wh[0]}x{wh[1]}")
def test_mllama_golden_table(wh):
    plan = plan_image((wh[1], wh[0]), "llama-3.2-vision")
    assert get_strategy("mllama").aspect_ratio_id(plan) == MLLAMA_WH[wh]
    assert (plan.num_image_tokens, plan.num_tokens) == (1, 1)


def test_presets_carry_checkpoint_values_not_class_defaults():
    s2 = get_preset("smolvlm2").settings
    assert (s2.longest_edge, s2.tile_size, s2.image_seq_len) == (1536, 384, 81)
    small = get_preset("HuggingFaceTB/SmolVLM2-500M-Video-Instruct").settings
    assert (small.longest_edge, small.tile_size, small.image_seq_len) == (2048, 512, 64)
    assert get_preset("idefics3").settings.image_seq_len == 169
    proc = processor_for("smolvlm2")
    assert type(proc).__name__ == "SmolVLMProcessor" and proc.image_seq_len == 81
    assert proc.image_processor.max_image_size["longest_edge"] == 384
    assert type(processor_for("smolvlm_v1")).__name__ == "Idefics3Processor"
    l4 = processor_for("llama4")
    assert type(l4).__name__ == "Llama4Processor"
    # the trap: processor.image_token_id is <|image|>, the model fills <|patch|>
    assert l4.image_token_id == l4.tokenizer.convert_tokens_to_ids("<|image|>")
    assert hp.placeholder_token_id(l4, get_preset("llama-4")) == \
        l4.tokenizer.convert_tokens_to_ids("<|patch|>")
    assert "SmolVLM" in get_preset("smolvlm2").label and get_preset("smolvlm2").notes


# ---------------------------------------------------------------- real images: spec vectors + sample
REAL_WH = {
    "smolvlm2": [(1, 1), (640, 480), (1080, 1920), (4000, 30), (10, 2000), (513, 512), (1, 8000),
                 (7, 1400), (1537, 2)],
    "llama4": list(LLAMA4_WH)[:-1] + [(1, 3), (3, 1), (2, 1000), (1000, 2), (5376, 336), (335, 1)],
    "mllama": list(MLLAMA_WH) + [(1, 8000), (3, 1)],
}
REAL_WH["smolvlm2_256m"] = REAL_WH["smolvlm_v1"] = REAL_WH["idefics3"] = REAL_WH["smolvlm2"][:2]


def _random_real_hw(n: int, seed: int) -> list[tuple[int, int]]:
    rng = np.random.default_rng(seed)
    sides = np.exp(rng.uniform(0, np.log(3000), size=(n, 2))).astype(int) + 1
    return [(int(a), int(b)) for a, b in sides]


@pytest.mark.parametrize("family", FAMILIES)
def test_real_images_match_engine_and_helpers(family):
    n_random = 3 if family in ("smolvlm2", "llama4", "mllama") else 1
    sizes = [(h, w) for w, h in REAL_WH[family]] + _random_real_hw(n_random, seed=len(family))
    bad, bad_api = {}, {}
    for size_hw in sizes:
        got = real(size_hw, family)
        if d := disagreements(got, engine(size_hw, family)):
            bad[size_hw] = d
        if d := disagreements(api(size_hw, family), got):
            bad_api[size_hw] = d
    assert not bad, "engine vs processor: " + report(bad)
    assert not bad_api, "helpers vs processor: " + report(bad_api)


# ---------------------------------------------------------------- >= 500 sizes through the helpers
@functools.lru_cache(maxsize=None)
def _sizes() -> tuple:
    extra = [(h, w) for w, h in list(SMOL_GRID_WH) + list(LLAMA4_WH) + list(MLLAMA_WH)]
    edges = [(a, b) for a in (335, 336, 337, 363, 364, 365, 383, 384, 385, 511, 512, 513, 559,
                              560, 561, 1344, 1345, 5376, 5377) for b in (1, 336, 672, 1000)]
    return tuple(dict.fromkeys(sweep_sizes_hw() + extra + edges))


def _check_sweep(family, overrides=None, sizes=None):
    sizes = sizes or _sizes()
    bad = {}
    for size_hw in sizes:
        if d := disagreements(api(size_hw, family, overrides), engine(size_hw, family, overrides)):
            bad[size_hw] = d
    assert not bad, f"engine vs transformers' helpers {overrides or ''}: " + report(bad)
    preset = get_preset(FAMILY_REPOS[family]).with_overrides(**(overrides or {}))
    hw = np.array(sizes)
    strategy = get_strategy(preset.strategy)
    want = np.array([api(s, family, overrides)["num_image_tokens"] for s in sizes])
    want_total = np.array([api(s, family, overrides)["num_tokens"] for s in sizes])
    assert np.array_equal(strategy.count_many(hw[:, 0], hw[:, 1], preset), want)
    assert np.array_equal(strategy.count_many_total(hw[:, 0], hw[:, 1], preset), want_total)
    return dict(zip(sizes, want))


@pytest.mark.parametrize("family", FAMILIES)
def test_sweep_engine_and_vectorized_counts_match_transformers(family):
    counts = _check_sweep(family)
    assert len(counts) >= 500
    assert len(set(counts.values())) >= (1 if family == "mllama" else 4)


def test_mllama_vectorized_tiles_match_transformers():
    preset = get_preset("llama-3.2-vision")
    hw = np.array(_sizes())
    want = [api(tuple(s), "mllama")["num_crops"] for s in hw]
    assert np.array_equal(get_strategy("mllama").tiles_many(hw[:, 0], hw[:, 1], preset), want)


def test_vectorized_counts_reject_non_positive_sides():
    for family in ("smolvlm2", "llama4", "mllama"):
        preset = get_preset(FAMILY_REPOS[family])
        got = get_strategy(preset.strategy).count_many(np.array([0, 5, -1]), np.array([5, 0, 3]), preset)
        assert got.tolist() == [-1, -1, -1]


# ---------------------------------------------------------------- overrides
OVERRIDES = [("smolvlm2", {"longest_edge": 768}), ("idefics3", {"longest_edge": 728}),
             ("llama4", {"max_tiles": 4}), ("llama4", {"max_tiles": 9})]


@pytest.mark.parametrize("family,overrides", OVERRIDES, ids=lambda v: str(v))
def test_overrides_match_transformers(family, overrides):
    sizes = _sizes()[::3]
    counts = _check_sweep(family, overrides, sizes)
    default = {s: api(s, family)["num_image_tokens"] for s in sizes}
    assert sum(counts[s] != default[s] for s in sizes) >= 10, "was the override applied?"
    for w, h in [(1920, 1080), (300, 500), (4000, 30), (1, 1)]:
        got = real((h, w), family, overrides)
        assert not disagreements(got, engine((h, w), family, overrides)), ((w, h), got)


def test_llama4_max_tiles_4_spec_vector():
    plan = plan_image((1080, 1920), "llama-4", max_tiles=4)
    assert (plan.grid_rows, plan.grid_cols, plan.num_image_tokens) == (2, 2, 720)


@pytest.mark.parametrize("edge", [1000, 333])
def test_smolvlm_longest_edge_not_a_tile_multiple_full_processor(edge):
    """L not a multiple of M: only the full processor call is authoritative (the image
    processor's helper computes H2 differently, spec 4.7); L below M gives one unsplit view."""
    noted = 0
    for w, h in [(1920, 1080), (500, 300), (1080, 1920), (100, 3000), (64, 64), (333, 112), (50, 149)]:
        got = real((h, w), "smolvlm2", {"longest_edge": edge})
        assert not disagreements(got, engine((h, w), "smolvlm2", {"longest_edge": edge})), (w, h, got)
        # the divergence note appears exactly where transformers' helper disagrees
        plan = plan_image((h, w), "smolvlm2", longest_edge=edge)
        helper = api((h, w), "smolvlm2", {"longest_edge": edge})["grid"]
        if plan.grid_rows:
            assert bool(plan.divergences) == (helper != got["grid"]), (w, h, helper, got["grid"])
            noted += bool(plan.divergences)
    assert noted >= (1 if edge == 1000 else 0)


def test_cli_counts_the_new_families_and_reports_bad_settings(capsys):
    from anyres_demo import cli

    assert cli.main(["tokens", "-m", "smolvlm2", "-m", "llama-4", "-m", "llama-3.2-vision",
                     "-s", "1920x1080", "--json"]) == 0
    records = json.loads(capsys.readouterr().out)
    assert [(r["num_image_tokens"], r["num_tokens"]) for r in records] == \
        [(1053, 1083), (2304, 2322), (1, 1)]
    assert cli.main(["tokens", "-m", "smolvlm2", "-s", "640x480", "--longest-edge", "9999",
                     "--json"]) != 0
    (bad,) = json.loads(capsys.readouterr().out)
    assert "longest_edge" in bad["error"] and "4,096" in bad["error"]


def test_bad_overrides_are_refused():
    with pytest.raises(ValueError, match="longest_edge is 5,000"):
        get_preset("smolvlm2").with_overrides(longest_edge=5000)
    with pytest.raises(ValueError, match="max_tiles"):
        get_preset("llama-4").with_overrides(max_tiles=0)
    # the UI / CLI offer no setting for Llama 3.2 Vision: a max-tiles value is ignored there
    assert collect_overrides(get_preset("llama-3.2-vision"), max_tiles=2) == {}
    assert collect_overrides(get_preset("smolvlm2"), longest_edge=768, max_tiles=3) == \
        {"longest_edge": 768}


# ---------------------------------------------------------------- crop pixels
CROP_HW = [(1, 1), (91, 37), (300, 500), (1080, 1920), (10, 2000), (2000, 10)]


def _crop_error(family, size_hw, backend):
    preset = get_preset(FAMILY_REPOS[family])
    image = noise_image(size_hw, seed=size_hw[0] * 31 + size_hw[1])
    proc = processor_for(family, backend=backend)
    theirs = hp.pixel_values_to_uint8(proc, hp.processor_outputs(proc, image, preset), preset)
    ours = [np.asarray(c, dtype=np.int16) for c in render_crops(image, plan_image(image, preset))]
    assert [c.shape for c in ours] == [t.shape for t in theirs]
    errors = [np.abs(o - t.astype(np.int16)) for o, t in zip(ours, theirs)]
    return max(int(e.max()) for e in errors), max(float(e.mean()) for e in errors)


@pytest.mark.parametrize("family", ["smolvlm2", "idefics3", "mllama"])
@pytest.mark.parametrize("size_hw", CROP_HW, ids=size_label)
def test_crop_pixels_pil_backend_bit_exact(family, size_hw):
    """render_crops chains Pillow's LANCZOS (SmolVLM: longest edge, tile multiples, global
    squash) or BILINEAR (mllama) as the *Pil image processors do: identical bytes."""
    assert _crop_error(family, size_hw, "pil")[0] == 0


@pytest.mark.parametrize("family", ["llama4", "mllama"])
@pytest.mark.parametrize("size_hw", CROP_HW, ids=size_label)
def test_crop_pixels_torchvision_backend_within_2(family, size_hw):
    """Llama 4 has only the torchvision processor (bilinear, normalised in bfloat16)."""
    assert _crop_error(family, size_hw, None)[0] <= 2


@pytest.mark.parametrize("size_hw", CROP_HW, ids=size_label)
def test_crop_pixels_smolvlm_torchvision_measured_gap(size_hw):
    """Measured gap, not a tolerance: the torchvision SmolVLM processor chains three LANCZOS
    resizes whose rounding differs from Pillow's: up to 3/255 on ordinary sizes (mean below
    0.05/255 per crop) and up to ~26/255 on the 2000 px tall, 10 px wide noise image (mean
    below 0.7/255). The PIL processor matches bit for bit (above)."""
    max_err, mean_err = _crop_error("smolvlm2", size_hw, None)
    tall_narrow = size_hw[0] >= 100 * size_hw[1]
    assert max_err <= (26 if tall_narrow else 3)
    assert mean_err < (0.7 if tall_narrow else 0.05)


def test_family_teaching_text_reaches_the_views():
    from anyres_demo.teaching import teaching

    assert "4x4" in teaching("grid", "smolvlm") and "<|patch|>" in teaching("token_map", "llama4")
    assert "cross-attention" in teaching("token_map", "mllama")

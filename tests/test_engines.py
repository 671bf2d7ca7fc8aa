"""Engine rows: golden numbers derived by hand from each engine's cited rule.

Every expected count below is worked out in the comment from the rule's own constants and the
smart-resize arithmetic (round each side to the factor; if the area is over max_pixels, scale by
beta = sqrt(h*w / max) and floor each side to the factor; if under min_pixels, scale up and
ceil), not read from the code under test. Counts are image tokens + the 2 vision wrappers.
"""
from __future__ import annotations

import pytest

from anyres_demo.engines import ENGINES, engine_rows, row_cells, row_record
from anyres_demo.geometry import Size
from anyres_demo.presets import Preset, QwenSettings, get_preset


def rows_by_engine(size_hw, preset):
    return {r.engine: r for r in engine_rows(Size(*size_hw), preset)}


def test_every_engine_has_a_row_with_version_source_and_knob():
    rows = engine_rows(Size(1080, 1920), "qwen2.5-vl")
    assert [r.engine for r in rows] == [e.name for e in ENGINES]
    for r in rows:
        assert r.version and r.source and r.knob


def test_llama_cpp_clamps_qwen2_vl_to_4096_tokens():
    # 4000x3000, factor 28, max = 4096 * 28^2 = 3,211,264 px. Rounded 4004x2996 is 11,995,984 px,
    # over it: beta = sqrt(12,000,000 / 3,211,264) = 1.93308; 3000/1.93308/28 = 55.43 -> 55,
    # 4000/1.93308/28 = 73.90 -> 73: 55 x 73 = 4015 tokens (transformers: 107 x 143 = 15301).
    rows = rows_by_engine((3000, 4000), "Qwen/Qwen2-VL-2B-Instruct")
    assert rows["transformers"].num_tokens == 107 * 143 + 2
    assert rows["llama.cpp"].num_tokens == 55 * 73 + 2
    assert rows["llama.cpp"].resized == f"{73 * 28}x{55 * 28}"
    assert rows["llama.cpp"].delta == 55 * 73 - 107 * 143 and rows["llama.cpp"].differs
    assert rows["llama.cpp"].confirmed


def test_llama_cpp_floor_of_8_tokens_upscales_tiny_images():
    # 30x30, factor 28: rounded 28x28 = 784 px < min 8 * 784 = 6272: beta = sqrt(6272 / 900) =
    # 2.6399; ceil(30 * 2.6399 / 28) = ceil(2.83) = 3 -> 84x84: 9 tokens. transformers' checkpoint
    # floor is 3136 px: beta = sqrt(3136/900) = 1.8667, ceil(2.0) = 2 -> 56x56: 4 tokens.
    rows = rows_by_engine((30, 30), "Qwen/Qwen2-VL-2B-Instruct")
    assert rows["transformers"].num_tokens == 4 + 2
    assert rows["llama.cpp"].num_tokens == 9 + 2


def test_ollama_caps_qwen2_5_vl_at_2_mebipixels():
    # max_pixels = 2<<20 = 2,097,152. 4000x3000: beta = sqrt(12,000,000 / 2,097,152) = 2.39207;
    # 3000/2.39207/28 = 44.79 -> 44, 4000/2.39207/28 = 59.72 -> 59: 44 x 59 = 2596 tokens.
    rows = rows_by_engine((3000, 4000), "Qwen/Qwen2.5-VL-3B-Instruct")
    assert rows["Ollama"].num_tokens == 44 * 59 + 2
    assert rows["Ollama"].resized == f"{59 * 28}x{44 * 28}"
    assert rows["transformers"].num_tokens == 107 * 143 + 2


def test_ollama_refuses_a_side_under_28_px():
    # SmartResize panics when height or width < factor (28); transformers accepts 20x500.
    rows = rows_by_engine((20, 500), "Qwen/Qwen2.5-VL-3B-Instruct")
    assert rows["Ollama"].num_tokens is None and rows["Ollama"].error.startswith("refused")
    assert rows["Ollama"].differs and row_cells(rows["Ollama"])[3] == "refused"
    assert rows["transformers"].num_tokens is not None


QWEN3_LIKE = Preset(  # a patch-16 Qwen checkpoint (Qwen3-VL values, spec 1.2), built here
    repo_id="test/qwen3-like", strategy="qwen2_vl", label="patch-16 Qwen",
    settings=QwenSettings(patch_size=16, merge_size=2, temporal_patch_size=2,
                          min_pixels=65536, max_pixels=16777216),
    image_token="<|image_pad|>", image_token_id=1, wrapper_tokens=("<a>", "<b>"), wrapper_token_ids=(2, 3))


def test_sglang_caps_a_patch_16_checkpoint_below_its_max_pixels():
    # SGLang first resizes with factor 28 and max 12,845,056, then the checkpoint's processor
    # (factor 32, max 16,777,216) runs on the result. 6000x4000: rounded 6000x4004 (6000/28 =
    # 214.3 -> 214 x 28 = 5992) is 23,991,968 px > max: beta = sqrt(24,000,000 / 12,845,056) =
    # 1.366903; 4000/1.366903/28 = 104.5 -> 104 (2912 px), 6000/1.366903/28 = 156.8 -> 156
    # (4368 px). The processor: 2912/32 = 91, 4368/32 = 136.5 -> 136 (half to even): 91 x 136.
    # transformers alone: rounded 6016x4000 = 24,064,000 > 16,777,216: beta = 1.196040,
    # 4000/1.19604/32 = 104.5 -> 104, 6000/1.19604/32 = 156.8 -> 156: 104 x 156 = 16,224.
    rows = rows_by_engine((4000, 6000), QWEN3_LIKE)
    assert rows["transformers"].num_tokens == 104 * 156 + 2
    assert rows["SGLang"].num_tokens == 91 * 136 + 2


def test_sglang_clamps_thin_sides_like_qwen_vl_utils():
    # 10x2000 (w x h) on Qwen2-VL: transformers rounds the 10 px side to 0, then scales up to
    # min_pixels: 28 x 812 -> 29 tokens. SGLang's smart_resize clamps it to 28 first: 2000/28 =
    # 71.4 -> 71 (1988 px), 28 x 1988 = 55,664 px is within the limits: 71 tokens.
    rows = rows_by_engine((2000, 10), "Qwen/Qwen2-VL-2B-Instruct")
    assert rows["transformers"].num_tokens == 29 + 2
    assert rows["SGLang"].num_tokens == 71 + 2


def test_sglang_matches_transformers_for_qwen2_vl_checkpoints():
    # SGLang's constants (3136, 16384 * 28^2) are exactly Qwen2-VL's checkpoint values.
    for size in ((3000, 4000), (30, 30), (1080, 1920)):
        rows = rows_by_engine(size, "Qwen/Qwen2-VL-7B-Instruct")
        assert rows["SGLang"].num_tokens == rows["transformers"].num_tokens


@pytest.mark.parametrize("model", ["llava-next", "llava-onevision", "qwen2-vl", "internvl"])
def test_vllm_runs_the_hf_processor(model):
    # vLLM's rule: the checkpoint's HF processor, so no size differs at its defaults.
    for size in ((3000, 4000), (10, 2000), (1080, 1920)):
        rows = rows_by_engine(size, model)
        assert rows["vLLM"].num_tokens == rows["transformers"].num_tokens


def test_engines_use_the_checkpoint_not_the_explorers_overrides():
    chosen = get_preset("qwen2-vl").with_overrides(max_pixels=28 * 28 * 256)
    rows = rows_by_engine((3000, 4000), chosen)
    assert rows["transformers"].num_tokens <= 256 + 2
    assert rows["vLLM"].num_tokens == 107 * 143 + 2  # vLLM at its defaults: the checkpoint
    assert rows["vLLM"].delta > 0


def test_families_without_a_rule_are_marked_unconfirmed():
    rows = rows_by_engine((3000, 4000), "llava-next")
    assert not rows["llama.cpp"].confirmed and not rows["SGLang"].confirmed
    assert row_cells(rows["llama.cpp"])[-1] == "UNCONFIRMED"
    assert rows["transformers"].confirmed


def test_llama_cpp_rounds_halves_up():
    # 70x700 (h x w), factor 28: 700 = 25 x 28 either way; 70/28 = 2.5: llama.cpp
    # (70 + 14) // 28 = 3 -> 84 px, transformers rounds half to even -> 2 (56 px).
    rows = rows_by_engine((70, 700), "qwen2-vl")
    assert rows["llama.cpp"].num_tokens == 3 * 25 + 2
    assert rows["transformers"].num_tokens == 2 * 25 + 2


@pytest.mark.parametrize("size_hw,resized_hw", [
    # the vectors the cited ports verified against llama.cpp (align 48, [40, 280] tokens)
    ((640, 640), (624, 624)), ((480, 640), (480, 624)), ((100, 100), (336, 336)),
    ((2000, 3000), (624, 960)),
])
def test_llama_cpp_gemma4_resize_vectors(size_hw, resized_hw):
    from anyres_demo.engines import calc_size_preserved_ratio
    assert calc_size_preserved_ratio(Size(*size_hw), 48, 40 * 48 * 48, 280 * 48 * 48) == Size(*resized_hw)


def test_row_record_is_json_ready():
    import json
    rows = engine_rows(Size(3000, 4000), "qwen2.5-vl")
    text = json.dumps([row_record(r) for r in rows])
    assert '"engine": "Ollama"' in text


def _preset_or_skip(repo):
    try:
        return get_preset(repo)
    except ValueError:
        pytest.skip(f"{repo} is not a preset on this branch yet")


def test_llama_cpp_and_ollama_run_gemma4_at_40_to_280_tokens():
    preset = _preset_or_skip("google/gemma-4-E2B-it")
    # 640x480: llama.cpp rounds to 624x480 (13 x 10 = 130 tokens of 48 px) inside [40, 280];
    # transformers fills the 280 budget: 672x912 -> 14 x 19 = 266 (spec 3.6). Plus boi / eoi.
    rows = rows_by_engine((480, 640), preset)
    assert rows["transformers"].num_image_tokens == 266
    assert rows["llama.cpp"].num_image_tokens == 130 and rows["llama.cpp"].resized == "624x480"
    assert rows["Ollama"].num_image_tokens == 130


def test_ollama_has_no_pan_and_scan():
    preset = _preset_or_skip("google/gemma-3-4b-it")
    chosen = preset.with_overrides(do_pan_and_scan=True)
    # 1920x1080 with pan-and-scan: 2 crops + the base view = 3 x 256 soft tokens (spec 2.6);
    # Ollama always sends the single 896 view: 256.
    rows = rows_by_engine((1080, 1920), chosen)
    assert rows["transformers"].num_image_tokens == 3 * 256
    assert rows["Ollama"].num_image_tokens == 256 and rows["Ollama"].differs

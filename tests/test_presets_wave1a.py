"""Golden tables for Qwen3-VL / Qwen3.5, InternVL3.5 and Pixtral / Mistral Small 3.1, typed
from ../shared/reference/anyres-spec-2026.md (sections 1.2, 1.7, 6.1, 6.6, 7), against the
presets, the engine and the real processors' counting API."""
from __future__ import annotations

import pytest

from anyres_demo import count_tokens_many, get_preset, plan_image
from anyres_demo.engine import count_total_many

# repo -> (patch, merge, min_pixels, max_pixels, mean) -- 2026 spec 1.2: min/max [issue]
# QwenLM/Qwen3-VL#1836 (Qwen3-VL-8B's file); patch / mean [3rd] copies; Qwen3.5 [3rd]
QWEN3_GOLDEN = {repo: (16, 2, 65536, 16777216, (0.5, 0.5, 0.5)) for repo in (
    "Qwen/Qwen3-VL-2B-Instruct", "Qwen/Qwen3-VL-4B-Instruct", "Qwen/Qwen3-VL-8B-Instruct",
    "Qwen/Qwen3-VL-30B-A3B-Instruct", "Qwen/Qwen3.5-2B", "Qwen/Qwen3.5-9B")}
# token ids: configuration_qwen3_vl.py 136-139, configuration_qwen3_5.py 179-182 (spec 1.2)
QWEN3_IDS = {"Qwen/Qwen3-VL-2B-Instruct": (151655, 151652, 151653), "Qwen/Qwen3.5-2B": (248056, 248053, 248054)}
# repo -> (longest_edge, patch, merge, vision image_size) -- 2026 spec 6.1: pixtral-12b = class
# defaults (assumed); Mistral Small 3.1 [3rd] copies of its processor file and config.json
PIXTRAL_GOLDEN = {"mistral-community/pixtral-12b": (1024, 16, 1, 1024),
                  "mistralai/Mistral-Small-3.1-24B-Instruct-2503": (1540, 14, 2, 1540)}
# InternVL3.5-HF: spec 7, NOT verified; assumed InternVL3-hf's 448 px, 1..12 tiles, ImageNet
INTERNVL3_5 = ("OpenGVLab/InternVL3_5-1B-HF", "OpenGVLab/InternVL3_5-2B-HF", "OpenGVLab/InternVL3_5-8B-HF")
ALIASES = {"qwen3-vl": "Qwen/Qwen3-VL-2B-Instruct", "qwen3.5": "Qwen/Qwen3.5-2B",
           "internvl3.5": "OpenGVLab/InternVL3_5-1B-HF", "pixtral": "mistral-community/pixtral-12b",
           "mistral-small-3.1": "mistralai/Mistral-Small-3.1-24B-Instruct-2503"}


@pytest.mark.parametrize("repo", QWEN3_GOLDEN)
def test_qwen3_presets_hold_the_checkpoint_values(repo):
    s = get_preset(repo).settings
    assert (s.patch_size, s.merge_size, s.min_pixels, s.max_pixels, s.image_mean) == QWEN3_GOLDEN[repo]
    assert s.image_std == (0.5, 0.5, 0.5) and s.factor == 32 and s.utils_min_pixels == 4096
    assert s.deepstack == ("Qwen3.5" not in repo)  # Qwen3.5's vision model has no deepstack
    assert get_preset(repo).notes and "third-party" in get_preset(repo).notes[0]


@pytest.mark.parametrize("repo", QWEN3_IDS)
def test_qwen3_token_ids(repo):
    p = get_preset(repo)
    assert (p.image_token_id, *p.wrapper_token_ids) == QWEN3_IDS[repo]


@pytest.mark.parametrize("repo", PIXTRAL_GOLDEN)
def test_pixtral_presets_hold_the_checkpoint_values(repo):
    s = get_preset(repo).settings
    assert (s.longest_edge, s.patch_size, s.merge_size, s.vision_image_size) == PIXTRAL_GOLDEN[repo]
    with pytest.raises(ValueError, match="image_size"):
        get_preset(repo).with_overrides(longest_edge=s.vision_image_size + 1)


@pytest.mark.parametrize("repo", INTERNVL3_5)
def test_internvl3_5_is_internvl3_with_the_assumption_stated(repo):
    p, ref = get_preset(repo), get_preset("OpenGVLab/InternVL3-1B-hf")
    assert p.strategy == "internvl" and p.settings == ref.settings
    assert "assumed" in p.notes[0]


def test_aliases():
    assert {a: get_preset(a).repo_id for a in ALIASES} == ALIASES


# 2026 spec 1.7 and 6.6, every row, (w, h) -> tokens (placeholders, total)
QWEN3_VECTORS = {(1, 1): 64, (100, 100): 64, (255, 255): 64, (256, 256): 64, (10, 2000): 114,
                 (2000, 10): 114, (4000, 30): 125, (200, 1): 114, (640, 480): 300,
                 (1920, 1080): 2040, (1080, 1920): 2040, (500, 300): 144, (1024, 899): 896,
                 (2480, 3508): 8580, (4096, 4096): 16384, (4097, 4096): 16384, (8000, 8000): 16384}
PIXTRAL_VECTORS = {  # (w, h): ((pixtral [IMG], total), (mistral [IMG], total))
    (1, 1): ((1, 2), (1, 2)), (17, 16): ((2, 3), (1, 2)), (29, 28): ((4, 6), (2, 3)),
    (100, 100): ((49, 56), (16, 20)), (640, 480): ((1200, 1230), (414, 432)),
    (1920, 1080): ((2304, 2340), (1705, 1736)), (1080, 1920): ((2304, 2368), (1705, 1760)),
    (500, 300): ((608, 627), (198, 209)), (1024, 899): ((3648, 3705), (1221, 1254)),
    (2480, 3508): ((2944, 3008), (2145, 2200)), (4000, 30): ((64, 65), (55, 56)),
    (30, 4000): ((64, 128), (55, 110)), (10, 2000): ((64, 128), (55, 110)),
    (1024, 1024): ((4096, 4160), (1369, 1406)), (1541, 1540): ((4096, 4160), (3025, 3080)),
    (8000, 8000): ((4096, 4160), (3025, 3080)), (200, 1): ((13, 14), (8, 9)),  # 6.7: processor 9
}


@pytest.mark.parametrize("repo", ["qwen3-vl", "qwen3.5"])
def test_qwen3_spec_vectors(repo):
    for (w, h), tokens in QWEN3_VECTORS.items():
        plan = plan_image((h, w), repo)
        assert (plan.num_image_tokens, plan.num_tokens) == (tokens, tokens + 2), (w, h)
        assert count_tokens_many([h], [w], repo)[0] == tokens
    with pytest.raises(ValueError, match="above 200:1"):
        plan_image((1, 201), repo)


@pytest.mark.parametrize("which,repo", [(0, "pixtral"), (1, "mistral-small-3.1")])
def test_pixtral_spec_vectors(which, repo):
    for (w, h), pair in PIXTRAL_VECTORS.items():
        want = pair[which]
        plan = plan_image((h, w), repo)
        assert (plan.num_image_tokens, plan.num_tokens) == want, (w, h)
        assert (count_tokens_many([h], [w], repo)[0], count_total_many([h], [w], repo)[0]) == want


def test_pixtral_helper_misreading_is_reproduced_and_flagged():
    """2026 spec 6.7: 200x1 -> helper 16 vs processor 9; 200x3 -> 16 vs 9; 200x4 -> 9 vs 9."""
    from anyres_demo.strategies.pixtral import helper_total

    s = get_preset("mistral-small-3.1").settings
    from anyres_demo.geometry import Size
    assert [helper_total(Size(h, 200), s) for h in (1, 3, 4)] == [16, 16, 9]
    assert [plan_image((h, 200), "mistral-small-3.1").num_tokens for h in (1, 3, 4)] == [9, 9, 9]
    assert plan_image((1, 200), "mistral-small-3.1").divergences
    assert not plan_image((4, 200), "mistral-small-3.1").divergences


def test_qwen3_divergence_note_names_both_numbers():
    notes = plan_image((100, 100), "qwen3-vl").divergences
    assert len(notes) == 1 and "9 tokens" in notes[0] and "transformers' 64" in notes[0]
    assert not plan_image((480, 640), "qwen3-vl").divergences


def test_qwen3_counting_helper_ignores_a_size_override_but_the_processor_does_not():
    """2026 spec 1.8: `_get_num_multimodal_tokens(..., size=...)` keeps the checkpoint's budget
    (2040 for 1920x1080) while the processor call with the same size= gives 1222; the engine's
    max_pixels override gives the processor's number."""
    pytest.importorskip("transformers")
    from PIL import Image

    from anyres_demo.backends import hf_processors as hp

    preset = get_preset("qwen3-vl")
    proc = hp.build_processor(preset)
    size = {"longest_edge": 1280 * 32 * 32, "shortest_edge": 256 * 32 * 32}
    helper = proc._get_num_multimodal_tokens(image_sizes=[(1080, 1920)], size=size)["num_image_tokens"][0]
    out = proc(images=[Image.new("RGB", (1920, 1080))], text=[hp.image_placeholder(preset)],
               size=size, return_tensors="pt")
    real = int((out["input_ids"][0] == proc.image_token_id).sum())
    engine = plan_image((1080, 1920), preset, max_pixels=size["longest_edge"],
                        min_pixels=size["shortest_edge"]).num_image_tokens
    assert (helper, real, engine) == (2040, 1222, 1222)

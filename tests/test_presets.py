import pytest

from anyres_demo.presets import ALIASES, PRESETS, get_preset

REQUIRED = [
    "llava-hf/llava-v1.6-mistral-7b-hf", "llava-hf/llava-v1.6-vicuna-7b-hf",
    "llava-hf/llava-onevision-qwen2-0.5b-ov-hf", "llava-hf/llava-onevision-qwen2-7b-ov-hf",
    "Qwen/Qwen2-VL-2B-Instruct", "Qwen/Qwen2-VL-7B-Instruct", "Qwen/Qwen2.5-VL-3B-Instruct",
    "Qwen/Qwen2.5-VL-7B-Instruct", "OpenGVLab/InternVL3-1B-hf", "OpenGVLab/InternVL3-2B-hf",
    "OpenGVLab/InternVL3-8B-hf",
]


def test_required_presets_and_aliases():
    assert set(REQUIRED) <= set(PRESETS)
    assert {"llava-next", "llava-onevision", "qwen2-vl", "qwen2.5-vl", "internvl", "gemma-3",
            "gemma-4"} <= set(ALIASES)
    assert get_preset("qwen2.5-vl").repo_id.startswith("Qwen/Qwen2.5-VL")
    assert get_preset("QWEN/qwen2-vl-7b-instruct").repo_id == "Qwen/Qwen2-VL-7B-Instruct"


def test_checkpoint_values_not_class_defaults():
    # The transformers class defaults are 224 tiles and max_pixels 28*28*1280 (spec 1.1, 3.1).
    assert get_preset("llava-next").settings.tile_size == 336
    assert get_preset("llava-onevision").settings.tile_size == 384
    assert get_preset("qwen2-vl").settings.max_pixels == 12845056 != 28 * 28 * 1280
    assert get_preset("qwen2-vl").settings.min_pixels == 3136
    s = get_preset("internvl").settings
    assert (s.tile_size, s.min_tiles, s.max_tiles, s.cells_per_side) == (448, 1, 12, 16)
    assert len(get_preset("llava-onevision").settings.pinpoints_hw) == 36


def test_class_defaults_really_differ_from_checkpoints():
    from transformers import LlavaNextImageProcessor, Qwen2VLImageProcessor

    assert LlavaNextImageProcessor().crop_size["height"] == 224
    qwen = Qwen2VLImageProcessor()
    assert qwen.size["longest_edge"] == 28 * 28 * 1280


def test_overrides_apply_and_validate():
    p = get_preset("qwen2-vl").with_overrides(max_pixels=1003520, min_tiles=None)
    assert p.settings.max_pixels == 1003520
    assert get_preset("qwen2-vl").settings.max_pixels == 12845056  # original untouched
    with pytest.raises(ValueError, match="max_tiles cannot be set"):
        get_preset("qwen2-vl").with_overrides(max_tiles=4)
    # transformers accepts min above max (issue 10.3): followed, not refused
    assert get_preset("qwen2-vl").with_overrides(min_pixels=10**7).settings.min_pixels == 10**7
    assert get_preset("internvl").with_overrides(min_tiles=5, max_tiles=3).settings.max_tiles == 3
    with pytest.raises(ValueError, match="safety limit of 51,380,224 pixels"):
        get_preset("qwen2-vl").with_overrides(min_pixels=10**8)
    with pytest.raises(ValueError, match="not a multiple"):
        get_preset("llava-next").with_overrides(pinpoints_hw=[(336, 500)])


def test_unknown_model_lists_known_ones():
    with pytest.raises(ValueError, match="unknown model 'gpt-9'.*llava-next"):
        get_preset("gpt-9")

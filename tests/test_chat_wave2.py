"""Chat for the wave-2 families with tiny random-weight models (real classes, saved and reloaded
through AutoProcessor + AutoModelForImageTextToText): the count check, the explorer's settings
reaching the processor, attention captured without eager mode and drawn through the layout, and
clear messages where the family cannot do more."""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

from anyres_demo import attention, build_layout, get_preset  # noqa: E402
from anyres_demo.backends import chat, tiny_models  # noqa: E402
from hf_helpers import noise_image  # noqa: E402

IMAGE = noise_image((300, 500), seed=3)
NAMES = ("smolvlm2", "llama-4", "llama-3.2-vision")


@pytest.fixture(scope="module")
def loaded(tmp_path_factory):
    out = {}

    def get(name):
        if name not in out:
            folder = tmp_path_factory.mktemp(name.replace(".", "_"))
            tiny_models.build_tiny_model(get_preset(name), str(folder))
            model = chat.load_model(chat.resolve_source(str(folder)))
            model.model.generation_config.min_new_tokens = 4
            out[name] = model
        return out[name]
    return get


@pytest.mark.parametrize("name", NAMES)
def test_reloaded_model_counts_match_the_plan(loaded, name):
    model = loaded(name)
    assert model.source.random_weights and model.source.preset.strategy == get_preset(name).strategy
    assert type(model.model).__name__ == tiny_models.MODEL_CLASS[
        tiny_models.hp.model_type(get_preset(name))]
    prepared = chat.prepare_turn(model, IMAGE, [], "describe the image")
    ids = np.asarray(prepared.inputs["input_ids"][0])
    assert int((ids == model.image_token_id).sum()) == prepared.plan.num_image_tokens
    if name == "llama-4":  # the count uses <|patch|>, the id the model fills
        assert model.image_token_id != model.processor.image_token_id
        assert model.image_token_id == int(model.model.config.image_token_index)


def test_explorer_settings_reach_the_processor(loaded):
    model = loaded("smolvlm2")
    prepared = chat.prepare_turn(model, IMAGE, [], "describe", {"longest_edge": 768})
    assert prepared.plan.num_crops == 5 and prepared.plan.num_image_tokens == 405
    l4 = loaded("llama-4")
    prepared = chat.prepare_turn(l4, noise_image((1080, 1920)), [], "describe", {"max_tiles": 4})
    assert prepared.plan.num_image_tokens == 720


def test_count_check_catches_a_deliberate_mismatch(loaded, monkeypatch):
    model = loaded("smolvlm2")
    monkeypatch.setattr(chat, "processor_with_overrides", lambda proc, preset, overrides: proc)
    with pytest.raises(chat.TokenCountMismatch, match="1053 image tokens.*has 405"):
        chat.prepare_turn(model, IMAGE, [], "describe", {"longest_edge": 768})


def test_smolvlm_turn_captures_attention_and_maps_it_through_the_layout(loaded):
    model = loaded("smolvlm2")
    prepared = chat.prepare_turn(model, IMAGE, [], "describe the image")
    *_, (text, result) = chat.stream_turn(model, prepared, chat.GenerationSettings(max_new_tokens=5))
    assert result.random_weights and result.capture is not None, result.capture_note
    n_answer = len(result.answer_ids)
    assert result.capture.image_mean.shape[1:] == (n_answer, prepared.plan.num_image_tokens)
    layout = build_layout(prepared.plan)
    heat = attention.map_heat(layout, attention.select_scores(result.capture.image_mean))
    # two panels (the stitched tiles and the global image) holding all of the image's attention
    assert set(heat.panels) and len(heat.panels) == 2
    assert sum(heat.panel_mass.values()) + heat.newline_mass + heat.padding_mass == pytest.approx(1)
    assert heat.tile_mass.shape == (prepared.plan.grid_rows, prepared.plan.grid_cols)


def test_llama4_generation_fails_with_a_clear_message(loaded):
    model = loaded("llama-4")
    prepared = chat.prepare_turn(model, IMAGE, [], "describe the image")
    with pytest.raises(RuntimeError, match="transformers 5.24"):
        list(chat.stream_turn(model, prepared, chat.GenerationSettings(max_new_tokens=3)))


def test_mllama_answers_and_says_why_there_is_no_heatmap(loaded):
    model = loaded("llama-3.2-vision")
    prepared = chat.prepare_turn(model, IMAGE, [], "describe the image")
    assert prepared.plan.num_image_tokens == 1 and prepared.plan.num_crops == 1  # 500x300: 1 tile
    *_, (text, result) = chat.stream_turn(model, prepared, chat.GenerationSettings(max_new_tokens=4))
    assert result.capture is None and "cross-attention" in result.capture_note
    assert len(result.answer_ids) >= 4

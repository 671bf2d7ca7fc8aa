"""The chat backend and tab with tiny random-weight models of every family (offline).

Streaming works and keeps multi-turn history; a failing turn keeps the conversation; the
image-token count check stops a deliberate mismatch before the model sees it; the explorer's
settings reach the processor (and LLaVA's model config); loading failures say why and how to
fix; random-weight output is always labelled.
"""
import json
import os
import threading
import warnings

import gradio as gr
import pytest

from anyres_demo import plan_image, security
from anyres_demo.backends import chat
from anyres_demo.overrides import SETTING_SPECS
from anyres_demo.ui import chat as ui
from anyres_demo.ui.shared import Shared
from hf_helpers import FAMILIES, family_preset, noise_image

IMAGE = noise_image((300, 500), seed=3)
MIN_TOKENS = 6


@pytest.fixture
def tiny_dirs(tiny_model_dirs):
    return tiny_model_dirs


@pytest.fixture
def backend(monkeypatch):
    """A fresh registry for each test; loaded models keep at least MIN_TOKENS new tokens."""
    def loader(source, progress=None):
        loaded = chat.load_model(source, progress)
        loaded.model.generation_config.min_new_tokens = MIN_TOKENS
        return loaded

    fresh = chat.ChatBackend(loader=loader)
    monkeypatch.setattr(chat, "BACKEND", fresh)
    # the tiny folders are models beyond the presets: the UI handlers need the host's opt-in
    monkeypatch.setenv(security.ENV_ALLOW_ANY_MODEL, "1")
    return fresh


def run_turn(message, history, model, state=None, **kw):
    """All yields of one ui.respond call, warnings recorded."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        image = kw.pop("image", IMAGE)
        values = [kw.pop(name, None) for name in SETTING_SPECS]  # the explorer's settings
        gen = [kw.pop("max_new_tokens", 8), kw.pop("temperature", 0.0), kw.pop("top_p", 0.9),
               kw.pop("capture", True), kw.pop("top_k", 0), kw.pop("repetition_penalty", 1.0),
               kw.pop("answer_with", None)]
        assert not kw, f"unknown arguments {sorted(kw)}"
        outs = list(ui.respond(message, history, image, *gen, state, model, gr.Progress(),
                               *values))
    shown = [w for w in caught if w.filename.replace(os.sep, "/").endswith("gradio/helpers.py")]
    return outs, [str(w.message) for w in shown]  # what gr.Warning would show


# ----------------------------------------------------------------------------- streaming
@pytest.mark.parametrize("family", FAMILIES)
def test_streaming_multi_turn_chat(family, tiny_dirs, backend, monkeypatch):
    prompts = []
    real_prepare = chat.prepare_turn

    def spy(loaded, *args, **kw):
        prepared = real_prepare(loaded, *args, **kw)
        prompts.append(loaded.processor.tokenizer.decode(prepared.inputs["input_ids"][0]))
        return prepared

    monkeypatch.setattr(chat, "prepare_turn", spy)
    outs, warned = run_turn("describe the image", [], tiny_dirs[family])
    assert not warned
    streamed = [o[0][-1]["content"] for o in outs[1:-1]]
    assert len(set(streamed)) >= 2  # chunks arrived one after another
    history, box, state, status, _ = outs[-1]
    assert box == "" and len(history) == 2 and history[0]["content"] == "describe the image"
    assert history[1]["content"].startswith(chat.RANDOM_LABEL)  # never shown as an answer
    assert "random weights" in status
    first_answer = chat.clean_reply(history[1]["content"])
    assert first_answer
    result, _ = chat.TURNS.get(state.turns[-1])
    assert result.random_weights and len(result.answer_ids) >= MIN_TOKENS
    assert result.capture.image_mean.shape[1:] == (len(result.answer_ids),
                                                    result.plan.num_image_tokens)
    outs2, warned = run_turn("what is in this picture ?", history, tiny_dirs[family], state)
    history2 = outs2[-1][0]
    assert not warned and len(history2) == 4 and history2[:2] == history
    assert len(outs2[-1][2].turns) == 2
    if family == "qwen3_5":
        # AutoProcessor reloads the tiny folder's word-level tokenizer as Qwen3_5Tokenizer,
        # which maps these words to one piece: the turns are counted instead of read
        assert prompts[1].count("<|im_start|>") == prompts[0].count("<|im_start|>") + 2
        assert prompts[1].startswith(prompts[0].rsplit("<|im_start|>", 1)[0])
        return
    assert first_answer.split()[0] in prompts[1].split("describe the image", 1)[1]
    assert prompts[1].count("describe the image") == 1


def test_failing_turn_keeps_the_conversation(tiny_dirs, backend):
    model = tiny_dirs["qwen2_vl"]
    history = run_turn("describe the image", [], model)[0][-1][0]

    def broken(*args, **kw):
        raise RuntimeError("the GPU fell over")

    backend.loaded.model.generate = broken
    outs, warned = run_turn("what is this ?", history, model)
    assert outs[-1][0] == history and outs[-1][1] == "what is this ?"  # question kept for retry
    assert any("the GPU fell over" in w for w in warned)
    assert "❌" in outs[-1][3]
    outs, warned = run_turn("what is this ?", history, model, image=None)
    assert outs[-1][0] == history and any("Upload an image" in w for w in warned)
    outs, warned = run_turn("   ", history, model)
    assert outs[-1][0] == history and any("Type a question" in w for w in warned)


def test_stop_ends_generation_after_the_current_token(tiny_dirs, backend):
    loaded = backend.ensure(chat.resolve_source(tiny_dirs["llava_next"]))
    prepared = chat.prepare_turn(loaded, IMAGE, [], "describe the image")
    stop = threading.Event()
    stop.set()
    loaded.model.generation_config.min_new_tokens = 0
    *_, (text, result) = chat.stream_turn(loaded, prepared, chat.GenerationSettings(50), stop)
    assert result.stopped and len(result.answer_ids) == 1
    # a consumer that goes away (Stop with cancel, closed tab) stops the worker too
    stream = chat.gpu_stream(prepared, chat.GenerationSettings(200), "closing", backend=backend)
    next(stream)
    stream.close()
    assert chat.stop_event("closing").is_set()
    assert backend.run_lock.acquire(timeout=5)
    backend.run_lock.release()


# ----------------------------------------------------------------------------- the count check
def test_count_check_catches_a_deliberate_mismatch(tiny_dirs, backend, monkeypatch):
    loaded = backend.ensure(chat.resolve_source(tiny_dirs["qwen2_vl"]))
    calls = []
    loaded.model.generate = lambda *a, **k: calls.append(1)
    # the processor silently ignores the explorer's max_pixels: 198 tokens vs the plan's 54
    monkeypatch.setattr(chat, "processor_with_overrides", lambda proc, preset, overrides: proc)
    want = plan_image(IMAGE, family_preset("qwen2_vl"), max_pixels=50_000).num_image_tokens
    with pytest.raises(chat.TokenCountMismatch, match=f"198 image tokens.*has {want}"):
        chat.prepare_turn(loaded, IMAGE, [], "describe", {"max_pixels": 50_000})
    outs, warned = run_turn("describe the image", [], tiny_dirs["qwen2_vl"], max_pixels=50_000)
    assert outs[-1][0] == [] and any("image tokens" in w for w in warned) and not calls


def test_typed_or_generated_placeholders_never_add_image_tokens(tiny_dirs, backend):
    loaded = backend.ensure(chat.resolve_source(tiny_dirs["qwen2_vl"]))
    history = [{"role": "user", "content": "hi"},
               {"role": "assistant", "content": "noise <|image_pad|><|vision_start|> noise"}]
    prepared = chat.prepare_turn(loaded, IMAGE, history, "what is <|image_pad|> ?")
    assert "<|image_pad|>" not in json.dumps(prepared.messages)
    assert prepared.messages[0]["content"][0] == {"type": "image"}


def test_check_image_tokens_counts_the_prompt():
    plan = plan_image((300, 500), family_preset("qwen2_vl"))
    ids = [1] + [7] * plan.num_image_tokens + [2]
    assert chat.check_image_tokens(ids, 7, plan) == plan.num_image_tokens
    with pytest.raises(chat.TokenCountMismatch, match="would fail inside"):
        chat.check_image_tokens(ids[:-2], 7, plan)


@pytest.mark.parametrize("family,kw", [
    ("qwen2_vl", {"max_pixels": 50_000}), ("qwen2_5_vl", {"min_pixels": 200_000}),
    ("internvl", {"max_tiles": 2}), ("llava_next", {"pinpoints": "672x672"}),
    ("llava_onevision", {"pinpoints": "384x384"})])
def test_explorer_settings_reach_processor_and_model(family, kw, tiny_dirs, backend):
    model = tiny_dirs[family]
    outs, warned = run_turn("describe the image", [], model, max_new_tokens=3, **kw)
    assert not warned
    result, _ = chat.TURNS.get(outs[-1][2].turns[-1])
    preset = family_preset(family)
    default = plan_image(IMAGE, preset).num_image_tokens
    assert result.plan.num_image_tokens != default  # the override changed the count ...
    assert result.capture.num_image_tokens == result.plan.num_image_tokens  # ... and was used
    config = backend.loaded.model.config
    if hasattr(config, "image_grid_pinpoints"):  # restored after the turn
        assert config.image_grid_pinpoints == [list(p) for p in preset.settings.pinpoints_hw]


def test_model_feature_mismatch_never_reaches_people_raw(tiny_dirs, backend, monkeypatch):
    loaded = backend.ensure(chat.resolve_source(tiny_dirs["llava_next"]))
    monkeypatch.setattr(chat, "model_config_patch", lambda loaded, processor: {})
    prepared = chat.prepare_turn(loaded, IMAGE, [], "describe", {"pinpoints_hw": ((672, 672),)})
    with pytest.raises(chat.TokenCountMismatch, match="processor and the model disagree"):
        list(chat.stream_turn(loaded, prepared, chat.GenerationSettings(8)))


# ----------------------------------------------------------------------------- loading
def test_resolve_source(tiny_dirs, tmp_path, monkeypatch):
    source = chat.resolve_source(tiny_dirs["internvl"])
    assert source.local and source.random_weights
    assert source.preset.strategy == "internvl" and source.weights == tiny_dirs["internvl"]
    monkeypatch.setenv(chat.ENV_MODEL, "qwen2.5-vl")
    assert chat.default_model() == "Qwen/Qwen2.5-VL-3B-Instruct"
    assert chat.resolve_source().preset.repo_id == "Qwen/Qwen2.5-VL-3B-Instruct"
    monkeypatch.setenv(chat.ENV_MODEL, tiny_dirs["qwen2_vl"])  # a folder stands for its preset
    assert chat.default_model() == "Qwen/Qwen2-VL-2B-Instruct"
    assert chat.resolve_source("Qwen/Qwen2-VL-2B-Instruct").weights == tiny_dirs["qwen2_vl"]
    assert not chat.resolve_source("Qwen/Qwen2-VL-7B-Instruct").local
    monkeypatch.delenv(chat.ENV_MODEL)
    assert chat.default_model() == chat.DEFAULT_MODEL
    folder = tmp_path / "Qwen" / "Qwen2-VL-2B-Instruct"
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps(
        {"model_type": "qwen2_vl", "text_config": {"hidden_size": 1536}}))
    monkeypatch.setenv(chat.ENV_MODEL_DIR, str(tmp_path))
    found = chat.resolve_source("qwen2-vl")
    assert found.weights == str(folder) and found.local and not found.random_weights
    (folder / chat.RANDOM_WEIGHTS_MARKER).write_text("")
    assert chat.resolve_source("qwen2-vl").random_weights
    with pytest.raises(chat.ModelLoadError, match="no config.json"):
        chat.resolve_source(str(tmp_path))


def test_offline_load_says_why_and_how_and_keeps_the_loaded_model(tiny_dirs, backend):
    loaded = backend.ensure(chat.resolve_source(tiny_dirs["qwen2_vl"]))
    with pytest.raises(chat.ModelLoadError) as err:
        backend.ensure(chat.resolve_source("Qwen/Qwen2-VL-7B-Instruct"))
    message = str(err.value)
    assert "offline" in message and chat.ENV_MODEL_DIR in message
    assert "`hf download Qwen/Qwen2-VL-7B-Instruct`" in message  # the CLI huggingface_hub ships
    assert backend.loaded is loaded and message in backend.status()
    status = ui.model_status("Qwen/Qwen2-VL-7B-Instruct")
    assert "next message loads" in status and "Qwen2-VL 7B" in status


def test_memory_check_and_error_explanations():
    preset = family_preset("llava_next")
    big = chat.ModelSource(preset=preset, weights=preset.repo_id, local=False,
                           random_weights=False)
    import torch

    huge = chat.ModelSource(preset=preset.__class__(**{**preset.__dict__, "params_b": 1e6}),
                            weights=preset.repo_id, local=False, random_weights=False)
    with pytest.raises(chat.ModelLoadError, match="Not enough memory.*smaller model"):
        chat._check_memory(huge, "cpu", torch.float32)
    assert "never runs" in chat.explain_load_error(ValueError("needs trust_remote_code=True"), big)
    assert "smaller" in chat.explain_load_error(MemoryError(), big)
    assert "CUDA out of memory" in chat.explain_load_error(RuntimeError("CUDA out of memory"), big)
    assert "failed" in chat.explain_load_error(KeyError("x"), big)


def test_load_model_is_lazy_device_auto_and_never_trusts_remote_code(tiny_dirs, monkeypatch):
    import transformers

    seen = []
    real = transformers.AutoModelForImageTextToText.from_pretrained

    def spy(*args, **kw):
        seen.append(kw)
        return real(*args, **kw)

    monkeypatch.setattr(transformers.AutoModelForImageTextToText, "from_pretrained", spy)
    steps = []
    fresh = chat.ChatBackend()
    assert fresh.loaded is None and "first message" in fresh.status()
    loaded = fresh.ensure(chat.resolve_source(tiny_dirs["llava_onevision"]),
                          lambda f, desc: steps.append((f, desc)))
    assert seen[0]["trust_remote_code"] is False and seen[0]["attn_implementation"] == "sdpa"
    import torch

    want = ("cuda", torch.bfloat16) if torch.cuda.is_available() else ("cpu", torch.float32)
    assert (loaded.device, loaded.dtype) == want
    assert steps[-1] == (1.0, "ready") and [f for f, _ in steps] == sorted(f for f, _ in steps)
    assert fresh.ensure(chat.resolve_source(tiny_dirs["llava_onevision"])) is loaded  # cached
    other = fresh.ensure(chat.resolve_source(tiny_dirs["internvl"]))  # one model at a time
    assert fresh.loaded is other and other is not loaded
    assert loaded.image_token_id in loaded.suppress_ids


# ----------------------------------------------------------------------------- pieces
def test_build_messages_attaches_the_image_once_and_strips_the_label():
    history = [{"role": "user", "content": "first"},
               {"role": "assistant", "content": chat.RANDOM_LABEL + "noise"},
               {"role": "user", "content": [{"type": "text", "text": "second"}]},
               {"role": "assistant", "content": {"text": "reply"}}]
    msgs = chat.build_messages(history, "third")
    assert [m["role"] for m in msgs] == ["user", "assistant", "user", "assistant", "user"]
    assert msgs[0]["content"][0] == {"type": "image"}
    assert sum(c == {"type": "image"} for m in msgs for c in m["content"]) == 1
    assert msgs[1]["content"] == [{"type": "text", "text": "noise"}]
    assert msgs[2]["content"][0]["text"] == "second" and msgs[4]["content"][0]["text"] == "third"


def test_generation_settings_map_to_generate_kwargs(tiny_dirs, backend):
    loaded = backend.ensure(chat.resolve_source(tiny_dirs["qwen2_vl"]))
    stop = threading.Event()
    greedy = chat._generate_kwargs(loaded, chat.GenerationSettings(12, 0.0, 0.5), None, stop)
    assert greedy["do_sample"] is False and greedy["max_new_tokens"] == 12
    sampled = chat._generate_kwargs(loaded, chat.GenerationSettings(5, 0.7, 0.8), None, stop)
    assert sampled["do_sample"] and sampled["temperature"] == 0.7 and sampled["top_p"] == 0.8
    assert loaded.image_token_id in sampled["suppress_tokens"]


def test_turn_store_drops_the_oldest_beyond_its_budget():
    def fake(n_bytes):
        capture = type("C", (), {"nbytes": lambda self: n_bytes})()
        return chat.TurnResult(text="", answer_ids=(), answer_tokens=(), plan=None,
                               random_weights=True, stopped=False, seconds=0.0, capture=capture)

    store = chat.TurnStore(budget_bytes=100, max_items=3)
    ids = [store.put(fake(40), None) for _ in range(3)]
    assert store.get(ids[0]) is None and store.get(ids[2]) is not None


# ----------------------------------------------------------------------------- the tab
def test_chat_tab_builds_and_heatmap_controls_work(tiny_dirs, backend):
    with gr.Blocks():
        shared = Shared(image=gr.Image(type="filepath"), model=gr.Dropdown(choices=["x"]),
                        controls={name: gr.Textbox() for name in SETTING_SPECS})
        with gr.Tab("Chat"):
            tab = ui.build_chat_tab(shared)
    assert isinstance(tab.chatbot, gr.Chatbot)
    outs, _ = run_turn("describe the image", [], tiny_dirs["internvl"])
    turn_id = outs[-1][2].turns[-1]
    assert ui.turn_controls(None)[3]["visible"] is False  # no answer yet: controls hidden
    layer_from, layer_to, token, box = ui.turn_controls(turn_id)
    assert layer_to["maximum"] == 0 and token["choices"][0] == ("whole answer", ui.WHOLE_ANSWER)
    assert box["visible"] is True and tab.heat_box.visible is False
    panels, text = ui.render_heatmap(turn_id, 0, 0, "mean", ui.WHOLE_ANSWER, False)
    assert len(panels) == 2 and "thumbnail" in panels[1][1]
    assert "Random-weight test model" in text and chat_caption() in text
    panels, text = ui.render_heatmap(turn_id, 0, 0, "max", 1, True)
    assert "answer token 1" in text and "max over 2 heads" in text
    assert ui.render_heatmap(None)[0] == []
    cleared = ui.clear(outs[-1][2])
    assert cleared[0] == [] and cleared[2].turns == [] and cleared[-1]["visible"] is False


def test_respond_takes_the_explorers_file_path(tiny_dirs, backend, tmp_path):
    path = tmp_path / "upload.png"
    IMAGE.save(path)
    outs, warned = run_turn("describe the image", [], tiny_dirs["qwen2_vl"], image=str(path),
                            max_new_tokens=6)
    assert not warned
    result, image = chat.TURNS.get(outs[-1][2].turns[-1])
    assert image.size == IMAGE.size and result.plan.image_hw.wh == IMAGE.size
    outs, warned = run_turn("describe the image", [], tiny_dirs["qwen2_vl"],
                            image=str(tmp_path / "missing.png"))
    assert outs[-1][0] == [] and warned


def chat_caption():
    from anyres_demo.attention import CAPTION

    return CAPTION


# ----------------------------------------------------------------------------- issue 13
QWEN2_VL_SAMPLING = {"do_sample": True, "temperature": 0.01, "top_p": 0.001, "top_k": 1,
                     "repetition_penalty": 1.05}  # Qwen2-VL-2B-Instruct's generation_config


def _copy_folder(src, dst, config_edit=None, generation=None):
    import shutil

    shutil.copytree(src, dst)
    if config_edit is not None:
        path = os.path.join(dst, "config.json")
        with open(path) as f:
            config = json.load(f)
        config_edit(config)
        with open(path, "w") as f:
            json.dump(config, f)
    if generation is not None:
        with open(os.path.join(dst, "generation_config.json"), "w") as f:
            json.dump(generation, f)
    return str(dst)


@pytest.fixture
def qwen_sampling_dir(tiny_dirs, tmp_path):
    return _copy_folder(tiny_dirs["qwen2_vl"], tmp_path / "qwen-sampling",
                        generation={**QWEN2_VL_SAMPLING, "eos_token_id": 2})


def test_every_sampling_value_is_passed_and_the_checkpoint_defaults_are_shown(
        qwen_sampling_dir, backend):
    import torch

    loaded = backend.ensure(chat.resolve_source(qwen_sampling_dir))
    assert loaded.checkpoint_sampling == QWEN2_VL_SAMPLING
    status = ui.model_status(qwen_sampling_dir)
    assert "temperature 0.01, top_p 0.001, top_k 1, repetition_penalty 1.05" in status
    settings = chat.GenerationSettings(12, temperature=1.0, top_p=1.0, capture_attention=False)
    config, _ = loaded.model._prepare_generation_config(None, **chat.sampling_kwargs(settings))
    assert (config.temperature, config.top_p, config.top_k, config.repetition_penalty) == \
        (1.0, 1.0, None, 1.0)
    prepared = chat.prepare_turn(loaded, IMAGE, [], "describe the image")
    answers = set()
    for seed in range(3):  # with the checkpoint's top_k=1 kept, all three would be identical
        torch.manual_seed(seed)
        *_, (_, result) = chat.stream_turn(loaded, prepared, settings)
        answers.add(result.answer_ids)
    assert len(answers) > 1
    greedy = chat.sampling_kwargs(chat.GenerationSettings(8, temperature=0.0))
    config, _ = loaded.model._prepare_generation_config(None, **greedy)
    assert not config.do_sample and config.top_k is None and config.repetition_penalty == 1.0
    topk = chat.sampling_kwargs(chat.GenerationSettings(8, 0.7, 0.8, top_k=5,
                                                        repetition_penalty=1.2))
    assert (topk["top_k"], topk["repetition_penalty"], topk["do_sample"]) == (5, 1.2, True)


ONEVISION_7B_CONFIG = {  # llava-hf/llava-onevision-qwen2-7b-ov-hf config.json (the sizes)
    "model_type": "llava_onevision", "tie_word_embeddings": False,
    "text_config": {"model_type": "qwen2", "hidden_size": 3584, "num_hidden_layers": 28,
                    "intermediate_size": 18944, "vocab_size": 152128,
                    "num_attention_heads": 28, "num_key_value_heads": 4},
    "vision_config": {"model_type": "siglip_vision_model", "hidden_size": 1152,
                      "num_hidden_layers": 26, "intermediate_size": 4304}}


def test_a_folder_is_sized_from_its_own_files_not_its_family(tiny_dirs, tmp_path, monkeypatch):
    import torch

    tiny = chat.resolve_source(tiny_dirs["llava_onevision"])
    model = chat.load_model(tiny).model
    assert tiny.params_b * 1e9 == sum(p.numel() for p in model.parameters())  # exact: headers
    folder = tmp_path / "onevision-7b"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(ONEVISION_7B_CONFIG))
    big = chat.resolve_source(str(folder))
    assert big.preset.label == "LLaVA-OneVision 0.5B"  # the family's preset (its geometry) ...
    assert 7.5 < big.size_b < 8.5 and "LLaVA-OneVision 8B from" in big.label  # ... not its size
    (folder / "model.safetensors.index.json").write_text(json.dumps(
        {"metadata": {"total_size": 16_063_000_000}, "weight_map": {}}))
    (folder / "config.json").write_text(json.dumps({**ONEVISION_7B_CONFIG, "dtype": "bfloat16"}))
    assert chat.resolve_source(str(folder)).size_b == pytest.approx(8.0315)
    monkeypatch.setattr(chat, "_free_memory_bytes", lambda device: 12e9)
    with pytest.raises(chat.ModelLoadError, match="8B parameters in float32"):
        chat._check_memory(big, "cpu", torch.float32)
    small = chat.resolve_source("llava-onevision")
    assert not small.local and small.size_b == small.preset.params_b
    chat._check_memory(small, "cpu", torch.float32)  # 0.9B fits in the same 12 GB
    plan = plan_image((1080, 1920), small.preset)
    turn = dict(inputs={}, plan=plan, prompt_len=plan.num_tokens + 40, overrides={}, image=None)
    settings = chat.GenerationSettings(256)
    assert chat.gpu_seconds(chat.Prepared(**turn, params_b=big.size_b), settings) > \
        chat.gpu_seconds(chat.Prepared(**turn), settings)


def test_prompt_plus_answer_must_fit_the_context(tiny_dirs, tmp_path, backend):
    def vicuna_context(config):
        config["text_config"]["max_position_embeddings"] = 4096  # LLaVA-v1.6-Vicuna's

    folder = _copy_folder(tiny_dirs["llava_next"], tmp_path / "vicuna", vicuna_context)
    image = noise_image((672, 672), seed=1)  # 2,928 image tokens
    loaded = backend.ensure(chat.resolve_source(folder))
    assert loaded.context_len == 4096
    prepared = chat.prepare_turn(loaded, image, [], "describe the image")
    chat.check_context(prepared, 4096 - prepared.prompt_len)  # exactly full: allowed
    with pytest.raises(chat.ContextTooLong, match="trained on 4,096"):
        chat.check_context(prepared, 4096 - prepared.prompt_len + 1)
    calls = []
    loaded.model.generate = lambda *a, **k: calls.append(1)
    outs, warned = run_turn("describe the image", [], folder, image=image, max_new_tokens=1500)
    assert outs[-1][0] == [] and outs[-1][1] == "describe the image" and not calls
    message = next(w for w in warned if "context" in w)
    assert "2,928" in message and f"max new tokens to {4096 - prepared.prompt_len}" in message
    assert "max pixels / max tiles" in message and "clear the conversation" in message


def test_bf16_only_where_the_gpu_has_it(monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    assert chat._pick_device() == ("cuda", torch.float16)  # a T4 / V100
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert chat._pick_device() == ("cuda", torch.bfloat16)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert chat._pick_device() == ("cpu", torch.float32)


def test_free_memory_is_the_cgroup_limit_when_there_is_one(tmp_path):
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal: 1056000000 kB\nMemAvailable: 1000000000 kB\n")  # the host
    v2 = tmp_path / "v2"
    v2.mkdir()
    (v2 / "memory.max").write_text("17179869184\n")  # a 16 GiB Space
    (v2 / "memory.current").write_text("4294967296\n")
    assert chat._free_memory_bytes("cpu", str(v2), str(meminfo)) == 12 * 2 ** 30
    (v2 / "memory.max").write_text("max\n")  # no limit: the host's figure
    assert chat._free_memory_bytes("cpu", str(v2), str(meminfo)) == 1000000000 * 1024
    v1 = tmp_path / "v1" / "memory"
    v1.mkdir(parents=True)
    (v1 / "memory.limit_in_bytes").write_text(str(8 * 2 ** 30))
    (v1 / "memory.usage_in_bytes").write_text(str(2 ** 30))
    assert chat._free_memory_bytes("cpu", str(tmp_path / "v1"), str(meminfo)) == 7 * 2 ** 30
    assert chat._free_memory_bytes("cpu", str(tmp_path / "none"), str(tmp_path / "x")) is None


# ----------------------------------------------------------------------------- issue 10.14
def test_the_question_shows_at_once_with_the_loading_progress(tiny_dirs, monkeypatch):
    import time

    def slow_loader(source, progress=None):
        progress(0.3, "loading the weights")
        time.sleep(3 * ui.POLL_SECONDS)
        return chat.load_model(source, None)

    monkeypatch.setattr(chat, "BACKEND", chat.ChatBackend(loader=slow_loader))
    monkeypatch.setenv(security.ENV_ALLOW_ANY_MODEL, "1")
    outs, warned = run_turn("what is this ?", [], tiny_dirs["qwen2_vl"])
    first = outs[0][0]
    assert first[0] == {"role": "user", "content": "what is this ?"}  # before the model loaded
    assert first[1]["content"].startswith("⏳ Loading") and outs[0][1] == ""
    assert any("30% (loading the weights)" in o[0][-1]["content"] for o in outs[:-1])
    assert not warned and outs[-1][0][1]["content"].startswith(chat.RANDOM_LABEL)


def test_the_chat_starts_on_the_small_default_not_the_explorers_model(monkeypatch):
    monkeypatch.delenv(chat.ENV_MODEL, raising=False)
    monkeypatch.setattr(chat, "BACKEND", chat.ChatBackend())
    with gr.Blocks():
        shared = Shared(image=gr.Image(type="filepath"),
                        model=gr.Dropdown(choices=["llava-hf/llava-v1.6-mistral-7b-hf"],
                                          value="llava-hf/llava-v1.6-mistral-7b-hf"),
                        controls={name: gr.Textbox() for name in SETTING_SPECS})
        tab = ui.build_chat_tab(shared)
    assert tab.model.value == chat.DEFAULT_MODEL == "llava-hf/llava-onevision-qwen2-0.5b-ov-hf"
    assert chat.DEFAULT_MODEL in dict((v, k) for k, v in tab.model.choices)
    assert tab.heat_box.visible is False

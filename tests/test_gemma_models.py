"""Gemma 3 / Gemma 4 through tiny random-weight models of the real classes
(Gemma3ForConditionalGeneration, Gemma4ForConditionalGeneration), built from configs offline.

  * token order from the vision tower to the language model's input embeddings: a marker
    planted in one crop cell of pixel_values changes exactly one input embedding, at the
    position the layout gives that cell (encoder blocks removed so features stay local;
    patch embedding, Gemma 3's AvgPool2d(4) projector / Gemma 4's pooler and the scatter
    into the placeholder positions are the models' own code);
  * attention capture with sdpa equals eager output_attentions, and maps through the layout;
  * the chat: AutoModelForImageTextToText loads the saved tiny folders as the real classes,
    the explorer's pan-and-scan / budget settings reach the processor, and the count check
    stops a mismatch before generating.
"""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from anyres_demo import attention, build_layout, get_preset, plan_image  # noqa: E402
from anyres_demo.backends import capture as cap  # noqa: E402
from anyres_demo.backends import chat  # noqa: E402
from anyres_demo.backends import hf_processors as hp  # noqa: E402
from anyres_demo.backends import tiny_models as tm  # noqa: E402
from hf_helpers import noise_image, size_label, solid_image  # noqa: E402

G3, G4 = "google/gemma-3-4b-it", "google/gemma-4-E2B-it"
PAS = {"do_pan_and_scan": True}
NEW_TOKENS = 3


def _model(repo, overrides=None, layers=1):
    preset = get_preset(repo).with_overrides(**(overrides or {}))
    processor = hp.build_processor(preset, tokenizer=hp.build_tiny_tokenizer(preset))
    config = tm.tiny_config(preset, processor.tokenizer)
    text = config.get_text_config()
    text.num_hidden_layers = layers
    text.layer_types = ["full_attention"] * layers
    torch.manual_seed(0)
    model = getattr(transformers, tm.MODEL_CLASS[hp.model_type(preset)])(config).eval()
    tm.random_projector(model)
    return model, processor, preset


@pytest.fixture(scope="module")
def local_models():
    """Vision encoders without blocks: every feature depends on its own patch only."""
    out = {}
    for repo in (G3, G4):
        model, processor, _ = _model(repo)
        tower = model.model.vision_tower
        encoder = tower.vision_model.encoder if hasattr(tower, "vision_model") else tower.encoder
        encoder.layers = torch.nn.ModuleList()
        out[repo] = (model, processor)
    return out


def _lm_inputs(model, inputs) -> np.ndarray:
    """(L, hidden) input embeddings the language model receives (after the image scatter)."""
    seen = {}

    def hook(module, args, kwargs):
        seen["x"] = kwargs["inputs_embeds"][0].detach().float().numpy()

    handle = model.model.language_model.register_forward_pre_hook(hook, with_kwargs=True)
    try:
        with torch.inference_mode():
            model(**inputs)
    finally:
        handle.remove()
    return seen["x"]


def _plant(repo, inputs, plan, crop: int, row: int, col: int):
    """pixel_values with a bright square in (row, col) of view `crop` (cell coordinates of that
    view's own grid: 56 px of Gemma 3's 896 view, a 3x3-patch block of Gemma 4's)."""
    pv = inputs["pixel_values"].clone()
    if repo == G3:
        m = plan.cell_px
        pv[crop, :, m * row:m * row + m, m * col:m * col + m] = 1.0
    else:
        s = plan.preset.settings
        pw = plan.resized_hw.width // s.patch_size
        k = s.pooling_kernel_size
        for py in range(k * row, k * row + k):
            for px in range(k * col, k * col + k):
                pv[0, py * pw + px] = 1.0
    return {**inputs, "pixel_values": pv}


def _cell_on_layout(layout, crop, row, col, repo):
    """The layout index of a view's cell (Gemma 3 crops sit on the stitched crop grid)."""
    spec = layout.plan.crops[crop]
    n = layout.plan.cells_per_tile
    r, c = (row + n * spec.row, col + n * spec.col) if repo == G3 and spec.row >= 0 else (row, col)
    hit = np.flatnonzero((layout.crop == crop) & (layout.row == r) & (layout.col == c)
                         & layout.image_token_mask)
    assert hit.size == 1
    return int(hit[0])


ORDER_CASES = [(G3, PAS, (1080, 1920)), (G3, PAS, (1920, 1080)), (G3, PAS, (1000, 3000)),
               (G3, PAS, (300, 2000)), (G3, {}, (500, 300)), (G4, {}, (480, 640)),
               (G4, {}, (2000, 10)), (G4, {"max_soft_tokens": 70}, (1080, 1920)),
               (G4, {"max_soft_tokens": 560}, (3508, 2480))]


@pytest.mark.parametrize("repo,overrides,size_hw", ORDER_CASES,
                         ids=[f"{r.split('/')[1]}-{len(o)}-{size_label(s)}" for r, o, s in ORDER_CASES])
def test_marker_in_one_cell_lands_where_the_layout_says(local_models, repo, overrides, size_hw):
    model, processor = local_models[repo]
    preset = get_preset(repo).with_overrides(**overrides)
    if repo == G4:  # the budget is the image processor's setting
        processor.image_processor.max_soft_tokens = preset.settings.max_soft_tokens
    inputs = dict(hp.processor_outputs(processor, solid_image(size_hw), preset))
    plan = plan_image(size_hw, preset)
    layout = build_layout(plan)
    ids = inputs["input_ids"][0].numpy()
    soft = np.flatnonzero(ids == hp.soft_token_id(processor, preset))
    assert soft.size == plan.num_image_tokens
    # the layout's placeholder tokens are the sequence positions of the soft tokens, in order
    assert np.array_equal(np.flatnonzero(layout.image_token_mask), soft)
    base = _lm_inputs(model, inputs)
    rng = np.random.default_rng(size_hw[0] + size_hw[1])
    n_rows = plan.cells_per_tile or plan.grid_rows
    n_cols = plan.cells_per_tile or plan.grid_cols
    for _ in range(3):
        crop = int(rng.integers(plan.num_crops))
        row, col = int(rng.integers(n_rows)), int(rng.integers(n_cols))
        moved = _lm_inputs(model, _plant(repo, inputs, plan, crop, row, col))
        changed = np.flatnonzero(np.abs(moved - base).max(axis=1) > 1e-6)
        assert changed.tolist() == [_cell_on_layout(layout, crop, row, col, repo)], (crop, row, col)


# ---------------------------------------------------------------- attention capture
@pytest.fixture(scope="module", params=[(G3, PAS), (G4, {})], ids=["gemma3-pas", "gemma4"])
def run(request):
    repo, overrides = request.param
    model, processor, preset = _model(repo, overrides, layers=2)
    image = noise_image((240, 400), seed=5)
    content = [{"type": "image"}, {"type": "text", "text": "describe the image"}]
    text = processor.apply_chat_template([{"role": "user", "content": content}],
                                         add_generation_prompt=True, tokenize=False)
    images = [[image]] if repo == G4 else [image]
    inputs = dict(processor(images=images, text=[text], return_tensors="pt", **hp.call_kwargs(preset)))
    token_id = hp.soft_token_id(processor, preset)
    gen = {"max_new_tokens": NEW_TOKENS, "min_new_tokens": NEW_TOKENS, "do_sample": False,
           "suppress_tokens": [token_id], "return_dict_in_generate": True}
    with torch.inference_mode():
        out = model.generate(**inputs, **gen)
    answer = out.sequences[0, inputs["input_ids"].shape[1]:].tolist()
    cached = cap.capture_from_cache(model, inputs, answer, cap.generation_cache(out), token_id)
    full = cap.capture_full(model, inputs, answer, token_id)
    model.set_attn_implementation({"text_config": "eager"})
    with torch.inference_mode():
        ref = model.generate(**inputs, **gen, output_attentions=True)
    model.set_attn_implementation({"text_config": "sdpa"})
    return {"plan": plan_image(image, preset), "inputs": inputs, "answer": answer, "ref": ref,
            "cached": cached, "full": full, "image": image}


@pytest.mark.parametrize("path", ["full", "cached"])
def test_capture_equals_eager_output_attentions(run, path):
    c, ref = run[path], run["ref"]
    prompt_len = run["inputs"]["input_ids"].shape[1]
    assert ref.sequences[0, prompt_len:].tolist() == run["answer"]
    assert c.num_image_tokens == run["plan"].num_image_tokens
    for layer in range(2):
        rows = [ref.attentions[0][layer][0, :, prompt_len - 1]]
        rows += [ref.attentions[t][layer][0, :, 0] for t in range(1, len(ref.attentions))]
        rows = torch.stack([r[:, :prompt_len] for r in rows], 1).float().numpy()  # (heads, T, L)
        np.testing.assert_allclose(c.image_mean[layer], rows[:, :, c.image_positions].mean(0), atol=1e-6)
        np.testing.assert_allclose(c.other_mean[layer], rows[:, :, c.other_positions].mean(0), atol=1e-6)


def test_heatmap_goes_through_the_layout(run):
    plan = run["plan"]
    layout = build_layout(plan)
    heat = attention.map_heat(layout, run["full"].image_mean[-1].mean(0))
    assert sum(heat.panel_mass.values()) == pytest.approx(1.0)
    for panel in heat.panels.values():
        assert panel.shape == heat.display_hw
    if plan.num_crops > 1:  # Gemma 3 with crops: the whole view and the crops are separate maps
        assert len(heat.panels) == 2


# ---------------------------------------------------------------- the chat
@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    dirs = {}
    for repo in (G3, G4):
        folder = tmp_path_factory.mktemp(repo.split("/")[1])
        tm.build_tiny_model(get_preset(repo), str(folder))
        dirs[repo] = str(folder)
    return dirs


@pytest.mark.parametrize("repo,overrides", [(G3, PAS), (G4, {"max_soft_tokens": 70})],
                         ids=["gemma3-pas", "gemma4-70"])
def test_chat_loads_the_real_class_and_settings_reach_the_processor(saved, repo, overrides):
    source = chat.resolve_source(saved[repo])
    assert source.preset.strategy == get_preset(repo).strategy and source.random_weights
    loaded = chat.load_model(source)
    assert type(loaded.model).__name__ == tm.MODEL_CLASS[get_preset(repo).strategy]
    assert loaded.image_token_id == int(loaded.model.config.image_token_id)  # the soft token
    image = noise_image((400, 800), seed=3)  # pan-and-scan: 2 crops of 400x400
    released = chat.prepare_turn(loaded, image, [], "describe the image")
    prepared = chat.prepare_turn(loaded, image, [], "describe the image", overrides)
    assert prepared.plan.num_image_tokens != released.plan.num_image_tokens
    ids = prepared.inputs["input_ids"][0]
    assert int((ids == loaded.image_token_id).sum()) == prepared.plan.num_image_tokens
    loaded.model.generation_config.min_new_tokens = 2
    *_, (text, result) = chat.stream_turn(loaded, prepared, chat.GenerationSettings(3))
    assert result.random_weights and result.capture.num_image_tokens == prepared.plan.num_image_tokens


def test_count_check_stops_a_pan_and_scan_mismatch(saved, monkeypatch):
    loaded = chat.load_model(chat.resolve_source(saved[G3]))
    # a processor call without the pan-and-scan arguments: 256 soft tokens, the plan has 768
    monkeypatch.setattr(hp, "call_kwargs", lambda preset: {})
    with pytest.raises(chat.TokenCountMismatch, match="256 image tokens.*has 768"):
        chat.prepare_turn(loaded, noise_image((400, 800), seed=3), [], "describe", PAS)

"""capture.py: answer -> image attention without full attention matrices.

For tiny random-weight models of every family (two LLM layers, grouped-query attention, the
real processor at real geometry), both capture paths -- KV-cache reuse right after generate,
and one forward from scratch -- must equal what generate(output_attentions=True) returns with
eager attention, reduced the same way (mean / max over heads, image columns; mean over heads
for the other prompt columns).
"""
import numpy as np
import pytest
import torch
import transformers

from anyres_demo import build_layout, plan_image
from anyres_demo.backends import capture as cap
from anyres_demo.backends import hf_processors as hp
from anyres_demo.backends import tiny_models as tm
from hf_helpers import FAMILIES as ALL_FAMILIES, family_preset, noise_image

# Qwen3.5 alternates linear and full attention: its own test below (test_hybrid_...)
FAMILIES = tuple(f for f in ALL_FAMILIES if f != "qwen3_5")

NEW_TOKENS = 4
IMAGE_HW = (120, 200)
ATOL = 1e-6


def tiny_two_layer_model(family):
    """The family's tiny model with two LLM layers (so layer indexing is exercised)."""
    preset = family_preset(family)
    processor = hp.build_processor(preset, tokenizer=hp.build_tiny_tokenizer(preset))
    config = tm.tiny_config(preset, processor.tokenizer)
    text = config.get_text_config()
    text.num_hidden_layers = 2
    if getattr(text, "layer_types", None):
        text.layer_types = text.layer_types[:1] * 2
    torch.manual_seed(0)
    model = getattr(transformers, tm.MODEL_CLASS[hp.model_type(preset)])(config).eval()
    return model, processor


def prompt_inputs(processor, image):
    content = [{"type": "image"}, {"type": "text", "text": "describe the image"}]
    text = processor.apply_chat_template([{"role": "user", "content": content}],
                                         add_generation_prompt=True, tokenize=False)
    return dict(processor(images=[image], text=[text], return_tensors="pt"))


def reference_rows(out, prompt_len, layer):
    """(heads, T, prompt_len) eager attention rows that produced each answer token (spec 8.2)."""
    rows = [out.attentions[0][layer][0, :, prompt_len - 1]]
    rows += [out.attentions[t][layer][0, :, 0] for t in range(1, len(out.attentions))]
    return torch.stack([r[:, :prompt_len] for r in rows], dim=1).float().cpu().numpy()


def capture_and_reference(model, inputs):
    """Generate NEW_TOKENS with sdpa; capture from its cache and from scratch; then generate
    eagerly with output_attentions as the reference. Returns (answer ids, (cached, full), ref)."""
    token_id = int(model.config.image_token_id)
    gen = {"max_new_tokens": NEW_TOKENS, "min_new_tokens": NEW_TOKENS, "do_sample": False,
           "suppress_tokens": [token_id], "return_dict_in_generate": True}
    with torch.inference_mode():
        out = model.generate(**inputs, **gen)
    answer = out.sequences[0, inputs["input_ids"].shape[1]:].tolist()
    captures = (cap.capture_from_cache(model, inputs, answer, cap.generation_cache(out), token_id),
                cap.capture_full(model, inputs, answer, token_id))
    model.set_attn_implementation({"text_config": "eager"})
    with torch.inference_mode():
        ref = model.generate(**inputs, **gen, output_attentions=True)
    model.set_attn_implementation({"text_config": "sdpa"})
    return answer, captures, ref


@pytest.fixture(scope="module", params=FAMILIES)
def run(request):
    """Generate with sdpa, capture both ways, then generate eagerly with output_attentions."""
    family = request.param
    model, processor = tiny_two_layer_model(family)
    inputs = prompt_inputs(processor, noise_image(IMAGE_HW))
    answer, (cached, full), ref = capture_and_reference(model, inputs)
    token_id = int(model.config.image_token_id)
    prompt_len = inputs["input_ids"].shape[1]
    return {"family": family, "model": model, "inputs": inputs, "answer": answer, "full": full,
            "cached": cached, "ref": ref, "prompt_len": prompt_len, "token_id": token_id}


def test_capture_has_the_expected_size(run):
    plan = plan_image(IMAGE_HW, family_preset(run["family"]))
    n_image, prompt_len = plan.num_image_tokens, run["prompt_len"]
    for c in (run["full"], run["cached"]):
        assert c.image_mean.shape == c.image_max.shape == (2, NEW_TOKENS, n_image)
        assert c.other_mean.shape == (2, NEW_TOKENS, prompt_len - n_image)
        assert c.layers == (0, 1) and c.num_heads == 2 and c.prompt_len == prompt_len
        assert c.answer_ids == tuple(run["answer"])
        ids = run["inputs"]["input_ids"][0].numpy()
        assert (ids[c.image_positions] == run["token_id"]).all()
        assert np.array_equal(np.sort(np.concatenate([c.image_positions, c.other_positions])),
                              np.arange(prompt_len))
        assert len(build_layout(plan)) - plan.num_wrapper_tokens == c.num_image_tokens


@pytest.mark.parametrize("path", ["full", "cached"])
def test_capture_equals_output_attentions(run, path):
    ref, c = run["ref"], run[path]
    assert ref.sequences[0, run["prompt_len"]:].tolist() == run["answer"]  # same answer tokens
    for layer in range(2):
        rows = reference_rows(ref, run["prompt_len"], layer)  # (heads, T, L)
        image = rows[:, :, c.image_positions]
        np.testing.assert_allclose(c.image_mean[layer], image.mean(0), atol=ATOL)
        np.testing.assert_allclose(c.image_max[layer], image.max(0), atol=ATOL)
        np.testing.assert_allclose(c.other_mean[layer], rows[:, :, c.other_positions].mean(0),
                                   atol=ATOL)
    total = c.image_mean.sum(-1) + c.other_mean.sum(-1)
    assert (total <= 1 + 1e-5).all() and (total > 0.5).all()  # the rest: earlier answer tokens


def test_capture_restores_the_model(run):
    model = run["model"]
    assert model.config.get_text_config()._attn_implementation == "sdpa"
    assert all(getattr(m, "_anyres_session", None) is None for m in cap.attention_modules(model))


def test_one_layer_and_small_chunks_give_the_same_rows(run, monkeypatch):
    monkeypatch.setattr(cap, "_ROW_CHUNK_ELEMENTS", 1)  # one query row per chunk
    one = cap.capture_full(run["model"], run["inputs"], run["answer"], run["token_id"], layers=[1])
    assert one.layers == (1,) and one.image_mean.shape[0] == 1
    np.testing.assert_allclose(one.image_mean[0], run["full"].image_mean[1], atol=1e-7)
    np.testing.assert_allclose(one.image_max[0], run["full"].image_max[1], atol=1e-7)


def test_capture_rejects_bad_requests(run):
    model, inputs, token_id = run["model"], run["inputs"], run["token_id"]
    with pytest.raises(ValueError, match="no answer tokens"):
        cap.capture_full(model, inputs, [], token_id)
    with pytest.raises(ValueError, match="no image tokens"):
        cap.capture_full(model, inputs, run["answer"], token_id + 10_000)
    with pytest.raises(ValueError, match="layer.s. .2. have no self-attention"):
        cap.capture_full(model, inputs, run["answer"], token_id, layers=[2])


def test_hybrid_linear_attention_model_is_captured_from_scratch_and_matches_eager():
    # Qwen3.5: layer 0 linear attention (Gated DeltaNet, a recurrent state the cache cannot cut
    # back), layers 1 and 2 full attention; the capture records the attention layers by their
    # own index and, after generate, takes the from-scratch pass
    preset = family_preset("qwen3_5")
    processor = hp.build_processor(preset, tokenizer=hp.build_tiny_tokenizer(preset))
    config = tm.tiny_config(preset, processor.tokenizer)
    text = config.get_text_config()
    text.num_hidden_layers = 3
    text.layer_types = ["linear_attention", "full_attention", "full_attention"]
    torch.manual_seed(0)
    model = getattr(transformers, tm.MODEL_CLASS[hp.model_type(preset)])(config).eval()
    inputs = prompt_inputs(processor, noise_image(IMAGE_HW))
    token_id, prompt_len = int(model.config.image_token_id), inputs["input_ids"].shape[1]
    assert cap.attention_layer_ids(model) == (1, 2)
    gen = {"max_new_tokens": NEW_TOKENS, "min_new_tokens": NEW_TOKENS, "do_sample": False,
           "suppress_tokens": [token_id], "return_dict_in_generate": True}
    with torch.inference_mode():
        out = model.generate(**inputs, **gen)
    answer = out.sequences[0, prompt_len:].tolist()
    cache = cap.generation_cache(out)
    assert not cap.cache_rolls_back(cache)
    c = cap.capture_after_generate(model, inputs, answer, cache, token_id)
    assert c.layers == (1, 2) and c.image_mean.shape == (2, NEW_TOKENS, c.num_image_tokens)
    assert c.num_image_tokens == plan_image(IMAGE_HW, preset).num_image_tokens
    model.set_attn_implementation({"text_config": "eager"})
    with torch.inference_mode():
        ref = model.generate(**inputs, **gen, output_attentions=True)
    assert ref.sequences[0, prompt_len:].tolist() == answer
    for j in range(2):  # output_attentions holds the attention layers only, in order
        rows = reference_rows(ref, prompt_len, j)
        np.testing.assert_allclose(c.image_mean[j], rows[:, :, c.image_positions].mean(0), atol=ATOL)
        np.testing.assert_allclose(c.image_max[j], rows[:, :, c.image_positions].max(0), atol=ATOL)
    with pytest.raises(ValueError, match="have no self-attention"):
        cap.capture_full(model, inputs, answer, token_id, layers=[0])


def test_image_positions_reads_a_tensor_or_a_list():
    assert cap.image_positions(torch.tensor([1, 5, 5, 2, 5]), 5).tolist() == [1, 2, 4]
    assert cap.image_positions([5, 1], 5).tolist() == [0]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("family", FAMILIES)
def test_capture_in_bfloat16_on_cuda_matches_eager(family):
    """The app's GPU setting (bfloat16): both capture paths track eager output_attentions to
    bf16 precision (eager multiplies q k^T in bf16; the capture in float32)."""
    model, processor = tiny_two_layer_model(family)
    model = model.to("cuda", torch.bfloat16)
    inputs = {k: (v.to("cuda", torch.bfloat16) if v.is_floating_point() else v.to("cuda"))
              for k, v in prompt_inputs(processor, noise_image(IMAGE_HW)).items()}
    answer, captures, ref = capture_and_reference(model, inputs)
    prompt_len = inputs["input_ids"].shape[1]
    if ref.sequences[0, prompt_len:].tolist() != answer:
        pytest.skip("bf16 eager and sdpa picked different tokens on this random model")
    for c in captures:
        for layer in range(2):
            image = reference_rows(ref, prompt_len, layer)[:, :, c.image_positions]
            pairs = ((c.image_mean[layer], image.mean(0)), (c.image_max[layer], image.max(0)))
            for got, want in pairs:
                assert np.abs(got - want).max() <= 0.02 * want.max()
                assert np.abs(got - want).mean() <= 0.01 * want.mean()

"""The cost module: hand-derived values, then torch's own FLOP count and KV-cache size.

FLOPs are checked against `torch.utils.flop_counter.FlopCounterMode` on the tiny random-weight
model of every family, on the crops the real processor makes for real image sizes. Tolerance:
0.01% (the formulas are exact for what torch counts). What torch does not count, and so neither
side of the comparison has: norms, softmax, activations, residual adds, biases, rotary
embeddings, the bilinear resize. Two terms are handled explicitly:
  * CPU SDPA: the counter has no rule for `_scaled_dot_product_flash_attention_for_cpu`, so with
    the default attention it counts NO attention-score FLOPs at all; the tests run eager
    attention, where QKᵀ and AV are plain bmm calls it counts.
  * SigLIP's pooling head (the tiny OneVision and Gemma 3 towers build it, neither model reads
    it): removed from torch's count by module name.
Masks: torch charges a causal attention the full query x key product, so the LLM check uses
`causal=False` (n queries x all P + n keys), and the causal count is checked by hand.
"""
from __future__ import annotations

import pytest

from anyres_demo.architectures import TextArch, VisionArch, get_architecture
from anyres_demo.cost import (FIXED_VIEW_SIDE, VISION_TERMS, attention_pairs, cost_record, crop_costs,
                              encoder_flops, image_cost, kv_bytes, kv_bytes_per_token, llm_flops,
                              plan_crops, sum_terms, three_ways, window_sizes)
from anyres_demo.engine import plan_image
from anyres_demo.geometry import Size
from anyres_demo.presets import PRESETS, get_preset

REL = 1e-4


# ----------------------------------------------------------------------------- by hand
@pytest.mark.parametrize("n,prompt,window,expected", [
    (4, 0, None, 1 + 2 + 3 + 4),
    (3, 10, None, 11 + 12 + 13),
    (5, 0, 3, 1 + 2 + 3 + 3 + 3),
    (3, 10, 4, 4 + 4 + 4),
    (4, 1, 4, 2 + 3 + 4 + 4),
])
def test_attention_pairs_by_hand(n, prompt, window, expected):
    assert attention_pairs(n, prompt, window) == expected


def test_attention_pairs_non_causal_counts_every_key():
    assert attention_pairs(5, 7, causal=False) == 5 * 12


def test_window_sizes_qwen2_5_by_hand():
    # 10 x 6 merged tokens (20 x 12 patches) in 4 x 4 windows: rows 4,4,2 x cols 4,2
    v = VisionArch(depth=1, width=8, heads=1, intermediate=8, patch=14, window_patches=8, merge=2)
    assert window_sizes((20, 12), v) == [64, 32, 64, 32, 32, 16]


def test_one_big_view_costs_sixteen_times_the_tiles_attention():
    """The AnyRes argument: one 1344 px view vs sixteen 336 px tiles (CLIP-L/14)."""
    v = get_architecture("llava-hf/llava-v1.6-mistral-7b-hf").vision
    _, _, big = encoder_flops(Size(1344, 1344), v)
    _, _, tile = encoder_flops(Size(336, 336), v)
    # 96x96 = 9216 patches + CLS vs 24x24 = 576 + CLS, 24 layers, width 1024
    assert big["attn_scores"] == 24 * 4 * 9217 ** 2 * 1024
    assert tile["attn_scores"] == 24 * 4 * 577 ** 2 * 1024
    assert big["attn_scores"] / (16 * tile["attn_scores"]) == pytest.approx(9217 ** 2 / (16 * 577 ** 2))
    assert big["attn_scores"] / (16 * tile["attn_scores"]) > 15.9


@pytest.mark.parametrize("repo,per_token", [
    # layers x KV heads x head dim x 2 (K, V) x 2 bytes
    ("llava-hf/llava-v1.6-mistral-7b-hf", 32 * 8 * 128 * 2 * 2),
    ("Qwen/Qwen2-VL-2B-Instruct", 28 * 2 * 128 * 2 * 2),
    ("OpenGVLab/InternVL3-1B-hf", 24 * 2 * 64 * 2 * 2),
    ("Qwen/Qwen3.5-9B", 8 * 4 * 256 * 2 * 2),  # only the 8 full-attention layers keep a cache
])
def test_kv_bytes_per_token_by_hand(repo, per_token):
    assert kv_bytes_per_token(get_architecture(repo).text) == per_token


def test_sliding_window_layers_cache_at_most_the_window():
    t = get_architecture("google/gemma-3-4b-it").text  # 34 layers, 29 local (window 1024)
    per_layer = 4 * 256 * 2 * 2
    assert kv_bytes(t, 1000) == 34 * per_layer * 1000
    assert kv_bytes(t, 3000) == 5 * per_layer * 3000 + 29 * per_layer * 1024


def test_qwen2_vl_12mp_cost_by_hand():
    plan = plan_image(Size(3000, 4000), "Qwen/Qwen2-VL-2B-Instruct")
    cost = image_cost(plan)
    h, w = plan.resized_hw.hw
    patches = (h // 14) * (w // 14)
    assert cost.crops[0].patches == patches
    assert cost.vision["attn_scores"] == 32 * 4 * patches ** 2 * 1280
    assert cost.num_tokens == patches // 4 + 2
    assert cost.kv_bytes == cost.num_tokens * 28 * 2 * 128 * 4
    assert cost.images_fit == 32768 // cost.num_tokens
    assert cost.context_share == pytest.approx(cost.num_tokens / 32768)


def test_llm_flops_by_hand():
    t = TextArch(layers=2, hidden=8, heads=2, kv_heads=1, head_dim=4, intermediate=16, context=100)
    got = llm_flops(t, n=3, prompt=5)
    assert got["attn_proj"] == 2 * 2 * 3 * 8 * (8 + 8 + 2 * 4)
    assert got["attn_scores"] == 2 * 4 * 8 * (6 + 7 + 8)
    assert got["mlp"] == 2 * 6 * 3 * 8 * 16


def test_three_ways_for_llava_next():
    plan = plan_image(Size(1000, 1000), "llava-hf/llava-v1.6-mistral-7b-hf")  # 2x2 on 672x672
    preset_way, squash, full = three_ways(plan)
    assert preset_way.cost.num_tokens == plan.num_tokens
    assert squash.views == (Size(FIXED_VIEW_SIDE, FIXED_VIEW_SIDE),) and squash.cost.num_tokens == 576
    assert full.views == (Size(672, 672),) and full.cost.num_tokens == 48 * 48
    # the big view's attention grows with the square of its tokens: more than the 4 tiles + base
    assert full.cost.vision["attn_scores"] > preset_way.cost.vision["attn_scores"]


COMPLETE = [  # rows with every value the cost needs
    "llava-hf/llava-v1.6-mistral-7b-hf", "llava-hf/llava-v1.6-vicuna-7b-hf",
    "llava-hf/llava-onevision-qwen2-0.5b-ov-hf", "llava-hf/llava-onevision-qwen2-7b-ov-hf",
    "Qwen/Qwen2-VL-2B-Instruct", "Qwen/Qwen2-VL-7B-Instruct", "Qwen/Qwen2.5-VL-3B-Instruct",
    "Qwen/Qwen2.5-VL-7B-Instruct", "OpenGVLab/InternVL3-1B-hf", "OpenGVLab/InternVL3-2B-hf",
    "OpenGVLab/InternVL3-8B-hf", "google/gemma-3-4b-it", "google/gemma-3-12b-it",
    "google/gemma-3-27b-it", "meta-llama/Llama-3.2-11B-Vision-Instruct"]


def test_every_preset_has_a_cost():
    """Complete for the rows that have every value; otherwise the missing terms are named."""
    for repo in PRESETS:
        cost = image_cost(plan_image(Size(768, 1024), repo))
        if repo in COMPLETE:
            assert cost.missing == () and cost.total_flops > 0 and cost.kv_bytes > 0, repo
            assert cost.images_fit >= 1
            record = cost_record(cost)
            assert record["num_tokens"] == cost.num_tokens and len(record["crops"]) == len(cost.crops)
        else:
            assert get_architecture(repo) is None or all("not confirmed" in m for m in cost.missing), repo


def test_unconfirmed_architecture_reports_what_is_missing():
    cost = image_cost(plan_image(Size(500, 500), "Qwen/Qwen2-VL-2B-Instruct"))
    from anyres_demo.cost import cost_of
    unknown = cost_of("google/gemma-4-E2B-it", plan_crops(plan_image(Size(500, 500), "qwen2-vl")), 10, 8)
    assert unknown.vision is None and unknown.kv_bytes is None
    assert any("not confirmed" in m for m in unknown.missing)
    assert cost.missing == ()


def test_cost_modules_are_pure():
    """cost, architectures, engines and the report import nothing heavy (fresh interpreter)."""
    import json
    import subprocess
    import sys
    heavy = ["torch", "gradio", "transformers", "onnxruntime", "PIL", "plotly"]
    code = ("import sys, json\n"
            "import anyres_demo.cost, anyres_demo.architectures, anyres_demo.engines, anyres_demo.cost_report\n"
            "from anyres_demo.cost_report import cost_report\n"
            "cost_report('qwen2-vl', anyres_demo.cost.Size(3000, 4000))\n"
            f"print(json.dumps([m for m in {heavy!r} if m in sys.modules]))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == []


# ----------------------------------------------------------------------------- against torch
torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

from anyres_demo.backends import hf_processors as hp  # noqa: E402
from anyres_demo.backends.tiny_models import build_tiny_model  # noqa: E402
from hf_helpers import FAMILY_REPOS, noise_image  # noqa: E402

# The families whose FLOP / KV formulas are checked against torch: every 2024 family's tiny model,
# the wave-1a ones with a KV cache (Qwen3-VL with its DeepStack mergers, InternVL3.5, Pixtral,
# Mistral Small 3.1 with its patch merger) and Gemma 3 with pan-and-scan on (several crops).
# Qwen3.5's linear-attention layers keep a fixed state, not a KV cache: not checked here.
CHECKED = ("llava_next", "llava_onevision", "qwen2_vl", "qwen2_5_vl", "internvl", "qwen3_vl",
           "internvl3_5", "pixtral", "mistral3")
REPOS = {**{f: FAMILY_REPOS[f] for f in CHECKED}, "gemma3": "google/gemma-3-4b-it"}
FAMILIES = tuple(REPOS)


def family_preset(family: str):
    preset = get_preset(REPOS[family])
    return preset.with_overrides(do_pan_and_scan=True) if family == "gemma3" else preset


# real image sizes (w, h): crops as the processor makes them
SIZES_WH = {"gemma3": [(1000, 480), (2000, 600)], "llava_next": [(700, 500), (300, 1100)], "llava_onevision": [(700, 500), (1200, 400)],
            "qwen2_vl": [(700, 500), (333, 1250)], "qwen2_5_vl": [(700, 500), (1000, 250)],
            "internvl": [(700, 500), (1500, 400)], "internvl3_5": [(700, 500), (1500, 400)],
            "qwen3_vl": [(700, 500), (333, 1250)], "pixtral": [(700, 500), (300, 900)],
            "mistral3": [(700, 500), (300, 900)]}


def vision_arch(family: str, config) -> VisionArch:
    """The cost module's description of the tiny model's tower, read off its config."""
    v, t = config.vision_config, config.text_config
    if family in ("llava_next", "llava_onevision"):
        return VisionArch(depth=v.num_hidden_layers, width=v.hidden_size, heads=v.num_attention_heads,
                          intermediate=v.intermediate_size, patch=v.patch_size,
                          cls_tokens=1 if family == "llava_next" else 0,
                          projector=((v.hidden_size, t.hidden_size), (t.hidden_size, t.hidden_size)))
    if family == "gemma3":  # SigLIP, then AvgPool(4) and one linear to the text width
        return VisionArch(depth=v.num_hidden_layers, width=v.hidden_size, heads=v.num_attention_heads,
                          intermediate=v.intermediate_size, patch=v.patch_size,
                          merge=v.image_size // v.patch_size // int(config.mm_tokens_per_image ** 0.5),
                          projector=((v.hidden_size, t.hidden_size),))
    if family == "qwen2_vl":
        return VisionArch(depth=v.depth, width=v.embed_dim, heads=v.num_heads,
                          intermediate=v.embed_dim * v.mlp_ratio, patch=v.patch_size, temporal_patch=2,
                          merge=2, projector=((4 * v.embed_dim, 4 * v.embed_dim), (4 * v.embed_dim, v.hidden_size)))
    if family == "qwen2_5_vl":
        return VisionArch(depth=v.depth, width=v.hidden_size, heads=v.num_heads,
                          intermediate=v.intermediate_size, patch=v.patch_size, gated_mlp=True,
                          temporal_patch=2, window_patches=v.window_size // v.patch_size,
                          full_attention_layers=len(v.fullatt_block_indexes), merge=2,
                          projector=((4 * v.hidden_size, 4 * v.hidden_size), (4 * v.hidden_size, v.out_hidden_size)))
    if family == "qwen3_vl":
        return VisionArch(depth=v.depth, width=v.hidden_size, heads=v.num_heads,
                          intermediate=v.intermediate_size, patch=v.patch_size, temporal_patch=2, merge=2,
                          projector=((4 * v.hidden_size, 4 * v.hidden_size), (4 * v.hidden_size, v.out_hidden_size)),
                          projector_copies=1 + len(v.deepstack_visual_indexes))
    if family in ("pixtral", "mistral3"):
        return VisionArch(depth=v.num_hidden_layers, width=v.hidden_size, heads=v.num_attention_heads,
                          intermediate=v.intermediate_size, patch=v.patch_size, gated_mlp=True,
                          merge=2 if family == "mistral3" else 1,  # Mistral 3: the 2x2 patch merger
                          projector=((4 * v.hidden_size, v.hidden_size),) * (family == "mistral3")
                          + ((v.hidden_size, t.hidden_size), (t.hidden_size, t.hidden_size)))
    return VisionArch(depth=v.num_hidden_layers, width=v.hidden_size, heads=v.num_attention_heads,
                      intermediate=v.intermediate_size, patch=v.patch_size[0], cls_tokens=1, merge=2,
                      projector=((4 * v.hidden_size, t.hidden_size), (t.hidden_size, t.hidden_size)))


def text_arch(config) -> TextArch:
    t = config.text_config
    return TextArch(layers=t.num_hidden_layers, hidden=t.hidden_size, heads=t.num_attention_heads,
                    kv_heads=t.num_key_value_heads,
                    head_dim=getattr(t, "head_dim", None) or t.hidden_size // t.num_attention_heads,
                    intermediate=t.intermediate_size, context=t.max_position_embeddings)


@pytest.fixture(scope="module")
def tiny():
    cache = {}

    def get(family):
        if family not in cache:
            model, processor = build_tiny_model(family_preset(family))
            model.set_attn_implementation("eager")  # see the module docstring: CPU SDPA is not counted
            cache[family] = (model, processor)
        return cache[family]
    return get


def _torch_image_flops(family, model, outputs) -> int:
    m = model.model
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        if family in ("llava_next", "llava_onevision"):
            m.get_image_features(outputs["pixel_values"], outputs["image_sizes"])
        elif family == "gemma3":
            m.get_image_features(outputs["pixel_values"])
        elif family in ("qwen2_vl", "qwen2_5_vl", "qwen3_vl"):
            m.get_image_features(outputs["pixel_values"], outputs["image_grid_thw"])
        elif family == "mistral3":
            m.get_image_features(outputs["pixel_values"], outputs["image_sizes"])
        else:
            m.get_image_features(outputs["pixel_values"])
    counts = counter.get_flop_counts()
    head = sum(counts.get("SiglipVisionModel.head", {}).values())  # never read by OneVision / Gemma 3
    return counter.get_total_flops() - head


@pytest.mark.parametrize("family", FAMILIES)
def test_vision_flops_match_torch_flop_counter(tiny, family):
    model, processor = tiny(family)
    preset = family_preset(family)
    arch = vision_arch(family, model.config)
    for w, h in SIZES_WH[family]:
        image = noise_image((h, w))
        plan = plan_image(image, preset)
        outputs = hp.processor_outputs(processor, image, preset)
        mine = sum(sum_terms((c.flops for c in crop_costs(plan_crops(plan), arch)), VISION_TERMS).values())
        measured = _torch_image_flops(family, model, outputs)
        assert mine == pytest.approx(measured, rel=REL), (family, w, h)


@pytest.mark.parametrize("family", FAMILIES)
def test_prefill_flops_match_torch_flop_counter(tiny, family):
    model, _ = tiny(family)
    lm = model.model.language_model
    t = text_arch(model.config)
    prompt, n = 9, 61
    embeds = torch.randn(1, prompt + n, t.hidden)
    with torch.no_grad():
        past = lm(inputs_embeds=embeds[:, :prompt], use_cache=True).past_key_values
        with FlopCounterMode(display=False) as counter:
            lm(inputs_embeds=embeds[:, prompt:], cache=past, use_cache=True)
    mine = llm_flops(t, n, prompt, causal=False)  # torch ignores the causal mask
    assert sum(mine.values()) == pytest.approx(counter.get_total_flops(), rel=REL), family
    causal = llm_flops(t, n, prompt)
    assert causal["attn_scores"] < mine["attn_scores"]  # masks halve the new-token square


@pytest.mark.parametrize("family", FAMILIES)
def test_kv_bytes_match_past_key_values(tiny, family):
    model, _ = tiny(family)
    t = text_arch(model.config)
    lm = model.model.language_model.to(torch.bfloat16)
    try:
        n = 37
        with torch.no_grad():
            cache = lm(inputs_embeds=torch.randn(1, n, t.hidden, dtype=torch.bfloat16),
                       use_cache=True).past_key_values
        measured = sum(layer.keys.nbytes + layer.values.nbytes for layer in cache.layers)
        assert kv_bytes(t, n) == measured
    finally:
        lm.to(torch.float32)

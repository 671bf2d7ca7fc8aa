"""Tiny RANDOM-WEIGHT models, for tests and benchmarks only: their outputs mean nothing.

`build_tiny_model(preset, out_dir)` builds a model of the preset's family whose vision
geometry matches the released checkpoint (tile / image size, patch 14, merge sizes, pixel
shuffle, pinpoints, feature-select strategy), so it accepts the real processor's outputs and
emits exactly as many visual features as the real model would. Everything else is shrunk:
hidden sizes of 16-32, one or two layers, a vocabulary of a few dozen words. The model and
its processor (tiny tokenizer with chat template, see hf_processors) are saved with
`save_pretrained`, so `AutoProcessor.from_pretrained(out_dir)` and
`AutoModelForImageTextToText.from_pretrained(out_dir)` reload them offline.

Token ids are the tiny tokenizer's, written into the model config; read them from
`model.config.image_token_id`, not from the preset. Random weights may emit the end-of-turn
token at once: pass `min_new_tokens` to `generate` when a test needs several steps. For
attention maps load with `attn_implementation={"text_config": "eager", "vision_config": "sdpa"}`
(spec 8.1); that works for all five families.
"""
from __future__ import annotations

import os

from ..presets import Preset
from . import hf_processors as hp

VISION_WIDTH = 16  # vision tower hidden size
TEXT_WIDTH = 32  # language model hidden size
HEADS = 2
SEED = 0


def _tiny_text(vocab_size: int, **extra) -> dict:
    """A 1-layer text model config in the shape every family's text_config accepts."""
    return {"vocab_size": vocab_size, "hidden_size": TEXT_WIDTH, "intermediate_size": 2 * TEXT_WIDTH,
            "num_hidden_layers": 1, "num_attention_heads": HEADS, "num_key_value_heads": 1,
            "max_position_embeddings": 32768, **extra}


def _token_ids(tokenizer) -> dict:
    return {"bos_token_id": tokenizer.bos_token_id, "eos_token_id": tokenizer.eos_token_id,
            "pad_token_id": tokenizer.pad_token_id}


def _llava_config(preset: Preset, kind: str, tokenizer, vocab: int):
    from transformers import CLIPVisionConfig, LlavaNextConfig, LlavaOnevisionConfig, SiglipVisionConfig

    s = preset.settings
    image_token_id = tokenizer.convert_tokens_to_ids(preset.image_token)
    vision = {"hidden_size": VISION_WIDTH, "intermediate_size": 2 * VISION_WIDTH,
              "num_hidden_layers": 2, "num_attention_heads": HEADS,
              "image_size": s.tile_size, "patch_size": s.patch_size}
    common = {"image_grid_pinpoints": [list(p) for p in s.pinpoints_hw],
              "vision_feature_select_strategy": s.vision_feature_select_strategy,
              "image_token_index": image_token_id}
    if kind == hp.LLAVA_NEXT:
        # CLIP ViT-L/14-336 geometry: 24x24 patches + CLS, features from the second-last layer
        return LlavaNextConfig(vision_config=CLIPVisionConfig(**vision),
                               text_config=_tiny_text(vocab, model_type="mistral", **_token_ids(tokenizer)),
                               vision_feature_layer=-2,
                               image_seq_length=s.features_per_side ** 2, **common)
    # SigLIP-so400m-384 geometry: 27x27 patches, no CLS, last layer
    return LlavaOnevisionConfig(vision_config=SiglipVisionConfig(**vision),
                                text_config=_tiny_text(vocab, model_type="qwen2", **_token_ids(tokenizer)),
                                vision_feature_layer=-1,
                                video_token_index=tokenizer.convert_tokens_to_ids(hp.VIDEO_TOKEN[kind]),
                                vision_aspect_ratio=f"anyres_max_{s.max_tiles_downscale}", **common)


def _qwen_config(preset: Preset, kind: str, tokenizer, vocab: int):
    from transformers import Qwen2_5_VLConfig, Qwen2VLConfig

    s = preset.settings
    head_dim = TEXT_WIDTH // HEADS
    # M-RoPE splits head_dim/2 rotary frequencies over (t, h, w), as [16, 24, 24] does for 128
    text = _tiny_text(vocab, rope_parameters={"rope_type": "default", "rope_theta": 1e6,
                                              "mrope_section": [2, 3, head_dim // 2 - 5]},
                      **_token_ids(tokenizer))
    vision = {"depth": 2, "num_heads": HEADS, "patch_size": s.patch_size,
              "spatial_merge_size": s.merge_size, "temporal_patch_size": s.temporal_patch_size}
    start, end = preset.wrapper_tokens
    ids = {"image_token_id": tokenizer.convert_tokens_to_ids(preset.image_token),
           "video_token_id": tokenizer.convert_tokens_to_ids(hp.VIDEO_TOKEN[kind]),
           "vision_start_token_id": tokenizer.convert_tokens_to_ids(start),
           "vision_end_token_id": tokenizer.convert_tokens_to_ids(end)}
    if kind == hp.QWEN2_VL:
        vision.update(embed_dim=VISION_WIDTH, hidden_size=TEXT_WIDTH, mlp_ratio=2)
        return Qwen2VLConfig(text_config=text, vision_config=vision, **ids)
    # Qwen2.5-VL: 112-px attention windows (4x4 merged tokens), full attention in the last block
    vision.update(hidden_size=VISION_WIDTH, intermediate_size=2 * VISION_WIDTH,
                  out_hidden_size=TEXT_WIDTH, window_size=112, fullatt_block_indexes=[1])
    return Qwen2_5_VLConfig(text_config=text, vision_config=vision, **ids)


def _internvl_config(preset: Preset, tokenizer, vocab: int):
    from transformers import InternVLConfig

    s = preset.settings
    vision = {"hidden_size": VISION_WIDTH, "intermediate_size": 2 * VISION_WIDTH,
              "num_hidden_layers": 1, "num_attention_heads": HEADS,
              "image_size": [s.tile_size, s.tile_size], "patch_size": [s.patch_size, s.patch_size]}
    return InternVLConfig(vision_config=vision,
                          text_config=_tiny_text(vocab, model_type="qwen2", **_token_ids(tokenizer)),
                          image_token_id=tokenizer.convert_tokens_to_ids(preset.image_token),
                          image_seq_length=s.cells_per_side ** 2,
                          downsample_ratio=s.downsample_ratio,
                          vision_feature_layer=-1, vision_feature_select_strategy="default")


def _qwen_ids(preset: Preset, kind: str, tokenizer) -> dict:
    start, end = preset.wrapper_tokens
    return {"image_token_id": tokenizer.convert_tokens_to_ids(preset.image_token),
            "video_token_id": tokenizer.convert_tokens_to_ids(hp.VIDEO_TOKEN[kind]),
            "vision_start_token_id": tokenizer.convert_tokens_to_ids(start),
            "vision_end_token_id": tokenizer.convert_tokens_to_ids(end)}


def _qwen3_config(preset: Preset, kind: str, tokenizer, vocab: int):
    """Qwen3-VL (dense / MoE) and Qwen3.5: patch 16, merge 2. Qwen3-VL's DeepStack mergers read
    vision blocks 0 and 1 and add into decoder layers 0 and 1 (the checkpoints: blocks 8, 16, 24
    into layers 0, 1, 2); Qwen3.5 has no DeepStack and alternates linear / full attention."""
    from transformers import Qwen3_5Config, Qwen3VLConfig, Qwen3VLMoeConfig

    s = preset.settings
    head_dim = TEXT_WIDTH // HEADS
    rope = {"rope_type": "default", "rope_theta": 5e6, "mrope_interleaved": True,
            "mrope_section": [2, 3, head_dim // 2 - 5]}
    text = _tiny_text(vocab, rope_parameters=rope, head_dim=head_dim, **_token_ids(tokenizer))
    text["num_hidden_layers"] = 2
    vision = {"depth": 2, "hidden_size": VISION_WIDTH, "intermediate_size": 2 * VISION_WIDTH,
              "num_heads": HEADS, "patch_size": s.patch_size, "spatial_merge_size": s.merge_size,
              "temporal_patch_size": s.temporal_patch_size, "out_hidden_size": TEXT_WIDTH}
    ids = _qwen_ids(preset, kind, tokenizer)
    if kind == hp.QWEN3_5:
        text.update(layer_types=["linear_attention", "full_attention"], linear_conv_kernel_dim=2,
                    linear_key_head_dim=8, linear_value_head_dim=8, linear_num_key_heads=2,
                    linear_num_value_heads=2)
        return Qwen3_5Config(text_config=text, vision_config=vision, **ids)
    vision["deepstack_visual_indexes"] = [0, 1]
    if kind == hp.QWEN3_VL_MOE:
        text.update(num_experts=4, num_experts_per_tok=2, moe_intermediate_size=TEXT_WIDTH,
                    decoder_sparse_step=1)
        return Qwen3VLMoeConfig(text_config=text, vision_config=vision, **ids)
    return Qwen3VLConfig(text_config=text, vision_config=vision, **ids)


def _pixtral_config(preset: Preset, kind: str, tokenizer, vocab: int):
    """pixtral-12b: LLaVA with a Pixtral vision tower (patch 16, no merge); Mistral Small 3.1:
    Mistral3 with patch 14 and the 2x2 patch merger. image_size is the checkpoint's (the 2-D
    RoPE table), so every view the processor makes fits."""
    from transformers import LlavaConfig, Mistral3Config

    s = preset.settings
    vision = {"model_type": "pixtral", "hidden_size": VISION_WIDTH,
              "intermediate_size": 2 * VISION_WIDTH, "num_hidden_layers": 1,
              "num_attention_heads": HEADS, "head_dim": VISION_WIDTH // HEADS,
              "image_size": s.vision_image_size, "patch_size": s.patch_size}
    text = _tiny_text(vocab, model_type="mistral", head_dim=TEXT_WIDTH // HEADS,
                      **_token_ids(tokenizer))
    image_id = tokenizer.convert_tokens_to_ids(preset.image_token)
    if kind == hp.MISTRAL3:
        return Mistral3Config(vision_config=vision, text_config=text, image_token_index=image_id,
                              spatial_merge_size=s.merge_size, vision_feature_layer=-1)
    return LlavaConfig(vision_config=vision, text_config=text, image_token_index=image_id,
                       vision_feature_layer=-1, vision_feature_select_strategy="full",
                       image_seq_length=1)
def _gemma3_config(preset: Preset, tokenizer, vocab: int):
    from transformers import Gemma3Config

    s = preset.settings
    start, end = preset.wrapper_tokens
    # SigLIP at the checkpoint's 896 px / patch 14: 64x64 patches, AvgPool2d(4) -> 16x16 = 256
    vision = {"model_type": "siglip_vision_model", "hidden_size": VISION_WIDTH,
              "intermediate_size": 2 * VISION_WIDTH, "num_hidden_layers": 1,
              "num_attention_heads": HEADS, "image_size": s.view_size, "patch_size": s.patch_size}
    text = _tiny_text(vocab, head_dim=TEXT_WIDTH // HEADS, layer_types=["full_attention"],
                      **_token_ids(tokenizer))
    return Gemma3Config(text_config=text, vision_config=vision, mm_tokens_per_image=s.tokens_per_view,
                        image_token_index=tokenizer.convert_tokens_to_ids(preset.image_token),
                        boi_token_index=tokenizer.convert_tokens_to_ids(start),
                        eoi_token_index=tokenizer.convert_tokens_to_ids(end))


def _gemma4_config(preset: Preset, tokenizer, vocab: int):
    from transformers import Gemma4Config

    s = preset.settings
    start, end = preset.wrapper_tokens
    ids = {name: tokenizer.convert_tokens_to_ids(tok) for name, tok in (
        ("boi_token_id", start), ("eoi_token_id", end), ("image_token_id", preset.image_token),
        ("video_token_id", "<|video|>"), ("boa_token_id", "<|audio>"),
        ("eoa_token_index", "<audio|>"), ("audio_token_id", "<|audio|>"))}
    # patch 16, 3x3 pooling as released; no audio tower (images only)
    vision = {"hidden_size": VISION_WIDTH, "intermediate_size": 2 * VISION_WIDTH,
              "num_hidden_layers": 1, "num_attention_heads": HEADS, "num_key_value_heads": HEADS,
              "head_dim": VISION_WIDTH // HEADS, "patch_size": s.patch_size,
              "pooling_kernel_size": s.pooling_kernel_size}
    # global_head_dim = head_dim: no per-layer overrides, so the config stays homogeneous
    text = _tiny_text(vocab, head_dim=TEXT_WIDTH // HEADS, global_head_dim=TEXT_WIDTH // HEADS,
                      layer_types=["full_attention"],
                      vocab_size_per_layer_input=vocab, hidden_size_per_layer_input=8,
                      **_token_ids(tokenizer))
    return Gemma4Config(text_config=text, vision_config=vision, audio_config=None, **ids)
def _smolvlm_config(preset: Preset, kind: str, tokenizer, vocab: int):
    from transformers import Idefics3Config, SmolVLMConfig

    s = preset.settings
    # SigLIP geometry of the checkpoint: M-px tiles, patch 14 or 16, pixel shuffle s x s
    vision = {"hidden_size": VISION_WIDTH, "intermediate_size": 2 * VISION_WIDTH,
              "num_hidden_layers": 1, "num_attention_heads": HEADS,
              "image_size": s.tile_size, "patch_size": s.patch_size}
    cls = SmolVLMConfig if kind == hp.SMOLVLM else Idefics3Config
    return cls(vision_config=vision,
               text_config=_tiny_text(vocab, model_type="llama", **_token_ids(tokenizer)),
               image_token_id=tokenizer.convert_tokens_to_ids(preset.image_token),
               scale_factor=s.scale_factor, **_token_ids(tokenizer))


def _llama4_config(preset: Preset, tokenizer, vocab: int):
    from transformers import Llama4Config

    s = preset.settings
    # pixel shuffle packs 2x2 patches: 4 * VISION_WIDTH channels into the adapter MLP
    vision = {"hidden_size": VISION_WIDTH, "intermediate_size": 4 * VISION_WIDTH,
              "num_hidden_layers": 1, "num_attention_heads": HEADS, "image_size": s.tile_size,
              "patch_size": s.patch_size, "pixel_shuffle_ratio": s.pixel_shuffle_ratio,
              "vision_output_dim": TEXT_WIDTH, "projector_input_dim": TEXT_WIDTH,
              "projector_output_dim": TEXT_WIDTH}
    text = _tiny_text(vocab, head_dim=TEXT_WIDTH // HEADS, intermediate_size_mlp=2 * TEXT_WIDTH,
                      num_local_experts=1, moe_layers=[], attention_chunk_size=32768,
                      **_token_ids(tokenizer))
    # the model fills <|patch|> positions (config.image_token_index), not <|image|>
    return Llama4Config(vision_config=vision, text_config=text,
                        image_token_index=tokenizer.convert_tokens_to_ids(preset.image_token),
                        boi_token_index=tokenizer.convert_tokens_to_ids("<|image_start|>"),
                        eoi_token_index=tokenizer.convert_tokens_to_ids("<|image_end|>"))


def _mllama_config(preset: Preset, tokenizer, vocab: int):
    from transformers import MllamaConfig

    s = preset.settings
    # 560-px tiles, patch 14: 40 x 40 + CLS = 1601 states per tile; one local layer, one
    # global, the local output concatenated with one intermediate layer
    vision = {"hidden_size": VISION_WIDTH, "intermediate_size": 2 * VISION_WIDTH,
              "num_hidden_layers": 1, "num_global_layers": 1, "attention_heads": HEADS,
              "image_size": s.tile_size, "patch_size": s.patch_size, "max_num_tiles": s.max_tiles,
              "intermediate_layers_indices": [0], "vision_output_dim": 2 * VISION_WIDTH}
    text = _tiny_text(vocab, num_hidden_layers=2, cross_attention_layers=[1],
                      **_token_ids(tokenizer))
    return MllamaConfig(vision_config=vision, text_config=text,
                        image_token_index=tokenizer.convert_tokens_to_ids(preset.image_token))


def tiny_config(preset: Preset, tokenizer):
    """The tiny model config for `preset`, with token ids taken from `tokenizer`."""
    kind = hp.model_type(preset)
    vocab = 8 * ((len(tokenizer) + 7) // 8)
    if kind in (hp.SMOLVLM, hp.IDEFICS3):
        return _smolvlm_config(preset, kind, tokenizer, vocab)
    if kind == hp.LLAMA4:
        return _llama4_config(preset, tokenizer, vocab)
    if kind == hp.MLLAMA:
        return _mllama_config(preset, tokenizer, vocab)
    if kind in (hp.LLAVA_NEXT, hp.ONEVISION):
        return _llava_config(preset, kind, tokenizer, vocab)
    if kind in (hp.QWEN2_VL, hp.QWEN2_5_VL):
        return _qwen_config(preset, kind, tokenizer, vocab)
    if kind in (hp.QWEN3_VL, hp.QWEN3_VL_MOE, hp.QWEN3_5):
        return _qwen3_config(preset, kind, tokenizer, vocab)
    if kind in hp.PIXTRAL_KINDS:
        return _pixtral_config(preset, kind, tokenizer, vocab)
    if kind == hp.GEMMA3:
        return _gemma3_config(preset, tokenizer, vocab)
    if kind == hp.GEMMA4:
        return _gemma4_config(preset, tokenizer, vocab)
    return _internvl_config(preset, tokenizer, vocab)


MODEL_CLASS = {
    hp.LLAVA_NEXT: "LlavaNextForConditionalGeneration",
    hp.ONEVISION: "LlavaOnevisionForConditionalGeneration",
    hp.QWEN2_VL: "Qwen2VLForConditionalGeneration",
    hp.QWEN2_5_VL: "Qwen2_5_VLForConditionalGeneration",
    hp.INTERNVL: "InternVLForConditionalGeneration",
    hp.QWEN3_VL: "Qwen3VLForConditionalGeneration",
    hp.QWEN3_VL_MOE: "Qwen3VLMoeForConditionalGeneration",
    hp.QWEN3_5: "Qwen3_5ForConditionalGeneration",
    hp.PIXTRAL_LLAVA: "LlavaForConditionalGeneration",
    hp.MISTRAL3: "Mistral3ForConditionalGeneration",
    hp.GEMMA3: "Gemma3ForConditionalGeneration",
    hp.GEMMA4: "Gemma4ForConditionalGeneration",
    hp.SMOLVLM: "SmolVLMForConditionalGeneration",
    hp.IDEFICS3: "Idefics3ForConditionalGeneration",
    hp.LLAMA4: "Llama4ForConditionalGeneration",
    hp.MLLAMA: "MllamaForConditionalGeneration",
}


def random_projector(model) -> None:
    """Gemma 3 initialises its projector matrix to zeros, which would make every image
    feature 0 in a random model; give it random values instead (tests only)."""
    import torch

    projector = getattr(getattr(model, "model", model), "multi_modal_projector", None)
    weight = getattr(projector, "mm_input_projection_weight", None)
    if weight is not None and not bool(weight.any()):
        with torch.no_grad():
            weight.normal_(std=1.0)


def build_tiny_model(preset: Preset, out_dir: str | None = None, seed: int = SEED):
    """A random-weight model + processor for `preset` (tests and benchmarks only).

    Returns (model, processor); with `out_dir`, also saves both there (a few hundred KB) so
    that AutoProcessor / AutoModelForImageTextToText.from_pretrained(out_dir) reload them.
    """
    import torch
    import transformers

    tokenizer = hp.build_tiny_tokenizer(preset)
    processor = hp.build_processor(preset, tokenizer=tokenizer)
    config = tiny_config(preset, processor.tokenizer)
    torch.manual_seed(seed)
    model = getattr(transformers, MODEL_CLASS[hp.model_type(preset)])(config).eval()
    random_projector(model)
    if out_dir is not None:
        model.save_pretrained(out_dir)
        processor.save_pretrained(out_dir)
        # the chat labels output from folders holding this marker as noise, never an answer
        with open(os.path.join(out_dir, "ANYRES_RANDOM_WEIGHTS"), "w", encoding="utf-8") as f:
            f.write("random weights: built by anyres_demo.backends.tiny_models for tests\n")
    return model, processor

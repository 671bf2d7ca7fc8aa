"""Model architecture numbers for the cost view, keyed by Hugging Face repo id.

Pure data (no numpy, torch or transformers), like presets.py. Every row says where its values
come from. Sources, strongest first:
  [code]  transformers 5.24 config class defaults whose docstring names this checkpoint
          (e.g. `LlavaNextConfig` -> llava-hf/llava-v1.6-mistral-7b-hf; only the sub-config the
          docstring is about: the text defaults of many VLM configs are a generic Llama-7B);
  [copy]  a copy of the checkpoint's config.json values quoted in a public repository (the row
          names what was quoted);
  [recall] the value as the released config.json is widely reported, NOT re-read from a copy
          here: listed in the row's `unconfirmed` so that the UI and the CLI say so.
A value nobody could confirm and that is not known well enough to recall is None: the cost
terms that need it are reported as unavailable, never guessed.
"""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class VisionArch:
    """The vision encoder and the projector that feeds the language model."""

    depth: int | None  # encoder layers transformers runs (all of them, even with feature layer -2)
    width: int | None  # hidden size
    heads: int | None
    intermediate: int | None  # MLP width
    patch: int  # patch side in pixels
    gated_mlp: bool = False  # True: gate/up/down (3 matrices, Qwen2.5-VL); False: fc1/fc2
    temporal_patch: int = 1  # Qwen: a still image is two frames stacked into each patch
    cls_tokens: int = 0  # CLIP / InternViT: one class token per crop
    window_patches: int = 0  # Qwen2.5-VL window attention: window side in patches (112 px / 14 = 8)
    full_attention_layers: int = 0  # Qwen2.5-VL: layers with full attention (fullatt_block_indexes)
    merge: int = 1  # patches per projector row side: Qwen 2x2 merge, InternVL pixel shuffle, Gemma 3 pool 4
    # The projector as (in_features, out_features) matmuls applied to every projector row.
    projector: tuple[tuple[int, int], ...] = ()
    projector_copies: int = 1  # Qwen3-VL DeepStack: the main merger + one per deepstack layer


@dataclass(frozen=True)
class MoE:
    """Mixture-of-experts MLP (active parameters per token)."""

    experts: int
    experts_per_token: int
    expert_intermediate: int
    shared_intermediate: int = 0  # a shared expert every token passes through
    moe_layers: int | None = None  # layers with the MoE MLP (None: all); the rest are dense


@dataclass(frozen=True)
class LinearAttention:
    """Gated DeltaNet layers (Qwen3.5): a fixed-size state instead of a KV cache."""

    layers: int  # how many of the text layers are linear attention
    key_heads: int
    value_heads: int
    head_dim: int  # linear_key_head_dim == linear_value_head_dim (128)


@dataclass(frozen=True)
class TextArch:
    """The language model the image tokens go through."""

    layers: int | None
    hidden: int | None
    heads: int | None
    kv_heads: int | None
    head_dim: int | None
    intermediate: int | None  # dense (gated SwiGLU/GeGLU) MLP width
    context: int | None  # max_position_embeddings
    sliding_window: int | None = None  # local-attention layers see this many keys
    sliding_layers: int = 0  # how many layers are local (Gemma 3: 5 of every 6)
    moe: MoE | None = None
    linear: LinearAttention | None = None
    cross_attention_layers: int = 0  # Llama 3.2 Vision: image states enter through these only
    query_gate: bool = False  # Qwen3.5 full attention: q_proj also emits an output gate (2x width)


@dataclass(frozen=True)
class Architecture:
    repo_id: str
    vision: VisionArch
    text: TextArch
    source: str  # where the values come from, in words
    unconfirmed: tuple[str, ...] = field(default_factory=tuple)  # "text.intermediate", ...
    params_b: float | None = None  # total parameters, billions
    active_params_b: float | None = None  # MoE: parameters a token passes through


# ----------------------------------------------------------------------------- vision towers
def _clip_l_336(text_hidden: int) -> VisionArch:
    # [code] LlavaNextConfig vision defaults (CLIP ViT-L/14-336), docstring: llava-v1.6-mistral-7b-hf;
    # projector: linear(1024 -> text) GELU linear(text -> text) (multimodal_projector_bias)
    return VisionArch(depth=24, width=1024, heads=16, intermediate=4096, patch=14, cls_tokens=1,
                      projector=((1024, text_hidden), (text_hidden, text_hidden)))


def _siglip_ov(text_hidden: int) -> VisionArch:
    # [code] LlavaOnevisionConfig vision defaults: SigLIP-so400m with its last layer removed
    # (26 layers), docstring: llava-onevision-qwen2-7b-ov-hf
    return VisionArch(depth=26, width=1152, heads=16, intermediate=4304, patch=14,
                      projector=((1152, text_hidden), (text_hidden, text_hidden)))


def _qwen2_vl(text_hidden: int) -> VisionArch:
    # [code] Qwen2VLConfig vision defaults (depth 32, embed 1280, mlp_ratio 4, 16 heads), docstring
    # Qwen2-VL-7B-Instruct; merger: LN, linear(4*1280 -> 4*1280) GELU linear(4*1280 -> text)
    return VisionArch(depth=32, width=1280, heads=16, intermediate=4 * 1280, patch=14,
                      temporal_patch=2, merge=2,
                      projector=((4 * 1280, 4 * 1280), (4 * 1280, text_hidden)))


def _qwen2_5_vl(text_hidden: int) -> VisionArch:
    # [copy] Qwen2.5-VL-3B config.json vision block (depth 32, hidden 1280, intermediate 3420,
    # 16 heads, window 112, fullatt_block_indexes [7, 15, 23, 31]); gated (SiLU) MLP
    return VisionArch(depth=32, width=1280, heads=16, intermediate=3420, patch=14, gated_mlp=True,
                      temporal_patch=2, window_patches=112 // 14, full_attention_layers=4, merge=2,
                      projector=((4 * 1280, 4 * 1280), (4 * 1280, text_hidden)))


def _qwen3_vl(depth: int, width: int, intermediate: int, text_hidden: int, deepstack: int) -> VisionArch:
    # merger: LN, linear(4w -> 4w) GELU linear(4w -> text); DeepStack adds one merger per level
    return VisionArch(depth=depth, width=width, heads=16, intermediate=intermediate, patch=16,
                      temporal_patch=2, merge=2,
                      projector=((4 * width, 4 * width), (4 * width, text_hidden)),
                      projector_copies=1 + deepstack)


def _internvit_300m(text_hidden: int) -> VisionArch:
    # [code] InternVLVisionConfig defaults (24 layers, 1024, 16 heads, 4096), docstring
    # InternVL3-1B-hf; projector: LN(4096), linear(4*1024 -> text) GELU linear(text -> text)
    return VisionArch(depth=24, width=1024, heads=16, intermediate=4096, patch=14, cls_tokens=1,
                      merge=2, projector=((4 * 1024, text_hidden), (text_hidden, text_hidden)))


def _siglip_896(text_hidden: int) -> VisionArch:
    # [copy] Gemma 3 config.json vision block (siglip_vision_model, 27 layers, 1152, 4304, 16 heads,
    # patch 14, 896 px); projector: AvgPool(4) then linear(1152 -> text)
    return VisionArch(depth=27, width=1152, heads=16, intermediate=4304, patch=14, merge=4,
                      projector=((1152, text_hidden),))


def _unknown_vision(patch: int, merge: int = 1) -> VisionArch:
    # patch and merge are the processor's (anyres-spec-2026), the tower's size is not confirmed
    return VisionArch(depth=None, width=None, heads=None, intermediate=None, patch=patch, merge=merge)


# ----------------------------------------------------------------------------- text models
def _text(layers, hidden, heads, kv, head_dim, intermediate, context, **extra) -> TextArch:
    return TextArch(layers=layers, hidden=hidden, heads=heads, kv_heads=kv, head_dim=head_dim,
                    intermediate=intermediate, context=context, **extra)


_QWEN2_0_5B = _text(24, 896, 14, 2, 64, 4864, 32768)  # Qwen2/2.5-0.5B shape
_QWEN2_1_5B = _text(28, 1536, 12, 2, 128, 8960, 32768)  # Qwen2/2.5-1.5B shape
_QWEN2_7B = _text(28, 3584, 28, 4, 128, 18944, 32768)  # Qwen2/2.5-7B shape


def _arch(repo_id, vision, text, source, unconfirmed=(), params_b=None, active=None) -> Architecture:
    return Architecture(repo_id=repo_id, vision=vision, text=text, source=source,
                        unconfirmed=tuple(unconfirmed), params_b=params_b, active_params_b=active)


_ROWS = (
    # ---- LLaVA-NeXT: CLIP-L/14-336 + 2-layer MLP + Mistral-7B / Vicuna-7B
    _arch("llava-hf/llava-v1.6-mistral-7b-hf", _clip_l_336(4096),
          _text(32, 4096, 32, 8, 128, 14336, 32768),
          "vision [code] LlavaNextConfig; text = mistralai/Mistral-7B-Instruct-v0.2 (named in "
          "the checkpoint config), shape = [code] MistralConfig defaults (Mistral-7B)",
          ("text.context",), 7.6),
    _arch("llava-hf/llava-v1.6-vicuna-7b-hf", _clip_l_336(4096),
          _text(32, 4096, 32, 32, 128, 11008, 4096),
          "vision [code] LlavaNextConfig; text = Vicuna-7B v1.5, shape = [code] LlamaConfig "
          "defaults (Llama-2-7B)", ("text.context",), 7.1),
    # ---- LLaVA-OneVision: SigLIP (26 layers) + MLP + Qwen2
    _arch("llava-hf/llava-onevision-qwen2-0.5b-ov-hf", _siglip_ov(896), _QWEN2_0_5B,
          "vision [code] LlavaOnevisionConfig; text Qwen2-0.5B shape [copy] (24 layers, 896, "
          "14/2 heads, 4864)", ("text.context",), 0.9),
    _arch("llava-hf/llava-onevision-qwen2-7b-ov-hf", _siglip_ov(3584), _QWEN2_7B,
          "vision [code] LlavaOnevisionConfig; text Qwen2-7B shape (same as Qwen2.5-7B [copy])",
          ("text.layers", "text.context"), 8.0),
    # ---- Qwen2-VL / Qwen2.5-VL
    _arch("Qwen/Qwen2-VL-2B-Instruct", _qwen2_vl(1536), _QWEN2_1_5B,
          "vision [code] Qwen2VLConfig; text Qwen2-1.5B shape [copy]", ("text.context",), 2.2),
    _arch("Qwen/Qwen2-VL-7B-Instruct", _qwen2_vl(3584), _QWEN2_7B,
          "vision [code] Qwen2VLConfig (out 3584); text Qwen2-7B shape",
          ("text.layers", "text.context"), 8.3),
    _arch("Qwen/Qwen2.5-VL-3B-Instruct", _qwen2_5_vl(2048),
          _text(36, 2048, 16, 2, 128, 11008, 128000),
          "[copy] Qwen2.5-VL-3B config.json (36 layers, 2048, 16/2 heads; vision block)",
          ("text.intermediate", "text.context"), 3.8),
    _arch("Qwen/Qwen2.5-VL-7B-Instruct", _qwen2_5_vl(3584),
          _text(28, 3584, 28, 4, 128, 18944, 128000),
          "[copy] Qwen2.5-VL-7B config.json text fields (3584, 18944, 28/4 heads, 128000) in a "
          "toy copy with fewer layers; vision as Qwen2.5-VL-3B", ("text.layers",), 8.3),
    # ---- InternVL3: InternViT-300M + pixel shuffle + MLP + Qwen2.5
    _arch("OpenGVLab/InternVL3-1B-hf", _internvit_300m(896), _QWEN2_0_5B,
          "vision [code] InternVLVisionConfig; text Qwen2.5-0.5B shape [copy]", ("text.context",), 0.9),
    _arch("OpenGVLab/InternVL3-2B-hf", _internvit_300m(1536), _QWEN2_1_5B,
          "vision [code]; text [copy] InternVL3-2B (1536, 8960, 28 layers, 12/2 heads, 32768)", (), 2.1),
    _arch("OpenGVLab/InternVL3-8B-hf", _internvit_300m(3584), _QWEN2_7B,
          "vision [code]; text [copy] InternVL3-8B (3584, 18944, 28 layers, 28/4 heads, 32768)", (), 7.9),
    # ---- InternVL3.5: InternViT-300M + Qwen3 (head_dim 128)
    _arch("OpenGVLab/InternVL3_5-1B-HF", _internvit_300m(1024),
          _text(28, 1024, 16, 8, 128, 3072, 40960), "text Qwen3-0.6B shape [recall]",
          ("text.*",), 1.1),
    _arch("OpenGVLab/InternVL3_5-2B-HF", _internvit_300m(2048),
          _text(28, 2048, 16, 8, 128, 6144, 40960), "text Qwen3-1.7B shape [recall]",
          ("text.*",), 2.3),
    _arch("OpenGVLab/InternVL3_5-8B-HF", _internvit_300m(4096),
          _text(36, 4096, 32, 8, 128, 12288, 40960), "text Qwen3-8B shape [recall]",
          ("text.*",), 8.5),
    # ---- Qwen3-VL (patch 16, DeepStack)
    _arch("Qwen/Qwen3-VL-2B-Instruct", _qwen3_vl(24, 1024, 4096, 2048, 3),
          _text(28, 2048, 16, 8, 128, 6144, 262144),
          "[copy] Qwen3-VL-2B config.json (text 28 layers, 2048, 16/8 heads, 6144, 262144; "
          "vision 24 x 1024, deepstack [5, 11, 17])", (), 2.1),
    _arch("Qwen/Qwen3-VL-4B-Instruct", _qwen3_vl(24, 1024, 4096, 2560, 3),
          _text(36, 2560, 32, 8, 128, 9728, 262144),
          "[copy] Qwen3-VL-4B config.json (text and vision blocks)", (), 4.4),
    _arch("Qwen/Qwen3-VL-8B-Instruct", _qwen3_vl(27, 1152, 4304, 4096, 3),
          _text(36, 4096, 32, 8, 128, 12288, 262144),
          "[copy] Qwen3-VL-8B config.json (text 36 layers, 4096, 32/8 heads, 262144; vision 27 x "
          "1152, out 4096, deepstack [8, 16, 24])", ("text.intermediate",), 8.8),
    _arch("Qwen/Qwen3-VL-30B-A3B-Instruct", _qwen3_vl(27, 1152, 4304, 2048, 3),
          _text(48, 2048, 32, 4, 128, None, 262144,
                moe=MoE(experts=128, experts_per_token=8, expert_intermediate=768)),
          "[copy] Qwen3-30B-A3B text shape (48 layers, 2048, 32/4 heads, 128 experts, top 8, 768); "
          "vision as Qwen3-VL-8B with out 2048 (dense intermediate unused: every layer is MoE)",
          ("text.context", "text.intermediate"), 31.1, 3.3),
    # ---- Qwen3.5 (3 Gated DeltaNet layers per full-attention layer, no DeepStack)
    _arch("Qwen/Qwen3.5-9B", _qwen3_vl(27, 1152, 4304, 4096, 0),
          _text(32, 4096, 16, 4, 256, 12288, 262144, query_gate=True,
                linear=LinearAttention(layers=24, key_heads=16, value_heads=32, head_dim=128)),
          "[copy] Qwen3.5-9B config.json (32 layers, full attention every 4th, 4096, 16/4 heads of "
          "256, 12288, linear 16/32 heads of 128; vision 27 x 1152, out 4096)", (), 9.7),
    _arch("Qwen/Qwen3.5-2B", _qwen3_vl(24, 1024, 4096, 2048, 0),
          _text(None, 2048, None, None, 256, None, 262144),
          "unconfirmed: no copy of Qwen3.5-2B's config.json was found",
          ("vision.*", "text.*")),
    # ---- Gemma 3 (SigLIP 896, 5 local : 1 global layers, window 1024)
    _arch("google/gemma-3-4b-it", _siglip_896(2560),
          _text(34, 2560, 8, 4, 256, 10240, 131072, sliding_window=1024, sliding_layers=29),
          "[copy] gemma-3-4b-it config.json (34 layers, 2560, 8/4 heads of 256, 10240, window "
          "1024, 5:1 local/global); image tokens attend bidirectionally within each image block, "
          "counted causally here", (), 4.3),
    _arch("google/gemma-3-12b-it", _siglip_896(3840),
          _text(48, 3840, 16, 8, 256, 15360, 131072, sliding_window=1024, sliding_layers=40),
          "[copy] gemma-3-12b text (3840, 15360, head 256, 131072); layer and head counts [recall]",
          ("text.layers", "text.heads", "text.kv_heads", "text.sliding_window"), 12.2),
    _arch("google/gemma-3-27b-it", _siglip_896(5376),
          _text(62, 5376, 32, 16, 128, 21504, 131072, sliding_window=1024, sliding_layers=52),
          "[copy] gemma-3-27b text (5376, 21504, 32/16 heads of 128); layers [recall]",
          ("text.layers", "text.context", "text.sliding_window"), 27.4),
    # ---- Gemma 4: no copy of the released architecture was found
    *(_arch(repo, _unknown_vision(16, 3), _text(None, None, None, None, None, None, None),
            "unconfirmed: no copy of the released config.json was found", ("vision.*", "text.*"))
      for repo in ("google/gemma-4-E2B-it", "google/gemma-4-E4B-it", "google/gemma-4-31B-it",
                   "google/gemma-4-26B-A4B-it")),
    # ---- SmolVLM / Idefics3: not confirmed
    *(_arch(repo, _unknown_vision(patch, scale), _text(None, None, None, None, None, None, None),
            "unconfirmed: no copy of the released config.json was found", ("vision.*", "text.*"))
      for repo, patch, scale in (("HuggingFaceTB/SmolVLM2-2.2B-Instruct", 14, 3),
                                 ("HuggingFaceTB/SmolVLM2-500M-Video-Instruct", 16, 4),
                                 ("HuggingFaceTB/SmolVLM2-256M-Video-Instruct", 16, 4),
                                 ("HuggingFaceTB/SmolVLM-Instruct", 14, 3),
                                 ("HuggingFaceM4/Idefics3-8B-Llama3", 14, 2))),
    # ---- Llama 4 (MoE text; vision width not confirmed)
    _arch("meta-llama/Llama-4-Scout-17B-16E-Instruct",
          VisionArch(depth=34, width=None, heads=16, intermediate=5632, patch=14, merge=2),
          _text(48, 5120, 40, 8, 128, 16384, 131072,
                moe=MoE(experts=16, experts_per_token=1, expert_intermediate=8192,
                        shared_intermediate=8192)),
          "[code] Llama4TextConfig defaults, docstring Llama-4-Scout-17B-16E (48 layers, 5120, "
          "40/8 heads, experts 16 x 8192, top 1); vision depth/heads/MLP [code] Llama4VisionConfig",
          ("vision.width", "text.moe.shared_intermediate", "text.context"), 109.0, 17.0),
    _arch("meta-llama/Llama-4-Maverick-17B-128E-Instruct", _unknown_vision(14),
          _text(48, 5120, 40, 8, 128, None, None),
          "text width/heads as Scout [recall]; expert layout not confirmed",
          ("vision.*", "text.*"), 400.0, 17.0),
    # ---- Llama 3.2 Vision: cross-attention, the prompt holds one <|image|> token
    _arch("meta-llama/Llama-3.2-11B-Vision-Instruct",
          VisionArch(depth=32 + 8, width=1280, heads=16, intermediate=5120, patch=14, cls_tokens=1),
          _text(40, 4096, 32, 8, 128, 14336, 131072, cross_attention_layers=8),
          "[code] MllamaConfig defaults, docstring Llama-3.2-11B-Vision (text 40 layers incl. 8 "
          "cross-attention, 4096, 32/8 heads, 14336; vision 32 + 8 global layers, 1280, 5120)",
          (), 10.7),
    # ---- Pixtral / Mistral Small 3.1 (native resolution, [IMG_BREAK] rows)
    _arch("mistral-community/pixtral-12b",
          VisionArch(depth=24, width=1024, heads=16, intermediate=4096, patch=16, gated_mlp=True,
                     projector=((1024, 5120), (5120, 5120))),
          _text(40, 5120, 32, 8, 128, 14336, None),
          "vision [code] PixtralVisionConfig defaults, docstring pixtral-12b; text Mistral-NeMo-12B "
          "shape [recall]", ("text.*",), 12.4),
    _arch("mistralai/Mistral-Small-3.1-24B-Instruct-2503",
          VisionArch(depth=24, width=1024, heads=16, intermediate=4096, patch=14, gated_mlp=True,
                     merge=2, projector=((4 * 1024, 1024), (1024, 5120), (5120, 5120))),
          _text(40, 5120, 32, 8, 128, 32768, 131072),
          "[code] Mistral3Config defaults, docstring Mistral-Small-3.1-24B-Instruct-2503 (text 40 "
          "layers, 5120, 32/8 heads of 128, 32768, 131072; vision 24 x 1024, patch 14, 1540 px); "
          "patch merger 2x2", ("vision.projector",), 24.0),
)

ARCHITECTURES: dict[str, Architecture] = {a.repo_id: a for a in _ROWS}


def get_architecture(repo_id: str) -> Architecture | None:
    """The row for `repo_id` (case-insensitive), or None when the table has none."""
    if repo_id in ARCHITECTURES:
        return ARCHITECTURES[repo_id]
    lowered = {k.lower(): v for k, v in ARCHITECTURES.items()}
    return lowered.get((repo_id or "").lower())

"""The real transformers processors, built offline from a preset.

`build_processor(preset)` writes the files a released checkpoint ships
(`preprocessor_config.json`, `processor_config.json`, `video_preprocessor_config.json` and a
tokenizer) with the preset's values into a temporary folder and loads them with
`AutoProcessor.from_pretrained`. So the processor and image-processor classes, and the
image backend, are exactly the ones `from_pretrained` picks for the checkpoint: with
torchvision installed that is the torchvision backend (`LlavaNextImageProcessor`,
`Qwen2VLImageProcessor`, `GotOcr2ImageProcessor`, ...), otherwise the `*Pil` classes.

No hub access: the tokenizer is a tiny WordLevel one holding just the special tokens
(`build_tiny_tokenizer`), so token ids differ from the checkpoint's; read them from the
processor (`processor.image_token_id`), never from the preset, when counting.

transformers is imported inside functions so that importing this module stays cheap.
"""
from __future__ import annotations

import functools
import json
import os
import tempfile
from typing import Any

import numpy as np

from ..geometry import Size
from ..presets import (LLAMA4_TOKENS, SMOLVLM_TOKENS, Gemma3Settings, Gemma4Settings,
                       InternVLSettings, Llama4Settings, LlavaNextSettings, MllamaSettings, PixtralSettings,
                       Preset,
                       QwenSettings, SmolVLMSettings)

# Model types as transformers names them (config.json "model_type").
LLAVA_NEXT, ONEVISION, QWEN2_VL, QWEN2_5_VL, INTERNVL = (
    "llava_next", "llava_onevision", "qwen2_vl", "qwen2_5_vl", "internvl")
# Qwen3-VL (dense, MoE) and Qwen3.5 share Qwen3VLProcessor + Qwen2VLImageProcessor (2026 spec 1.1).
QWEN3_VL, QWEN3_VL_MOE, QWEN3_5 = "qwen3_vl", "qwen3_vl_moe", "qwen3_5"
QWEN_KINDS = (QWEN2_VL, QWEN2_5_VL, QWEN3_VL, QWEN3_VL_MOE, QWEN3_5)
# pixtral-12b is a LLaVA model with a Pixtral vision tower; Mistral Small 3.1 is "mistral3".
# Both use PixtralProcessor + PixtralImageProcessor (2026 spec 6.1).
PIXTRAL_LLAVA, MISTRAL3 = "llava", "mistral3"
PIXTRAL_KINDS = (PIXTRAL_LLAVA, MISTRAL3)
GEMMA3, GEMMA4 = "gemma3", "gemma4"
GEMMA_FAMILIES = (GEMMA3, GEMMA4)
SMOLVLM, IDEFICS3, LLAMA4, MLLAMA = "smolvlm", "idefics3", "llama4", "mllama"
# SmolVLM v1 and Idefics3 ship Idefics3Processor; SmolVLM2 ships SmolVLMProcessor (same geometry).
IDEFICS3_REPOS = ("HuggingFaceM4/Idefics3-8B-Llama3", "HuggingFaceTB/SmolVLM-Instruct")

PROCESSOR_CLASS = {
    LLAVA_NEXT: "LlavaNextProcessor",
    ONEVISION: "LlavaOnevisionProcessor",
    QWEN2_VL: "Qwen2VLProcessor",
    QWEN2_5_VL: "Qwen2_5_VLProcessor",
    INTERNVL: "InternVLProcessor",
    QWEN3_VL: "Qwen3VLProcessor",
    QWEN3_VL_MOE: "Qwen3VLProcessor",
    QWEN3_5: "Qwen3VLProcessor",
    PIXTRAL_LLAVA: "PixtralProcessor",
    MISTRAL3: "PixtralProcessor",
    GEMMA3: "Gemma3Processor",
    GEMMA4: "Gemma4Processor",
    SMOLVLM: "SmolVLMProcessor",
    IDEFICS3: "Idefics3Processor",
    LLAMA4: "Llama4Processor",
    MLLAMA: "MllamaProcessor",
}
# The image_processor_type the checkpoints' preprocessor_config.json names. InternVL's -hf
# conversions still say "...Fast", which from_pretrained maps to the torchvision class.
IMAGE_PROCESSOR_TYPE = {
    LLAVA_NEXT: "LlavaNextImageProcessor",
    ONEVISION: "LlavaOnevisionImageProcessor",
    QWEN2_VL: "Qwen2VLImageProcessor",
    QWEN2_5_VL: "Qwen2VLImageProcessor",
    INTERNVL: "GotOcr2ImageProcessorFast",
    # Qwen3-VL / Qwen3.5 files say "Qwen2VLImageProcessorFast" (2026 spec 1.2), which loads
    # Qwen2VLImageProcessor
    QWEN3_VL: "Qwen2VLImageProcessorFast",
    QWEN3_VL_MOE: "Qwen2VLImageProcessorFast",
    QWEN3_5: "Qwen2VLImageProcessorFast",
    PIXTRAL_LLAVA: "PixtralImageProcessor",
    MISTRAL3: "PixtralImageProcessor",
    GEMMA3: "Gemma3ImageProcessor",
    GEMMA4: "Gemma4ImageProcessor",
    SMOLVLM: "SmolVLMImageProcessor",
    IDEFICS3: "Idefics3ImageProcessor",
    LLAMA4: "Llama4ImageProcessorFast",  # as the conversion script saves it
    MLLAMA: "MllamaImageProcessor",
}
VIDEO_PROCESSOR_TYPE = {
    ONEVISION: "LlavaOnevisionVideoProcessor",
    QWEN2_VL: "Qwen2VLVideoProcessor",
    QWEN2_5_VL: "Qwen2VLVideoProcessor",
    INTERNVL: "InternVLVideoProcessor",
    QWEN3_VL: "Qwen3VLVideoProcessor",
    QWEN3_VL_MOE: "Qwen3VLVideoProcessor",
    QWEN3_5: "Qwen3VLVideoProcessor",
    SMOLVLM: "SmolVLMVideoProcessor",
}
VIDEO_TOKEN = {ONEVISION: "<video>", QWEN2_VL: "<|video_pad|>", QWEN2_5_VL: "<|video_pad|>",
               INTERNVL: "<video>", SMOLVLM: "<video>", QWEN3_VL: "<|video_pad|>",
               QWEN3_VL_MOE: "<|video_pad|>", QWEN3_5: "<|video_pad|>"}
# Pixtral's row-end tokens, under the attribute names PixtralProcessor reads (its defaults).
PIXTRAL_BREAK, PIXTRAL_END = "[IMG_BREAK]", "[IMG_END]"
PIL_BICUBIC = 3  # PIL.Image.Resampling.BICUBIC, as the checkpoints' "resample" field stores it
PIL_RESAMPLE = {"lanczos": 1, "bilinear": 2, "bicubic": 3}  # the "resample" field's codes
# Constants transformers hard-codes, so presets that differ cannot be built as processors.
HF_ONEVISION_DOWNSCALE_THRESHOLD = 1.1  # LlavaOnevisionProcessor._get_unpadded_features
HF_QWEN_MAX_ASPECT_RATIO = 200  # qwen2_vl smart_resize

# Plain words for prompts in tests and demos; anything else maps to <unk>.
_WORDS = ("user", "assistant", "system", "describe", "the", "this", "image", "what", "is", "in",
          "a", "of", "and", "picture", "shown", "please", ".", "?", ",", ":")
_BASE_SPECIALS = ("<unk>", "<pad>", "<s>", "</s>", "<|im_start|>", "<|im_end|>")
# Gemma 3's pan-and-scan prompt words, and the "\n\n" it writes around every view, as single
# tokens (the real tokenizer has a "\n\n" piece; a WordLevel tokenizer would drop whitespace).
_GEMMA3_WORDS = ("Here", "original", "here", "are", "some", "crops", "to", "help", "you", "see",
                 "better")
BLANK_LINE = "\n\n"
# Gemma4Processor.validate_inputs raises without audio markers even for images (spec 3.7).
_GEMMA4_AUDIO = {"audio_token": "<|audio|>", "boa_token": "<|audio>", "eoa_token": "<audio|>"}


def model_type(preset: Preset) -> str:
    """transformers' model_type for the preset. Qwen2-VL and Qwen2.5-VL share one strategy
    (and one image processor) but have different processor and model classes."""
    repo = preset.repo_id.lower()
    if preset.strategy == "qwen2_vl" and "qwen2.5-vl" in repo:
        return QWEN2_5_VL
    if preset.strategy == "qwen3_vl":
        return QWEN3_5 if "qwen3.5" in repo else QWEN3_VL_MOE if "-a3b" in repo else QWEN3_VL
    if preset.strategy == "pixtral":
        return MISTRAL3 if "mistral-small" in repo else PIXTRAL_LLAVA
    if preset.strategy == "smolvlm":
        return IDEFICS3 if preset.repo_id in IDEFICS3_REPOS else SMOLVLM
    if preset.strategy not in (LLAVA_NEXT, ONEVISION, QWEN2_VL, INTERNVL, GEMMA3, GEMMA4, LLAMA4,
                               MLLAMA):
        raise ValueError(f"no transformers processor for strategy {preset.strategy!r}")
    return preset.strategy


def image_placeholder(preset: Preset) -> str:
    """What the checkpoint's chat template writes for one image; the processor expands it.

    LLaVA: `<image>`; Qwen: `<|vision_start|><|image_pad|><|vision_end|>` (the template writes
    the wrappers); InternVL: `<IMG_CONTEXT>` (the processor adds `<img>`/`</img>` itself);
    Gemma 3: `<start_of_image>` (its processor's image_token is that marker); Gemma 4: `<|image|>`.
    """
    if model_type(preset) == GEMMA3:
        return preset.wrapper_tokens[0]
    if model_type(preset) == LLAMA4:
        return LLAMA4_TOKENS["image"]
    if model_type(preset) in QWEN_KINDS and preset.wrapper_tokens:
        start, end = preset.wrapper_tokens
        return f"{start}{preset.image_token}{end}"
    return preset.image_token


def _named_special_tokens(preset: Preset) -> dict[str, str]:
    """Model-specific special tokens, under the attribute names the processors read."""
    kind = model_type(preset)
    if kind in GEMMA_FAMILIES:
        start, end = preset.wrapper_tokens
        named = {"image_token": preset.image_token, "boi_token": start, "eoi_token": end}
        return {**named, **(_GEMMA4_AUDIO if kind == GEMMA4 else {})}
    if kind in (SMOLVLM, IDEFICS3):
        return {"image_token": preset.image_token, "fake_image_token": SMOLVLM_TOKENS["fake"],
                "global_image_token": SMOLVLM_TOKENS["global"],
                "end_of_utterance_token": "<end_of_utterance>", "video_token": "<video>"}
    if kind in (LLAMA4, MLLAMA):
        return {"image_token": LLAMA4_TOKENS["image"]}
    if kind == INTERNVL:
        start, end = preset.wrapper_tokens
        return {"start_image_token": start, "end_image_token": end,
                "context_image_token": preset.image_token, "video_token": VIDEO_TOKEN[kind]}
    if kind in PIXTRAL_KINDS:
        return {"image_token": preset.image_token, "image_break_token": PIXTRAL_BREAK,
                "image_end_token": PIXTRAL_END}
    named = {"image_token": preset.image_token}
    if kind in VIDEO_TOKEN:
        named["video_token"] = VIDEO_TOKEN[kind]
    if preset.wrapper_tokens:
        named["vision_start_token"], named["vision_end_token"] = preset.wrapper_tokens
    return named


def _plain_special_tokens(preset: Preset) -> list[str]:
    """Tokens the expanded prompt holds that have no attribute name on the tokenizer."""
    kind = model_type(preset)
    if kind in (SMOLVLM, IDEFICS3):
        # the processors look up all 36 <row_i_col_j>; "\n\n" before "\n" so that the added
        # tokens' longest match gives one token for a pair, as the checkpoint tokenizers do
        s: SmolVLMSettings = preset.settings
        rows = [f"<row_{i}_col_{j}>" for i in range(1, 7) for j in range(1, 7)]
        return rows + (["\n\n"] if s.merged_double_newline else []) + ["\n"]
    if kind == LLAMA4:
        return [preset.image_token] + list(LLAMA4_TOKENS.values())
    if kind == MLLAMA:
        return ["<|begin_of_text|>", "<|python_tag|>"]
    return []


def chat_template(preset: Preset) -> str:
    """A minimal ChatML-style template that places the family's image placeholder."""
    placeholder = image_placeholder(preset)
    return (
        "{% for message in messages %}<|im_start|>{{ message['role'] }} "
        "{% if message['content'] is string %}{{ message['content'] }}"
        "{% else %}{% for item in message['content'] %}"
        "{% if item['type'] == 'image' %}" + placeholder + " "
        "{% elif item['type'] == 'text' %}{{ item['text'] }}{% endif %}"
        "{% endfor %}{% endif %} <|im_end|> {% endfor %}"
        "{% if add_generation_prompt %}<|im_start|>assistant {% endif %}")


def build_tiny_tokenizer(preset: Preset):
    """A tiny offline `PreTrainedTokenizerFast` (WordLevel, whitespace split) with the special
    tokens the family's processor needs and a chat template. Ids are NOT the checkpoint's."""
    from tokenizers import AddedToken, Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    named = _named_special_tokens(preset)
    specials = list(dict.fromkeys(list(_BASE_SPECIALS) + list(named.values()) +
                                  _plain_special_tokens(preset)))
    gemma3 = model_type(preset) == GEMMA3
    words = list(_WORDS) + (list(_GEMMA3_WORDS) + [BLANK_LINE] if gemma3 else [])
    vocab = {tok: i for i, tok in enumerate(specials + words)}
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    backend.add_special_tokens(specials)
    if gemma3:  # matched before the whitespace split, so it survives as one token
        backend.add_tokens([AddedToken(BLANK_LINE, normalized=False)])
    return PreTrainedTokenizerFast(
        tokenizer_object=backend, unk_token="<unk>", pad_token="<pad>", bos_token="<s>",
        eos_token="<|im_end|>", extra_special_tokens=named, chat_template=chat_template(preset))


def _common_image_config(settings) -> dict[str, Any]:
    return {"do_resize": True, "do_rescale": True, "rescale_factor": 1 / 255,
            "do_normalize": True, "do_convert_rgb": True, "resample": PIL_BICUBIC,
            "image_mean": list(settings.image_mean), "image_std": list(settings.image_std)}


def _llava_configs(preset: Preset, kind: str) -> tuple[dict, dict]:
    s: LlavaNextSettings = preset.settings
    if s.pad_fill != 0:
        raise ValueError(f"pad_fill {s.pad_fill}: transformers always pads LLaVA canvases with 0")
    image = {**_common_image_config(s), "do_pad": True,
             "image_grid_pinpoints": [list(p) for p in s.pinpoints_hw]}
    cells = s.features_per_side
    if kind == LLAVA_NEXT:
        image.update(size={"shortest_edge": s.tile_size},
                     crop_size={"height": s.tile_size, "width": s.tile_size},
                     do_center_crop=True, aspect_ratio_setting="anyres")
        proc = {"patch_size": s.patch_size,
                "vision_feature_select_strategy": s.vision_feature_select_strategy,
                "num_additional_image_tokens": s.num_additional_image_tokens}
        return image, proc
    if s.max_tiles_downscale is None or s.downscale_threshold != HF_ONEVISION_DOWNSCALE_THRESHOLD:
        raise ValueError(
            f"LlavaOnevisionProcessor always downscales above {HF_ONEVISION_DOWNSCALE_THRESHOLD} x "
            f"anyres_max_N; got max_tiles_downscale={s.max_tiles_downscale}, "
            f"downscale_threshold={s.downscale_threshold}")
    image.update(size={"height": s.tile_size, "width": s.tile_size})
    proc = {"num_image_tokens": cells * cells,
            "vision_feature_select_strategy": s.vision_feature_select_strategy,
            "vision_aspect_ratio": f"anyres_max_{s.max_tiles_downscale}"}
    return image, proc


def _qwen_configs(preset: Preset) -> tuple[dict, dict]:
    s: QwenSettings = preset.settings
    if s.max_aspect_ratio != HF_QWEN_MAX_ASPECT_RATIO:
        raise ValueError(f"max_aspect_ratio {s.max_aspect_ratio}: transformers' smart_resize "
                         f"hard-codes {HF_QWEN_MAX_ASPECT_RATIO}")
    image = {**_common_image_config(s), "min_pixels": s.min_pixels, "max_pixels": s.max_pixels,
             "patch_size": s.patch_size, "temporal_patch_size": s.temporal_patch_size,
             "merge_size": s.merge_size}
    return image, {}


def _internvl_configs(preset: Preset) -> tuple[dict, dict]:
    s: InternVLSettings = preset.settings
    if not s.use_thumbnail:
        raise ValueError("use_thumbnail=False: GotOcr2ImageProcessor always adds the thumbnail")
    image = {**_common_image_config(s), "size": {"height": s.tile_size, "width": s.tile_size},
             "crop_to_patches": False,  # InternVLProcessor turns it on for every call
             "min_patches": s.min_tiles, "max_patches": s.max_tiles}
    return image, {"image_seq_length": s.cells_per_side ** 2}


def _pixtral_configs(preset: Preset) -> tuple[dict, dict]:
    """PixtralImageProcessor gets the ViT patch; PixtralProcessor passes patch * merge to it at
    call time (`_process_images`), which is the size the image is rounded to."""
    s: PixtralSettings = preset.settings
    image = {**_common_image_config(s), "size": {"longest_edge": s.longest_edge},
             "patch_size": {"height": s.patch_size, "width": s.patch_size}, "do_pad": True}
    proc = {"patch_size": s.patch_size, "spatial_merge_size": s.merge_size,
            "image_token": preset.image_token, "image_break_token": PIXTRAL_BREAK,
            "image_end_token": PIXTRAL_END}
    return image, proc
def _gemma3_configs(preset: Preset) -> tuple[dict, dict]:
    """The checkpoint leaves the pan-and-scan fields null; transformers ignores values written
    there anyway (Gemma3Processor.images_kwargs wins), so they go with each call (call_kwargs)."""
    s: Gemma3Settings = preset.settings
    image = {**_common_image_config(s), "resample": PIL_RESAMPLE[s.resample],
             "size": {"height": s.view_size, "width": s.view_size}, "do_convert_rgb": None,
             "do_pan_and_scan": None, "pan_and_scan_max_num_crops": None,
             "pan_and_scan_min_crop_size": None, "pan_and_scan_min_ratio_to_activate": None}
    return image, {"image_seq_length": s.tokens_per_view}


def _gemma4_files(preset: Preset) -> dict[str, dict]:
    """Gemma 4 ships one processor_config.json holding the image processor, the audio feature
    extractor and the video processor sections."""
    s: Gemma4Settings = preset.settings
    image = {**_common_image_config(s), "image_processor_type": IMAGE_PROCESSOR_TYPE[GEMMA4],
             "resample": PIL_RESAMPLE[s.resample], "do_normalize": False,
             "patch_size": s.patch_size, "pooling_kernel_size": s.pooling_kernel_size,
             "max_soft_tokens": s.max_soft_tokens}
    return {"processor_config.json": {
        "processor_class": PROCESSOR_CLASS[GEMMA4], "image_seq_length": s.max_soft_tokens,
        "image_processor": image,
        "feature_extractor": {"feature_extractor_type": "Gemma4AudioFeatureExtractor"},
        "video_processor": {"video_processor_type": "Gemma4VideoProcessor", "max_soft_tokens": 70}}}


def call_kwargs(preset: Preset) -> dict[str, Any]:
    """Settings that only take effect as processor call arguments: Gemma 3's pan-and-scan
    (spec 2.5; the processor's own defaults override the config file)."""
    if preset.strategy != GEMMA3:
        return {}
    s: Gemma3Settings = preset.settings
    return {"do_pan_and_scan": s.do_pan_and_scan,
            "pan_and_scan_max_num_crops": s.pan_and_scan_max_num_crops,
            "pan_and_scan_min_crop_size": s.pan_and_scan_min_crop_size,
            "pan_and_scan_min_ratio_to_activate": s.pan_and_scan_min_ratio_to_activate}
def _smolvlm_configs(preset: Preset) -> tuple[dict, dict]:
    s: SmolVLMSettings = preset.settings
    image = {**_common_image_config(s), "resample": PIL_RESAMPLE[s.resample],
             "size": {"longest_edge": s.longest_edge},
             "max_image_size": {"longest_edge": s.tile_size},
             "do_image_splitting": s.do_image_splitting, "do_pad": True}
    return image, {"image_seq_len": s.image_seq_len}


def _llama4_configs(preset: Preset) -> tuple[dict, dict]:
    s: Llama4Settings = preset.settings
    image = {**_common_image_config(s), "resample": PIL_RESAMPLE[s.resample],
             "size": {"height": s.tile_size, "width": s.tile_size}, "max_patches": s.max_tiles,
             "resize_to_max_canvas": s.resize_to_max_canvas}
    return image, {"patch_size": s.patch_size, "pixel_shuffle_ratio": s.pixel_shuffle_ratio}


def _mllama_configs(preset: Preset) -> tuple[dict, dict]:
    s: MllamaSettings = preset.settings
    image = {**_common_image_config(s), "resample": PIL_RESAMPLE[s.resample], "do_pad": True,
             "size": {"height": s.tile_size, "width": s.tile_size}, "max_image_tiles": s.max_tiles}
    return image, {}


WAVE2_CONFIGS = {SMOLVLM: _smolvlm_configs, IDEFICS3: _smolvlm_configs, LLAMA4: _llama4_configs,
                 MLLAMA: _mllama_configs}


def checkpoint_configs(preset: Preset) -> dict[str, dict]:
    """The processor-side JSON files of the checkpoint, filled with the preset's settings
    (overrides included): file name -> content."""
    kind = model_type(preset)
    if kind == GEMMA4:
        return _gemma4_files(preset)
    if kind == GEMMA3:
        image, proc = _gemma3_configs(preset)
    elif kind in WAVE2_CONFIGS:
        image, proc = WAVE2_CONFIGS[kind](preset)
    elif kind in (LLAVA_NEXT, ONEVISION):
        image, proc = _llava_configs(preset, kind)
    elif kind == INTERNVL:
        image, proc = _internvl_configs(preset)
    elif kind in PIXTRAL_KINDS:
        image, proc = _pixtral_configs(preset)
    else:
        image, proc = _qwen_configs(preset)
    processor_class = PROCESSOR_CLASS[kind]
    files = {
        "preprocessor_config.json": {"image_processor_type": IMAGE_PROCESSOR_TYPE[kind],
                                     "processor_class": processor_class, **image},
        "processor_config.json": {"processor_class": processor_class, **proc},
    }
    if kind in VIDEO_PROCESSOR_TYPE:
        files["video_preprocessor_config.json"] = {
            "video_processor_type": VIDEO_PROCESSOR_TYPE[kind], "processor_class": processor_class}
    return files


def write_processor_files(preset: Preset, out_dir: str, tokenizer=None) -> None:
    """Write the checkpoint's processor files and a tokenizer into `out_dir`."""
    os.makedirs(out_dir, exist_ok=True)
    for name, content in checkpoint_configs(preset).items():
        with open(os.path.join(out_dir, name), "w", encoding="utf-8") as f:
            json.dump(content, f, indent=2)
    (tokenizer if tokenizer is not None else build_tiny_tokenizer(preset)).save_pretrained(out_dir)


def build_processor(preset: Preset, tokenizer=None, backend: str | None = None):
    """The real transformers processor for `preset`, as AutoProcessor.from_pretrained builds it
    for the released checkpoint, with the preset's settings (apply overrides first with
    `preset.with_overrides(...)`). `tokenizer` defaults to `build_tiny_tokenizer(preset)`.

    backend: None gives from_pretrained's default image backend (torchvision when installed);
    "pil" or "torchvision" forces one for the image processor only (the video processors
    exist only for torchvision).
    """
    from transformers import AutoImageProcessor, AutoProcessor

    with tempfile.TemporaryDirectory(prefix="anyres-processor-") as tmp:
        write_processor_files(preset, tmp, tokenizer)
        if backend is None:
            return AutoProcessor.from_pretrained(tmp)
        image_processor = AutoImageProcessor.from_pretrained(tmp, backend=backend)
        return AutoProcessor.from_pretrained(tmp, image_processor=image_processor)


def processor_outputs(processor, pil_image, preset: Preset):
    """Run one image through the processor with the chat template's placeholder as text
    (Gemma 4 wants images nested per sample; Gemma 3 gets its pan-and-scan call arguments)."""
    images = [[pil_image]] if model_type(preset) == GEMMA4 else [pil_image]
    return processor(images=images, text=[image_placeholder(preset)], return_tensors="pt",
                     **call_kwargs(preset))


def soft_token_id(processor, preset: Preset) -> int:
    """The id the model scatters visual features into (see placeholder_token_id)."""
    return placeholder_token_id(processor, preset)


def _wrapper_ids(processor, preset: Preset) -> list[int]:
    """Ids of the special (non-placeholder) tokens around the image: Qwen / InternVL wrappers,
    Pixtral's [IMG_BREAK] and [IMG_END]."""
    if model_type(preset) in PIXTRAL_KINDS:
        return [int(processor.image_break_token_id), int(processor.image_end_token_id)]
    if not preset.wrapper_tokens:
        return []
    return [int(processor.tokenizer.convert_tokens_to_ids(t)) for t in preset.wrapper_tokens]


def _grid_fields(processor, size_hw: Size, preset: Preset) -> dict[str, Any]:
    """Grid and canvas as transformers' own helpers compute them for this image size."""
    kind = model_type(preset)
    ip = processor.image_processor
    h, w = size_hw.hw
    if kind in (LLAVA_NEXT, ONEVISION):
        from transformers.image_processing_utils import select_best_resolution
        from transformers.models.llava_next.modeling_llava_next import (
            get_anyres_image_grid_shape, image_size_to_num_patches)

        pinpoints = [list(p) for p in ip.image_grid_pinpoints]
        tile = preset.settings.tile_size
        rows, cols = get_anyres_image_grid_shape((h, w), pinpoints, tile)
        return {"grid": (int(rows), int(cols)),
                "canvas_hw": tuple(int(v) for v in select_best_resolution((h, w), pinpoints)),
                "num_crops_model": int(image_size_to_num_patches((h, w), pinpoints, tile))}
    if kind == INTERNVL:
        from transformers.models.got_ocr2.image_processing_got_ocr2 import get_optimal_tiled_canvas

        th, tw = ip.size["height"], ip.size["width"]
        cols, rows = get_optimal_tiled_canvas((h, w), (th, tw), ip.min_patches, ip.max_patches)
        return {"grid": (int(rows), int(cols)), "canvas_hw": (int(th * rows), int(tw * cols))}
    if kind in PIXTRAL_KINDS:
        rh, rw = pixtral_resized_hw(processor, size_hw)
        p = processor.patch_size * processor.spatial_merge_size
        return {"grid": (rh // p, rw // p), "canvas_hw": (rh, rw)}
    from transformers.models.qwen2_vl.image_processing_qwen2_vl import smart_resize

    factor = ip.patch_size * ip.merge_size
    rh, rw = smart_resize(h, w, factor=factor, min_pixels=ip.size["shortest_edge"],
                          max_pixels=ip.size["longest_edge"])
    return {"grid": (rh // factor, rw // factor), "canvas_hw": (int(rh), int(rw))}


def pixtral_resized_hw(processor, size_hw: Size) -> tuple[int, int]:
    """The H x W PixtralImageProcessor resizes to, from its own `get_resize_output_image_size`
    called as the processor calls it: on a channels-first image (so no 1- or 3-px-high image is
    misread as channels, unlike `_get_num_multimodal_tokens`, 2026 spec 6.7)."""
    from transformers.models.pixtral.image_processing_pixtral import get_resize_output_image_size

    edge = processor.image_processor.size["longest_edge"]
    p = processor.patch_size * processor.spatial_merge_size
    shape_only = np.broadcast_to(np.zeros((1, 1, 1)), (3, size_hw.height, size_hw.width))
    rh, rw = get_resize_output_image_size(shape_only, size=(edge, edge), patch_size=(p, p),
                                          input_data_format="channels_first")
    return int(rh), int(rw)


def _pixtral_output_counts(processor, out, counts: dict) -> dict:
    ids = out["input_ids"][0]
    rh, rw = (int(v) for v in out["image_sizes"][0])
    p = processor.patch_size * processor.spatial_merge_size
    counts.update(num_crops=int(out["pixel_values"].shape[0]), image_sizes=(rh, rw),
                  grid=(rh // p, rw // p), canvas_hw=(rh, rw),
                  num_img_break=int((ids == processor.image_break_token_id).sum()),
                  num_img_end=int((ids == processor.image_end_token_id).sum()))
    return counts


def processor_counts(processor, pil_image, preset: Preset, outputs=None) -> dict[str, Any]:
    """What the processor actually produced for `pil_image`, read off its outputs.

    Keys: num_image_tokens (placeholder ids in input_ids), num_wrapper_tokens, num_crops
    (entries of pixel_values; 1 for Qwen, whose pixel_values rows are patches), grid
    (rows, cols) and canvas_hw, plus image_sizes (LLaVA), image_grid_thw and num_patch_rows
    (Qwen), num_patches (InternVL). Qwen raises ValueError above aspect ratio 200.
    """
    out = outputs if outputs is not None else processor_outputs(processor, pil_image, preset)
    if model_type(preset) in WAVE2_CONFIGS:
        return _wave2_counts(processor, pil_image, preset, out)
    ids = out["input_ids"][0]
    counts: dict[str, Any] = {
        "num_image_tokens": int((ids == soft_token_id(processor, preset)).sum()),
        "num_wrapper_tokens": int(sum(int((ids == i).sum()) for i in _wrapper_ids(processor, preset))),
    }
    kind = model_type(preset)
    pv = out["pixel_values"]
    if kind in PIXTRAL_KINDS:
        return _pixtral_output_counts(processor, out, counts)
    if kind in GEMMA_FAMILIES:
        counts["num_tokens"] = int(ids.shape[0])  # the placeholder expands to the whole block
        counts.update(_gemma_fields(processor, out, Size.from_pil(pil_image.size), preset))
        return counts
    if kind in (LLAVA_NEXT, ONEVISION):
        counts["num_crops"] = int(pv.shape[1])  # (batch, crops, 3, tile, tile)
        counts["image_sizes"] = tuple(int(v) for v in out["image_sizes"][0])
        size_hw = Size(*counts["image_sizes"])
    elif kind == INTERNVL:
        counts["num_crops"] = counts["num_patches"] = int(pv.shape[0])  # (crops, 3, 448, 448)
        size_hw = Size.from_pil(pil_image.size)
    else:
        t, gh, gw = (int(v) for v in out["image_grid_thw"][0])
        counts.update(num_crops=1, image_grid_thw=(t, gh, gw), num_patch_rows=int(pv.shape[0]))
        size_hw = Size.from_pil(pil_image.size)
        patch = processor.image_processor.patch_size
        counts["canvas_hw"] = (gh * patch, gw * patch)
        counts["grid"] = (gh // processor.image_processor.merge_size,
                          gw // processor.image_processor.merge_size)
        return counts
    counts.update({k: v for k, v in _grid_fields(processor, size_hw, preset).items()
                   if k in ("grid", "canvas_hw")})
    return counts


def _gemma3_grid(num_crops: int, size_hw: Size) -> tuple[int, int]:
    if not num_crops:
        return (1, 1)
    return (1, num_crops) if size_hw.width >= size_hw.height else (num_crops, 1)


def _gemma_fields(processor, out, size_hw: Size, preset: Preset) -> dict[str, Any]:
    """Gemma 3: views in pixel_values (1 + crops, 3, 896, 896). Gemma 4: the resized size from
    the real patches' positions (pixel_values rows are 16-px patches padded to 9B rows)."""
    if model_type(preset) == GEMMA3:
        views = int(out["pixel_values"].shape[0])
        side = int(out["pixel_values"].shape[-1])
        return {"num_crops": views, "grid": _gemma3_grid(views - 1, size_hw), "canvas_hw": (side, side)}
    ip = processor.image_processor
    pos = out["image_position_ids"][0]  # (max_patches, 2) as (x, y); -1 for padding
    real = pos[pos[:, 0] >= 0]
    height = (int(real[:, 1].max()) + 1) * ip.patch_size
    width = (int(real[:, 0].max()) + 1) * ip.patch_size
    m = ip.patch_size * ip.pooling_kernel_size
    return {"num_crops": 1, "grid": (height // m, width // m), "canvas_hw": (height, width)}


def gemma3_pan_and_scan_boxes(processor, size_hw: Size, preset: Preset) -> list[tuple[int, int, int, int]]:
    """The crops the image processor's own `pan_and_scan_batched` cuts for this size, as
    (x0, y0, x1, y1) boxes in processor order. It runs on a meta tensor, so no pixels are made
    and any size is cheap; the slices' storage offsets give the positions. (transformers'
    counting helper ignores pan-and-scan and always says 256, spec 2.7.)"""
    import torch

    s: Gemma3Settings = preset.settings
    if not s.do_pan_and_scan:
        return []
    h, w = size_hw.hw
    image = torch.empty((1, 3, h, w), device="meta")
    crops = processor.image_processor.pan_and_scan_batched(
        image, pan_and_scan_min_crop_size=s.pan_and_scan_min_crop_size,
        pan_and_scan_max_num_crops=s.pan_and_scan_max_num_crops,
        pan_and_scan_min_ratio_to_activate=s.pan_and_scan_min_ratio_to_activate)
    boxes = []
    for crop in crops:
        y0, x0 = divmod(crop.storage_offset(), w)
        boxes.append((x0, y0, x0 + int(crop.shape[-1]), y0 + int(crop.shape[-2])))
    return boxes


@functools.lru_cache(maxsize=4096)
def _expanded_counts(processor, preset: Preset, replacement: str) -> tuple[tuple[str, int], ...]:
    """Soft tokens, markers and all tokens of the processor's own replacement string (cached:
    the string depends only on the crop count / soft-token count)."""
    ids = processor.tokenizer(replacement, add_special_tokens=False)["input_ids"]
    wrappers = set(_wrapper_ids(processor, preset))
    return (("num_image_tokens", ids.count(soft_token_id(processor, preset))),
            ("num_wrapper_tokens", sum(i in wrappers for i in ids)), ("num_tokens", len(ids)))


def _gemma_counts_from_size(processor, size_hw: Size, preset: Preset) -> dict[str, Any]:
    """Without pixels. Gemma 4: the counting helper (it honours max_soft_tokens) and the
    library's resize function. Gemma 3: crops from gemma3_pan_and_scan_boxes (the helper says
    256 whatever the crops). Both: the sequence from the processor's own replace_image_token."""
    h, w = size_hw.hw
    if model_type(preset) == GEMMA4:
        from transformers.models.gemma4.image_processing_gemma4 import get_aspect_ratio_preserving_size

        ip = processor.image_processor
        n = int(processor._get_num_multimodal_tokens(image_sizes=[(h, w)])["num_image_tokens"][0])
        th, tw = get_aspect_ratio_preserving_size(
            h, w, patch_size=ip.patch_size, pooling_kernel_size=ip.pooling_kernel_size,
            max_patches=ip.max_soft_tokens * ip.pooling_kernel_size ** 2)
        m = ip.patch_size * ip.pooling_kernel_size
        replacement = processor.replace_image_token({"num_soft_tokens_per_image": [n]}, 0)
        return {**dict(_expanded_counts(processor, preset, replacement)), "num_crops": 1,
                "grid": (th // m, tw // m), "canvas_hw": (th, tw)}
    k = len(gemma3_pan_and_scan_boxes(processor, size_hw, preset))
    replacement = processor.replace_image_token({"num_crops": [k]}, 0)
    size = processor.image_processor.size
    return {**dict(_expanded_counts(processor, preset, replacement)), "num_crops": 1 + k,
            "grid": _gemma3_grid(k, size_hw), "canvas_hw": (size.height, size.width)}


def processor_counts_from_size(processor, size_hw: Size, preset: Preset) -> dict[str, Any]:
    """The same fields as `processor_counts`, from the processor's own counting API
    (`_get_num_multimodal_tokens`, `get_number_of_image_patches`, the model's
    `image_size_to_num_patches`) without making pixels. Qwen raises ValueError above 200:1."""
    kind = model_type(preset)
    if kind in GEMMA_FAMILIES:
        return _gemma_counts_from_size(processor, size_hw, preset)
    if kind in WAVE2_CONFIGS:
        return _wave2_counts_from_size(processor, size_hw, preset)
    h, w = size_hw.hw
    if kind in PIXTRAL_KINDS:
        return _pixtral_counts_from_size(processor, size_hw)
    mm = processor._get_num_multimodal_tokens(image_sizes=[(h, w)])
    total = int(mm["num_image_tokens"][0])
    fields = _grid_fields(processor, size_hw, preset)
    counts: dict[str, Any] = {"grid": fields["grid"], "canvas_hw": fields["canvas_hw"]}
    if kind in (LLAVA_NEXT, ONEVISION):
        counts.update(num_image_tokens=total, num_wrapper_tokens=0,
                      num_crops=fields["num_crops_model"], image_sizes=(h, w))
    elif kind == INTERNVL:
        patches = int(mm["num_image_patches"][0])
        # _get_num_multimodal_tokens counts <img> and </img> as well
        counts.update(num_image_tokens=processor.image_seq_length * patches,
                      num_wrapper_tokens=total - processor.image_seq_length * patches,
                      num_crops=patches, num_patches=patches)
    else:
        patch, merge = processor.image_processor.patch_size, processor.image_processor.merge_size
        rows = int(mm["num_image_patches"][0])
        gh, gw = fields["canvas_hw"][0] // patch, fields["canvas_hw"][1] // patch
        counts.update(num_image_tokens=total, num_wrapper_tokens=len(_wrapper_ids(processor, preset)),
                      num_crops=1, image_grid_thw=(1, gh, gw), num_patch_rows=rows)
        counts["grid"] = (gh // merge, gw // merge)
    return counts


PIXTRAL_HELPER_MISREAD_HEIGHTS = (1, 3)


def _pixtral_counts_from_size(processor, size_hw: Size) -> dict[str, Any]:
    """PixtralProcessor's `_get_num_multimodal_tokens` (the total: [IMG] + [IMG_BREAK] +
    [IMG_END]) for every height but 1 and 3, which it misreads as a channel axis (2026 spec
    6.7); for those, the resize function the processor itself applies (`pixtral_resized_hw`)."""
    h, w = size_hw.hw
    rh, rw = pixtral_resized_hw(processor, size_hw)
    p = processor.patch_size * processor.spatial_merge_size
    rows, cols = rh // p, rw // p
    if not rows or not cols:  # the processor raises ValueError resizing to a 0-px side
        raise ValueError(f"PixtralImageProcessor cannot resize {size_hw} to {rw}x{rh}")
    if h in PIXTRAL_HELPER_MISREAD_HEIGHTS:
        total = rows * (cols + 1)
    else:
        total = int(processor._get_num_multimodal_tokens(image_sizes=[(h, w)])["num_image_tokens"][0])
        # the helper's total splits into [IMG] and one special per row only for this grid
        if total != rows * (cols + 1):
            raise AssertionError(f"Pixtral helper total {total} is not {rows} x ({cols} + 1)")
    return {"grid": (rows, cols), "canvas_hw": (rh, rw), "image_sizes": (rh, rw), "num_crops": 1,
            "num_image_tokens": total - rows, "num_wrapper_tokens": rows,
            "num_img_break": rows - 1, "num_img_end": 1}


def _qwen_unpatchify(rows, grid_thw, patch: int, merge: int, temporal: int):
    """Inverse of Qwen2VLImageProcessor.patchify for one image: (rows, C*T*P*P) -> (C, H, W),
    first temporal frame."""
    _, gh, gw = (int(v) for v in grid_thw)
    x = rows.reshape(gh // merge, gw // merge, merge, merge, -1, temporal, patch, patch)
    x = x[:, :, :, :, :, 0]  # (gh/m, gw/m, m, m, C, P, P)
    x = x.permute(4, 0, 2, 5, 1, 3, 6)  # (C, gh/m, m, P, gw/m, m, P)
    return x.reshape(x.shape[0], gh * patch, gw * patch)


def _gemma4_unpatchify(outputs, patch: int):
    """Inverse of Gemma4's convert_image_to_patches for one image: the real (unpadded) rows
    (ph*pw, P*P*C), row-major patches of (P, P, C) -> (C, ph*P, pw*P)."""
    pos = outputs["image_position_ids"][0]
    real = pos[:, 0] >= 0
    pw, ph = (int(v) + 1 for v in pos[real].max(dim=0).values)
    rows = outputs["pixel_values"][0][real].float()
    x = rows.reshape(ph, pw, patch, patch, -1).permute(4, 0, 2, 1, 3)  # (C, ph, P, pw, P)
    return x.reshape(x.shape[0], ph * patch, pw * patch)


def pixel_values_to_uint8(processor, outputs, preset: Preset) -> list[np.ndarray]:
    """De-normalise one image's pixel_values back to (H, W, 3) uint8 arrays, one per crop in
    pixel_values order (Qwen: one array, the resized image reassembled from its patches)."""
    ip = processor.image_processor
    pv = outputs["pixel_values"].float()
    kind = model_type(preset)
    if kind in WAVE2_CONFIGS:
        crops = _wave2_pixel_crops(outputs, preset)
    elif kind in (LLAVA_NEXT, ONEVISION):
        crops = list(pv[0])
    elif kind in (INTERNVL, GEMMA3):
        crops = list(pv)  # Gemma 3: (1 + crops, 3, 896, 896), whole-image view first
    elif kind == GEMMA4:
        crops = [_gemma4_unpatchify(outputs, ip.patch_size)]
    elif kind in PIXTRAL_KINDS:
        rh, rw = (int(v) for v in outputs["image_sizes"][0])
        crops = [pv[0][:, :rh, :rw]]  # batch padding is right / bottom only
    else:
        crops = [_qwen_unpatchify(pv, outputs["image_grid_thw"][0], ip.patch_size,
                                  ip.merge_size, ip.temporal_patch_size)]
    normalized = getattr(ip, "do_normalize", True)  # Gemma 4: rescale only
    mean = np.asarray(ip.image_mean if normalized else (0.0,) * 3, dtype=np.float64)[:, None, None]
    std = np.asarray(ip.image_std if normalized else (1.0,) * 3, dtype=np.float64)[:, None, None]
    result = []
    for crop in crops:
        values = (crop.numpy().astype(np.float64) * std + mean) / ip.rescale_factor
        result.append(np.clip(np.rint(values), 0, 255).astype(np.uint8).transpose(1, 2, 0))
    return result


# ------------------------------------------------------------------ SmolVLM / Idefics3, Llama 4, Llama 3.2
def placeholder_token_id(processor, preset: Preset) -> int:
    """The id the model fills with image features. Llama 4: `<|patch|>` (config.image_token_index),
    NOT `processor.image_token_id`, which is `<|image|>` (one per image). Gemma 3's
    `processor.image_token_id` is the `<start_of_image>` marker; its soft token is the
    tokenizer's image_token."""
    if model_type(preset) == GEMMA3:
        return int(processor.tokenizer.image_token_id)
    if model_type(preset) == LLAMA4:
        return int(processor.tokenizer.convert_tokens_to_ids(preset.image_token))
    return int(processor.image_token_id)


def _bos_ids(processor, preset: Preset) -> set[int]:
    # MllamaProcessor writes <|begin_of_text|> after leading images (build_string_from_input)
    if model_type(preset) == MLLAMA:
        return {int(processor.tokenizer.bos_token_id)}
    return set()


def _wave2_counts(processor, pil_image, preset: Preset, out) -> dict[str, Any]:
    ids = [int(v) for v in out["input_ids"][0]]
    kind = model_type(preset)
    pv = out["pixel_values"]
    bos = _bos_ids(processor, preset)
    counts: dict[str, Any] = {
        "num_image_tokens": ids.count(placeholder_token_id(processor, preset)),
        "num_tokens": sum(i not in bos for i in ids), "crop_px": int(pv.shape[-1])}
    if kind in (SMOLVLM, IDEFICS3):
        counts["num_crops"] = int(pv.shape[1])  # (batch, crops, 3, M, M); one image: no padding
        # rows / cols are not returned: read the last <row_i_col_j> marker of the prompt
        markers = [t for t in processor.tokenizer.convert_ids_to_tokens(ids) if t.startswith("<row_")]
        last = markers[-1][1:-1].split("_") if markers else ["row", "0", "col", "0"]
        counts["grid"] = (int(last[1]), int(last[3]))
    elif kind == LLAMA4:
        counts["num_crops"] = int(pv.shape[0])  # (tiles + global, 3, 336, 336)
        tok = processor.tokenizer.convert_tokens_to_ids
        y, x = ids.count(tok(LLAMA4_TOKENS["y_sep"])), ids.count(tok(LLAMA4_TOKENS["x_sep"]))
        counts["grid"] = (y, x // y + 1) if y else (1, 1)  # aspect_ratios is dropped from outputs
        tile = processor.image_processor.size.height
        counts["canvas_hw"] = (counts["grid"][0] * tile, counts["grid"][1] * tile)
    else:
        from transformers.models.mllama.image_processing_mllama import get_all_supported_aspect_ratios

        counts["num_crops"] = int(out["aspect_ratio_mask"][0][0].sum())  # num_tiles is not returned
        arrangement = get_all_supported_aspect_ratios(processor.image_processor.max_image_tiles)
        counts["grid"] = tuple(arrangement[int(out["aspect_ratio_ids"][0][0]) - 1])
        counts["aspect_ratio_id"] = int(out["aspect_ratio_ids"][0][0])
    return counts


def _wave2_counts_from_size(processor, size_hw: Size, preset: Preset) -> dict[str, Any]:
    """SmolVLM / Idefics3: `get_number_of_image_patches` (SmolVLMProcessor has no token helper;
    Idefics3Processor's `_get_num_multimodal_tokens` gives the total) and spec 4.3 for the rest,
    with the tokenizer's own "\\n\\n" length as Idefics3's helper measures it. Llama 4 and Llama
    3.2 have no helper: transformers' canvas functions (`get_best_fit`,
    `get_optimal_tiled_canvas`) give the grid."""
    kind = model_type(preset)
    h, w = size_hw.hw
    ip = processor.image_processor
    if kind in (SMOLVLM, IDEFICS3):
        crops, rows, cols = ip.get_number_of_image_patches(h, w, {})
        n = processor.image_seq_len
        extra = len(processor.tokenizer("\n\n", add_special_tokens=False)["input_ids"]) - 1
        total = n + 3 + ((cols * (n + 2) + 1) * rows + extra if rows else 0)
        if kind == IDEFICS3:
            total = int(processor._get_num_multimodal_tokens(image_sizes=[(h, w)])["num_image_tokens"][0])
        return {"num_image_tokens": n * max(crops, 1), "num_tokens": total,
                "num_crops": max(int(crops), 1), "grid": (int(rows), int(cols)),
                "crop_px": int(ip.max_image_size["longest_edge"])}
    if kind == LLAMA4:
        import torch
        from transformers.models.llama4.image_processing_llama4 import (
            find_supported_resolutions, get_best_fit)

        size = ip.size
        canvases = torch.tensor(find_supported_resolutions(ip.max_patches, size))
        ch, cw = (int(v) for v in get_best_fit((h, w), canvases, ip.resize_to_max_canvas))
        rows, cols = ch // size.height, cw // size.width
        per = (size.height // processor.patch_size) * (size.width // processor.patch_size) \
            // processor.downsample_ratio
        n = rows * cols
        crops = n + (n > 1)
        seps = n if n > 1 else 0
        return {"num_image_tokens": per * crops, "num_tokens": per * crops + seps + 3,
                "num_crops": crops, "grid": (rows, cols), "crop_px": int(size.height),
                "canvas_hw": (ch, cw)}
    from transformers.models.mllama.image_processing_mllama import (
        get_all_supported_aspect_ratios, get_optimal_tiled_canvas)

    tile = ip.size.height
    ch, cw = (int(v) for v in get_optimal_tiled_canvas(h, w, ip.max_image_tiles, tile))
    grid = (ch // tile, cw // tile)
    return {"num_image_tokens": 1, "num_tokens": 1, "num_crops": grid[0] * grid[1], "grid": grid,
            "crop_px": int(tile),
            "aspect_ratio_id": get_all_supported_aspect_ratios(ip.max_image_tiles).index(grid) + 1}


def _wave2_pixel_crops(outputs, preset: Preset) -> list:
    pv = outputs["pixel_values"].float()
    kind = model_type(preset)
    if kind in (SMOLVLM, IDEFICS3):
        return list(pv[0])
    if kind == LLAMA4:
        return list(pv)
    tiles = int(outputs["aspect_ratio_mask"][0][0].sum())
    return list(pv[0, 0, :tiles])  # (B, images, 4 slots, 3, 560, 560)

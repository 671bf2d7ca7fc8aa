"""Released-checkpoint processor settings, keyed by Hugging Face repo id.

These are the values in each checkpoint's `preprocessor_config.json` / `processor_config.json`
and `config.json`, NOT the transformers class defaults, which differ:
LlavaNextImageProcessor defaults to 224 tiles (checkpoints: 336) and Qwen2VLImageProcessor
defaults to max_pixels = 28*28*1280 (checkpoints: 28*28*16384, 12.8x more).
See ../shared/reference/anyres-spec.md sections 1.1, 2.1, 3.1, 4.1.

Pure data: no numpy, torch, gradio or transformers.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Union

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
SIGLIP_MEAN = (0.5, 0.5, 0.5)
SIGLIP_STD = (0.5, 0.5, 0.5)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# LLaVA-v1.6 pinpoints as transformers reads them: (height, width) canvases in pixels.
LLAVA_V16_PINPOINTS_HW = ((336, 672), (672, 336), (672, 672), (1008, 336), (336, 1008))
# LLaVA-OneVision "(1x1),...,(6x6)" with 384 tiles; transformers: first coordinate (height) outer.
ONEVISION_PINPOINTS_HW = tuple((384 * i, 384 * j) for i in range(1, 7) for j in range(1, 7))


@dataclass(frozen=True)
class LlavaNextSettings:
    """LLaVA-NeXT / LLaVA-OneVision 'anyres' preprocessing (spec sections 1 and 2)."""

    tile_size: int  # crop_size and shortest_edge: 336 (CLIP-L/14-336) or 384 (SigLIP-384)
    patch_size: int  # ViT patch side in pixels: 14
    features_per_side: int  # feature cells per tile side: 336 // 14 = 24; SigLIP: 27 (27*14=378)
    pinpoints_hw: tuple[tuple[int, int], ...]  # candidate canvases (height, width), in list order
    max_tiles_downscale: int | None = None  # OneVision "anyres_max_9": bilinear downscale above 9 tiles
    downscale_threshold: float = 1.1  # OneVision: downscale when sqrt(cells / max cells) > 1.1
    pad_fill: int = 0  # padding colour before normalisation: black
    # How many extra tokens the vision tower emits per crop (CLS) that the select strategy
    # removes again: 1 with "default" for CLIP, 0 with "full" for SigLIP.
    num_additional_image_tokens: int = 1
    vision_feature_select_strategy: str = "default"
    image_mean: tuple[float, float, float] = CLIP_MEAN
    image_std: tuple[float, float, float] = CLIP_STD


@dataclass(frozen=True)
class QwenSettings:
    """Qwen2-VL / Qwen2.5-VL native dynamic resolution (spec section 3)."""

    patch_size: int  # 14
    merge_size: int  # 2: 2x2 patches merge into one LLM token, so the resize factor is 28
    temporal_patch_size: int  # 2: a still image is repeated to two frames
    min_pixels: int  # 3136 = 56*56
    max_pixels: int  # 12845056 = 28*28*16384
    max_aspect_ratio: float = 200.0  # smart_resize raises above this
    image_mean: tuple[float, float, float] = CLIP_MEAN
    image_std: tuple[float, float, float] = CLIP_STD

    @property
    def factor(self) -> int:
        return self.patch_size * self.merge_size


@dataclass(frozen=True)
class InternVLSettings:
    """InternVL 2.5 / 3 dynamic tiling with thumbnail (spec section 4)."""

    tile_size: int  # 448
    patch_size: int  # 14: InternViT gives 32x32 patches per tile
    downsample_ratio: float  # 0.5: pixel shuffle packs 2x2 patches, 16x16 = 256 tokens per tile
    min_tiles: int  # 1
    max_tiles: int  # 12
    use_thumbnail: bool = True  # append the whole image at 448x448 last when tiled
    image_mean: tuple[float, float, float] = IMAGENET_MEAN
    image_std: tuple[float, float, float] = IMAGENET_STD

    @property
    def cells_per_side(self) -> int:
        return int(self.tile_size // self.patch_size * self.downsample_ratio)

    @property
    def cell_size(self) -> int:
        return self.tile_size // self.cells_per_side


# ---------------------------------------------------------------- Gemma 3 / Gemma 4
# Checkpoint values from ../shared/reference/anyres-spec-2026.md sections 2.1 and 3.1. Nothing
# could be fetched from the Hub: the values come from THIRD-PARTY copies of the checkpoints'
# preprocessor_config.json / processor_config.json ([3rd] in the spec), backed for Gemma 4 by
# transformers' docs ([doc]: "default is 280", sizes "divisible by 48").
GEMMA_SOFT_TOKEN_BUDGETS = (70, 140, 280, 560, 1120)  # Gemma4 _SUPPORTED_SOFT_TOKENS


@dataclass(frozen=True)
class Gemma3Settings:
    """Gemma 3: the whole image squashed to one 896x896 view, plus optional pan-and-scan crops
    (spec section 2). The checkpoint file leaves the pan-and-scan fields `null`; these are the
    values Gemma3Processor.images_kwargs fills in."""

    view_size: int  # 896: every view (whole image and each crop) is squashed to 896x896 [3rd]
    patch_size: int  # 14: SigLIP gives 64x64 patches per view
    tokens_per_side: int  # 16: AvgPool2d(4) of the 64x64 patches -> 16x16 = 256 soft tokens
    do_pan_and_scan: bool = False  # off as released (processor default False)
    pan_and_scan_max_num_crops: int = 4  # at most this many crops along the long side
    pan_and_scan_min_crop_size: int = 256  # no crops if a crop's short side would be below this
    pan_and_scan_min_ratio_to_activate: float = 1.2  # long/short aspect that turns crops on (>=)
    resample: str = "bilinear"  # resample 2 in the checkpoint file
    image_mean: tuple[float, float, float] = SIGLIP_MEAN
    image_std: tuple[float, float, float] = SIGLIP_STD

    @property
    def cell_size(self) -> int:
        """One soft token's side in view pixels: 896 / 16 = 56."""
        return self.view_size // self.tokens_per_side

    @property
    def tokens_per_view(self) -> int:
        return self.tokens_per_side ** 2


@dataclass(frozen=True)
class Gemma4Settings:
    """Gemma 4: one aspect-preserving resize to a soft-token budget, sides floored to 48 px
    (spec section 3)."""

    patch_size: int  # 16: the vision tower's patch side
    pooling_kernel_size: int  # 3: 3x3 patches pool into one soft token, so one token = 48x48 px
    max_soft_tokens: int  # 280 as released; one of GEMMA_SOFT_TOKEN_BUDGETS
    resample: str = "bicubic"  # resample 3 in the checkpoint file
    # do_normalize false: pixels are only rescaled to [0, 1] (mean 0, std 1)
    image_mean: tuple[float, float, float] = (0.0, 0.0, 0.0)
    image_std: tuple[float, float, float] = (1.0, 1.0, 1.0)

    @property
    def cell_size(self) -> int:
        """One soft token's side in resized pixels: 16 * 3 = 48."""
        return self.patch_size * self.pooling_kernel_size

    @property
    def max_patches(self) -> int:
        return self.max_soft_tokens * self.pooling_kernel_size ** 2


@dataclass(frozen=True)
class SmolVLMSettings:
    """SmolVLM2 / SmolVLM / Idefics3: longest edge to L, round up to M-px tiles, split, add a
    squashed global image (2026 spec section 4)."""

    longest_edge: int  # size.longest_edge L: the long side is resized to exactly L (up or down)
    tile_size: int  # max_image_size.longest_edge M: tile side; L = 4M in every release (4 tiles)
    patch_size: int  # SigLIP patch side: 14 (Idefics3, SmolVLM 2B) or 16 (256M / 500M models)
    scale_factor: int  # the connector's pixel shuffle packs scale x scale patches into a token
    do_image_splitting: bool = True  # False: one M x M squash, no tiles
    # Whether the checkpoint tokenizer writes the last tile row's "\n" and the "\n" before the
    # global image as ONE "\n\n" token, as Idefics3's token helper measures it. Assumed True for
    # the byte-level BPE tokenizers of Llama 3 (Idefics3) and SmolLM2 (SmolVLM); not read
    # from the checkpoints' tokenizer.json (offline).
    merged_double_newline: bool = True
    max_image_size_px: int = 4096  # MAX_IMAGE_SIZE clamp after the longest-edge resize
    resample: str = "lanczos"  # PIL LANCZOS (1) in every checkpoint file
    pad_fill: int = 0
    image_mean: tuple[float, float, float] = SIGLIP_MEAN
    image_std: tuple[float, float, float] = SIGLIP_STD

    @property
    def cells_per_side(self) -> int:
        return self.tile_size // self.patch_size // self.scale_factor

    @property
    def image_seq_len(self) -> int:
        """<image> tokens per tile: (M / patch)^2 / scale^2 = 169, 81 or 64."""
        return self.cells_per_side ** 2

    @property
    def cell_size(self) -> int:
        """A token's side in tile pixels (28, 42, 64); SmolVLM's 384 tiles leave 6 px unseen."""
        return self.patch_size * self.scale_factor


@dataclass(frozen=True)
class Llama4Settings:
    """Llama 4: 336 px tiles on a best-fit canvas of up to max_tiles, content top-left, global
    tile last when tiled (2026 spec section 5.1-5.7)."""

    tile_size: int  # 336
    patch_size: int  # 14: 24 x 24 patches per tile
    pixel_shuffle_ratio: float  # 0.5: 2x2 patches per token -> 12 x 12 = 144 tokens per tile
    max_tiles: int  # max_patches: 16 canvases tiles at most
    resize_to_max_canvas: bool = False  # False: never enlarge a side beyond max(side, 336)
    resample: str = "bilinear"
    pad_fill: int = 0
    image_mean: tuple[float, float, float] = SIGLIP_MEAN
    image_std: tuple[float, float, float] = SIGLIP_STD

    @property
    def cells_per_side(self) -> int:
        return int(self.tile_size // self.patch_size * self.pixel_shuffle_ratio)

    @property
    def cell_size(self) -> int:
        return self.tile_size // self.cells_per_side


@dataclass(frozen=True)
class MllamaSettings:
    """Llama 3.2 Vision: up to 4 tiles of 560 px, fed to cross-attention layers; the prompt holds
    one <|image|> token per image (2026 spec section 5.8)."""

    tile_size: int  # 560
    patch_size: int  # 14: 40 x 40 patches + 1 CLS = 1601 vision states per tile
    max_tiles: int  # max_image_tiles: 4
    resample: str = "bilinear"
    pad_fill: int = 0
    image_mean: tuple[float, float, float] = CLIP_MEAN
    image_std: tuple[float, float, float] = CLIP_STD

    @property
    def patches_per_side(self) -> int:
        return self.tile_size // self.patch_size

    @property
    def states_per_tile(self) -> int:
        return self.patches_per_side ** 2 + 1


Settings = Union[LlavaNextSettings, QwenSettings, InternVLSettings, Gemma3Settings, Gemma4Settings,
                 SmolVLMSettings, Llama4Settings, MllamaSettings]


@dataclass(frozen=True)
class Preset:
    """One released checkpoint: its strategy family, processor settings and token ids."""

    repo_id: str
    strategy: str  # "llava_next" | "llava_onevision" | "qwen2_vl" | "internvl"
    label: str  # short human name for menus
    settings: Settings
    image_token: str  # the placeholder the processor repeats once per visual token
    image_token_id: int
    wrapper_tokens: tuple[str, str] | None = None  # (start, end) around the image tokens
    wrapper_token_ids: tuple[int, int] | None = None
    params_b: float = 0.0  # model size in billions of parameters (for the memory hints)
    notes: tuple[str, ...] = field(default_factory=tuple)

    def with_overrides(self, **overrides) -> "Preset":
        """Copy with user overrides applied to the settings.

        Accepted keys: max_pixels, min_pixels (Qwen); max_tiles, min_tiles (InternVL);
        pinpoints_hw (LLaVA). None values are ignored. A key that does not apply to this
        strategy raises ValueError naming it.
        """
        changes = {k: v for k, v in overrides.items() if v is not None}
        if not changes:
            return self
        allowed = {f.name for f in dataclasses.fields(self.settings)}
        unknown = sorted(set(changes) - allowed)
        if unknown:
            raise ValueError(
                f"{', '.join(unknown)} cannot be set for {self.repo_id} "
                f"({self.strategy}); it accepts: {', '.join(sorted(OVERRIDABLE[self.strategy]))}")
        if "pinpoints_hw" in changes:
            changes["pinpoints_hw"] = tuple(tuple(int(v) for v in p) for p in changes["pinpoints_hw"])
        settings = dataclasses.replace(self.settings, **changes)
        validate_settings(settings)
        return dataclasses.replace(self, settings=settings)


OVERRIDABLE = {
    "llava_next": ("pinpoints_hw",),
    "llava_onevision": ("pinpoints_hw",),
    "qwen2_vl": ("min_pixels", "max_pixels"),
    "internvl": ("min_tiles", "max_tiles"),
    "gemma3": ("do_pan_and_scan", "pan_and_scan_max_num_crops", "pan_and_scan_min_crop_size",
               "pan_and_scan_min_ratio_to_activate"),
    "gemma4": ("max_soft_tokens",),
    "smolvlm": ("longest_edge",),
    "llama4": ("max_tiles",),
    "mllama": (),
}


def _validate_gemma(settings: Settings) -> None:
    if isinstance(settings, Gemma4Settings):
        if settings.max_soft_tokens not in GEMMA_SOFT_TOKEN_BUDGETS:
            raise ValueError(f"max_soft_tokens {settings.max_soft_tokens} is not one of the budgets "
                             f"Gemma 4 supports: {', '.join(map(str, GEMMA_SOFT_TOKEN_BUDGETS))}")
        return
    if not 1 <= settings.pan_and_scan_max_num_crops <= 16:
        raise ValueError(f"pan-and-scan max crops ({settings.pan_and_scan_max_num_crops}) must be "
                         "between 1 and 16 (released: 4)")
    if not 16 <= settings.pan_and_scan_min_crop_size <= 8192:
        raise ValueError(f"pan-and-scan min crop size ({settings.pan_and_scan_min_crop_size}) must "
                         "be between 16 and 8192 px (released: 256)")
    if not 1.0 <= settings.pan_and_scan_min_ratio_to_activate <= 100.0:
        raise ValueError(f"pan-and-scan activation ratio "
                         f"({settings.pan_and_scan_min_ratio_to_activate}) must be between 1 and "
                         "100 (released: 1.2)")


def validate_settings(settings: Settings) -> None:
    """Reject user overrides the real processors would choke on, with a message that says why."""
    if isinstance(settings, (Gemma3Settings, Gemma4Settings)):
        _validate_gemma(settings)
    elif isinstance(settings, QwenSettings):
        if settings.min_pixels < 1 or settings.max_pixels < 1:
            raise ValueError(f"min_pixels ({settings.min_pixels}) and max_pixels "
                             f"({settings.max_pixels}) must be positive")
        if settings.min_pixels > settings.max_pixels:
            raise ValueError(f"min_pixels ({settings.min_pixels}) is larger than max_pixels "
                             f"({settings.max_pixels})")
        if settings.max_pixels < settings.factor ** 2:
            raise ValueError(f"max_pixels ({settings.max_pixels}) is below one "
                             f"{settings.factor}x{settings.factor} token ({settings.factor ** 2})")
    elif isinstance(settings, InternVLSettings):
        if settings.min_tiles < 1:
            raise ValueError(f"min_tiles ({settings.min_tiles}) must be at least 1")
        if settings.max_tiles < settings.min_tiles:
            raise ValueError(f"max_tiles ({settings.max_tiles}) is smaller than min_tiles "
                             f"({settings.min_tiles})")
        if settings.max_tiles > 64:
            raise ValueError(f"max_tiles ({settings.max_tiles}) is above 64, far beyond any "
                             "released checkpoint (12)")
    elif isinstance(settings, SmolVLMSettings):
        if not 1 <= settings.longest_edge <= settings.max_image_size_px:
            raise ValueError(f"longest edge ({settings.longest_edge}) must be between 1 and "
                             f"{settings.max_image_size_px} px")
    elif isinstance(settings, Llama4Settings):
        if not 1 <= settings.max_tiles <= 64:
            raise ValueError(f"max_tiles ({settings.max_tiles}) must be between 1 and 64 "
                             "(the release uses 16)")
    elif isinstance(settings, LlavaNextSettings):
        if not settings.pinpoints_hw:
            raise ValueError("the canvas list (grid pinpoints) is empty")
        for h, w in settings.pinpoints_hw:
            if h < settings.tile_size or w < settings.tile_size:
                raise ValueError(f"canvas {w}x{h} is smaller than one {settings.tile_size}px tile")
            if h % settings.tile_size or w % settings.tile_size:
                raise ValueError(f"canvas {w}x{h} is not a multiple of the "
                                 f"{settings.tile_size}px tile")


def _llava_next(repo_id: str, label: str, params_b: float) -> Preset:
    return Preset(
        repo_id=repo_id, strategy="llava_next", label=label, params_b=params_b,
        settings=LlavaNextSettings(tile_size=336, patch_size=14, features_per_side=24,
                                   pinpoints_hw=LLAVA_V16_PINPOINTS_HW),
        image_token="<image>", image_token_id=32000)


def _onevision(repo_id: str, label: str, params_b: float) -> Preset:
    return Preset(
        repo_id=repo_id, strategy="llava_onevision", label=label, params_b=params_b,
        settings=LlavaNextSettings(
            tile_size=384, patch_size=14, features_per_side=27,
            pinpoints_hw=ONEVISION_PINPOINTS_HW, max_tiles_downscale=9,
            num_additional_image_tokens=0, vision_feature_select_strategy="full",
            image_mean=SIGLIP_MEAN, image_std=SIGLIP_STD),
        image_token="<image>", image_token_id=151646)


def _qwen(repo_id: str, label: str, params_b: float) -> Preset:
    return Preset(
        repo_id=repo_id, strategy="qwen2_vl", label=label, params_b=params_b,
        settings=QwenSettings(patch_size=14, merge_size=2, temporal_patch_size=2,
                              min_pixels=56 * 56, max_pixels=28 * 28 * 16384),
        image_token="<|image_pad|>", image_token_id=151655,
        wrapper_tokens=("<|vision_start|>", "<|vision_end|>"), wrapper_token_ids=(151652, 151653))


def _internvl(repo_id: str, label: str, params_b: float) -> Preset:
    return Preset(
        repo_id=repo_id, strategy="internvl", label=label, params_b=params_b,
        settings=InternVLSettings(tile_size=448, patch_size=14, downsample_ratio=0.5,
                                  min_tiles=1, max_tiles=12),
        image_token="<IMG_CONTEXT>", image_token_id=151667,
        wrapper_tokens=("<img>", "</img>"), wrapper_token_ids=(151665, 151666))


# Token ids from transformers' configuration_gemma3.py / configuration_gemma4.py (spec 2.1, 3.1).
_GEMMA_NOTE_3RD = ("Checkpoint values known only from third-party copies of the checkpoint's "
                   "processor files (the Hub was unreachable); see the spec's source tags.")


def _gemma3(repo_id: str, label: str, params_b: float) -> Preset:
    # [3rd] size 896x896, resample 2, mean/std 0.5, pan-and-scan null -> processor defaults
    return Preset(
        repo_id=repo_id, strategy="gemma3", label=label, params_b=params_b,
        settings=Gemma3Settings(view_size=896, patch_size=14, tokens_per_side=16),
        image_token="<image_soft_token>", image_token_id=262144,
        wrapper_tokens=("<start_of_image>", "<end_of_image>"), wrapper_token_ids=(255999, 256000),
        notes=(_GEMMA_NOTE_3RD,))


def _gemma4(repo_id: str, label: str, params_b: float) -> Preset:
    # [3rd] processor_config.json image_processor: max_soft_tokens 280, patch 16, pooling 3,
    # resample 3, do_normalize false; [doc] "default is 280". Token strings [3rd], ids [code].
    return Preset(
        repo_id=repo_id, strategy="gemma4", label=label, params_b=params_b,
        settings=Gemma4Settings(patch_size=16, pooling_kernel_size=3, max_soft_tokens=280),
        image_token="<|image|>", image_token_id=258880,
        wrapper_tokens=("<|image>", "<image|>"), wrapper_token_ids=(255999, 258882),
        notes=(_GEMMA_NOTE_3RD,))
# SmolVLM2 / SmolVLM / Idefics3 (2026 spec 4.1). Every value is [3rd]: from third-party copies of
# the checkpoints' preprocessor_config.json / config.json (the Hub is offline); SmolVLM2-2.2B's
# are the weakest (vLLM's examples pass max_image_size 384 explicitly). The transformers class
# defaults are Idefics3's (364 px tiles, 169 tokens) and wrong for every SmolVLM.
SMOLVLM_THIRD_PARTY = ("Checkpoint values known only from a third-party copy of the checkpoint's "
                       "processor files (the Hub could not be read).",)
SMOLVLM_TOKENS = {"fake": "<fake_token_around_image>", "global": "<global-img>",
                  "row_col": "<row_{row}_col_{col}>", "newline": "\n"}


def _smolvlm(repo_id: str, label: str, params_b: float, tile: int, patch: int, scale: int,
             image_token_id: int) -> Preset:
    return Preset(
        repo_id=repo_id, strategy="smolvlm", label=label, params_b=params_b,
        settings=SmolVLMSettings(longest_edge=4 * tile, tile_size=tile, patch_size=patch,
                                 scale_factor=scale),
        image_token="<image>", image_token_id=image_token_id,
        wrapper_tokens=(SMOLVLM_TOKENS["fake"], SMOLVLM_TOKENS["fake"]),
        notes=SMOLVLM_THIRD_PARTY)


# Llama 4 (2026 spec 5.1): [code] transformers' conversion script saves the processor with its
# class defaults, so checkpoint = class defaults. config.image_token_index 200092 is <|patch|>,
# the id the model fills (processor.image_token_id is <|image|>, once per image).
LLAMA4_TOKENS = {"start": "<|image_start|>", "end": "<|image_end|>", "image": "<|image|>",
                 "x_sep": "<|tile_x_separator|>", "y_sep": "<|tile_y_separator|>"}


def _llama4(repo_id: str, label: str, params_b: float) -> Preset:
    return Preset(
        repo_id=repo_id, strategy="llama4", label=label, params_b=params_b,
        settings=Llama4Settings(tile_size=336, patch_size=14, pixel_shuffle_ratio=0.5, max_tiles=16),
        image_token="<|patch|>", image_token_id=200092,
        wrapper_tokens=(LLAMA4_TOKENS["start"], LLAMA4_TOKENS["end"]))


def _mllama(repo_id: str, label: str, params_b: float) -> Preset:
    # [3rd] copy of meta-llama/Llama-3.2-11B-Vision-Instruct's preprocessor_config.json (2026
    # spec 5.8); <|image|> is id 128256 in its config (image_token_index).
    return Preset(
        repo_id=repo_id, strategy="mllama", label=label, params_b=params_b,
        settings=MllamaSettings(tile_size=560, patch_size=14, max_tiles=4),
        image_token="<|image|>", image_token_id=128256,
        notes=("Checkpoint values known only from a third-party copy of the checkpoint's "
               "processor file (the Hub could not be read).",
               "Cross-attention model: the prompt holds one <|image|> token; the tiles reach the "
               "text only through the cross-attention layers."))


PRESETS: dict[str, Preset] = {p.repo_id: p for p in (
    _llava_next("llava-hf/llava-v1.6-mistral-7b-hf", "LLaVA-NeXT (v1.6) Mistral-7B", 7.6),
    _llava_next("llava-hf/llava-v1.6-vicuna-7b-hf", "LLaVA-NeXT (v1.6) Vicuna-7B", 7.1),
    _onevision("llava-hf/llava-onevision-qwen2-0.5b-ov-hf", "LLaVA-OneVision 0.5B", 0.9),
    _onevision("llava-hf/llava-onevision-qwen2-7b-ov-hf", "LLaVA-OneVision 7B", 8.0),
    _qwen("Qwen/Qwen2-VL-2B-Instruct", "Qwen2-VL 2B", 2.2),
    _qwen("Qwen/Qwen2-VL-7B-Instruct", "Qwen2-VL 7B", 8.3),
    _qwen("Qwen/Qwen2.5-VL-3B-Instruct", "Qwen2.5-VL 3B", 3.8),
    _qwen("Qwen/Qwen2.5-VL-7B-Instruct", "Qwen2.5-VL 7B", 8.3),
    _internvl("OpenGVLab/InternVL3-1B-hf", "InternVL3 1B", 0.9),
    _internvl("OpenGVLab/InternVL3-2B-hf", "InternVL3 2B", 2.1),
    _internvl("OpenGVLab/InternVL3-8B-hf", "InternVL3 8B", 7.9),
    # Gemma 3 / Gemma 4; sizes approximate, for memory hints (E2B / E4B: "effective" sizes in
    # the names; with their per-layer embeddings the weights hold about 5 and 8 billion)
    _gemma3("google/gemma-3-4b-it", "Gemma 3 4B", 4.3),
    _gemma3("google/gemma-3-12b-it", "Gemma 3 12B", 12.2),
    _gemma3("google/gemma-3-27b-it", "Gemma 3 27B", 27.4),
    _gemma4("google/gemma-4-E2B-it", "Gemma 4 E2B", 5.1),
    _gemma4("google/gemma-4-E4B-it", "Gemma 4 E4B", 8.0),
    _gemma4("google/gemma-4-31B-it", "Gemma 4 31B", 31.0),
    _gemma4("google/gemma-4-26B-A4B-it", "Gemma 4 26B-A4B", 26.0),
    # SmolVLM / Idefics3: tile M, ViT patch, pixel-shuffle scale, <image> id (config
    # image_token_id: 49190 in the 256M / 500M copies [3rd], assumed the same for the 2B ones;
    # Idefics3: 128257, the class default)
    _smolvlm("HuggingFaceTB/SmolVLM2-2.2B-Instruct", "SmolVLM2 2.2B", 2.2, 384, 14, 3, 49190),
    _smolvlm("HuggingFaceTB/SmolVLM2-500M-Video-Instruct", "SmolVLM2 500M", 0.5, 512, 16, 4, 49190),
    _smolvlm("HuggingFaceTB/SmolVLM2-256M-Video-Instruct", "SmolVLM2 256M", 0.26, 512, 16, 4, 49190),
    _smolvlm("HuggingFaceTB/SmolVLM-Instruct", "SmolVLM 2B", 2.2, 384, 14, 3, 49190),
    _smolvlm("HuggingFaceM4/Idefics3-8B-Llama3", "Idefics3 8B", 8.5, 364, 14, 2, 128257),
    _llama4("meta-llama/Llama-4-Scout-17B-16E-Instruct", "Llama 4 Scout 17Bx16E", 109.0),
    _llama4("meta-llama/Llama-4-Maverick-17B-128E-Instruct", "Llama 4 Maverick 17Bx128E", 400.0),
    _mllama("meta-llama/Llama-3.2-11B-Vision-Instruct", "Llama 3.2 Vision 11B", 10.7),
)}

# Short names people type; each points at the family's smallest or best-known checkpoint.
ALIASES: dict[str, str] = {
    "llava-next": "llava-hf/llava-v1.6-mistral-7b-hf",
    "llava-onevision": "llava-hf/llava-onevision-qwen2-0.5b-ov-hf",
    "qwen2-vl": "Qwen/Qwen2-VL-2B-Instruct",
    "qwen2.5-vl": "Qwen/Qwen2.5-VL-3B-Instruct",
    "internvl": "OpenGVLab/InternVL3-1B-hf",
    "gemma-3": "google/gemma-3-4b-it",
    "gemma-4": "google/gemma-4-E2B-it",
    "smolvlm2": "HuggingFaceTB/SmolVLM2-2.2B-Instruct",
    "idefics3": "HuggingFaceM4/Idefics3-8B-Llama3",
    "llama-4": "meta-llama/Llama-4-Scout-17B-16E-Instruct",
    "llama-3.2-vision": "meta-llama/Llama-3.2-11B-Vision-Instruct",
}

# One representative per strategy family, for side-by-side comparisons.
FAMILY_DEFAULTS: dict[str, str] = {
    "llava_next": "llava-hf/llava-v1.6-mistral-7b-hf",
    "llava_onevision": "llava-hf/llava-onevision-qwen2-0.5b-ov-hf",
    "qwen2_vl": "Qwen/Qwen2-VL-2B-Instruct",
    "internvl": "OpenGVLab/InternVL3-1B-hf",
    "gemma3": "google/gemma-3-4b-it",
    "gemma4": "google/gemma-4-E2B-it",
    "smolvlm": "HuggingFaceTB/SmolVLM2-2.2B-Instruct",
    "llama4": "meta-llama/Llama-4-Scout-17B-16E-Instruct",
    "mllama": "meta-llama/Llama-3.2-11B-Vision-Instruct",
}


def get_preset(name: str) -> Preset:
    """Look up a preset by HF repo id or short alias (case-insensitive)."""
    key = (name or "").strip()
    if key in PRESETS:
        return PRESETS[key]
    lowered = {k.lower(): k for k in PRESETS}
    if key.lower() in lowered:
        return PRESETS[lowered[key.lower()]]
    if key.lower() in ALIASES:
        return PRESETS[ALIASES[key.lower()]]
    known = ", ".join(list(ALIASES) + list(PRESETS))
    raise ValueError(f"unknown model {name!r}; known models: {known}")


def list_presets() -> list[Preset]:
    return list(PRESETS.values())

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
    # qwen-vl-utils' MIN_PIXELS when it differs from the checkpoint's (Qwen3-VL: 4 * 32 * 32 =
    # 4096 against the file's 65536); None: the same as min_pixels (Qwen2-VL: 3136 in both).
    utils_min_pixels: int | None = None
    # the vision model feeds ViT features into the decoder at several layers (Qwen3-VL DeepStack)
    deepstack: bool = False

    @property
    def factor(self) -> int:
        return self.patch_size * self.merge_size


@dataclass(frozen=True)
class PixtralSettings:
    """Pixtral / Mistral Small 3.1 native resolution with [IMG_BREAK] rows (spec 2026 section 6)."""

    patch_size: int  # ViT patch side: 16 (pixtral-12b), 14 (Mistral Small 3.1)
    merge_size: int  # spatial_merge_size: 1 (pixtral-12b), 2 (Mistral3 patch merger, 2x2)
    longest_edge: int  # size.longest_edge: images above it are scaled down (floor), never up
    # vision_config.image_size: the 2-D RoPE table covers image_size / patch_size positions per
    # side, so a longest_edge above it breaks the model (spec 6.5); overrides are capped here
    vision_image_size: int
    image_mean: tuple[float, float, float] = CLIP_MEAN
    image_std: tuple[float, float, float] = CLIP_STD

    @property
    def token_px(self) -> int:
        """Side of the square of pixels one [IMG] token covers: patch_size * merge_size."""
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


Settings = Union[LlavaNextSettings, QwenSettings, InternVLSettings, PixtralSettings]


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
    "qwen3_vl": ("min_pixels", "max_pixels"),
    "pixtral": ("longest_edge",),
}


def validate_settings(settings: Settings) -> None:
    """Reject user overrides the real processors would choke on, with a message that says why."""
    if isinstance(settings, QwenSettings):
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
    elif isinstance(settings, PixtralSettings):
        if settings.longest_edge < 1:
            raise ValueError(f"longest_edge ({settings.longest_edge}) must be at least 1 px")
        if settings.longest_edge > settings.vision_image_size:
            raise ValueError(
                f"longest_edge ({settings.longest_edge}) is above the vision tower's image_size "
                f"({settings.vision_image_size}): its 2-D position table has no rows for larger views")
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


# ---- Qwen3-VL / Qwen3.5: the Qwen strategy with factor 32 (spec 2026 section 1.2).
# min 65536 / max 16777216 (size.shortest_edge / longest_edge): [issue] QwenLM/Qwen3-VL#1836 quotes
# Qwen3-VL-8B-Instruct's preprocessor_config.json; patch 16 / merge 2 / temporal 2 and mean/std 0.5
# only from [3rd] copies of the files (and the qwen-vl-utils README: "image_patch_size 16").
# Token ids: the config classes' defaults (configuration_qwen3_vl.py, configuration_qwen3_5.py).
QWEN3_THIRD_PARTY = ("Qwen3-VL checkpoint values: min/max pixels as quoted from Qwen3-VL-8B-Instruct's "
                     "file in QwenLM/Qwen3-VL#1836; patch 16 and mean/std 0.5 only known from "
                     "third-party copies of the checkpoint files")
QWEN3_5_THIRD_PARTY = ("Qwen3.5 checkpoint values (patch 16, 65,536..16,777,216 px, mean/std 0.5) are "
                       "only known from a third-party copy of a Qwen3.5 preprocessor file")


def _qwen3(repo_id: str, label: str, params_b: float, qwen3_5: bool = False) -> Preset:
    ids = (248056, 248053, 248054) if qwen3_5 else (151655, 151652, 151653)
    return Preset(
        repo_id=repo_id, strategy="qwen3_vl", label=label, params_b=params_b,
        settings=QwenSettings(patch_size=16, merge_size=2, temporal_patch_size=2,
                              min_pixels=65536, max_pixels=16777216, image_mean=SIGLIP_MEAN,
                              image_std=SIGLIP_STD, utils_min_pixels=4 * 32 * 32,
                              deepstack=not qwen3_5),  # Qwen3.5's vision model has no deepstack
        image_token="<|image_pad|>", image_token_id=ids[0],
        wrapper_tokens=("<|vision_start|>", "<|vision_end|>"), wrapper_token_ids=ids[1:],
        notes=(QWEN3_5_THIRD_PARTY if qwen3_5 else QWEN3_THIRD_PARTY,))


# ---- InternVL3.5 (-HF): transformers 5.24 loads them as model_type "internvl" (GotOcr2 image
# processor), the InternVL3 strategy (spec 2026 section 7). The -HF preprocessor files could not be
# read: 448 px, 1..12 tiles and ImageNet mean/std are InternVL3-hf's values, assumed.
INTERNVL3_5_UNVERIFIED = ("InternVL3.5-HF processor values (448 px tiles, 1 to 12 tiles, ImageNet "
                          "mean/std) are assumed equal to InternVL3-hf's: the -HF files were not read")

# ---- Pixtral / Mistral Small 3.1 (spec 2026 section 6.1).
# pixtral-12b: the PixtralImageProcessor / PixtralProcessor class defaults (1024, patch 16, merge 1),
# assumed equal to the checkpoint's file, which was not read; [IMG] id 10 per a [3rd] config copy.
# Mistral-Small-3.1: [3rd] copy of the processor file (patch 14, longest 1540, CLIP, bicubic) and
# of config.json (spatial_merge_size 2, vision image_size 1540).
PIXTRAL_ASSUMED = ("pixtral-12b processor values are transformers' class defaults (longest edge "
                   "1024, patch 16), assumed equal to the checkpoint file, which was not read")
MISTRAL3_THIRD_PARTY = ("Mistral Small 3.1 values (longest edge 1540, patch 14, 2x2 merge, vision "
                        "image_size 1540) are only known from third-party copies of its files")


def _pixtral(repo_id: str, label: str, params_b: float, mistral3: bool) -> Preset:
    settings = (PixtralSettings(patch_size=14, merge_size=2, longest_edge=1540, vision_image_size=1540)
                if mistral3 else
                PixtralSettings(patch_size=16, merge_size=1, longest_edge=1024, vision_image_size=1024))
    return Preset(repo_id=repo_id, strategy="pixtral", label=label, params_b=params_b,
                  settings=settings, image_token="[IMG]", image_token_id=10,
                  wrapper_tokens=None,
                  notes=(MISTRAL3_THIRD_PARTY if mistral3 else PIXTRAL_ASSUMED,))


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
    # Qwen3-VL / Qwen3.5 (sizes: the nominal ones in the repo names)
    _qwen3("Qwen/Qwen3-VL-2B-Instruct", "Qwen3-VL 2B", 2.0),
    _qwen3("Qwen/Qwen3-VL-4B-Instruct", "Qwen3-VL 4B", 4.0),
    _qwen3("Qwen/Qwen3-VL-8B-Instruct", "Qwen3-VL 8B", 8.0),
    _qwen3("Qwen/Qwen3-VL-30B-A3B-Instruct", "Qwen3-VL 30B-A3B (MoE)", 30.0),
    _qwen3("Qwen/Qwen3.5-2B", "Qwen3.5 2B", 2.0, qwen3_5=True),
    _qwen3("Qwen/Qwen3.5-9B", "Qwen3.5 9B", 9.0, qwen3_5=True),
    # InternVL3.5
    dataclasses.replace(_internvl("OpenGVLab/InternVL3_5-1B-HF", "InternVL3.5 1B", 1.1),
                        notes=(INTERNVL3_5_UNVERIFIED,)),
    dataclasses.replace(_internvl("OpenGVLab/InternVL3_5-2B-HF", "InternVL3.5 2B", 2.3),
                        notes=(INTERNVL3_5_UNVERIFIED,)),
    dataclasses.replace(_internvl("OpenGVLab/InternVL3_5-8B-HF", "InternVL3.5 8B", 8.5),
                        notes=(INTERNVL3_5_UNVERIFIED,)),
    # Pixtral / Mistral Small 3.1
    _pixtral("mistral-community/pixtral-12b", "Pixtral 12B", 12.0, mistral3=False),
    _pixtral("mistralai/Mistral-Small-3.1-24B-Instruct-2503", "Mistral Small 3.1 24B", 24.0,
             mistral3=True),
)}

# Short names people type; each points at the family's smallest or best-known checkpoint.
ALIASES: dict[str, str] = {
    "llava-next": "llava-hf/llava-v1.6-mistral-7b-hf",
    "llava-onevision": "llava-hf/llava-onevision-qwen2-0.5b-ov-hf",
    "qwen2-vl": "Qwen/Qwen2-VL-2B-Instruct",
    "qwen2.5-vl": "Qwen/Qwen2.5-VL-3B-Instruct",
    "internvl": "OpenGVLab/InternVL3-1B-hf",
    "qwen3-vl": "Qwen/Qwen3-VL-2B-Instruct",
    "qwen3.5": "Qwen/Qwen3.5-2B",
    "internvl3.5": "OpenGVLab/InternVL3_5-1B-HF",
    "pixtral": "mistral-community/pixtral-12b",
    "mistral-small-3.1": "mistralai/Mistral-Small-3.1-24B-Instruct-2503",
}

# One representative per strategy family, for side-by-side comparisons.
FAMILY_DEFAULTS: dict[str, str] = {
    "llava_next": "llava-hf/llava-v1.6-mistral-7b-hf",
    "llava_onevision": "llava-hf/llava-onevision-qwen2-0.5b-ov-hf",
    "qwen2_vl": "Qwen/Qwen2-VL-2B-Instruct",
    "internvl": "OpenGVLab/InternVL3-1B-hf",
    "qwen3_vl": "Qwen/Qwen3-VL-2B-Instruct",
    "pixtral": "mistral-community/pixtral-12b",
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

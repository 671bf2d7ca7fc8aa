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
                 SmolVLMSettings, Llama4Settings, MllamaSettings,
                 PixtralSettings]


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
        validate_settings(settings, self.strategy)
        return dataclasses.replace(self, settings=settings)


OVERRIDABLE = {
    "llava_next": ("pinpoints_hw",),
    "llava_onevision": ("pinpoints_hw",),
    "qwen2_vl": ("min_pixels", "max_pixels"),
    "internvl": ("min_tiles", "max_tiles"),
    "qwen3_vl": ("min_pixels", "max_pixels"),
    "pixtral": ("longest_edge",),
    "gemma3": ("do_pan_and_scan", "pan_and_scan_max_num_crops", "pan_and_scan_min_crop_size",
               "pan_and_scan_min_ratio_to_activate"),
    "gemma4": ("max_soft_tokens",),
    "smolvlm": ("longest_edge",),
    "llama4": ("max_tiles",),
    "mllama": (),
}


# ----------------------------------------------------------------------------- safety bounds
@dataclass(frozen=True)
class Bound:
    """What a person may set one setting to: refused outside [low, high] before any work, and
    followed with a note (the processor accepts it) outside `usual`."""

    low: float
    high: float
    unit: str  # how the message names the value: "pixels", "tiles", "canvases", ...
    why: str  # what the high limit stands for, said in the refusal
    usual: tuple[int, int] | None = None  # the range released checkpoints use
    usual_why: str = ""  # said in the note outside `usual`


# The most visual tokens any setting may ask for: 4x the largest released budget (Qwen2-VL's
# 16,384). Memory and CPU grow with tokens (crops, overlays, token maps), so one number bounds
# every family; measured cost at the bound is in the README ("Security and limits").
MAX_SETTING_TOKENS = 65_536
_QWEN_TOKEN_PX = 28 * 28  # one Qwen2-VL token: a 2x2 merge of 14 px patches
_TILE_TOKENS = 256  # InternVL: 16x16 tokens per 448 px tile
_RELEASED = "the released checkpoints use"

# One row per user-settable setting, keyed by the settings field it bounds; a row keyed
# "strategy:field" applies to that strategy only and wins over the plain row. A new family
# adds rows here (and its field names to OVERRIDABLE), not code.
SETTING_BOUNDS: dict[str, Bound] = {
    "min_pixels": Bound(1, _QWEN_TOKEN_PX * MAX_SETTING_TOKENS, "pixels",
                        f"{MAX_SETTING_TOKENS:,} tokens of 28x28 px, 4x the largest released budget",
                        usual=(_QWEN_TOKEN_PX, 28 * 28 * 16384), usual_why=f"{_RELEASED} 3,136"),
    "max_pixels": Bound(1, _QWEN_TOKEN_PX * MAX_SETTING_TOKENS, "pixels",
                        f"{MAX_SETTING_TOKENS:,} tokens of 28x28 px, 4x the largest released budget",
                        usual=(56 * 56, 28 * 28 * 16384), usual_why=f"{_RELEASED} up to 12,845,056"),
    "min_tiles": Bound(1, MAX_SETTING_TOKENS // _TILE_TOKENS, "tiles",
                       f"{MAX_SETTING_TOKENS:,} tokens of 448 px tiles", usual=(1, 12),
                       usual_why=f"{_RELEASED} 1"),
    "max_tiles": Bound(1, MAX_SETTING_TOKENS // _TILE_TOKENS, "tiles",
                       f"{MAX_SETTING_TOKENS:,} tokens of 448 px tiles", usual=(1, 12),
                       usual_why=f"{_RELEASED} 12"),
    "pinpoints_hw": Bound(1, 64, "canvases", "OneVision's own list has 36"),
    # Llama 4 tiles are 336 px (144 tokens each); the release uses 16.
    "llama4:max_tiles": Bound(1, 64, "tiles", "9,216 tokens, 4x the release's 16 tiles",
                              usual=(1, 16), usual_why=f"{_RELEASED} 16"),
    # Gemma 3 pan-and-scan (each crop one 896 px view of 256 tokens)
    "pan_and_scan_max_num_crops": Bound(1, 16, "crops", "4x the release's 4", usual=(1, 4),
                                        usual_why="the processor's default is 4"),
    "pan_and_scan_min_crop_size": Bound(16, 8192, "pixels", "the largest crop side worth a view"),
    "pan_and_scan_min_ratio_to_activate": Bound(1, 100, "(long side / short side)",
                                                "no image that far from square is worth cropping"),
    # Gemma 4's budgets are a fixed menu (checked below); the row bounds the number itself.
    "max_soft_tokens": Bound(1, 1120, "tokens", "Gemma 4's largest budget"),
    # Qwen3-VL / Qwen3.5: 32x32 px tokens, released 65,536..16,777,216 px
    "qwen3_vl:min_pixels": Bound(1, 32 * 32 * MAX_SETTING_TOKENS, "pixels",
                                 f"{MAX_SETTING_TOKENS:,} tokens of 32x32 px",
                                 usual=(32 * 32, 32 * 32 * 16384), usual_why=f"{_RELEASED} 65,536"),
    "qwen3_vl:max_pixels": Bound(1, 32 * 32 * MAX_SETTING_TOKENS, "pixels",
                                 f"{MAX_SETTING_TOKENS:,} tokens of 32x32 px",
                                 usual=(64 * 32 * 32, 32 * 32 * 16384),
                                 usual_why=f"{_RELEASED} 16,777,216"),
    # Pixtral / Mistral Small: capped by the vision tower's image_size (validate_settings)
    "pixtral:longest_edge": Bound(1, 1540, "pixels", "Mistral Small 3.1's vision image_size"),
    # SmolVLM resizes the long side to exactly this (transformers' MAX_IMAGE_SIZE is 4096).
    "longest_edge": Bound(1, 4096, "pixels", "transformers' MAX_IMAGE_SIZE for Idefics3 / SmolVLM"),
    # Each canvas of a list, in tiles (LLaVA: 576 / 729 tokens per tile plus the base image).
    "canvas_tiles": Bound(1, 100, "tiles per canvas",
                          "about 58,000-73,000 tokens; the released lists go up to 36",
                          usual=(1, 36), usual_why="the released lists go up to 6x6 = 36 tiles"),
    # Text typed into the UI, checked before it is parsed at all.
    "canvas_list_chars": Bound(0, 2_000, "characters", "64 canvases of up to 5-digit sides"),
    "number_chars": Bound(0, 40, "characters", "any number a setting can hold"),
    # What-if sizes (no pixels are made; the bound keeps the staircases' sweeps finite).
    "image_side": Bound(1, 200_000, "pixels", "twice the side of the largest upload"),
}
# Pairs the processors accept in either order; the second order gets a note, not a refusal.
ORDERED_PAIRS: tuple[tuple[str, str, str], ...] = (
    ("min_pixels", "max_pixels", "transformers' smart_resize checks max_pixels first, so images "
     "above max_pixels shrink to it and smaller ones grow to min_pixels"),
    ("min_tiles", "max_tiles", "no tile grid has between min and max tiles, so the processor "
     "falls back to a single 1x1 tile (1 crop)"),
)


def bound_for(name: str, strategy: str | None = None) -> Bound | None:
    """The row for setting `name` (the strategy's own row first), or None if unbounded."""
    if strategy and f"{strategy}:{name}" in SETTING_BOUNDS:
        return SETTING_BOUNDS[f"{strategy}:{name}"]
    return SETTING_BOUNDS.get(name)


def check_bound(name: str, value: float, strategy: str | None = None, label: str = "") -> None:
    """ValueError naming the value and the limit when `value` is outside the setting's bound.
    Takes floats too, so 1e30 is refused before anything is converted or allocated."""
    bound = bound_for(name, strategy)
    if bound is None:
        return
    what = label or name
    if value < bound.low:
        raise ValueError(f"{what} is {_num(value)}, below the lowest allowed, {bound.low:,} "
                         f"{bound.unit}")
    if value > bound.high:
        raise ValueError(f"{what} is {_num(value)}, above this app's safety limit of "
                         f"{bound.high:,} {bound.unit} ({bound.why})")


def _num(value: float) -> str:
    return f"{int(value):,}" if float(value).is_integer() and abs(value) < 1e18 else f"{value:.3g}"


def _bounded_values(settings: Settings, strategy: str | None = None):
    """(field name, number, bound) for every bounded field; a tuple field counts its entries;
    bool fields are switches, never bounded."""
    for f in dataclasses.fields(settings):
        value = getattr(settings, f.name)
        bound = bound_for(f.name, strategy)
        if bound is None or isinstance(value, bool):
            continue
        yield f.name, (len(value) if isinstance(value, tuple) else value), bound


def validate_settings(settings: Settings, strategy: str | None = None) -> None:
    """Refuse what the safety bounds forbid (`SETTING_BOUNDS`, `strategy`'s own rows first) and
    what the real processors refuse or get wrong, each with a message that says the limit or
    the reason. Settings the processors accept but that are unusual pass; `unusual_settings`
    says what is odd."""
    for name, value, _ in _bounded_values(settings, strategy):
        check_bound(name, value, strategy)
    if isinstance(settings, Gemma4Settings) and \
            settings.max_soft_tokens not in GEMMA_SOFT_TOKEN_BUDGETS:
        raise ValueError(f"max_soft_tokens {settings.max_soft_tokens} is not one of the budgets "
                         f"Gemma 4 supports: {', '.join(map(str, GEMMA_SOFT_TOKEN_BUDGETS))}")
    if isinstance(settings, LlavaNextSettings):
        for h, w in settings.pinpoints_hw:
            _check_canvas(h, w, settings.tile_size)
    if isinstance(settings, PixtralSettings) and settings.longest_edge > settings.vision_image_size:
        raise ValueError(
            f"longest_edge ({settings.longest_edge}) is above the vision tower's image_size "
            f"({settings.vision_image_size}): its 2-D position table has no rows for larger views")


def _check_canvas(h: int, w: int, tile: int) -> None:
    if h < tile or w < tile:
        raise ValueError(f"canvas {w}x{h} is smaller than one {tile}px tile")
    check_bound("canvas_tiles", (h // tile) * (w // tile), label=f"canvas {w}x{h}'s tile count")
    if h % tile or w % tile:
        raise ValueError(
            f"canvas {w}x{h} is not a multiple of the {tile}px tile: transformers itself then "
            "disagrees with itself (the processor's crops and the model's token count differ), "
            f"so there is no true answer to show. Use multiples of {tile}, e.g. "
            f"{max(tile, round(w / tile) * tile)}x{max(tile, round(h / tile) * tile)}")


def unusual_settings(settings: Settings, strategy: str | None = None) -> tuple[str, ...]:
    """Notes for settings the processor accepts but released checkpoints never use: what the
    processor then does. Empty for ordinary settings."""
    notes = []
    for name, value, bound in _bounded_values(settings, strategy):
        if bound.usual and not bound.usual[0] <= value <= bound.usual[1]:
            notes.append(f"{name} = {value:,} is unusual ({bound.usual_why}); transformers "
                         "accepts it, and this shows what it does")
    for low, high, what in ORDERED_PAIRS:
        a, b = getattr(settings, low, None), getattr(settings, high, None)
        if a is not None and b is not None and a > b:
            notes.append(f"{low} ({a:,}) is above {high} ({b:,}): unusual, but transformers "
                         f"accepts it; {what}")
    if isinstance(settings, LlavaNextSettings):
        tile = settings.tile_size
        big = [f"{w}x{h}" for h, w in settings.pinpoints_hw
               if (h // tile) * (w // tile) > SETTING_BOUNDS["canvas_tiles"].usual[1]]
        if big:
            notes.append(f"canvas {', '.join(big[:3])} has more tiles than any released list "
                         "(36); transformers accepts it")
    return tuple(notes)


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
    "qwen3-vl": "Qwen/Qwen3-VL-2B-Instruct",
    "qwen3.5": "Qwen/Qwen3.5-2B",
    "internvl3.5": "OpenGVLab/InternVL3_5-1B-HF",
    "pixtral": "mistral-community/pixtral-12b",
    "mistral-small-3.1": "mistralai/Mistral-Small-3.1-24B-Instruct-2503",
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
    "qwen3_vl": "Qwen/Qwen3-VL-2B-Instruct",
    "pixtral": "mistral-community/pixtral-12b",
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

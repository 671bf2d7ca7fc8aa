"""Shared fixtures for the tests against the real transformers processors and tiny models.

Families, the spec's section 7 golden table, deterministic size sweeps and test images, cached
processors, and `engine_counts(plan)`, which states the engine's answer in the same fields as
`hf_processors.processor_counts`. Sizes are (height, width) unless a name says `wh`.
"""
from __future__ import annotations

import functools

import numpy as np
from PIL import Image

from anyres_demo import build_layout, get_preset
from anyres_demo.backends import hf_processors as hp
from anyres_demo.geometry import Size
from anyres_demo.strategies.base import Plan

# One checkpoint per transformers model type (Qwen2.5-VL has its own processor class).
FAMILY_REPOS = {
    "llava_next": "llava-hf/llava-v1.6-mistral-7b-hf",
    "llava_onevision": "llava-hf/llava-onevision-qwen2-0.5b-ov-hf",
    "qwen2_vl": "Qwen/Qwen2-VL-2B-Instruct",
    "qwen2_5_vl": "Qwen/Qwen2.5-VL-3B-Instruct",
    "internvl": "OpenGVLab/InternVL3-1B-hf",
    # wave 1a: Qwen3-VL, Qwen3.5, InternVL3.5, Pixtral, Mistral Small 3.1
    "qwen3_vl": "Qwen/Qwen3-VL-2B-Instruct",
    "qwen3_5": "Qwen/Qwen3.5-2B",
    "internvl3_5": "OpenGVLab/InternVL3_5-1B-HF",
    "pixtral": "mistral-community/pixtral-12b",
    "mistral3": "mistralai/Mistral-Small-3.1-24B-Instruct-2503",
}
FAMILIES = tuple(FAMILY_REPOS)
QWEN_FAMILIES = ("qwen2_vl", "qwen2_5_vl", "qwen3_vl", "qwen3_5")
QWEN3_FAMILIES = ("qwen3_vl", "qwen3_5")
PIXTRAL_FAMILIES = ("pixtral", "mistral3")
INTERNVL_FAMILIES = ("internvl", "internvl3_5")
LLAVA_FAMILIES = ("llava_next", "llava_onevision")


def family_preset(family: str):
    return get_preset(FAMILY_REPOS[family])


# ------------------------------------------------------------------ spec section 7, by hand
# (width, height) as the spec writes them -> expected values, all copied from the tables.
# grid is (rows, cols); canvas is (height, width).
SPEC_WH = ((1, 1), (10, 2000), (4000, 30), (8000, 8000), (640, 480), (1920, 1080),
           (1080, 1920), (500, 300), (1024, 899), (2480, 3508))
_LLAVA_NEXT = {  # grid, canvas, tokens
    (1, 1): ((1, 2), (336, 672), 1176), (10, 2000): ((3, 1), (1008, 336), 648),
    (4000, 30): ((1, 3), (336, 1008), 576), (8000, 8000): ((2, 2), (672, 672), 2928),
    (640, 480): ((2, 2), (672, 672), 2340), (1920, 1080): ((2, 2), (672, 672), 1948),
    (1080, 1920): ((2, 2), (672, 672), 1968), (500, 300): ((1, 2), (336, 672), 1560),
    (1024, 899): ((2, 2), (672, 672), 2634), (2480, 3508): ((2, 2), (672, 672), 2256),
}
_ONEVISION = {  # grid, tokens (canvas = 384 * grid)
    (1, 1): ((1, 1), 1485), (10, 2000): ((6, 1), 1053), (4000, 30): ((1, 6), 892),
    (8000, 8000): ((6, 6), 7371), (640, 480): ((2, 2), 2929), (1920, 1080): ((3, 5), 7269),
    (1080, 1920): ((5, 3), 7317), (500, 300): ((1, 2), 1998), (1024, 899): ((3, 3), 6551),
    (2480, 3508): ((6, 5), 7353),
}
_QWEN = {  # resized (H, W), pad tokens
    (1, 1): ((56, 56), 4), (10, 2000): ((812, 28), 29), (4000, 30): ((28, 4004), 143),
    (8000, 8000): ((3584, 3584), 16384), (640, 480): ((476, 644), 391),
    (1920, 1080): ((1092, 1932), 2691), (1080, 1920): ((1932, 1092), 2691),
    (500, 300): ((308, 504), 198), (1024, 899): ((896, 1036), 1184),
    (2480, 3508): ((3500, 2492), 11125),
}
_INTERNVL = {  # grid as the spec writes it (cols x rows), crops, <IMG_CONTEXT>
    (1, 1): ((1, 1), 1, 256), (10, 2000): ((1, 12), 13, 3328), (4000, 30): ((12, 1), 13, 3328),
    (8000, 8000): ((3, 3), 10, 2560), (640, 480): ((4, 3), 13, 3328),
    (1920, 1080): ((4, 2), 9, 2304), (1080, 1920): ((2, 4), 9, 2304),
    (500, 300): ((3, 2), 7, 1792), (1024, 899): ((3, 3), 10, 2560), (2480, 3508): ((2, 3), 7, 1792),
}


# 2026 spec 1.7 (Qwen3-VL / Qwen3.5 with checkpoint values): resized (H, W), <|image_pad|>
_QWEN3 = {
    (1, 1): ((256, 256), 64), (100, 100): ((256, 256), 64), (255, 255): ((256, 256), 64),
    (256, 256): ((256, 256), 64), (10, 2000): ((3648, 32), 114), (2000, 10): ((32, 3648), 114),
    (4000, 30): ((32, 4000), 125), (200, 1): ((32, 3648), 114), (640, 480): ((480, 640), 300),
    (1920, 1080): ((1088, 1920), 2040), (1080, 1920): ((1920, 1088), 2040),
    (500, 300): ((288, 512), 144), (1024, 899): ((896, 1024), 896),
    (2480, 3508): ((3520, 2496), 8580), (4096, 4096): ((4096, 4096), 16384),
    (4097, 4096): ((4096, 4096), 16384), (8000, 8000): ((4096, 4096), 16384),
}
# 2026 spec 6.6: resized (H, W), [IMG], total, for pixtral-12b then Mistral-Small-3.1
_PIXTRAL = {
    (1, 1): (((16, 16), 1, 2), ((28, 28), 1, 2)),
    (17, 16): (((16, 32), 2, 3), ((28, 28), 1, 2)),
    (29, 28): (((32, 32), 4, 6), ((28, 56), 2, 3)),
    (100, 100): (((112, 112), 49, 56), ((112, 112), 16, 20)),
    (640, 480): (((480, 640), 1200, 1230), ((504, 644), 414, 432)),
    (1920, 1080): (((576, 1024), 2304, 2340), ((868, 1540), 1705, 1736)),
    (1080, 1920): (((1024, 576), 2304, 2368), ((1540, 868), 1705, 1760)),
    (500, 300): (((304, 512), 608, 627), ((308, 504), 198, 209)),
    (1024, 899): (((912, 1024), 3648, 3705), ((924, 1036), 1221, 1254)),
    (2480, 3508): (((1024, 736), 2944, 3008), ((1540, 1092), 2145, 2200)),
    (4000, 30): (((16, 1024), 64, 65), ((28, 1540), 55, 56)),
    (30, 4000): (((1024, 16), 64, 128), ((1540, 28), 55, 110)),
    (10, 2000): (((1024, 16), 64, 128), ((1540, 28), 55, 110)),
    (1024, 1024): (((1024, 1024), 4096, 4160), ((1036, 1036), 1369, 1406)),
    (1541, 1540): (((1024, 1024), 4096, 4160), ((1540, 1540), 3025, 3080)),
    (8000, 8000): (((1024, 1024), 4096, 4160), ((1540, 1540), 3025, 3080)),
}
# the 2026 spec's own vectors beyond SPEC_WH, (w, h)
SPEC_2026_WH = {"qwen3": tuple(_QWEN3), "pixtral": tuple(_PIXTRAL)}


def spec_expected(family: str, wh: tuple[int, int]) -> dict:
    """The spec's section 7 row for `wh` (2026 spec sections 1.7 / 6.6 for the wave-1a
    families), in processor_counts' fields."""
    if family in QWEN3_FAMILIES:
        resized, tokens = _QWEN3[wh]
        return {"canvas_hw": resized, "grid": (resized[0] // 32, resized[1] // 32),
                "image_grid_thw": (1, resized[0] // 16, resized[1] // 16),
                "num_image_tokens": tokens, "num_wrapper_tokens": 2, "num_crops": 1}
    if family in PIXTRAL_FAMILIES:
        resized, tokens, total = _PIXTRAL[wh][family == "mistral3"]
        p = 28 if family == "mistral3" else 16
        return {"canvas_hw": resized, "image_sizes": resized, "grid": (resized[0] // p, resized[1] // p),
                "num_image_tokens": tokens, "num_wrapper_tokens": total - tokens, "num_crops": 1}
    if family == "llava_next":
        grid, canvas, tokens = _LLAVA_NEXT[wh]
        return {"grid": grid, "canvas_hw": canvas, "num_image_tokens": tokens,
                "num_wrapper_tokens": 0, "num_crops": 1 + grid[0] * grid[1]}
    if family == "llava_onevision":
        grid, tokens = _ONEVISION[wh]
        return {"grid": grid, "canvas_hw": (384 * grid[0], 384 * grid[1]), "num_image_tokens": tokens,
                "num_wrapper_tokens": 0, "num_crops": 1 + grid[0] * grid[1]}
    if family in QWEN_FAMILIES:
        resized, tokens = _QWEN[wh]
        return {"canvas_hw": resized, "grid": (resized[0] // 28, resized[1] // 28),
                "image_grid_thw": (1, resized[0] // 14, resized[1] // 14),
                "num_image_tokens": tokens, "num_wrapper_tokens": 2, "num_crops": 1}
    (cols, rows), crops, tokens = _INTERNVL[wh]
    return {"grid": (rows, cols), "canvas_hw": (448 * rows, 448 * cols), "num_crops": crops,
            "num_patches": crops, "num_image_tokens": tokens, "num_wrapper_tokens": 2}


# ------------------------------------------------------------------ sizes
def _pairs(*wh_pairs) -> list[tuple[int, int]]:
    return [(h, w) for w, h in wh_pairs]


# Awkward sizes (w, h): one-pixel sides, aspect ratios at, just under and just over 200:1
# (Qwen accepts exactly 200 and raises above), and the largest image.
EXTREME_HW = _pairs(
    (1, 1), (1, 2), (2, 1), (2, 2), (1, 3), (3, 1), (1, 14), (14, 1), (1, 28), (28, 1),
    (1, 199), (199, 1), (1, 200), (200, 1), (1, 201), (201, 1), (1, 336), (336, 1),
    (1, 1000), (1000, 1), (1, 8000), (8000, 1), (7999, 1), (1, 7999),
    (10, 2000), (2000, 10), (10, 2001), (2001, 10), (10, 1999), (1999, 10),
    (3, 600), (600, 3), (3, 601), (601, 3), (7, 1400), (1400, 7), (7, 1401), (1401, 7),
    (14, 2800), (2800, 14), (14, 2801), (2801, 14), (40, 8000), (8000, 40), (39, 8000), (8000, 39),
    (30, 4000), (4000, 30), (20, 3999), (3999, 20), (8000, 8000), (7999, 8000), (8000, 7999),
)
# Sides next to the tile, patch and factor sizes the strategies divide by.
_EDGES = (13, 14, 15, 27, 28, 29, 41, 42, 55, 56, 57, 335, 336, 337, 383, 384, 385, 447, 448,
          449, 671, 672, 673, 1007, 1008, 1009, 1344, 1345)


def sweep_sizes_hw(n_random: int = 380, seed: int = 20240607) -> list[tuple[int, int]]:
    """>= 500 distinct (h, w): extremes, spec vectors, tile edges, small (tie-break) images,
    log-uniform sides in 1..8000 and aspect ratios 50..300, deterministic."""
    rng = np.random.default_rng(seed)
    sizes = list(EXTREME_HW) + _pairs(*SPEC_WH)
    sizes += [(int(a), int(b)) for a, b in rng.choice(_EDGES, size=(60, 2))]
    sizes += [(int(a), int(b)) for a, b in rng.integers(1, 337, size=(40, 2))]
    sides = np.exp(rng.uniform(0, np.log(8000), size=(n_random, 2)))
    sizes += [(max(1, int(a)), max(1, int(b))) for a, b in sides]
    for ratio, short in zip(rng.uniform(50, 300, 40), rng.integers(1, 120, 40)):
        long_side = min(8000, int(short * ratio))
        sizes.append((int(short), long_side) if rng.random() < 0.5 else (long_side, int(short)))
    return list(dict.fromkeys(sizes))


REAL_IMAGE_MAX_PIXELS = 4_000_000


def real_image_sizes_hw(n_random: int = 16, seed: int = 7) -> list[tuple[int, int]]:
    """Sizes that go through the processor as real images: the extremes and a seeded sample of
    the sweep, all at most 4 Mpx (the spec vectors, 8000x8000 included, have their own test;
    the counting API covers the rest of the sweep)."""
    rng = np.random.default_rng(seed)
    spec = set(_pairs(*SPEC_WH))
    moderate = [s for s in sweep_sizes_hw()[len(EXTREME_HW):]
                if s[0] * s[1] <= REAL_IMAGE_MAX_PIXELS and s not in spec]
    picked = [moderate[i] for i in rng.choice(len(moderate), n_random, replace=False)]
    extremes = [s for s in EXTREME_HW if s[0] * s[1] <= REAL_IMAGE_MAX_PIXELS]
    return list(dict.fromkeys(extremes + picked))


# ------------------------------------------------------------------ images
def solid_image(size_hw: tuple[int, int]) -> Image.Image:
    """A flat image: enough for counts, cheap even at 8000x8000."""
    h, w = size_hw
    return Image.new("RGB", (w, h), (90, 140, 200))


def noise_image(size_hw: tuple[int, int], seed: int = 0) -> Image.Image:
    """Uniform RGB noise: the harshest input for resampler comparisons."""
    h, w = size_hw
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8))


# ------------------------------------------------------------------ processors
@functools.lru_cache(maxsize=None)
def processor_for(family: str, backend: str | None = None, overrides: tuple = ()):
    """Cached real processor; `overrides` is a tuple of (key, value) for with_overrides."""
    preset = family_preset(family).with_overrides(**dict(overrides))
    return hp.build_processor(preset, backend=backend)


def freeze(overrides: dict) -> tuple:
    """A hashable form of an overrides dict for `processor_for`."""
    def frozen(v):
        return tuple(tuple(p) for p in v) if isinstance(v, (list, tuple)) else v
    return tuple(sorted((k, frozen(v)) for k, v in overrides.items()))


def engine_counts(plan: Plan, family: str) -> dict:
    """The engine's answer in processor_counts' fields; also checks the layout agrees."""
    layout = build_layout(plan)
    assert len(layout) == plan.num_tokens, (len(layout), plan.num_tokens)
    assert layout.num_image_tokens == plan.num_image_tokens
    assert layout.counts_by_kind() == {k: v for k, v in plan.tokens_by_kind.items() if v}
    counts = {"num_image_tokens": plan.num_image_tokens,
              "num_wrapper_tokens": plan.num_wrapper_tokens,
              "num_crops": plan.num_crops, "grid": (plan.grid_rows, plan.grid_cols),
              "canvas_hw": plan.canvas_hw.hw}
    if family in LLAVA_FAMILIES:
        counts["image_sizes"] = plan.image_hw.hw
    elif family in PIXTRAL_FAMILIES:  # PixtralImageProcessor reports the resized size
        counts.update(image_sizes=plan.resized_hw.hw, num_img_break=plan.tokens_by_kind["img_break"],
                      num_img_end=plan.tokens_by_kind["img_end"])
    elif family in QWEN_FAMILIES:
        patch = plan.preset.settings.patch_size
        gh, gw = plan.canvas_hw.height // patch, plan.canvas_hw.width // patch
        counts.update(image_grid_thw=(1, gh, gw), num_patch_rows=gh * gw)
    else:
        counts["num_patches"] = plan.num_crops
    return counts


def diff(expected: dict, got: dict) -> dict:
    """Fields of `expected` that `got` gets wrong: {field: (expected, got)}."""
    return {k: (v, got.get(k)) for k, v in expected.items() if got.get(k) != v}


def size_label(size_hw: tuple[int, int]) -> str:
    return str(Size(*size_hw))

"""Gemma 3 / Gemma 4 fixtures: the spec's golden tables typed by hand, threshold sizes and
cached real processors built offline with the checkpoint values.

Source of every expected value: ../shared/reference/anyres-spec-2026.md, sections 2.1 / 2.6
(Gemma 3) and 3.1 / 3.6 (Gemma 4), produced there by the real transformers 5.24 processors.
Sizes are (height, width) unless a name says `wh`.
"""
from __future__ import annotations

import functools

import numpy as np

from anyres_demo import build_layout, get_preset
from anyres_demo.backends import hf_processors as hp
from hf_helpers import sweep_sizes_hw

GEMMA3_REPOS = ("google/gemma-3-4b-it", "google/gemma-3-12b-it", "google/gemma-3-27b-it")
GEMMA4_REPOS = ("google/gemma-4-E2B-it", "google/gemma-4-E4B-it", "google/gemma-4-31B-it",
                "google/gemma-4-26B-A4B-it")
BUDGETS = (70, 140, 280, 560, 1120)
PAS = {"do_pan_and_scan": True}

# ---------------------------------------------------------------- spec 2.1 / 3.1, by hand
GEMMA3_CHECKPOINT = {  # [3rd] copies of preprocessor_config.json; nulls -> processor defaults
    "view_size": 896, "patch_size": 14, "tokens_per_side": 16, "resample": "bilinear",
    "image_mean": (0.5, 0.5, 0.5), "image_std": (0.5, 0.5, 0.5), "do_pan_and_scan": False,
    "pan_and_scan_max_num_crops": 4, "pan_and_scan_min_crop_size": 256,
    "pan_and_scan_min_ratio_to_activate": 1.2,
}
GEMMA3_TOKENS = {"image_token": "<image_soft_token>", "image_token_id": 262144,
                 "wrapper_tokens": ("<start_of_image>", "<end_of_image>"),
                 "wrapper_token_ids": (255999, 256000)}
GEMMA4_CHECKPOINT = {  # [3rd] processor_config.json image_processor section, [doc] "default is 280"
    "patch_size": 16, "pooling_kernel_size": 3, "max_soft_tokens": 280, "resample": "bicubic",
    "image_mean": (0.0, 0.0, 0.0), "image_std": (1.0, 1.0, 1.0),
}
GEMMA4_TOKENS = {"image_token": "<|image|>", "image_token_id": 258880,
                 "wrapper_tokens": ("<|image>", "<image|>"), "wrapper_token_ids": (255999, 258882)}

# ---------------------------------------------------------------- spec 2.6 (w, h) -> crops (w, h)
# Pan-and-scan on; with it off every size is one view of 256 soft tokens.
GEMMA3_PAS_WH = {
    (1, 1): (), (100, 100): (), (896, 896): (), (1199, 1000): (),
    (1200, 1000): ((600, 1000), (600, 1000)), (1000, 840): (),
    (1000, 830): ((500, 830), (500, 830)), (640, 480): ((320, 480), (320, 480)),
    (1920, 1080): ((960, 1080), (960, 1080)), (1080, 1920): ((1080, 960), (1080, 960)),
    (511, 256): ((256, 256), (255, 256)), (767, 255): (),
    (3000, 1000): ((1000, 1000),) * 3, (2000, 300): ((500, 300),) * 4,
    (10000, 1000): ((2500, 1000),) * 4, (4000, 30): (),
    (1000, 3001): ((1000, 1001), (1000, 1001), (1000, 999)),  # spec 2.2: the last one narrower
}

# ---------------------------------------------------------------- spec 3.6 (w, h) -> tokens per budget
GEMMA4_WH = {
    (1, 1): (64, 121, 256, 529, 1089), (48, 48): (64, 121, 256, 529, 1089),
    (100, 100): (64, 121, 256, 529, 1089), (8000, 8000): (64, 121, 256, 529, 1089),
    (640, 480): (63, 130, 266, 540, 1064), (1920, 1080): (66, 120, 264, 527, 1100),
    (1080, 1920): (66, 120, 264, 527, 1100), (500, 300): (60, 135, 252, 540, 1075),
    (1024, 899): (56, 132, 255, 550, 1085), (2480, 3508): (63, 126, 266, 532, 1092),
    (4000, 30): (70, 136, 193, 546, 772), (10, 2000): (70, 140, 236, 334, 946),
}
# resized H x W at B = 280 where the spec gives it
GEMMA4_280_HW = {(1, 1): (768, 768), (640, 480): (672, 912), (1920, 1080): (576, 1056),
                 (1080, 1920): (1056, 576), (500, 300): (576, 1008), (1024, 899): (720, 816),
                 (2480, 3508): (912, 672), (4000, 30): (48, 9264), (10, 2000): (11328, 48)}


# ---------------------------------------------------------------- threshold sizes
def _both(pairs):
    return [(h, w) for w, h in pairs] + [(w, h) for w, h in pairs]


def gemma3_threshold_hw() -> list[tuple[int, int]]:
    """Sizes at pan-and-scan's edges: aspect just under / at / over 1.2, round-half-up of the
    aspect (x.5), crop side 255 / 256 / 257, long side at multiples of 256, 4-crop cap."""
    wh = [(1199, 1000), (1200, 1000), (1201, 1000), (600, 500), (599, 500), (601, 500),
          (1000, 833), (1000, 834), (1250, 500), (1249, 500), (1251, 500), (750, 500),
          (749, 500), (511, 256), (512, 256), (510, 256), (767, 255), (768, 256), (767, 256),
          (1023, 256), (1024, 256), (1025, 256), (513, 257), (2304, 256), (2305, 256),
          (4500, 1000), (4499, 1000), (3500, 1000), (3499, 1000), (8000, 255), (8000, 256),
          (257, 256), (308, 256), (307, 256), (2, 1), (8000, 1), (8000, 7999)]
    return list(dict.fromkeys(_both(wh)))


def gemma4_threshold_hw() -> list[tuple[int, int]]:
    """Sides at multiples of 48 and at the squares that fill a budget's floor (768, 1584, ...),
    and thin sizes around each budget's ratio where the short side floors to 0 px."""
    wh = [(s, s) for s in (47, 48, 49, 95, 96, 97, 383, 384, 385, 527, 528, 529, 767, 768, 769,
                           1103, 1104, 1105, 1583, 1584, 1585)]
    for budget in BUDGETS:
        for short in (1, 3, 7, 10):
            for ratio in (budget - 1, budget, budget + 1, budget * 1.05):
                wh.append((short, min(8000, int(short * ratio))))
    wh += [(10, 2000), (30, 4000), (1, 8000), (7, 7840), (7, 7841), (40, 8000)]
    return list(dict.fromkeys(_both(wh)))


def gemma_sweep_hw(family: str) -> list[tuple[int, int]]:
    """The shared >= 500-size sweep plus this family's thresholds and the spec vectors."""
    spec = GEMMA3_PAS_WH if family == "gemma3" else GEMMA4_WH
    extra = gemma3_threshold_hw() if family == "gemma3" else gemma4_threshold_hw()
    return list(dict.fromkeys(sweep_sizes_hw() + extra + [(h, w) for w, h in spec]))


# ---------------------------------------------------------------- processors
@functools.lru_cache(maxsize=None)
def gemma_processor(repo_id: str, backend: str | None = None, overrides: tuple = ()):
    preset = get_preset(repo_id).with_overrides(**dict(overrides))
    return hp.build_processor(preset, backend=backend)


def kinds_of_ids(ids, processor, preset) -> list[str]:
    """Each id of the processor's expanded sequence named as the layout names its kind."""
    soft = hp.soft_token_id(processor, preset)
    start, end = (processor.tokenizer.convert_tokens_to_ids(t) for t in preset.wrapper_tokens)
    blank = processor.tokenizer.convert_tokens_to_ids(hp.BLANK_LINE) if preset.strategy == "gemma3" else None
    out, views = [], 0
    for i in ids:
        if i == start:
            views += 1
        if i == soft:
            out.append({"gemma3": "base" if views == 1 else "pas_crop"}.get(preset.strategy, "pooled"))
        elif i in (start, end):
            out.append("wrapper")
        elif i == blank:
            out.append("break")
        else:
            out.append("pas_text")
    return out


def layout_kind_names(plan) -> list[str]:
    from anyres_demo.layout import KINDS

    return [KINDS[int(k)] for k in build_layout(plan).kind]


def as_array_hw(sizes):
    hw = np.array(list(sizes))
    return hw[:, 0], hw[:, 1]

"""The bundled examples: what each one teaches and which model shows it best.

The PNGs live in assets/examples/ at the repository root (next to this package) and are drawn
by assets/make_examples.py from this list, so sizes have one source of truth. Every number a
caption states is also a `Claim`, which tests/test_examples.py checks against `plan_image`.

Pure data: no numpy, torch, gradio or transformers.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .geometry import Size
from .paths import assets_dir

EXAMPLES_DIR = assets_dir() / "examples"

LLAVA_NEXT = "llava-hf/llava-v1.6-mistral-7b-hf"
ONEVISION = "llava-hf/llava-onevision-qwen2-0.5b-ov-hf"
QWEN2_VL = "Qwen/Qwen2-VL-2B-Instruct"
INTERNVL = "OpenGVLab/InternVL3-1B-hf"


@dataclass(frozen=True)
class Claim:
    """What the caption says a model does with the example (or with `size_hw`, if given)."""

    preset_id: str
    grid_rows: int
    grid_cols: int
    num_image_tokens: int  # placeholder tokens, wrappers excluded
    size_hw: Size | None = None  # None: the example's own size
    resized_hw: Size | None = None  # the image's size inside the canvas, when the caption says it


@dataclass(frozen=True)
class Example:
    file_name: str  # in EXAMPLES_DIR
    title: str
    caption: str  # one sentence: what it teaches
    preset_id: str  # suggested model, a key of presets.PRESETS
    size_hw: Size  # as drawn
    claims: tuple[Claim, ...] = ()
    sidecar: str | None = None  # JSON of the words drawn (OCR recall), in EXAMPLES_DIR

    @property
    def path(self) -> Path:
        return EXAMPLES_DIR / self.file_name


EXAMPLES: tuple[Example, ...] = (
    Example(
        "document_page.png", "Document page with small print",
        "Small print is where resolution matters: Qwen2-VL keeps this 850x1100 page at 840x1092 "
        "(1170 tokens), so check which of the 15, 12 and 10 px words survive each strategy.",
        QWEN2_VL, Size(1100, 850),
        claims=(Claim(QWEN2_VL, 39, 30, 1170, resized_hw=Size(1092, 840)),),
        sidecar="document_page.json"),
    Example(
        "chart_wide.png", "Wide bar chart (8:3)",
        "A 1600x600 chart takes LLaVA-NeXT's 1x3 canvas: it is resized to 897x336, padded left "
        "and right, and the padding columns are cut from the feature grid again (2136 tokens).",
        LLAVA_NEXT, Size(600, 1600),
        claims=(Claim(LLAVA_NEXT, 1, 3, 2136, resized_hw=Size(336, 897)),),
        sidecar="chart_wide.json"),
    Example(
        "receipt_tall.png", "Phone-screenshot receipt (390x1400)",
        "A tall receipt becomes a column of four 448 px tiles plus a thumbnail on InternVL "
        "(4x1 grid, 1280 tokens), each tile squashed a little to fit the 1:4 grid.",
        INTERNVL, Size(1400, 390),
        claims=(Claim(INTERNVL, 4, 1, 1280),),
        sidecar="receipt_tall.json"),
    Example(
        "panorama_8to1.png", "8:1 panorama",
        "An 8:1 panorama is wider than OneVision's widest canvas (1x6 tiles), so it is resized "
        "to 2304x288, padded above and below, and still costs 4152 tokens.",
        ONEVISION, Size(300, 2400),
        claims=(Claim(ONEVISION, 1, 6, 4152, resized_hw=Size(288, 2304)),)),
    Example(
        "icon_24.png", "Tiny 24x24 icon",
        "A 24x24 icon is upscaled to Qwen2-VL's 56x56 minimum and costs 4 tokens, while "
        "LLaVA-NeXT blows it up onto a 1x2 canvas and spends 1176.",
        QWEN2_VL, Size(24, 24),
        claims=(Claim(QWEN2_VL, 2, 2, 4, resized_hw=Size(56, 56)),
                Claim(LLAVA_NEXT, 1, 2, 1176))),
    Example(
        "photo_scene.png", "Photo-like landscape (4:3)",
        "A 1024x768 photo on LLaVA-NeXT fills the 2x2 canvas at 672x504; the padding rows are "
        "removed from the features again, leaving 2340 tokens.",
        LLAVA_NEXT, Size(768, 1024),
        claims=(Claim(LLAVA_NEXT, 2, 2, 2340, resized_hw=Size(504, 672)),)),
    Example(
        "square_448.png", "Exactly one InternVL tile (448x448)",
        "A 448x448 image is a single InternVL tile (1x1, 256 tokens, no thumbnail); squares stay "
        "1x1 up to 633x633 and jump to 2x2 tiles plus a thumbnail (1280 tokens) at 634x634.",
        INTERNVL, Size(448, 448),
        claims=(Claim(INTERNVL, 1, 1, 256),
                Claim(INTERNVL, 1, 1, 256, size_hw=Size(633, 633)),
                Claim(INTERNVL, 2, 2, 1280, size_hw=Size(634, 634)))),
    Example(
        "small_300x200.png", "Small image, two answers (300x200)",
        "Below 336x336 the grid depends on the library: transformers gives this 300x200 image a "
        "1x2 grid (1464 tokens), the original LLaVA repo a 2x1 grid (976 tokens).",
        LLAVA_NEXT, Size(200, 300),
        claims=(Claim(LLAVA_NEXT, 1, 2, 1464),)),
)


def example_paths() -> list[Path]:
    """Absolute paths of the bundled example images, in display order."""
    return [example.path for example in EXAMPLES]


def get_example(file_name: str) -> Example:
    for example in EXAMPLES:
        if example.file_name == file_name:
            return example
    known = ", ".join(e.file_name for e in EXAMPLES)
    raise ValueError(f"unknown example {file_name!r}; known: {known}")

"""Plan types shared by every strategy: what the processor does to one image.

A plan describes geometry only (no pixels): the chosen grid, how the image is resized and
pasted, every crop's window in canvas pixels and in original-image pixels, the candidates
the strategy scored, and closed-form token counts. `layout.build_layout(plan)` expands it
into one record per visual token.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Callable, NamedTuple

from ..geometry import Box, Size
from ..layout import KIND_INFO
from ..presets import Preset


class CropSpec(NamedTuple):
    """One entry of `pixel_values`, in processor order.

    The crop is made by resizing the WHOLE original image (bicubic) to `resize_hw`, pasting
    it onto a `canvas_hw` canvas filled with the pad colour at `paste_yx`, and cutting
    `window` (canvas pixels) out of that canvas.
    """

    index: int  # position in pixel_values
    kind: str  # "base" (LLaVA squash), "tile", "thumbnail" (InternVL), "image" (Qwen, untiled)
    row: int  # tile row in the grid; -1 for base / thumbnail
    col: int  # tile column in the grid; -1 for base / thumbnail
    resize_hw: Size
    canvas_hw: Size
    paste_yx: tuple[int, int]
    window: Box  # canvas pixels
    source: Box  # the same window in original-image pixels, clipped to the image

    @property
    def out_hw(self) -> Size:
        return Size(int(self.window.height), int(self.window.width))


class Candidate(NamedTuple):
    """A grid the strategy considered, with the numbers it compared."""

    grid_rows: int
    grid_cols: int
    canvas_hw: Size
    scores: dict[str, float]  # e.g. {"effective": .., "wasted": ..} or {"aspect_diff": ..}
    chosen: bool = False
    note: str = ""  # why it won or lost, in words
# CropSpec and Candidate are NamedTuples (cheap to build: a 6x6 OneVision plan makes 37 + 36),
# with the same repr as the frozen dataclasses they replace, so probe cache keys are unchanged.


@dataclass(frozen=True)
class Plan:
    """Everything the processor decides for one image under one preset."""

    preset: Preset
    image_hw: Size  # the original image
    grid_rows: int  # tile grid (Qwen: merged-token grid rows)
    grid_cols: int
    canvas_hw: Size  # LLaVA: chosen pinpoint canvas; InternVL: 448*rows x 448*cols; Qwen: resized
    resized_hw: Size  # the image's size inside the canvas (== canvas for Qwen / InternVL)
    paste_yx: tuple[int, int]  # where the resized image sits on the canvas (LLaVA padding)
    crops: tuple[CropSpec, ...]  # processor order (pixel_values order)
    # Scores every candidate grid on first use of `plan.candidates` ("why this grid"): the
    # choice itself is made eagerly; the 36-row table for OneVision is only built when shown.
    candidates_fn: Callable[[], tuple[Candidate, ...]] = field(repr=False, compare=False)
    tokens_by_kind: dict[str, int]  # closed-form counts, wrappers included under "wrapper"
    # LLaVA family only: feature grids (in cells) before/after unpad and after downscale.
    features_hw: Size | None = None  # H x W = cells_per_tile * rows x cells_per_tile * cols
    unpad_cells: tuple[int, int, int, int] | None = None  # cells removed (top, bottom, left, right)
    unpadded_hw: Size | None = None  # H2 x W2
    final_hw: Size | None = None  # H3 x W3 after OneVision's bilinear downscale (else == H2 x W2)
    cell_px: int = 0  # feature cell side in crop pixels (14 LLaVA, 28 Qwen / InternVL)
    cells_per_tile: int = 0  # feature cells per tile side (24, 27, 16); Qwen: 0
    divergences: tuple[str, ...] = field(default_factory=tuple)  # transformers vs original repo
    formula: str = ""  # the count formula filled in with this image's numbers
    # Sizes the WHOLE image is resized through, in order, before each crop's own resize starts
    # from the last of them (SmolVLM: longest edge, then tile multiples); () = from the original.
    resize_chain_hw: tuple[Size, ...] = ()

    @cached_property
    def candidates(self) -> tuple[Candidate, ...]:
        """Every grid the strategy considered, with its scores; exactly one is `chosen`."""
        return self.candidates_fn()

    @property
    def strategy(self) -> str:
        return self.preset.strategy

    @property
    def num_image_tokens(self) -> int:
        """Placeholder tokens the processor inserts (<image>, <|image_pad|>, <IMG_CONTEXT>, ...)."""
        return sum(v for k, v in self.tokens_by_kind.items() if KIND_INFO[k].placeholder)

    @property
    def num_special_tokens(self) -> int:
        """Every other token the image puts in the prompt: start/end markers, row/tile markers."""
        return sum(v for k, v in self.tokens_by_kind.items() if not KIND_INFO[k].placeholder)

    @property
    def num_wrapper_tokens(self) -> int:  # the older name of num_special_tokens
        return self.num_special_tokens

    @property
    def num_tokens(self) -> int:
        return self.num_image_tokens + self.num_special_tokens

    @property
    def num_crops(self) -> int:
        return len(self.crops)

    @property
    def downscaled(self) -> bool:
        return self.final_hw is not None and self.unpadded_hw is not None and \
            self.final_hw != self.unpadded_hw


class Series(NamedTuple):
    """One bar series of a candidates chart: a value per candidate."""

    name: str
    values: tuple[float, ...]
    color: "str | tuple[str, ...]"  # one colour, or one per bar


class ChartSpec(NamedTuple):
    """A strategy's "why this grid" chart as pure data; plots.candidates_chart draws it."""

    title: str
    x_title: str
    y_title: str
    labels: tuple[str, ...]  # one per candidate, in the order tried
    series: tuple[Series, ...]
    hlines: tuple[tuple[float, str], ...] = ()  # (value, name): budgets drawn as dashed lines
    log_y: bool = False
    barmode: str = "group"
    chosen: int = -1  # index of the winner (outlined); -1: none


def scale_factor(image_hw: Size, resized_hw: Size, tolerance_px: float = 1.0) -> tuple[str, bool]:
    """How the resize scaled the image, for the resize notes: "x0.561" when one factor scales
    both sides (the width within `tolerance_px` of the height's factor: rounding each side to a
    multiple moves it by less than that multiple), else "x1.006 wide, x1.011 high"; and whether
    the aspect ratio was kept."""
    (h, w), (rh, rw) = image_hw.hw, resized_hw.hw
    fx, fy = rw / w, rh / h
    same = abs(rw - w * fy) <= tolerance_px
    return (f"x{fx:.3f}" if same else f"x{fx:.3f} wide, x{fy:.3f} high"), same

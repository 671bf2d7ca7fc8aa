"""The token layout: every visual token in the order the language model sees it.

One source of truth for every view, count and heatmap. Columnar (numpy arrays, one row per
token) so that a 7,000-token layout builds in well under a millisecond.

Columns (n = number of tokens, wrappers included):
  kind      (n,) int8   index into KINDS
  crop      (n,) int16  index of the crop in pixel_values the token's features come from;
                        -1 for newline and wrapper tokens (and blended OneVision tokens read
                        the crop of their nearest cell)
  row, col  (n,) int32  the token's cell in its panel grid:
                          base / thumbnail: cell in that crop's own grid (24x24, 27x27, 16x16)
                          tile (LLaVA family): canvas feature cell (R, C) before unpadding;
                            after OneVision downscale: the output cell (i, j) of the H3 x W3 grid
                          tile (InternVL): cell on the stitched canvas (16*rows x 16*cols)
                          image (Qwen): merged-token cell (r, c) on the resized image
                          newline: (canvas row it ends, i.e. pad_top + i; after OneVision
                            downscale the output row i; col -1); wrapper: (-1, -1)
  box       (n, 4) float64  source box x0, y0, x1, y1 in ORIGINAL-image pixels, clipped to the
                        image; NaN for newline / wrapper tokens (and for cells lying entirely in
                        padding, whose box clips to nothing)
  blend_boxes   (n, 4, 4) float64 or None   OneVision downscale only: the up-to-4 canvas cells
                        a bilinear output token reads, as original-pixel boxes (NaN if unused)
  blend_weights (n, 4) float64 or None      their bilinear weights (sum to 1; 0 if unused)
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Callable, Optional

import numpy as np

if TYPE_CHECKING:  # strategies import this module; avoid the cycle at run time
    from .strategies.base import Plan

@dataclass(frozen=True)
class KindInfo:
    """What one kind of token is, for every view: the one place a family's kinds are declared."""

    label: str  # for legends and token info: "high-resolution tile"
    part: str  # the ledger row's name: "tiles"
    rgb: tuple[int, int, int]  # drawing colour (Okabe-Ito where possible: safe for colour-blind viewers)
    placeholder: bool  # one of the image placeholder tokens the processor repeats (<image>,
    #                    <|image_pad|>, <IMG_CONTEXT>, ...); False for special / marker / text tokens
    role: str  # "detail" (high-resolution view), "global" (whole-image view), "row_end" (ends a
    #            grid row: its `row` is the row it ends, its `crop` the crop of that grid) or
    #            "special" (markers and text: not drawn in the token map)


# Ordered: a kind's code is its position, so new kinds are appended at the end.
KIND_INFO: dict[str, KindInfo] = {
    "base": KindInfo("base image (squashed, global view)", "base image", (0, 114, 178), True, "global"),
    "tile": KindInfo("high-resolution tile", "tiles", (230, 159, 0), True, "detail"),
    "newline": KindInfo("row-end newline", "row-end newlines", (204, 121, 167), True, "row_end"),
    "thumbnail": KindInfo("thumbnail (global view)", "thumbnail", (0, 158, 115), True, "global"),
    "image": KindInfo("native-resolution patch (2x2 merged)", "image patches", (86, 180, 233), True,
                      "detail"),
    "wrapper": KindInfo("image start/end marker", "start/end markers", (120, 120, 120), False, "special"),
    # Gemma 3 (its whole-image 896 view reuses "base") and Gemma 4
    "pas_crop": KindInfo("pan-and-scan crop (squashed to 896x896)", "pan-and-scan crops",
                         (213, 94, 0), True, "detail"),
    "pas_text": KindInfo("pan-and-scan prompt word the processor writes", "pan-and-scan prompt words",
                         (150, 150, 150), False, "special"),
    "break": KindInfo('blank line "\\n\\n" the processor writes around a view', "blank lines",
                      (190, 190, 190), False, "special"),
    "pooled": KindInfo("soft token: one 48x48 block (3x3 pooled 16-px patches)", "soft tokens",
                       (86, 180, 233), True, "detail"),
    # SmolVLM2 / SmolVLM / Idefics3 (tiles and the global image reuse "tile" and "thumbnail")
    "fake_token": KindInfo("<fake_token_around_image> (tile boundary)", "boundary tokens",
                           (150, 150, 150), False, "special"),
    "tile_marker": KindInfo("<row_i_col_j> tile position marker", "tile markers", (240, 228, 66),
                            False, "special"),
    "global_marker": KindInfo("<global-img> marker", "global-image marker", (0, 90, 60), False,
                              "special"),
    "text_newline": KindInfo('"\\n" text token after a row of tiles', "newlines (text)",
                             (90, 90, 90), False, "special"),
    # Llama 4 (tiles and the global tile reuse "tile" and "thumbnail")
    "tile_x_sep": KindInfo("<|tile_x_separator|> between the tiles of a row", "x separators",
                           (240, 228, 66), False, "special"),
    "tile_y_sep": KindInfo("<|tile_y_separator|> after a row of tiles", "y separators",
                           (213, 94, 0), False, "special"),
    "image_marker": KindInfo("<|image|> marker before the global tile", "image marker",
                             (0, 90, 60), False, "special"),
    # Llama 3.2 Vision: the one prompt token; its tiles are read through cross-attention
    "cross_image": KindInfo("<|image|> (its tiles are read through cross-attention)", "image token",
                            (86, 180, 233), True, "global"),
    # Pixtral / Mistral Small 3.1: [IMG] per cell, [IMG_BREAK] after each row, [IMG_END] last
    "patch": KindInfo("native-resolution token ([IMG])", "[IMG] tokens", (136, 34, 85), True, "detail"),
    "img_break": KindInfo("row break ([IMG_BREAK])", "[IMG_BREAK] row breaks", (221, 204, 119), False,
                          "row_end"),
    "img_end": KindInfo("image end ([IMG_END], ends the last row)", "[IMG_END]", (68, 170, 153), False,
                        "row_end"),
}
KINDS = tuple(KIND_INFO)
KIND_CODE = {k: i for i, k in enumerate(KINDS)}
KIND_LABELS = {k: v.label for k, v in KIND_INFO.items()}
PLACEHOLDER_KINDS = tuple(k for k, v in KIND_INFO.items() if v.placeholder)


def kinds_with_role(*roles: str) -> tuple[str, ...]:
    return tuple(k for k, v in KIND_INFO.items() if v.role in roles)


@dataclass(frozen=True)
class TokenInfo:
    """One token, for display: 'token 812 is a tile token from crop 2, box ...'."""

    index: int
    kind: str
    crop: int
    row: int
    col: int
    box: tuple[float, float, float, float] | None
    blended: bool


@dataclass(frozen=True, eq=False)
class Layout:
    plan: "Plan"
    kind: np.ndarray
    crop: np.ndarray
    row: np.ndarray
    col: np.ndarray
    box: np.ndarray
    # OneVision downscale only: computes (blend_boxes, blend_weights) on first use, so counting
    # and drawing never pay for them.
    blend_fn: Optional[Callable[["Layout"], tuple[np.ndarray, np.ndarray]]] = field(
        default=None, repr=False)

    @cached_property
    def _blend(self) -> tuple[np.ndarray, np.ndarray] | tuple[None, None]:
        return self.blend_fn(self) if self.blend_fn is not None else (None, None)

    @property
    def blend_boxes(self) -> np.ndarray | None:
        return self._blend[0]

    @property
    def blend_weights(self) -> np.ndarray | None:
        return self._blend[1]

    @property
    def has_blends(self) -> bool:
        return self.blend_fn is not None

    def __len__(self) -> int:
        return int(self.kind.shape[0])

    def counts_by_kind(self) -> dict[str, int]:
        counts = np.bincount(self.kind, minlength=len(KINDS))
        return {k: int(counts[i]) for i, k in enumerate(KINDS) if counts[i]}

    @property
    def image_token_mask(self) -> np.ndarray:
        """True for the placeholder tokens (not the special / marker tokens)."""
        return np.isin(self.kind, [KIND_CODE[k] for k in PLACEHOLDER_KINDS])

    @property
    def num_image_tokens(self) -> int:
        return int(self.image_token_mask.sum())

    def token(self, index: int) -> TokenInfo:
        if not 0 <= index < len(self):
            raise ValueError(f"token index {index} is outside 0..{len(self) - 1}")
        box = self.box[index]
        blended = self.has_blends and bool((self.blend_weights[index] > 0).sum() > 1)
        return TokenInfo(index=index, kind=KINDS[int(self.kind[index])], crop=int(self.crop[index]),
                         row=int(self.row[index]), col=int(self.col[index]),
                         box=None if np.isnan(box).any() else tuple(float(v) for v in box),
                         blended=blended)


def build_layout(plan: "Plan") -> Layout:
    """Expand a plan into its token layout (dispatches on the plan's strategy)."""
    from .strategies import get_strategy

    return get_strategy(plan.strategy).layout(plan)

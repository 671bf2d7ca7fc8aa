"""The token ledger, "why this grid" and divergence notes: tables and words from a plan.

Pure: no numpy arrays are built here, no pixels, no gradio. The ledger's rows come from
`plan.tokens_by_kind`, so its total is `plan.num_tokens` by construction; each row says how
its count arises, with this image's numbers.
"""
from __future__ import annotations

from dataclasses import dataclass

from .strategies.base import Candidate, Plan

PART_NAMES = {
    "base": "base image",
    "tile": "tiles",
    "newline": "row-end newlines",
    "thumbnail": "thumbnail",
    "image": "image patches",
    "wrapper": "wrappers",
}
ORDER = ("base", "tile", "image", "newline", "thumbnail", "wrapper")  # as the ledger lists them


@dataclass(frozen=True)
class LedgerRow:
    part: str  # what people call it: "tiles", "row-end newlines", ...
    kind: str  # the layout kind (layout.KINDS)
    count: int
    how: str  # how the count arises, with this image's numbers


def _how_llava(plan: Plan, kind: str) -> str:
    s = plan.preset.settings
    n, tile = s.features_per_side, s.tile_size
    h2, w2 = plan.unpadded_hw.hw
    h3, w3 = plan.final_hw.hw
    if kind == "base":
        return f"whole image squashed to {tile}x{tile}: {n}x{n} feature cells"
    if kind == "newline":
        return f"one learned newline token after each of the {h3} rows"
    feats = plan.features_hw
    text = (f"{plan.grid_rows}x{plan.grid_cols} tiles of {n}x{n} cells = {feats.height}x{feats.width}; "
            f"unpadding keeps {h2}x{w2}")
    if plan.downscaled:
        text += f"; bilinear downscale to {h3}x{w3} (at most ~{s.max_tiles_downscale} tiles' worth)"
    return text + f" = {h3 * w3}"


def _how_qwen(plan: Plan, kind: str) -> str:
    s = plan.preset.settings
    if kind == "wrapper":
        return f"{plan.preset.wrapper_tokens[0]} and {plan.preset.wrapper_tokens[1]} around the patches"
    rh, rw = plan.resized_hw.hw
    return (f"resized to {rw}x{rh}: {rh // s.patch_size}x{rw // s.patch_size} patches of "
            f"{s.patch_size} px, merged {s.merge_size}x{s.merge_size} -> {plan.grid_rows}x{plan.grid_cols}")


def _how_internvl(plan: Plan, kind: str) -> str:
    s = plan.preset.settings
    m = s.cells_per_side
    per_tile = (f"{s.tile_size} px / {s.patch_size} px patches = {s.tile_size // s.patch_size}^2, "
                f"pixel shuffle x{s.downsample_ratio} -> {m}x{m}")
    if kind == "wrapper":
        return f"{plan.preset.wrapper_tokens[0]} and {plan.preset.wrapper_tokens[1]} around the tiles"
    if kind == "thumbnail":
        return f"whole image squashed to {s.tile_size}x{s.tile_size}, {m}x{m} tokens"
    tiles = plan.grid_rows * plan.grid_cols
    return f"{plan.grid_rows}x{plan.grid_cols} = {tiles} tiles x {m * m} ({per_tile})"


def ledger_rows(plan: Plan) -> list[LedgerRow]:
    """One row per kind of token the plan has, in a reading order; totals `plan.num_tokens`."""
    how = {"llava_next": _how_llava, "llava_onevision": _how_llava, "qwen2_vl": _how_qwen,
           "internvl": _how_internvl}[plan.strategy]
    kinds = [k for k in ORDER if plan.tokens_by_kind.get(k, 0)]
    unknown = set(plan.tokens_by_kind) - set(ORDER)
    if unknown:
        raise ValueError(f"the ledger has no row for token kinds {sorted(unknown)}")
    return [LedgerRow(PART_NAMES[k], k, int(plan.tokens_by_kind[k]), how(plan, k)) for k in kinds]


def ledger_total(rows: list[LedgerRow]) -> int:
    return sum(r.count for r in rows)


def ledger_table(plan: Plan) -> tuple[list[str], list[list]]:
    """(headers, rows) for a table: the ledger rows and a total row."""
    rows = ledger_rows(plan)
    body = [[r.part, r.count, r.how] for r in rows]
    wrappers = plan.num_wrapper_tokens
    note = (f"{plan.num_image_tokens} placeholder tokens + {wrappers} wrappers" if wrappers
            else f"{plan.num_image_tokens} placeholder tokens (LLaVA adds no wrappers)")
    body.append(["total", ledger_total(rows), note])
    return ["part", "tokens", "how"], body


def formula_markdown(plan: Plan) -> str:
    return f"**Formula for this image:** `{plan.formula}`"


# ----------------------------------------------------------------------------- why this grid
SCORE_LABELS = {
    "effective": "image px kept",
    "wasted": "canvas px wasted",
    "scale": "resize factor",
    "aspect_diff": "aspect-ratio gap",
    "tiles": "tiles",
    "pixels": "pixels",
    "min_pixels": "min_pixels",
    "max_pixels": "max_pixels",
}


def _fmt(value: float) -> str:
    if float(value).is_integer():
        return f"{int(value):,}"
    return f"{value:.4g}"


def why_table(plan: Plan) -> tuple[list[str], list[list[str]]]:
    """(headers, rows): every candidate the strategy scored, with its scores; winner marked."""
    keys: list[str] = []
    for cand in plan.candidates:
        keys += [k for k in cand.scores if k not in keys]
    headers = ["", "grid (rows x cols)", "canvas (W x H)"] + [SCORE_LABELS.get(k, k) for k in keys] + ["note"]
    rows = []
    for cand in plan.candidates:
        rows.append(["✓ chosen" if cand.chosen else "", f"{cand.grid_rows} x {cand.grid_cols}",
                     str(cand.canvas_hw)] + [_fmt(cand.scores[k]) if k in cand.scores else ""
                                             for k in keys] + [cand.note])
    return headers, rows


def chosen_candidate(plan: Plan) -> Candidate:
    return next(c for c in plan.candidates if c.chosen)


def why_summary(plan: Plan) -> str:
    """The rule the strategy applied, in two sentences with this image's numbers."""
    win = chosen_candidate(plan)
    h, w = plan.image_hw.hw
    if plan.strategy in ("llava_next", "llava_onevision"):
        return (f"The processor tries each of the {len(plan.candidates)} canvases in the list and "
                f"keeps the one that preserves the most image pixels, then the one that wastes the "
                f"least padding, then the first in list order. Winner: **{win.canvas_hw}** "
                f"({win.grid_rows}x{win.grid_cols} tiles), keeping {_fmt(win.scores['effective'])} px "
                f"and wasting {_fmt(win.scores['wasted'])}.")
    if plan.strategy == "internvl":
        s = plan.preset.settings
        return (f"InternVL walks every grid with {s.min_tiles} to {s.max_tiles} tiles, fewest tiles "
                f"first, and keeps the one whose aspect ratio is closest to the image's ({w / h:.3f}); "
                f"on a tie it moves to the larger grid only if the image covers more than half of "
                f"that canvas. Winner: **{win.grid_rows}x{win.grid_cols}** (aspect "
                f"{win.grid_cols / win.grid_rows:.3f}).")
    s = plan.preset.settings
    return (f"Qwen2-VL has no list of grids: it rounds each side to a multiple of {s.factor} and, "
            f"if the result is outside [min_pixels {s.min_pixels:,}, max_pixels {s.max_pixels:,}], "
            f"rescales keeping the aspect ratio. Result: **{plan.resized_hw}** = "
            f"{plan.grid_rows}x{plan.grid_cols} tokens.")


def divergence_markdown(plan: Plan) -> str:
    """Known differences between transformers and the original repository, for this image."""
    if not plan.divergences:
        return ("No known divergence between transformers and the original repository for this "
                "image and model.")
    return "**Known divergence for this image:**\n\n" + "\n".join(f"- {d}" for d in plan.divergences)

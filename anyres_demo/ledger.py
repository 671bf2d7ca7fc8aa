"""The token ledger, "why this grid" and divergence notes: tables and words from a plan.

Pure: no numpy arrays are built here, no pixels, no gradio. The ledger's rows come from
`plan.tokens_by_kind`, so its total is `plan.num_tokens` by construction; each row says how
its count arises, with this image's numbers.
"""
from __future__ import annotations

from dataclasses import dataclass

from .layout import KIND_INFO, kinds_with_role
from .strategies import hook
from .strategies.base import Candidate, Plan

PART_NAMES = {k: v.part for k, v in KIND_INFO.items()}
# The ledger's reading order: the families' views first (in the kinds' declared order, with
# the high-resolution detail before whole-image views), row ends, then special tokens.
ORDER = (kinds_with_role("detail") + kinds_with_role("global") + kinds_with_role("row_end")
         + kinds_with_role("special"))
if "base" in ORDER:  # LLaVA reads its base image first; keep it at the top as before
    ORDER = ("base",) + tuple(k for k in ORDER if k != "base")


@dataclass(frozen=True)
class LedgerRow:
    part: str  # what people call it: "tiles", "row-end newlines", ...
    kind: str  # the layout kind (layout.KINDS)
    count: int
    how: str  # how the count arises, with this image's numbers


def _how_generic(plan: Plan, kind: str) -> str:
    crops = sorted({c.index for c in plan.crops if c.kind == kind})
    if KIND_INFO[kind].placeholder and crops:
        return f"{plan.tokens_by_kind[kind]:,} tokens from {len(crops)} crop{'s' if len(crops) > 1 else ''}"
    return KIND_INFO[kind].label


def ledger_rows(plan: Plan) -> list[LedgerRow]:
    """One row per kind of token the plan has, in a reading order; totals `plan.num_tokens`."""
    how = hook(plan.strategy, "ledger_how") or _how_generic
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
    special = plan.num_special_tokens
    note = (f"{plan.num_image_tokens:,} image placeholder tokens + {special:,} special tokens" if special
            else f"{plan.num_image_tokens:,} image placeholder tokens (no special tokens)")
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
    summary = hook(plan.strategy, "why_summary")
    if summary is not None:
        return summary(plan)
    win = chosen_candidate(plan)
    return (f"{plan.preset.label} considered {len(plan.candidates)} option"
            f"{'s' if len(plan.candidates) > 1 else ''} and kept **{win.grid_rows}x{win.grid_cols}** "
            f"on a {win.canvas_hw} canvas{': ' + win.note if win.note else ''}.")


def divergence_markdown(plan: Plan) -> str:
    """Known differences between transformers and the original repository, for this image."""
    if not plan.divergences:
        return ("No known divergence between transformers and the original repository for this "
                "image and model.")
    return "**Known divergence for this image:**\n\n" + "\n".join(f"- {d}" for d in plan.divergences)

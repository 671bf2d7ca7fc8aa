"""Gemma 3: the whole image squashed to one 896x896 view, plus optional pan-and-scan crops.

Mirrors transformers 5.24 `Gemma3ImageProcessor.pan_and_scan_batched` (crops along the long side
only, the last one possibly narrower), `Gemma3Processor.replace_image_token` (the placeholder
sequence, with its prompt text when there are crops) and `Gemma3MultiModalProjector` (64x64
SigLIP patches -> AvgPool2d(4) -> 16x16 soft tokens, row-major). Spec section 2.

Every view becomes `\\n\\n <start_of_image> 256 x <image_soft_token> <end_of_image> \\n\\n`. With
k >= 1 crops the processor writes "Here is the original image", the whole-image view, "and
here are some crops to help you see better", then the k crop views. Blank lines and words are
plain text: the layout gives one token per "\\n\\n" and per word (the real Gemma tokenizer has
a "\\n\\n" piece but can merge it with neighbouring newlines); soft tokens and the
start/end markers are exact.
"""
from __future__ import annotations

import dataclasses
import functools
import math

import numpy as np

from ..geometry import Box, Size
from ..layout import KIND_CODE, Layout
from ..presets import Gemma3Settings, Preset
from .base import Candidate, ChartSpec, CropSpec, Plan, Series

# The prompt text Gemma3Processor.replace_image_token writes around the views when there are crops.
PAS_PREFIX = "Here is the original image"
PAS_MIDDLE = "and here are some crops to help you see better"
PREFIX_WORDS, MIDDLE_WORDS = len(PAS_PREFIX.split()), len(PAS_MIDDLE.split())


# ---------------------------------------------------------------- pan-and-scan decision
def pan_and_scan_steps(size_hw: Size, s: Gemma3Settings) -> dict:
    """Every number pan_and_scan_batched computes, in its order; `crops` is the final count
    (0: no crops). Long side first: landscape (w >= h) crops columns, portrait crops rows."""
    h, w = size_hw.hw
    landscape = w >= h
    long_side, short_side = (w, h) if landscape else (h, w)
    ratio = long_side / short_side
    steps = {"landscape": landscape, "ratio": ratio, "active": ratio >= s.pan_and_scan_min_ratio_to_activate}
    n_aspect = int(math.floor(ratio + 0.5))  # half-up rounding of the aspect ratio
    n_fit = int(math.floor(long_side / s.pan_and_scan_min_crop_size))
    n = min(s.pan_and_scan_max_num_crops, max(2, min(n_fit, n_aspect)))
    crop_long = int(math.ceil(long_side / n))
    steps.update(n_aspect=n_aspect, n_fit=n_fit, n=n, crop_long=crop_long, crop_short=short_side,
                 big_enough=min(crop_long, short_side) >= s.pan_and_scan_min_crop_size)
    steps["crops"] = n if (s.do_pan_and_scan and steps["active"] and steps["big_enough"]) else 0
    return steps


def crop_boxes(size_hw: Size, n: int, landscape: bool, crop_long: int) -> list[Box]:
    """The n crop windows in original pixels, in processor order (left to right / top to
    bottom); slicing past the edge makes the last one narrower."""
    h, w = size_hw.hw
    if landscape:
        return [Box(j * crop_long, 0, min(w, (j + 1) * crop_long), h) for j in range(n)]
    return [Box(0, j * crop_long, w, min(h, (j + 1) * crop_long)) for j in range(n)]


def _crops(size_hw: Size, s: Gemma3Settings, steps: dict) -> tuple[CropSpec, ...]:
    view = Size(s.view_size, s.view_size)
    whole = Box(0, 0, view.width, view.height)
    specs = [CropSpec(0, "base", -1, -1, view, view, (0, 0), whole, Box(0, 0, size_hw.width, size_hw.height))]
    k = steps["crops"]
    for j, box in enumerate(crop_boxes(size_hw, k, steps["landscape"], steps["crop_long"])):
        row, col = (0, j) if steps["landscape"] else (j, 0)
        specs.append(CropSpec(1 + j, "pas_crop", row, col, view, view, (0, 0), whole, box))
    return tuple(specs)


def _candidates(size_hw: Size, s: Gemma3Settings, steps: dict) -> tuple[Candidate, ...]:
    """The decision as rows: the single view, then what pan-and-scan computes step by step."""
    view = Size(s.view_size, s.view_size)
    k = steps["crops"]

    def grid(n):
        return (1, n) if steps["landscape"] else (n, 1)

    ratio, m = steps["ratio"], s.pan_and_scan_min_ratio_to_activate
    single_note = ("pan-and-scan is off (as released): only the whole-image view"
                   if not s.do_pan_and_scan else
                   f"aspect {ratio:.3f} is below {m}: no crops" if not steps["active"] else
                   f"a crop would be {min(steps['crop_long'], steps['crop_short'])} px on its short side, "
                   f"below the {s.pan_and_scan_min_crop_size} px minimum: no crops"
                   if not steps["big_enough"] else "pan-and-scan made crops: see the next rows")
    rows = [Candidate(1, 1, view, {"views": 1, "soft_tokens": s.tokens_per_view, "aspect": ratio},
                      chosen=k == 0, note=single_note)]
    if not steps["active"]:
        return tuple(rows)
    n = steps["n"]
    on = "" if s.do_pan_and_scan else " (if pan-and-scan were on)"
    rows.append(Candidate(*grid(steps["n_aspect"]), view, {"crops": steps["n_aspect"], "aspect": ratio},
                          note=f"crops = round half up of the aspect {ratio:.3f}{on}"))
    rows.append(Candidate(*grid(min(steps["n_fit"], steps["n_aspect"])), view,
                          {"crops": min(steps["n_fit"], steps["n_aspect"]), "fit": steps["n_fit"]},
                          note=f"at most long side // {s.pan_and_scan_min_crop_size} = {steps['n_fit']}"))
    rows.append(Candidate(*grid(n), view,
                          {"crops": n, "views": 1 + n, "soft_tokens": s.tokens_per_view * (1 + n),
                           "crop_long": steps["crop_long"], "crop_short": steps["crop_short"]},
                          chosen=k > 0,
                          note=f"clamped to [2, {s.pan_and_scan_max_num_crops}]; each crop "
                               f"{steps['crop_long']} px along the long side"
                               + ("" if steps["big_enough"] else ", too small: rejected") + on))
    return tuple(rows)


def plan(size_hw: Size, preset: Preset) -> Plan:
    s: Gemma3Settings = preset.settings
    steps = pan_and_scan_steps(size_hw, s)
    k = steps["crops"]
    crops = _crops(size_hw, s, steps)
    counts = {"base": s.tokens_per_view, "pas_crop": s.tokens_per_view * k,
              "wrapper": 2 * (1 + k), "break": 2 * (1 + k),
              "pas_text": (PREFIX_WORDS + MIDDLE_WORDS) if k else 0}
    counts = {kind: v for kind, v in counts.items() if v}
    rows, cols = ((1, k) if steps["landscape"] else (k, 1)) if k else (1, 1)
    view = Size(s.view_size, s.view_size)
    return Plan(preset=preset, image_hw=size_hw, grid_rows=rows, grid_cols=cols, canvas_hw=view,
                resized_hw=view, paste_yx=(0, 0), crops=crops,
                candidates_fn=lambda: _candidates(size_hw, s, steps), tokens_by_kind=counts,
                cell_px=s.cell_size, cells_per_tile=s.tokens_per_side,
                divergences=_divergences(s, k), formula=_formula(s, k, counts))


def _formula(s: Gemma3Settings, k: int, counts: dict) -> str:
    n = s.tokens_per_side
    soft = s.tokens_per_view * (1 + k)
    text = (f" + {PREFIX_WORDS + MIDDLE_WORDS} prompt words" if k else "")
    return (f"({s.view_size}/{s.patch_size} = 64)^2 patches, 4x4 average-pooled = {n} x {n} = "
            f"{s.tokens_per_view} per view; {1 + k} view{'s' if k else ''} x {s.tokens_per_view} = "
            f"{soft} soft tokens, + {2 * (1 + k)} start/end markers + {2 * (1 + k)} blank lines"
            f"{text} = {sum(counts.values())}")


def _divergences(s: Gemma3Settings, k: int) -> tuple[str, ...]:
    notes = []
    if not s.do_pan_and_scan:
        notes.append("Pan-and-scan is off by default in transformers and vLLM (turn it on with "
                     "do_pan_and_scan=True / mm_processor_kwargs); Ollama does not implement it at "
                     "all, so there every image is the single 256-token view shown here.")
    else:
        notes.append("Pan-and-scan is on: vLLM gives the same crops only with "
                     "mm_processor_kwargs={'do_pan_and_scan': True}; Ollama has no pan-and-scan "
                     "and would always use one 256-token view.")
    if k:
        notes.append(f"transformers' counting helper (_get_num_multimodal_tokens) says "
                     f"{s.tokens_per_view} soft tokens here; the processor really inserts "
                     f"{s.tokens_per_view * (1 + k)} (it ignores pan-and-scan crops).")
    return tuple(notes)


# ---------------------------------------------------------------- layout
@functools.lru_cache(maxsize=8)
def _cells(n: int) -> tuple[np.ndarray, np.ndarray]:
    """(row, col) of soft token i of one view: divmod(i, n), row-major."""
    r, c = np.divmod(np.arange(n * n), n)
    r.flags.writeable = c.flags.writeable = False
    return r, c


def layout(plan: Plan) -> Layout:
    """Every token in LLM order. Each view is `\\n\\n <start_of_image> 256 x soft <end_of_image>
    \\n\\n`; with crops the prompt words come before the whole-image view and before the crops.
    Soft token i of a view is cell divmod(i, 16) of that view, a 56x56 block of the 896 view, i.e.
    1/16 of the view's source box per side (the projector's AvgPool2d(4) over the 64x64
    patches, flattened row-major). A crop's (row, col) are on the stitched crop grid (crops tile
    the image along one axis, so their grids sit side by side as one panel); the whole-image
    view's are its own 16x16."""
    s: Gemma3Settings = plan.preset.settings
    n = s.tokens_per_side
    k = plan.num_crops - 1
    block = n * n + 4
    pre, mid = (PREFIX_WORDS, MIDDLE_WORDS) if k else (0, 0)
    total = pre + mid + block * (1 + k)
    kind = np.full(total, KIND_CODE["pas_text"], np.int8)
    crop = np.full(total, -1, np.int16)
    row = np.full(total, -1, np.int32)
    col = np.full(total, -1, np.int32)
    box = np.full((total, 4), np.nan)
    r, c = _cells(n)
    starts = [pre] + [pre + block + mid + j * block for j in range(k)]
    for spec, start in zip(plan.crops, starts):
        kind[[start, start + block - 1]] = KIND_CODE["break"]
        kind[[start + 1, start + block - 2]] = KIND_CODE["wrapper"]
        cells = slice(start + 2, start + 2 + n * n)
        kind[cells] = KIND_CODE["base" if spec.row < 0 else "pas_crop"]
        crop[cells] = spec.index
        row[cells] = r + n * max(spec.row, 0)
        col[cells] = c + n * max(spec.col, 0)
        src = spec.source
        cw, ch = src.width / n, src.height / n
        box[cells, 0], box[cells, 2] = src.x0 + c * cw, src.x0 + (c + 1) * cw
        box[cells, 1], box[cells, 3] = src.y0 + r * ch, src.y0 + (r + 1) * ch
    return Layout(plan=plan, kind=kind, crop=crop, row=row, col=col, box=box)


# ---------------------------------------------------------------- vectorized counts
def num_crops_many(h: np.ndarray, w: np.ndarray, s: Gemma3Settings) -> np.ndarray:
    """Pan-and-scan crop counts for many sizes (0 where no crops), as pan_and_scan_steps."""
    h = np.asarray(h, dtype=np.int64)
    w = np.asarray(w, dtype=np.int64)
    if not s.do_pan_and_scan:
        return np.zeros(np.broadcast(h, w).shape, np.int64)
    long_side, short_side = np.maximum(h, w), np.maximum(np.minimum(h, w), 1)
    ratio = long_side / short_side
    n = np.minimum(np.floor(long_side / s.pan_and_scan_min_crop_size), np.floor(ratio + 0.5))
    n = np.minimum(s.pan_and_scan_max_num_crops, np.maximum(2, n))
    crop_long = np.ceil(long_side / n)
    ok = (ratio >= s.pan_and_scan_min_ratio_to_activate) & \
        (np.minimum(crop_long, short_side) >= s.pan_and_scan_min_crop_size)
    return np.where(ok, n, 0).astype(np.int64)


def count_many(h: np.ndarray, w: np.ndarray, preset: Preset) -> np.ndarray:
    """Soft tokens: 256 x (1 + crops); -1 for a side below 1 px."""
    s: Gemma3Settings = preset.settings
    h = np.asarray(h, dtype=np.int64)
    w = np.asarray(w, dtype=np.int64)
    valid = (h >= 1) & (w >= 1)
    k = num_crops_many(np.where(valid, h, 1), np.where(valid, w, 1), s)
    return np.where(valid, s.tokens_per_view * (1 + k), -1)


def count_many_total(h: np.ndarray, w: np.ndarray, preset: Preset) -> np.ndarray:
    """Soft tokens + 2 markers and 2 blank lines per view + the prompt words when cropped."""
    s: Gemma3Settings = preset.settings
    soft = count_many(h, w, preset)
    views = soft // s.tokens_per_view
    text = np.where(views > 1, PREFIX_WORDS + MIDDLE_WORDS, 0)
    return np.where(soft >= 0, soft + 4 * views + text, -1)


# ---------------------------------------------------------------- words and charts
def _views(plan: Plan) -> int:
    return plan.num_crops


def ledger_how(plan: Plan, kind: str) -> str:
    s: Gemma3Settings = plan.preset.settings
    n, views = s.tokens_per_side, _views(plan)
    if kind == "base":
        return (f"whole {plan.image_hw} image squashed to {s.view_size}x{s.view_size}: "
                f"{s.view_size // s.patch_size}x{s.view_size // s.patch_size} patches of {s.patch_size} px, "
                f"4x4 average-pooled -> {n}x{n}")
    if kind == "pas_crop":
        sizes = ", ".join(sorted({f"{int(c.source.width)}x{int(c.source.height)}" for c in plan.crops[1:]}))
        return (f"{views - 1} pan-and-scan crops ({sizes}) along the long side, each squashed to "
                f"{s.view_size}x{s.view_size} -> {views - 1} x {n * n}")
    if kind == "wrapper":
        start, end = plan.preset.wrapper_tokens
        return f"{start} and {end} around each of the {views} view{'s' if views > 1 else ''}"
    if kind == "break":
        return ('"\\n\\n" before and after each view, one token each (Gemma\'s tokenizer has a '
                '"\\n\\n" piece; next to other newlines it may merge)')
    return (f'"{PAS_PREFIX}" ({PREFIX_WORDS}) before the whole-image view and "{PAS_MIDDLE}" '
            f"({MIDDLE_WORDS}) before the crops; counted one token per word")


def why_summary(plan: Plan) -> str:
    s: Gemma3Settings = plan.preset.settings
    steps = pan_and_scan_steps(plan.image_hw, s)
    k = plan.num_crops - 1
    if not s.do_pan_and_scan:
        would = pan_and_scan_steps(plan.image_hw, dataclasses.replace(s, do_pan_and_scan=True))["crops"]
        hint = (f" With pan-and-scan on, this image (aspect {steps['ratio']:.2f}:1) would get "
                f"{would} crops: {(1 + would) * s.tokens_per_view} soft tokens." if would else
                " Pan-and-scan would not crop this image either.")
        return (f"{plan.preset.label} squashes every image, whatever its size or shape, to one "
                f"{s.view_size}x{s.view_size} view: **{s.tokens_per_view} soft tokens**. "
                f"Pan-and-scan is off, as released.{hint}")
    if not k:
        return (f"Pan-and-scan is on but made no crops (aspect {steps['ratio']:.2f}:1 needs at "
                f"least {s.pan_and_scan_min_ratio_to_activate} and crops of at least "
                f"{s.pan_and_scan_min_crop_size} px): one {s.view_size} view, "
                f"**{s.tokens_per_view} soft tokens**.")
    return (f"Aspect {steps['ratio']:.2f}:1 reaches {s.pan_and_scan_min_ratio_to_activate}, so "
            f"pan-and-scan cut **{k} crops** of {steps['crop_long']} px along the long side; the "
            f"whole image and each crop are squashed to their own {s.view_size} view: "
            f"{1 + k} x {s.tokens_per_view} = **{(1 + k) * s.tokens_per_view} soft tokens**.")


def resize_note(plan: Plan) -> str:
    s: Gemma3Settings = plan.preset.settings
    h, w = plan.image_hw.hw
    crops = plan.crops[1:]
    text = (f"{plan.image_hw} squashed to {s.view_size}x{s.view_size} (x{s.view_size / w:.3f} wide, "
            f"x{s.view_size / h:.3f} high: the aspect ratio is not kept)")
    if crops:
        text += (f", plus {len(crops)} crops of {int(crops[0].source.width)}x"
                 f"{int(crops[0].source.height)} each squashed to {s.view_size}x{s.view_size}")
    return text + f" -> {plan.num_image_tokens:,} soft tokens."


def candidates_chart(plan: Plan) -> ChartSpec:
    s: Gemma3Settings = plan.preset.settings
    cands = plan.candidates
    names = ("single view", "round the aspect", "cap by crop size", "clamp to the range")
    labels = tuple(names[i] + (" ✓" if c.chosen else "") for i, c in enumerate(cands))
    crops = tuple(float(c.scores.get("crops", 0)) for c in cands)
    return ChartSpec("Why these crops: pan-and-scan's steps (crops along the long side)", "step",
                     "crops", labels,
                     (Series("crops", crops, tuple("#b8860b" if c.chosen else "#999999" for c in cands)),),
                     hlines=((float(s.pan_and_scan_max_num_crops), "max crops"),),
                     chosen=next(i for i, c in enumerate(cands) if c.chosen))


TEACHING = {
    "grid": ("**Gemma 3** does not tile: the whole image is **squashed** to one 896x896 view "
             "(64x64 SigLIP patches, averaged 4x4 into 16x16 = 256 tokens), whatever its shape. "
             "**Pan-and-scan** (off as released) adds 2-4 crops along the long side of elongated "
             "images, each squashed to its own 896 view with its own 256 tokens."),
    "crops": ("View 0 is the whole image squashed to 896x896; with pan-and-scan the crops follow, "
              "left to right (or top to bottom). Each view is wrapped in <start_of_image> ... "
              "<end_of_image>, and the processor writes a short sentence before the views."),
    "divergence": ("Pan-and-scan is off by default in transformers and vLLM and missing in Ollama, "
                   "so the same checkpoint sees 256 or up to 1,280 image tokens depending on the "
                   "engine. transformers' own counting helper ignores the crops."),
}


def teaching(view: str) -> str | None:
    return TEACHING.get(view)

"""Legibility probe: which words survive each strategy's crops.

The reference is OCR of the original at full resolution. Each view (a strategy's crops as the
model receives them, or the fixed 336x336 squash) is OCR'd crop by crop and every word box is
mapped back to the original through its CropSpec. A reference word counts as READ by a view if
any of its crops (tiles, base image or thumbnail alike) reads a word with the same normalised
text whose centre lies within half a line height of the reference box. A reference word whose
box spans two or more tiles is CUT by a seam; seam losses are cut words the view does not read.

OCR (PP-OCRv6 small) is a stand-in reader for "could a model read this from these pixels"; a
VLM may do better or worse. LLaVA-OneVision's feature downscale (anyres_max_9) happens after
the vision encoder, so the OCR sees its crops before it.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any, Generator, Optional, Sequence

import numpy as np
from PIL import Image, ImageDraw

from ..geometry import Box
from ..layout import kinds_with_role
from ..presets import FAMILY_DEFAULTS, Preset, get_preset
from . import (GLOBAL_KINDS, Progress, View, baseline_view, crop_to_original, image_digest,
               outline_xy, render_view, report, strategy_view)
from . import cache
from .ocr import (OcrSettings, Steps, Word, read_many, run_steps, words_from_arrays,
                  words_to_arrays)

PROBE = "legibility"
VERSION = 1  # bump when readings change; old cache entries are then never read
REFERENCE_KEY = "reference"
MATCH_TOLERANCE = 0.5  # a read word's centre may sit this many line heights outside the box
SEAM_MIN_OVERLAP = 1.0  # px: a word touching a tile by less than this is not cut by its edge


@dataclass
class Reading:
    """Words one view (or the reference) reads, boxes in ORIGINAL-image pixels."""

    key: str  # view key or REFERENCE_KEY
    words: list[Word]
    crop: np.ndarray  # (n,) index of the crop that read each word (-1 for the reference)
    kinds: list[str]  # kind of that crop ("reference" for the reference)
    seconds: float = 0.0
    cached: bool = False


# --- reading ----------------------------------------------------------------------------------

def _map_words(words: Sequence[Word], spec: Any, view: View) -> list[Word]:
    if not words:
        return []
    boxes = np.array([w.box for w in words], dtype=np.float64)
    x0, y0 = crop_to_original(spec, view.image_hw, boxes[:, 0], boxes[:, 1])
    x1, y1 = crop_to_original(spec, view.image_hw, boxes[:, 2], boxes[:, 3])
    return [Word(w.text, (float(a), float(b), float(c), float(d)), w.score)
            for w, a, b, c, d in zip(words, x0, y0, x1, y1)]


def _read_crops(image: Image.Image, view: View, settings: OcrSettings) -> Steps:
    crops = render_view(image, view)
    per_crop = yield from read_many(crops, settings)
    words, crop, kinds = [], [], []
    for spec, found in zip(view.crops, per_crop):
        mapped = _map_words(found, spec, view)
        words += mapped
        crop += [spec.index] * len(mapped)
        kinds += [spec.kind] * len(mapped)
    return Reading(view.key, words, np.array(crop, dtype=np.int64), kinds)


def _read_reference(image: Image.Image, settings: OcrSettings) -> Steps:
    [words] = yield from read_many([image], settings)
    return Reading(REFERENCE_KEY, words, np.full(len(words), -1, np.int64),
                   [REFERENCE_KEY] * len(words))


def _cached_reading(image: Image.Image, name: str, settings: OcrSettings, use_cache: bool,
                    compute: Any) -> Steps:
    """The cached reading, or `compute()`'s steps and then the reading (stored)."""
    start = time.perf_counter()
    key = cache.make_key(PROBE, VERSION, image_digest(image), name,
                         sorted(asdict(settings).items()))
    hit = cache.load(PROBE, key) if use_cache else None
    if hit is not None:
        arrays, meta = hit
        reading = Reading(meta["key"], words_from_arrays(arrays["boxes"], arrays["scores"],
                                                         meta["texts"]),
                          arrays["crop"], meta["kinds"])
    else:
        reading = yield from compute()
        if use_cache:
            boxes, scores, texts = words_to_arrays(reading.words)
            cache.save(PROBE, key, {"boxes": boxes, "scores": scores, "crop": reading.crop},
                       {"key": reading.key, "texts": texts, "kinds": reading.kinds})
    reading.seconds, reading.cached = time.perf_counter() - start, hit is not None
    return reading


def reference_steps(image: Image.Image, settings: OcrSettings = OcrSettings(),
                    use_cache: bool = True) -> Steps:
    """`read_reference` as steps."""
    return _cached_reading(image, REFERENCE_KEY, settings, use_cache,
                           lambda: _read_reference(image, settings))


def view_steps(image: Image.Image, view: View, settings: OcrSettings = OcrSettings(),
               use_cache: bool = True) -> Steps:
    """`read_view` as steps."""
    return _cached_reading(image, view.settings_key, settings, use_cache,
                           lambda: _read_crops(image, view, settings))


def read_reference(image: Image.Image, settings: OcrSettings = OcrSettings(),
                   progress: Optional[Progress] = None, use_cache: bool = True) -> Reading:
    """OCR of the original at full resolution: the words there are to lose."""
    return run_steps(reference_steps(image, settings, use_cache), progress)


def read_view(image: Image.Image, view: View, settings: OcrSettings = OcrSettings(),
              progress: Optional[Progress] = None, use_cache: bool = True) -> Reading:
    """OCR of every crop of `view` as the model receives it, mapped to the original."""
    return run_steps(view_steps(image, view, settings, use_cache), progress)


# --- scoring --------------------------------------------------------------------------------

def match_words(reference: Sequence[Word], candidates: Sequence[Word]) -> np.ndarray:
    """(n_reference,) bool: read by some candidate with the same normalised text whose centre
    is within MATCH_TOLERANCE line heights of the reference box; one candidate per word."""
    by_text: dict[str, list[int]] = {}
    for j, w in enumerate(candidates):
        by_text.setdefault(w.norm, []).append(j)
    used: set[int] = set()
    read = np.zeros(len(reference), dtype=bool)
    for i, ref in enumerate(reference):
        x0, y0, x1, y1 = ref.box
        pad = MATCH_TOLERANCE * (y1 - y0)
        for j in by_text.get(ref.norm, ()):
            cx0, cy0, cx1, cy1 = candidates[j].box
            cx, cy = (cx0 + cx1) / 2, (cy0 + cy1) / 2
            if j not in used and x0 - pad <= cx <= x1 + pad and y0 - pad <= cy <= y1 + pad:
                used.add(j)
                read[i] = True
                break
    return read


def cut_by_seams(reference: Sequence[Word], tiles: Sequence[Box]) -> np.ndarray:
    """(n_reference,) bool: the word's box overlaps two or more tiles (by SEAM_MIN_OVERLAP px
    in both directions), so no single tile holds all of it."""
    if len(tiles) < 2 or not reference:
        return np.zeros(len(reference), dtype=bool)
    w = np.array([r.box for r in reference], dtype=np.float64)[:, None, :]  # (n, 1, 4)
    t = np.array([b.as_tuple() for b in tiles], dtype=np.float64)[None]  # (1, k, 4)
    dx = np.minimum(w[..., 2], t[..., 2]) - np.maximum(w[..., 0], t[..., 0])
    dy = np.minimum(w[..., 3], t[..., 3]) - np.maximum(w[..., 1], t[..., 1])
    return ((dx >= SEAM_MIN_OVERLAP) & (dy >= SEAM_MIN_OVERLAP)).sum(axis=1) >= 2


@dataclass
class LegibilityResult:
    """One view scored against the reference."""

    view: View
    reference: Reading
    reading: Reading
    read: np.ndarray  # (n_reference,) bool, any crop
    read_highres: np.ndarray  # by tiles / the native image alone
    read_global: np.ndarray  # by the base image / thumbnail / squash alone
    cut: np.ndarray  # (n_reference,) bool, box spans a tile edge
    notes: list[str] = field(default_factory=list)

    @property
    def recall(self) -> float:
        return float(self.read.mean()) if len(self.read) else float("nan")

    @property
    def lost_at_seams(self) -> int:
        return int((self.cut & ~self.read).sum())

    def row(self) -> dict:
        """One line of the comparison table."""
        n, away = len(self.read), ~self.cut
        rate = (lambda m: round(float(m.mean()), 4) if len(m) else None)
        return {"view": self.view.label, "crops": len(self.view.crops),
                "image tokens": self.view.num_tokens,
                "words read": f"{int(self.read.sum())}/{n}", "recall": rate(self.read),
                "recall, tiles / native only": rate(self.read_highres)
                if self.view.key != "fixed" else None,
                "recall, global view only": rate(self.read_global)
                if any(c.kind in GLOBAL_KINDS for c in self.view.crops) else None,
                "words cut by tile edges": int(self.cut.sum()),
                "lost at seams": self.lost_at_seams,
                "recall away from seams": rate(self.read[away]),
                "seconds": round(self.reading.seconds, 2), "cached": self.reading.cached}


def _subset(reading: Reading, kinds: Sequence[str]) -> list[Word]:
    return [w for w, k in zip(reading.words, reading.kinds) if k in kinds]


def score(view: View, reference: Reading, reading: Reading) -> LegibilityResult:
    ref = reference.words
    return LegibilityResult(
        view=view, reference=reference, reading=reading,
        read=match_words(ref, reading.words),
        read_highres=match_words(ref, _subset(reading, kinds_with_role("detail"))),
        read_global=match_words(ref, _subset(reading, GLOBAL_KINDS)),
        cut=cut_by_seams(ref, view.tile_boxes))


# --- front doors --------------------------------------------------------------------------

def legibility(image: Image.Image, view: View, settings: OcrSettings = OcrSettings(),
               progress: Optional[Progress] = None, use_cache: bool = True,
               reference: Optional[Reading] = None) -> LegibilityResult:
    """Score one view; the reference is read (or loaded) unless given."""
    def part(lo: float, hi: float) -> Optional[Progress]:
        return None if progress is None else (lambda f, t: progress(lo + (hi - lo) * f, t))

    split = 0.0
    if reference is None:
        split = 0.4  # the full-resolution read costs about as much as a strategy's crops
        reference = read_reference(image, settings, part(0.0, split), use_cache)
    reading = read_view(image, view, settings, part(split, 1.0), use_cache)
    return score(view, reference, reading)


def strategy_legibility(image: Image.Image, model: str | Preset,
                        settings: OcrSettings = OcrSettings(),
                        progress: Optional[Progress] = None, use_cache: bool = True,
                        **overrides: Any) -> LegibilityResult:
    """`legibility` for the crops `model`'s processor makes of `image`."""
    return legibility(image, strategy_view(image, model, **overrides), settings, progress,
                      use_cache)


@dataclass
class Comparison:
    reference: Reading
    results: list[LegibilityResult]  # in the order they were computed
    pending: list[str] = field(default_factory=list)  # labels of the views still to come
    skipped: tuple[str, ...] = ()  # "model: why", for models whose processor refuses the image

    @property
    def table(self) -> list[dict]:
        return [r.row() for r in self.results]


@dataclass
class Step:
    """One step of a comparison: how far it is, what runs next, and the comparison so far
    when a view has just been scored (None otherwise)."""

    fraction: float
    text: str
    comparison: Optional[Comparison] = None


def comparison_views(image: Image.Image, chosen: Optional[str | Preset] = None,
                     models: Optional[Sequence[str | Preset]] = None,
                     skipped: Optional[list] = None, **overrides: Any) -> list[View]:
    """The views to compare, in the order they are computed: the chosen model (with its
    settings) first, then the fixed-resolution baseline, then one model per other family
    (default: presets.FAMILY_DEFAULTS). With a `skipped` list, a model whose processor refuses
    the image is left out and named there (else its ValueError propagates)."""
    models = list(FAMILY_DEFAULTS.values()) if models is None else list(models)
    views: list[View] = []
    if chosen is not None:
        first = _try_view(image, chosen, skipped, **overrides)
        if first is not None:
            views.append(first)
            models = [m for m in models if _family(m) != first.strategy]
    others = [_try_view(image, m, skipped) for m in models]
    return views + [baseline_view(image)] + [v for v in others if v is not None]


def _family(model: "str | Preset") -> str:
    return (get_preset(model) if isinstance(model, str) else model).strategy


def _try_view(image: Image.Image, model: "str | Preset", skipped: Optional[list], **overrides: Any
              ) -> Optional[View]:
    """The model's view, or None with "label: why" added to `skipped` when its processor refuses
    the image (Qwen2-VL above 200:1: the others still answer)."""
    try:
        return strategy_view(image, model, **overrides)
    except ValueError as exc:
        if skipped is None:
            raise
        label = get_preset(model).label if isinstance(model, str) else model.label
        skipped.append(f"{label}: {exc}")
        return None


def comparison_steps(image: Image.Image, chosen: Optional[str | Preset] = None,
                     models: Optional[Sequence[str | Preset]] = None,
                     settings: OcrSettings = OcrSettings(), use_cache: bool = True,
                     **overrides: Any) -> Generator[Step, None, Comparison]:
    """The comparison as steps: the reference and the chosen model's view first (shown as soon
    as both are read), then the baseline and the other families one by one. Each step is
    short (one detection or one batch of text lines), so progress moves and a consumer that
    stops iterating (Stop, a closed tab) stops the work there. Returns the full comparison."""
    skipped: list[str] = []
    views = comparison_views(image, chosen, models, skipped=skipped, **overrides)
    # progress by pixels read: OCR time grows with them. The first view (the chosen model's)
    # is read before the reference: its crops are small, so progress moves within a second or
    # two, where the reference's one full-resolution detection takes several; both are needed
    # before the first result, so that result comes no later.
    crop_px = [float(sum(c.out_hw.area for c in v.crops)) for v in views]
    weights = np.array(crop_px[:1] + [float(views[0].image_hw.area)] + crop_px[1:], np.float64)
    edges = np.concatenate([[0.0], np.cumsum(weights) / weights.sum()])
    yield Step(0.0, f"reading {views[0].label}")
    first = yield from _steps(view_steps(image, views[0], settings, use_cache), edges[0], edges[1])
    yield Step(float(edges[1]), "reading the full-resolution reference")
    reference = yield from _steps(reference_steps(image, settings, use_cache), edges[1], edges[2])
    results: list[LegibilityResult] = []
    for k, view in enumerate(views):
        if k == 0:
            reading = first
        else:
            yield Step(float(edges[k + 1]), f"reading {view.label}")
            reading = yield from _steps(view_steps(image, view, settings, use_cache),
                                        edges[k + 1], edges[k + 2])
        results.append(score(view, reference, reading))
        yield Step(float(edges[k + 2]), f"{view.label} done",
                   Comparison(reference, list(results), [v.label for v in views[k + 1:]],
                              tuple(skipped)))
    return Comparison(reference, results, [], tuple(skipped))


def _steps(steps: Steps, lo: float, hi: float) -> Generator[Step, None, Any]:
    while True:
        try:
            fraction, text = next(steps)
        except StopIteration as stop:
            return stop.value
        yield Step(lo + (hi - lo) * fraction, text)


def compare_legibility(image: Image.Image, models: Optional[Sequence[str | Preset]] = None,
                       settings: OcrSettings = OcrSettings(),
                       progress: Optional[Progress] = None, use_cache: bool = True,
                       chosen: Optional[str | Preset] = None, **overrides: Any) -> Comparison:
    """The fixed-resolution baseline and every model (default: one preset per strategy
    family; `chosen` first, with `overrides`) against the full-resolution reference."""
    steps = comparison_steps(image, chosen, models, settings, use_cache, **overrides)
    while True:
        try:
            step = next(steps)
        except StopIteration as stop:
            report(progress, 1.0, "legibility done")
            return stop.value
        report(progress, step.fraction, step.text)


# --- pictures -------------------------------------------------------------------------------

READ_RGB = (40, 170, 60)
LOST_RGB = (225, 40, 40)
SEAM_RGB = (255, 150, 0)
EDGE_RGB = (30, 110, 255)


def render_lost_words(image: Image.Image, result: LegibilityResult,
                      max_side: Optional[int] = 1400) -> Image.Image:
    """The original, faded, with every reference word outlined green (read), filled red (lost)
    or orange (lost where a tile edge cuts it); tile edges in blue."""
    scale = 1.0
    if max_side and max(image.size) > max_side:
        scale = max_side / max(image.size)
    size = (max(1, round(image.size[0] * scale)), max(1, round(image.size[1] * scale)))
    base = image.convert("RGB").resize(size, Image.Resampling.LANCZOS)
    faded = Image.blend(base, Image.new("RGB", size, (255, 255, 255)), 0.45)
    layer = Image.new("RGBA", size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    for word, read, cut in zip(result.reference.words, result.read, result.cut):
        x0, y0, x1, y1 = (v * scale for v in word.box)
        box = [x0, y0, max(x0, x1), max(y0, y1)]
        if read:
            draw.rectangle(box, outline=READ_RGB + (230,), width=1)
        else:
            draw.rectangle(box, fill=(SEAM_RGB if cut else LOST_RGB) + (110,),
                           outline=(SEAM_RGB if cut else LOST_RGB) + (255,), width=1)
    for tile in result.view.tile_boxes:
        draw.rectangle(outline_xy(tile, scale), outline=EDGE_RGB + (200,), width=2)
    return Image.alpha_composite(faded.convert("RGBA"), layer).convert("RGB")


def caption(result: LegibilityResult) -> str:
    """One sentence per picture: what was read, what was lost and where."""
    n = len(result.read)
    if n == 0:
        return (f"{result.view.label}: the full-resolution OCR found no words, so there is "
                "nothing to lose.")
    text = (f"{result.view.label}: {int(result.read.sum())} of {n} reference words read "
            f"({result.recall:.1%}); lost words in red")
    if result.cut.any():
        text += (f", {result.lost_at_seams} of the {int(result.cut.sum())} words cut by a "
                 "tile edge (blue) lost there (orange)")
    return text + ". Reader: PP-OCRv6 (RapidOCR), a stand-in for the VLM."

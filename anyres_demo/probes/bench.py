"""Probe timings on a 2 MP page, uncached: the legibility probe before and after the step
pipeline (side by side in one run: time until the first result on screen and until all), and
encoder attention.

`run_probe_bench()` returns the lines it prints; `python -m anyres_demo.bench` calls it. It uses
a fresh temporary cache folder, so every pass is cold and the user's cache is left alone. On 2
quiet CPU cores expect a few minutes, mostly OCR.
"""
from __future__ import annotations

import os
import random
import tempfile
import time
from typing import Callable, Optional, Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from ..presets import FAMILY_DEFAULTS

from . import baseline_view, strategy_view
from .cache import ENV_VAR
from .encoder import get_encoder
from .ocr import OcrSettings, get_engine

BENCH_HW = (1080, 1920)  # 2 MP, the size people upload from phones and screenshots
WORDS = ("alpha", "budget", "cable", "delta", "engine", "fabric", "garden", "harbor", "island",
         "jungle", "kettle", "lemon", "market", "number", "orange", "pencil", "quartz", "river")


def text_page(size_hw: tuple[int, int] = BENCH_HW, font_px: Sequence[int] = (12, 16, 24),
              seed: int = 0) -> Image.Image:
    """A page of random words in bands of font sizes, with two shapes for the encoder."""
    height, width = size_hw
    rng = random.Random(seed)
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    fonts = [ImageFont.load_default(size=px) for px in font_px]
    band = height // len(fonts)
    for k, font in enumerate(fonts):
        px = font_px[k]
        for y in range(k * band + px // 2, (k + 1) * band - 2 * px, int(px * 1.7)):
            x = px // 2
            while True:
                word = f"{rng.choice(WORDS)}{rng.randint(0, 99)}"
                if x + draw.textlength(word, font=font) > width * 0.7:
                    break
                draw.text((x, y), word, fill="black", font=font)
                x += draw.textlength(word, font=font) + px
    draw.ellipse((int(width * 0.75), height // 8, int(width * 0.95), height // 2),
                 fill=(210, 40, 40))
    draw.rectangle((int(width * 0.75), int(height * 0.6), int(width * 0.95), int(height * 0.9)),
                   fill=(40, 120, 200))
    return image


def _timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def before_comparison(image: Image.Image, models: Sequence[str]) -> list[tuple[str, float]]:
    """The legibility comparison as the probe ran it before the step pipeline: the reference,
    then the baseline and every family in turn, each crop through RapidOCR's own call (identical
    crops read once, as then), every result shown at the end. Returns (view key, recall)."""
    from .legibility import REFERENCE_KEY, Reading, _map_words, score
    from .ocr import _digest, read_words_one_call
    from . import render_view

    memo: dict[str, list] = {}

    def read(crop: Image.Image, settings=OcrSettings()) -> list:
        key = _digest(crop.convert("RGB"), settings)
        if key not in memo:
            memo[key] = read_words_one_call(crop, settings)
        return memo[key]

    words = read(image)
    reference = Reading(REFERENCE_KEY, words, np.full(len(words), -1), [REFERENCE_KEY] * len(words))
    out = []
    for view in [baseline_view(image)] + [strategy_view(image, m) for m in models]:
        found, crop_of, kinds = [], [], []
        for spec, pixels in zip(view.crops, render_view(image, view)):
            mapped = _map_words(read(pixels), spec, view)
            found += mapped
            crop_of += [spec.index] * len(mapped)
            kinds += [spec.kind] * len(mapped)
        result = score(view, reference, Reading(view.key, found, np.array(crop_of), kinds))
        out.append((view.key, round(result.recall, 4)))
    return out


def after_comparison(image: Image.Image, chosen: str, models: Sequence[str]) -> dict:
    """The probe now: steps, chosen model first. Seconds until progress first moves, until the
    reference and the chosen model are on screen, until everything is; recalls by view key."""
    from . import ocr
    from .legibility import comparison_steps

    ocr._MEMO.clear()  # uncached: nothing remembered from an earlier run
    start = time.perf_counter()
    marks: dict[str, float] = {}
    steps = comparison_steps(image, chosen, models, use_cache=False)
    while True:
        try:
            step = next(steps)
        except StopIteration as stop:
            comparison = stop.value
            break
        now = time.perf_counter() - start
        if step.fraction > 0:
            marks.setdefault("moves", now)
        if step.comparison is not None:
            marks.setdefault("first", now)
    marks["all"] = time.perf_counter() - start
    marks["recalls"] = [(r.view.key, round(r.recall, 4)) for r in comparison.results]
    return marks


def bench_legibility(image: Image.Image, emit: Callable[[str], None], smoke: bool = False) -> None:
    """Before and after on the same page, side by side (after first: it pays any first-call
    warm-up), uncached. Smoke: the chosen family only."""
    chosen = next(iter(FAMILY_DEFAULTS.values()))  # the app's first family
    models = [chosen] if smoke else list(FAMILY_DEFAULTS.values())
    after = after_comparison(image, chosen, models)
    start = time.perf_counter()
    before = before_comparison(image, models)
    t_before = time.perf_counter() - start
    same = sorted(before) == sorted(after["recalls"])
    emit(f"  legibility, uncached, chosen model {chosen}: before (results at the end) "
         f"{t_before:.1f} s | now: progress moves after {after.get('moves', float('nan')):.2f} s, "
         f"reference + chosen model shown after {after['first']:.1f} s "
         f"({t_before / after['first']:.1f}x sooner), all after {after['all']:.1f} s "
         f"({t_before / after['all']:.2f}x); same recalls: {'yes' if same else 'NO'}")


def _bench_encoder(image: Image.Image, emit: Callable[[str], None]) -> None:
    """Encoder attention for the chosen model and the squash: one result, uncached then cached."""
    from .encoder import compare_attention

    chosen = next(iter(FAMILY_DEFAULTS.values()))
    cold = _timed(lambda: compare_attention(image, chosen))
    warm = _timed(lambda: compare_attention(image, chosen))
    emit(f"  encoder attention, chosen model + 336 squash: uncached {cold:.2f} s "
         f"(first result = all results), cached {warm * 1e3:.1f} ms")


def run_probe_bench(size_hw: tuple[int, int] = BENCH_HW,
                    emit: Optional[Callable[[str], None]] = print, smoke: bool = False) -> list[str]:
    """Time both probes on a synthetic page of `size_hw` (smoke: a small page); the lines."""
    lines: list[str] = []

    def out(line: str) -> None:
        lines.append(line)
        if emit is not None:
            emit(line)

    size_hw = (180, 320) if smoke else size_hw
    image = text_page(size_hw)
    out(f"probes on a {size_hw[1]}x{size_hw[0]} page ({size_hw[0] * size_hw[1] / 1e6:.1f} MP), "
        f"{os.cpu_count()} CPU core(s)")
    out(f"  session start: OCR {_timed(get_engine):.2f} s"
        + ("" if smoke else f", encoder {_timed(get_encoder):.2f} s"))
    previous = os.environ.get(ENV_VAR)
    with tempfile.TemporaryDirectory(prefix="anyres_probe_bench_") as folder:
        os.environ[ENV_VAR] = folder
        try:
            bench_legibility(image, out, smoke)
            if not smoke:
                _bench_encoder(image, out)
        finally:
            if previous is None:
                os.environ.pop(ENV_VAR, None)
            else:
                os.environ[ENV_VAR] = previous
    return lines


if __name__ == "__main__":
    run_probe_bench()

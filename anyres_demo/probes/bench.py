"""Probe timings: each probe per strategy on a 2 MP image, uncached, then from the cache.

`run_probe_bench()` returns the lines it prints; `python -m anyres_demo.bench` calls it. It uses
a fresh temporary cache folder, so the first pass is really cold and the user's cache is left
alone. On 2 CPU cores expect about two minutes, mostly OCR.
"""
from __future__ import annotations

import os
import random
import tempfile
import time
from typing import Callable, Optional, Sequence

from PIL import Image, ImageDraw, ImageFont

from ..presets import FAMILY_DEFAULTS
from . import BASELINE_KEY, baseline_view, strategy_view
from .cache import ENV_VAR
from .encoder import attention_for_view, get_encoder
from .legibility import legibility, read_reference
from .ocr import get_engine

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


def _bench_views(image: Image.Image, emit: Callable[[str], None]) -> tuple[float, float]:
    """Each probe on each view, cold then warm; returns (total cold, total warm) seconds."""
    views = [baseline_view(image)] + [strategy_view(image, m) for m in FAMILY_DEFAULTS.values()]
    cold = _timed(lambda: read_reference(image))
    warm = _timed(lambda: read_reference(image))
    reference = read_reference(image)
    emit(f"  {'reference OCR, full resolution':36s} {cold:6.2f} s (cached {warm * 1e3:6.1f} ms)")
    for view in views:
        name = "fixed 336 squash" if view.key == BASELINE_KEY else view.strategy
        enc_cold = _timed(lambda: attention_for_view(image, view))
        enc_warm = _timed(lambda: attention_for_view(image, view))
        ocr_cold = _timed(lambda: legibility(image, view, reference=reference))
        ocr_warm = _timed(lambda: legibility(image, view, reference=reference))
        emit(f"  {name:18s} {len(view.crops):2d} crops  encoder {enc_cold:6.2f} s "
             f"(cached {enc_warm * 1e3:6.1f} ms)  OCR {ocr_cold:6.2f} s "
             f"(cached {ocr_warm * 1e3:6.1f} ms)")
        cold += enc_cold + ocr_cold
        warm += enc_warm + ocr_warm
    return cold, warm


def run_probe_bench(size_hw: tuple[int, int] = BENCH_HW,
                    emit: Optional[Callable[[str], None]] = print) -> list[str]:
    """Time both probes per strategy on a synthetic page of `size_hw`; return the lines."""
    lines: list[str] = []

    def out(line: str) -> None:
        lines.append(line)
        if emit is not None:
            emit(line)

    image = text_page(size_hw)
    out(f"probes on a {size_hw[1]}x{size_hw[0]} page ({size_hw[0] * size_hw[1] / 1e6:.1f} MP), "
        f"{os.cpu_count()} CPU core(s)")
    out(f"  session start: encoder {_timed(get_encoder):.2f} s, OCR {_timed(get_engine):.2f} s")
    previous = os.environ.get(ENV_VAR)
    with tempfile.TemporaryDirectory(prefix="anyres_probe_bench_") as folder:
        os.environ[ENV_VAR] = folder
        try:
            cold, warm = _bench_views(image, out)
        finally:
            if previous is None:
                os.environ.pop(ENV_VAR, None)
            else:
                os.environ[ENV_VAR] = previous
    out(f"  all probes, all strategies: uncached {cold:.1f} s, cached {warm:.2f} s "
        f"({cold / max(warm, 1e-9):.0f}x faster)")
    return lines


if __name__ == "__main__":
    run_probe_bench()

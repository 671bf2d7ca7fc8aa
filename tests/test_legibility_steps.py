"""The legibility probe as steps (probes/ocr.read_many, legibility.comparison_steps): the same
words as RapidOCR's own call, blank crops skipped, the chosen model first, progress that moves,
and no more OCR once the consumer stops. Small pages, so the whole file runs in seconds."""
from __future__ import annotations

import random

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from anyres_demo.presets import FAMILY_DEFAULTS
from anyres_demo.probes import ocr

WORDS = ("alpha", "budget", "cable", "delta", "engine", "fabric", "garden", "harbor")


def page(width: int, height: int, seed: int = 0, font_px: int = 14) -> Image.Image:
    rng = random.Random(seed)
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=font_px)
    for y in range(8, height - 2 * font_px, 22):
        x = 8
        while x < width * 0.8:
            word = f"{rng.choice(WORDS)}{rng.randint(0, 99)}"
            draw.text((x, y), word, fill="black", font=font)
            x += draw.textlength(word, font=font) + 12
    return image


@pytest.fixture
def counted(monkeypatch):
    """Images rapidocr detects text in, in order."""
    seen = []
    original = ocr._detect

    def detect(engine, key, rgb):
        seen.append(rgb.size)
        return original(engine, key, rgb)

    monkeypatch.setattr(ocr, "_detect", detect)
    monkeypatch.setattr(ocr, "_MEMO", type(ocr._MEMO)())
    return seen


def _same_reading(ours, theirs) -> bool:
    """Same words, same order, same boxes (scores to float noise)."""
    return ([(w.text, w.box) for w in ours] == [(w.text, w.box) for w in theirs]
            and np.allclose([w.score for w in ours], [w.score for w in theirs], atol=1e-4))


def test_batched_steps_read_what_rapidocrs_own_call_reads(counted):
    crops = [page(336, 336, seed=s) for s in range(3)]
    batched = ocr.run_steps(ocr.read_many(crops))
    assert len(counted) == 3 and all(batched)
    for crop, words in zip(crops, batched):
        assert _same_reading(words, ocr.read_words_one_call(crop))


def test_blank_and_repeated_crops_are_not_read(counted):
    text = page(336, 336)
    blank = Image.new("RGB", (336, 336), (0, 0, 0))
    out = ocr.run_steps(ocr.read_many([blank, text, text.copy(), blank]))
    assert counted == [(336, 336)]  # one detection: the text crop, once
    assert out[0] == out[3] == [] and out[1] == out[2] and out[1]
    assert ocr.is_blank(blank) and not ocr.is_blank(text)


def test_steps_are_short_and_their_fractions_move(counted):
    steps = ocr.read_many([page(448, 448, seed=s) for s in range(2)])
    fractions = []
    while True:
        try:
            fractions.append(next(steps)[0])
        except StopIteration:
            break
    assert len(fractions) >= 3 and fractions[0] == 0.0  # a step before any model runs
    assert fractions == sorted(fractions) and fractions[-1] > fractions[0]


def test_chosen_model_first_and_stopping_stops_the_work(counted, tmp_path, monkeypatch):
    from anyres_demo.probes.legibility import comparison_steps

    monkeypatch.setenv("ANYRES_CACHE_DIR", str(tmp_path))
    image = page(672, 448, seed=5)
    steps = comparison_steps(image, "Qwen/Qwen2-VL-2B-Instruct", use_cache=False,
                             max_pixels=200_704)
    first = next(s for s in steps if s.comparison is not None)
    assert [r.view.strategy for r in first.comparison.results] == ["qwen2_vl"]
    assert "custom settings" in first.comparison.results[0].view.label
    assert len(first.comparison.pending) == len(FAMILY_DEFAULTS)  # the baseline and the others
    assert first.comparison.reference.words
    detected = len(counted)
    steps.close()  # what gradio does when the tab closes or Stop is pressed
    with pytest.raises(StopIteration):
        next(steps)
    assert len(counted) == detected


def test_progress_moves_before_the_full_resolution_reference_is_read(counted, tmp_path, monkeypatch):
    # the reference's one detection of the whole page is the longest step: the chosen model's
    # small crops are read first, so the bar moves while the page is still to be read
    from anyres_demo.probes.legibility import comparison_steps

    monkeypatch.setenv("ANYRES_CACHE_DIR", str(tmp_path))
    image = page(900, 600, seed=7)
    steps = comparison_steps(image, "llava-hf/llava-v1.6-mistral-7b-hf", use_cache=False)
    next(s for s in steps if s.fraction > 0)
    assert image.size not in counted  # the page itself not detected yet
    assert counted and all(w <= 336 and h <= 336 for w, h in counted)  # LLaVA-NeXT's crops
    first = next(s for s in steps if s.comparison is not None)
    assert image.size in counted  # the reference was read before the first result
    assert [r.view.strategy for r in first.comparison.results] == ["llava_next"]
    steps.close()

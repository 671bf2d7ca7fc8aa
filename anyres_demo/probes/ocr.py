"""Words and their boxes from an image, with RapidOCR's bundled PP-OCRv6 models (CPU, offline).

Configured so nothing is ever downloaded: the detection and recognition models are given by
path (the files shipped inside the rapidocr wheel) and the recogniser's character list is read
from the ONNX metadata. The text-orientation classifier is OFF (Global.use_cls: False): on
clean horizontal text it flips many lines by 180 degrees and garbles them.

RapidOCR's __call__ mutates the engine (update_params), so calls are serialised by a lock;
onnxruntime already uses every core inside one call.
"""
from __future__ import annotations

import hashlib
import importlib.util
import threading
import unicodedata
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np
from PIL import Image

MODEL_FILES = {  # inside the rapidocr package
    "Det.model_path": ("models", "PP-OCRv6_det_small.onnx"),
    "Rec.model_path": ("models", "PP-OCRv6_rec_small.onnx"),
    "Cls.model_path": ("models", "ch_ppocr_mobile_v2.0_cls_mobile.onnx"),  # never run
}
MEMO_SIZE = 256  # crops remembered per process (identical crops are OCR'd once)


@dataclass(frozen=True)
class OcrSettings:
    """RapidOCR knobs that change what is read (part of every cache key)."""

    text_score: float = 0.5  # rapidocr's default: lines recognised with less are dropped
    # rapidocr's default: a longer side is shrunk to this before detection, so the
    # "full resolution" reference is capped here for very large images.
    max_side_len: int = 2000

    def params(self) -> dict[str, Any]:
        return {"Global.use_cls": False, "Global.text_score": self.text_score,
                "Global.max_side_len": self.max_side_len, "Global.log_level": "error"}


@dataclass(frozen=True)
class Word:
    """One recognised word; `box` is (x0, y0, x1, y1) in the pixels of the image read (after
    legibility maps it: original-image pixels)."""

    text: str
    box: tuple[float, float, float, float]
    score: float

    @property
    def norm(self) -> str:
        return normalise(self.text)


def normalise(text: str) -> str:
    """Compatibility-fold, case-fold and keep letters and digits only: 'Delta,' == 'delta'."""
    return "".join(ch for ch in unicodedata.normalize("NFKC", text).casefold() if ch.isalnum())


def model_paths() -> dict[str, str]:
    """The wheel's bundled model files, located without running rapidocr's downloader."""
    spec = importlib.util.find_spec("rapidocr")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("the legibility probe needs rapidocr (pip install rapidocr); "
                                "it is not installed")
    root = Path(list(spec.submodule_search_locations)[0])
    paths = {key: root.joinpath(*parts) for key, parts in MODEL_FILES.items()}
    missing = [str(p) for p in paths.values() if not p.is_file()]
    if missing:
        raise FileNotFoundError(f"rapidocr is installed but its bundled models are missing: "
                                f"{', '.join(missing)}; this app never downloads them")
    return {key: str(p) for key, p in paths.items()}


_BUILD_LOCK = threading.Lock()
_CALL_LOCK = threading.Lock()
_ENGINES: dict[OcrSettings, Any] = {}
_MEMO: "OrderedDict[str, list[Word]]" = OrderedDict()


def get_engine(settings: OcrSettings = OcrSettings()) -> Any:
    """One RapidOCR per settings per process, built on first use."""
    if settings not in _ENGINES:
        with _BUILD_LOCK:
            if settings not in _ENGINES:
                from . import quiet_onnxruntime

                quiet_onnxruntime()  # before rapidocr builds its sessions
                from rapidocr import RapidOCR

                _ENGINES[settings] = RapidOCR(params={**settings.params(), **model_paths()})
    return _ENGINES[settings]


def _split_line(text: str, box: tuple[float, float, float, float], score: float) -> list[Word]:
    """Words of a line without word boxes: the line box split by character offsets."""
    x0, y0, x1, y1 = box
    per_char = (x1 - x0) / max(1, len(text))
    words, pos = [], 0
    for token in text.split():
        start = text.index(token, pos)
        pos = start + len(token)
        words.append(Word(token, (x0 + start * per_char, y0, x0 + pos * per_char, y1), score))
    return words


def _bbox(quad: Any) -> tuple[float, float, float, float]:
    pts = np.asarray(quad, dtype=np.float64).reshape(-1, 2)
    return (float(pts[:, 0].min()), float(pts[:, 1].min()),
            float(pts[:, 0].max()), float(pts[:, 1].max()))


def _line_word_boxes(item: Any, text: str, score: float) -> Optional[list[Word]]:
    """rapidocr's own word boxes for one line, if they are complete and match its text."""
    try:
        words = [Word(str(t), _bbox(b), float(s)) for t, s, b in item if b is not None]
    except (TypeError, ValueError):
        return None
    if [w.text for w in words] != text.split():
        return None
    return words


def parse_output(out: Any) -> list[Word]:
    """RapidOCROutput -> words (its word boxes where usable, else split line boxes)."""
    if out is None or getattr(out, "txts", None) is None or out.boxes is None:
        return []
    per_line = out.word_results if len(out.word_results or ()) == len(out.txts) else None
    words: list[Word] = []
    for i, (quad, text, score) in enumerate(zip(out.boxes, out.txts, out.scores)):
        line = _line_word_boxes(per_line[i], text, score) if per_line is not None else None
        words.extend(line if line is not None else _split_line(text, _bbox(quad), float(score)))
    return [w for w in words if w.norm]


def _digest(image: Image.Image, settings: OcrSettings) -> str:
    h = hashlib.sha256(f"{image.size}|{settings!r}".encode())
    h.update(image.tobytes())
    return h.hexdigest()


# Below this many pixels on a side no glyph fits; rapidocr also fails on such strips (its
# resize to the detector's side limit rounds the short side to 0 px: ResizeImgError).
MIN_TEXT_SIDE = 4


def read_words(image: Image.Image, settings: OcrSettings = OcrSettings()) -> list[Word]:
    """All words RapidOCR reads in `image`, boxes in its pixels. Identical images (a Qwen
    resize that keeps the original size, a shared baseline) are read once per process.
    Strips too thin to hold text (after the detector's resize) read as no words."""
    if min(image.size) < MIN_TEXT_SIDE:
        return []
    rgb = image.convert("RGB")
    key = _digest(rgb, settings)
    with _CALL_LOCK:
        if key in _MEMO:
            _MEMO.move_to_end(key)
            return list(_MEMO[key])
        words = _run_engine(rgb, settings)
        _MEMO[key] = words
        while len(_MEMO) > MEMO_SIZE:
            _MEMO.popitem(last=False)
    return list(words)


def _run_engine(rgb: Image.Image, settings: OcrSettings) -> list[Word]:
    from rapidocr.utils.process_img import ResizeImgError

    try:
        return parse_output(get_engine(settings)(rgb, return_word_box=True))
    except ResizeImgError:  # e.g. 40x20000: the short side scales to 0 px, so no text
        return []


def words_to_arrays(words: Sequence[Word]) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(boxes (n, 4), scores (n,), texts) for storage."""
    boxes = np.array([w.box for w in words], dtype=np.float64).reshape(-1, 4)
    scores = np.array([w.score for w in words], dtype=np.float64)
    return boxes, scores, [w.text for w in words]


def words_from_arrays(boxes: np.ndarray, scores: np.ndarray, texts: Sequence[str]) -> list[Word]:
    return [Word(t, tuple(float(v) for v in b), float(s))
            for t, b, s in zip(texts, boxes, scores)]

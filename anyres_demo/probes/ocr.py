"""Words and their boxes from an image, with RapidOCR's bundled PP-OCRv6 models (CPU, offline).

Configured so nothing is ever downloaded: the detection and recognition models are given by
path (the files shipped inside the rapidocr wheel) and the recogniser's character list is read
from the ONNX metadata. The text-orientation classifier is OFF (Global.use_cls: False): on
clean horizontal text it flips many lines by 180 degrees and garbles them.

RapidOCR's __call__ mutates the engine (update_params), so calls are serialised by a lock;
onnxruntime already uses every core inside one call. The probes run rapidocr's own steps
(detection, recognition, output assembly) themselves (`read_many`): to recognise the lines of
many crops in shared batches, to skip blank crops, and to report progress between steps.
"""
from __future__ import annotations

import hashlib
import importlib.util
import threading
import unicodedata
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generator, Optional, Sequence

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

                engine = RapidOCR(params={**settings.params(), **model_paths()})
                engine.update_params(return_word_box=True)  # what read_many's steps read
                _ENGINES[settings] = engine
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
# Work steps: (fraction of this job done, what runs next). A probe reads images as a generator
# of steps, so the UI can show progress that moves and stop between steps (Stop, a closed tab).
Steps = Generator[tuple[float, str], None, Any]
DETECT_SHARE = 0.3  # of a job's time, roughly: finding lines; the rest is recognising them
REC_BATCHES_PER_STEP = 4  # recogniser batches (rapidocr's rec_batch_num lines each) per step


@dataclass
class _Detected:
    """One image after text detection: what build_final_output needs besides the texts."""

    key: str
    original: np.ndarray  # rapidocr's own BGR copy
    det: Any  # TextDetOutput (boxes None: no text found)
    lines: list  # line images, in det.boxes order
    op_record: dict


def is_blank(image: Image.Image) -> bool:
    """One colour only (padding, an empty margin tile): nothing to read, no OCR needed."""
    return all(lo == hi for lo, hi in image.getextrema())


def _detect(engine: Any, key: str, rgb: Image.Image) -> _Detected:
    """rapidocr's own detection steps (RapidOCR.__call__ up to recognition)."""
    from rapidocr.main import RapidOCRError

    original = engine.load_img(rgb)
    img, op_record = engine.preprocess_img(original)
    try:
        lines, det = engine.detect_and_crop(img, op_record)
    except RapidOCRError:  # no text
        from rapidocr.ch_ppocr_det import TextDetOutput

        lines, det = [], TextDetOutput()
    return _Detected(key, original, det, list(lines), op_record)


def _line_chunks(engine: Any, lines: list) -> list[list[int]]:
    """One image's line indices in the recogniser's own order (by width / height, as rapidocr
    sorts them), cut into chunks of whole recogniser batches: each line lands in the batch it
    would have in one call, so it is padded alike and read alike."""
    if not lines:
        return []
    order = np.argsort(np.array([im.shape[1] / float(im.shape[0]) for im in lines]))
    size = REC_BATCHES_PER_STEP * engine._load_rec_model().rec_batch_num
    return [order[i:i + size].tolist() for i in range(0, len(order), size)]


def _recognise(engine: Any, lines: list) -> list[tuple]:
    """(text, score, word_result, line image) per line: one recogniser call for the batch."""
    from rapidocr.ch_ppocr_rec import TextRecInput

    out = engine._load_rec_model()(TextRecInput(img=lines, return_word_box=True))
    return list(zip(out.txts, out.scores, out.word_results, lines))


def _finish(engine: Any, d: _Detected, recognised: list[tuple]) -> list[Word]:
    """rapidocr's own output assembly (boxes to original px, word boxes, score filter)."""
    from rapidocr.ch_ppocr_cls import TextClsOutput
    from rapidocr.ch_ppocr_rec import TextRecOutput

    if d.det.boxes is None or not recognised:
        return []
    txts, scores, word_results, imgs = (list(v) for v in zip(*recognised))
    rec = TextRecOutput(imgs=imgs, txts=tuple(txts), scores=tuple(scores),
                        word_results=tuple(word_results), elapse=0.0)
    return parse_output(engine.build_final_output(d.original, d.det, TextClsOutput(), rec,
                                                  d.lines, d.op_record))


def read_many(images: Sequence[Image.Image], settings: OcrSettings = OcrSettings()) -> Steps:
    """OCR several images as one job, as steps; returns each image's words (boxes in its
    pixels). Each distinct image is read once (and remembered across calls, MEMO_SIZE) and
    blank images are not read. The steps are RapidOCR.__call__'s own, with recognition cut
    into whole batches of its sorted lines, so every line is read as in one call. (One batch
    across crops was tried: the padding it shares moves word boxes by up to 5 px.)"""
    rgbs = [im if im.mode == "RGB" else im.convert("RGB") for im in images]
    keys = [_digest(rgb, settings) for rgb in rgbs]
    known: dict[str, list[Word]] = {}
    todo: dict[str, Image.Image] = {}
    for key, rgb in zip(keys, rgbs):
        with _CALL_LOCK:
            hit = _MEMO.get(key)
        if hit is not None or is_blank(rgb) or min(rgb.size) < MIN_TEXT_SIDE:
            known[key] = list(hit or [])
        else:
            todo.setdefault(key, rgb)
    engine = get_engine(settings)
    area = sum(r.width * r.height for r in todo.values()) or 1
    detected, done = [], 0
    for k, (key, rgb) in enumerate(todo.items()):
        yield DETECT_SHARE * done / area, f"finding text lines, image {k + 1} of {len(todo)}"
        with _CALL_LOCK:
            detected.append(_detect(engine, key, rgb))
        done += rgb.width * rgb.height
    chunks = [(d, part) for d in detected for part in _line_chunks(engine, d.lines)]
    total = sum(len(part) for _, part in chunks) or 1
    recognised: dict[str, dict[int, tuple]] = {d.key: {} for d in detected}
    done = 0
    for d, part in chunks:
        yield (DETECT_SHARE + (1 - DETECT_SHARE) * done / total,
               f"reading text lines {done + 1}-{done + len(part)} of {total}")
        with _CALL_LOCK:
            recognised[d.key].update(zip(part, _recognise(engine, [d.lines[i] for i in part])))
        done += len(part)
    recognised = {key: [found[i] for i in sorted(found)] for key, found in recognised.items()}
    with _CALL_LOCK:
        for d in detected:
            known[d.key] = _finish(engine, d, recognised[d.key])
            _MEMO[d.key] = known[d.key]
        while len(_MEMO) > MEMO_SIZE:
            _MEMO.popitem(last=False)
    return [list(known[key]) for key in keys]


def run_steps(steps: Steps, progress: Optional[Any] = None) -> Any:
    """Run a job's steps to the end (reporting each to `progress(fraction, text)`); its result."""
    while True:
        try:
            fraction, text = next(steps)
        except StopIteration as stop:
            return stop.value
        if progress is not None:
            progress(fraction, text)


def read_words(image: Image.Image, settings: OcrSettings = OcrSettings()) -> list[Word]:
    """All words RapidOCR reads in `image`, boxes in its pixels (read_many of one image)."""
    return run_steps(read_many([image], settings))[0]


def read_words_one_call(image: Image.Image, settings: OcrSettings = OcrSettings()) -> list[Word]:
    """The same through RapidOCR's own __call__, one image per call and no memory: what the
    probe did before read_many (the benchmark's "before" and the tests' check)."""
    rgb = image.convert("RGB")
    with _CALL_LOCK:
        return parse_output(get_engine(settings)(rgb, return_word_box=True))


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

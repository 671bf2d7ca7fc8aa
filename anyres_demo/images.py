"""Safe image loading for uploads and the CLI: a file, bytes or a PIL image -> RGB pixels + notes.

Mirrors what transformers' `image_utils.load_image` hands a processor (EXIF orientation applied,
then RGB, transparency composited onto white as in `image_transforms.convert_to_rgb`), and
refuses, with a `ValueError` a person can act on, anything that is not a sane image:
empty files, non-images (text, SVG, HTML, PDF, HEIC), corrupt or truncated files, files over
`MAX_UPLOAD_BYTES`, and images over `MAX_PIXELS`. Sizes are checked from the header, before a
single pixel is decoded. URLs are never fetched.

Memory: Pillow keeps RGB, RGBA and CMYK at 4 bytes per pixel (RGB is padded to RGBX), and
every path here holds at most two full-size images at once (the decoded source and its RGB
result, or the RGB image and its EXIF-rotated copy): `PEAK_BYTES_PER_PIXEL` = 8, plus a few MB
of decoder buffers. With `MAX_PIXELS` that bounds a load at `PEAK_MEMORY_BOUND` (912 MB) on top
of the interpreter. The RGB fast path (an upright RGB JPEG/PNG) needs only 4 B/px. Measured by
tests/test_images.py: 8.00 B/px for a 100 MP RGBA PNG (800 MB), 7.0-8.03 B/px for 16 MP 16-bit,
rotated and CMYK files.

Only Pillow and numpy; never imports gradio or torch.
"""
from __future__ import annotations

import contextlib
import io
import os
import re
import struct
import threading
import warnings
from dataclasses import dataclass
from typing import BinaryIO, Union

import numpy as np
from PIL import Image, UnidentifiedImageError

from .geometry import Size

# A 100 MP camera JPEG is 20-60 MB; a raw upload of more than this is a mistake or an attack.
MAX_UPLOAD_BYTES = 50_000_000
# Enough for 10000x10000 (100 MP) and 102 MP medium-format cameras (11648x8736); below Pillow's
# own hard stop (2 * Image.MAX_IMAGE_PIXELS = 179 MP), so this check, not Pillow's, decides.
MAX_PIXELS = 110_000_000
# Two full-size 4 B/px images alive at once (see the module docstring), plus decoder buffers.
PEAK_BYTES_PER_PIXEL = 8
PEAK_SLACK_BYTES = 32_000_000
PEAK_MEMORY_BOUND = MAX_PIXELS * PEAK_BYTES_PER_PIXEL + PEAK_SLACK_BYTES  # 912 MB
# Deflate cannot compress better than 1032:1, so a PNG smaller than raw/1032 cannot hold the
# pixels its header claims: it is truncated or crafted. 1100 leaves room for rounding.
DEFLATE_MAX_RATIO = 1100
# A TIFF is walked page by page (Pillow's own page count is superlinear: 40,000 pages took 71 s);
# files with more pages than this are refused after reading only this many page headers.
MAX_TIFF_PAGES = 100
# GIF frames are counted for the note only up to this many (a 50 MB GIF can hold millions).
MAX_COUNTED_FRAMES = 1000
# Deep (16/32-bit, float) images are converted to 8 bits this many pixels at a time.
_BAND_PIXELS = 1_000_000
BACKGROUND_RGB = (255, 255, 255)  # transformers' convert_to_rgb and qwen-vl-utils use white
_HEAD_BYTES = 4096  # enough to recognise SVG / HTML / HEIC / PDF and to read a PNG's IHDR

# Formats people upload. Pillow reads dozens more; some (EPS) run external programs on load,
# so an upload is only ever tried against this list.
_WANTED_FORMATS = ("PNG", "JPEG", "GIF", "WEBP", "BMP", "TIFF", "AVIF", "ICO", "PPM")
Image.init()
SUPPORTED_FORMATS = tuple(f for f in _WANTED_FORMATS if f in Image.OPEN)

# EXIF orientation -> (the transpose that undoes it, what that looks like to a person).
_ORIENTATIONS = {
    2: (Image.Transpose.FLIP_LEFT_RIGHT, "mirrored left-right"),
    3: (Image.Transpose.ROTATE_180, "rotated 180°"),
    4: (Image.Transpose.FLIP_TOP_BOTTOM, "flipped top-bottom"),
    5: (Image.Transpose.TRANSPOSE, "mirrored across the top-left/bottom-right diagonal"),
    6: (Image.Transpose.ROTATE_270, "rotated 90° clockwise"),
    7: (Image.Transpose.TRANSVERSE, "mirrored across the top-right/bottom-left diagonal"),
    8: (Image.Transpose.ROTATE_90, "rotated 90° counter-clockwise"),
}
_EXIF_ORIENTATION_TAG = 0x0112
_ALPHA_MODES = ("RGBA", "LA", "PA", "RGBa", "La")
_SIGNATURES = ((b"\x89PNG\r\n\x1a\n", "PNG"), (b"\xff\xd8\xff", "JPEG"), (b"GIF8", "GIF"),
               (b"BM", "BMP"), (b"II*\x00", "TIFF"), (b"MM\x00*", "TIFF"), (b"RIFF", "WEBP"))
_HEIF_BRANDS = (b"heic", b"heix", b"hevc", b"hevx", b"mif1", b"msf1")

# How many uploads may be decoded and in use at once in one process, across every place that
# decodes one (the explorer's events, the probes, the chat): the memory bound is this times
# PEAK_MEMORY_BOUND above the idle server.
DECODE_LIMIT = 4


class DecodeSlots:
    """A process-wide limit on decoded images in use; `hold()` blocks while all are taken.
    `active` and `peak` are kept for the tests and the bench."""

    def __init__(self, limit: int = DECODE_LIMIT) -> None:
        self.limit = limit
        self._free = threading.BoundedSemaphore(limit)
        self._lock = threading.Lock()
        self.active = 0
        self.peak = 0

    @contextlib.contextmanager
    def hold(self):
        with self._free:
            with self._lock:
                self.active += 1
                self.peak = max(self.peak, self.active)
            try:
                yield
            finally:
                with self._lock:
                    self.active -= 1


DECODES = DecodeSlots()

Source = Union[str, "os.PathLike[str]", bytes, bytearray, memoryview, Image.Image]


@dataclass(frozen=True)
class LoadedImage:
    """An upload ready for planning: RGB pixels, their size (height first) and what was done."""

    image: Image.Image  # mode "RGB", orientation applied, `info` cleared (no stale EXIF)
    size_hw: Size  # of `image`, i.e. after EXIF orientation
    notes: tuple[str, ...] = ()  # human-readable, e.g. "CMYK converted to RGB"
    source_format: str | None = None  # "PNG", "JPEG", ...; None for a PIL image made in memory


def load_image(source: Source) -> LoadedImage:
    """Load a path, raw bytes or a PIL image as RGB, checking every cap before decoding.

    Raises ValueError (message for people) for anything that is not a usable image, and
    TypeError only for a `source` of the wrong Python type.
    """
    if isinstance(source, Image.Image):
        return _normalise(source, notes=[], fmt=source.format, owned=False)
    if isinstance(source, (bytes, bytearray, memoryview)):
        _check_byte_count(memoryview(source).nbytes, "the upload")
        data = bytes(source)
        return _decode(io.BytesIO(data), len(data), data[:_HEAD_BYTES], "the upload")
    if isinstance(source, (str, os.PathLike)):
        path = _check_path(source)
        name = repr(os.path.basename(path))
        try:
            fp = open(path, "rb")
        except OSError as exc:  # permissions, a file removed meanwhile, ...
            raise ValueError(f"cannot open {name}: {exc.strerror or exc}") from None
        with fp:
            head = fp.read(_HEAD_BYTES)
            fp.seek(0)
            return _decode(fp, os.fstat(fp.fileno()).st_size, head, name)
    raise TypeError("load_image takes a file path, bytes or a PIL image, "
                    f"not {type(source).__name__}")


def _check_path(source: str | os.PathLike) -> str:
    path = os.fspath(source)
    if isinstance(path, bytes):
        path = os.fsdecode(path)
    if re.match(r"^\s*([a-zA-Z][a-zA-Z0-9+.-]*://|data:)", path):
        raise ValueError(f"{path.strip()[:80]!r} is a URL; this app never downloads images. "
                         "Save the image to your computer and upload the file instead")
    if not os.path.exists(path):
        raise ValueError(f"no such file: {path[:300]!r}")
    if not os.path.isfile(path):
        raise ValueError(f"{path!r} is not a file (a folder?); choose an image file")
    _check_byte_count(os.path.getsize(path), repr(os.path.basename(path)))
    return path


def _check_byte_count(nbytes: int, name: str) -> None:
    if nbytes == 0:
        raise ValueError(f"{name} is empty (0 bytes); the upload may have failed, try again")
    if nbytes > MAX_UPLOAD_BYTES:
        raise ValueError(f"{name} is {nbytes:,} bytes, over the {MAX_UPLOAD_BYTES:,}-byte "
                         f"({MAX_UPLOAD_BYTES / 1e6:.0f} MB) upload limit; save a smaller JPEG "
                         "or PNG and try again")


def _decode(fp: BinaryIO, nbytes: int, head: bytes, name: str) -> LoadedImage:
    """Check the container (embedded sizes, page and frame counts) without Pillow, open the
    header, check caps, then decode the first frame and normalise it. On any failure the
    decoded pixels are released at once (not when a traceback holding them is collected)."""
    frames = _inspect_container(fp, head, nbytes, name)
    fp.seek(0)
    im = _open_header(fp, head, name)
    try:
        _check_png_size(head, nbytes, name)
        notes = []
        _use_first_frame(im, notes, frames)
        return _normalise(im, notes, fmt=im.format, owned=True, head=head)
    except BaseException:
        im.close()
        raise


# ----------------------------------------------------------------------------- containers
def _inspect_container(fp: BinaryIO, head: bytes, nbytes: int, name: str) -> int | None:
    """What Pillow would decode or walk while merely opening the file, checked first: every
    icon of an ICO (Pillow decodes the largest on open), the pages of a TIFF and the frames of
    a GIF (Pillow walks them all to count). Returns the frame count when it was read here."""
    if head[:4] == b"\x00\x00\x01\x00":
        _check_icons(fp, head, name)
    elif head[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        return _tiff_pages(fp, head, name)
    elif head[:4] == b"GIF8":
        return _gif_frames(fp, head)
    return None


def _check_icons(fp: BinaryIO, head: bytes, name: str) -> None:
    """Each ICO entry's real size (an embedded PNG's IHDR, a BMP's header), not the directory's
    one-byte sizes, which cannot say more than 256."""
    (count,) = struct.unpack("<H", head[4:6])
    fp.seek(6)
    directory = fp.read(16 * count)
    for i in range(len(directory) // 16):
        size, offset = struct.unpack("<II", directory[16 * i + 8:16 * i + 16])
        fp.seek(offset)
        sub = fp.read(32)
        what = f"{name} (icon {i + 1} of {count})"
        if sub.startswith(b"\x89PNG\r\n\x1a\n") and len(sub) >= 24:
            width, height = struct.unpack(">II", sub[16:24])
            _check_png_size(sub, max(size, 1), what)
        elif len(sub) >= 12:
            width, height = struct.unpack("<ii", sub[4:12])
            width, height = abs(width), abs(height) // 2  # BMP icons store image + mask
        else:
            continue  # Pillow reports the broken entry itself
        _check_pixels(Size(max(height, 1), max(width, 1)), what)


def _tiff_pages(fp: BinaryIO, head: bytes, name: str) -> int:
    """Walk the page (IFD) chain, at most MAX_TIFF_PAGES + 1 headers, and refuse longer files."""
    order = "<" if head[:2] == b"II" else ">"
    big = struct.unpack(order + "H", head[2:4])[0] == 43  # BigTIFF: 8-byte offsets
    count_fmt, off_fmt, entry = ("Q", "Q", 20) if big else ("H", "I", 12)
    count_size, off_size = struct.calcsize(count_fmt), struct.calcsize(off_fmt)
    start = 8 if big else 4
    (offset,) = struct.unpack(order + off_fmt, head[start:start + off_size])
    pages, seen = 0, set()
    while offset and offset not in seen:
        if pages == MAX_TIFF_PAGES:
            raise ValueError(
                f"{name} is a TIFF with more than {MAX_TIFF_PAGES} pages; this app reads one "
                "image, so save the page you want as PNG or JPEG; not decoded")
        seen.add(offset)
        pages += 1
        fp.seek(offset)
        raw = fp.read(count_size)
        if len(raw) < count_size:
            break
        (entries,) = struct.unpack(order + count_fmt, raw)
        fp.seek(offset + count_size + entries * entry)
        raw = fp.read(off_size)
        if len(raw) < off_size:
            break
        (offset,) = struct.unpack(order + off_fmt, raw)
    return max(pages, 1)


def _gif_frames(fp: BinaryIO, head: bytes) -> int:
    """Count image descriptors by skipping data sub-blocks, up to MAX_COUNTED_FRAMES + 1."""
    if len(head) < 13:
        return 1
    flags = head[10]
    position = 13 + (3 << ((flags & 7) + 1) if flags & 0x80 else 0)
    frames = 0
    fp.seek(position)
    while frames <= MAX_COUNTED_FRAMES:
        kind = fp.read(1)
        if kind == b"\x2c":  # image descriptor (+ local colour table), then LZW data
            desc = fp.read(9)
            if len(desc) < 9:
                break
            frames += 1
            if desc[8] & 0x80:
                fp.seek(3 << ((desc[8] & 7) + 1), 1)
            fp.seek(1, 1)  # LZW minimum code size
        elif kind == b"\x21":  # extension: a label, then sub-blocks
            fp.seek(1, 1)
        else:  # trailer, or damage: Pillow decides about the rest
            break
        if not _skip_sub_blocks(fp):
            break
    return max(frames, 1)


def _skip_sub_blocks(fp: BinaryIO) -> bool:
    while True:
        size = fp.read(1)
        if not size:
            return False
        if size == b"\x00":
            return True
        fp.seek(size[0], 1)


def _open_header(fp: BinaryIO, head: bytes, name: str) -> Image.Image:
    try:
        with warnings.catch_warnings():
            # We enforce MAX_PIXELS ourselves; Pillow's warning above 89 MP is noise here.
            # (Its hard stop above 179 MP still fires, caught below.)
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            return Image.open(fp, formats=SUPPORTED_FORMATS)
    except Image.DecompressionBombError as exc:
        raise ValueError(f"{name} claims dimensions far above the {_mp(MAX_PIXELS)} limit "
                         f"(a possible decompression bomb); not decoded. Pillow: {exc}") from None
    except UnidentifiedImageError:
        raise ValueError(_describe_non_image(head, name)) from None
    except Exception as exc:  # Pillow's header parsers raise many types on hostile input
        raise ValueError(f"{name} has a corrupt image header and cannot be read ({exc})") from None


def _describe_non_image(head: bytes, name: str) -> str:
    """Say what the file is, when we can tell, and what to do instead."""
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    supported = ", ".join(SUPPORTED_FORMATS)
    if text.startswith(b"<") and b"<svg" in text:
        return (f"{name} is an SVG (vector drawing); SVG is not supported because models see "
                "pixels. Export it to PNG (e.g. from Inkscape or a browser) and upload that")
    if text.startswith((b"<!doctype html", b"<html")):
        return f"{name} is a web page (HTML), not an image; save the image itself and upload it"
    if text.startswith(b"%pdf"):
        return f"{name} is a PDF; export the page as PNG and upload that"
    if head[4:8] == b"ftyp" and head[8:12] in _HEIF_BRANDS:
        return f"{name} is HEIC/HEIF (iPhone format), which is not supported; export it as JPEG"
    if head and _looks_like_text(head):
        return f"{name} is not an image: it contains text. Supported formats: {supported}"
    for signature, fmt in _SIGNATURES:
        if head.startswith(signature):
            return (f"{name} starts like a {fmt} file but its header is invalid or damaged; "
                    "re-export or re-download it")
    return f"{name} is not an image this app can read. Supported formats: {supported}"


def _looks_like_text(head: bytes) -> bool:
    try:
        decoded = head.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return sum(c.isprintable() or c.isspace() for c in decoded) >= 0.95 * len(decoded)


def _check_png_size(head: bytes, nbytes: int, name: str) -> None:
    """A PNG whose IHDR claims more raw pixel data than deflate could pack into the file."""
    if not head.startswith(b"\x89PNG\r\n\x1a\n") or len(head) < 26 or head[12:16] != b"IHDR":
        return
    width, height, depth, color_type = struct.unpack(">IIBB", head[16:26])
    channels = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}.get(color_type, 1)
    raw_bytes = height * (1 + (width * channels * depth + 7) // 8)  # one filter byte per row
    if raw_bytes > DEFLATE_MAX_RATIO * nbytes:
        raise ValueError(
            f"{name} says it is {width}x{height} but is only {nbytes:,} bytes, too small to hold "
            f"that many pixels even at maximum compression: it is truncated or crafted "
            "(a decompression bomb); not decoded")


def _use_first_frame(im: Image.Image, notes: list[str], frames: int | None = None) -> None:
    """Use frame 0; say how many there were (counted by `_inspect_container` for TIFF and GIF,
    whose Pillow counts walk the whole file; read from the header for the others)."""
    try:
        if frames is None and im.format not in ("TIFF", "GIF"):
            frames = int(getattr(im, "n_frames", 1))
        im.seek(0)
    except Exception:  # a broken later frame must not stop us using the first
        notes.append(f"{im.format} may hold more frames; the first is used")
        return
    if frames and frames > 1:
        kind = "multi-page TIFF" if im.format == "TIFF" else f"animated {im.format}"
        unit = "pages" if im.format == "TIFF" else "frames"
        count = f"more than {MAX_COUNTED_FRAMES:,}" if frames > MAX_COUNTED_FRAMES else f"{frames}"
        notes.append(f"{kind}: using the first of {count} {unit}")


def _normalise(im: Image.Image, notes: list[str], fmt: str | None, owned: bool,
               head: bytes = b"") -> LoadedImage:
    """Cap check, decode, RGB conversion, EXIF orientation. `owned`: we may modify `im`."""
    stored = Size.from_pil(im.size)
    _check_pixels(stored)
    _check_decode_cost(im, stored)
    depth = _bit_depth(im, head)
    _load_pixels(im, fmt)
    orientation = _read_orientation(im, notes)
    if _is_deep(im):  # 8-bit greyscale first, then the source goes, then RGB: 5 B/px, not 8
        eight = _deep_to_eight(im, notes)
        if owned:
            im.close()
        rgb = eight.convert("RGB")
        del eight
    else:
        rgb = _to_rgb(im, depth, notes)
        if owned and rgb is not im:
            im.close()  # the source's pixels go before the rotated copy is made
    if orientation in _ORIENTATIONS:
        method, words = _ORIENTATIONS[orientation]
        rgb = rgb.transpose(method)
        shown = Size.from_pil(rgb.size)
        notes.append(f"EXIF orientation {orientation} applied: {words} "
                     f"(stored {stored}, shown {shown})")
    if owned or rgb is not im:
        rgb.info = {}  # the orientation is baked in; stale EXIF must not rotate it twice
    return LoadedImage(rgb, Size.from_pil(rgb.size), tuple(notes), fmt)


def _check_pixels(size_hw: Size, what: str = "the image") -> None:
    if size_hw.height < 1 or size_hw.width < 1:
        raise ValueError(f"the image header says {size_hw}, which has no pixels")
    if size_hw.area > MAX_PIXELS:
        raise ValueError(
            f"{what} is {size_hw} ({_mp(size_hw.area)}), over the {_mp(MAX_PIXELS)} limit; "
            "not decoded (a possible decompression bomb). Resize it below the limit first")


# Bytes per pixel Pillow stores for each mode it decodes to (RGB is padded to 4 bytes).
_STORED_BYTES = {"1": 1, "L": 1, "P": 1, "I;16": 2, "I;16L": 2, "I;16B": 2, "I;16N": 2}


def decode_cost_bytes(mode: str, pixels: int, transparency: bool = False) -> int:
    """Peak bytes `load_image` needs for an image Pillow decodes to `mode`: the stored pixels,
    the RGB result (4 B/px) and, for palette / PA transparency, an RGBA copy before
    flattening; at least two RGB images (an EXIF rotation makes a copy). Deep modes (16/32-bit,
    float) are converted in bands, so they cost what they store plus the RGB result."""
    stored = _STORED_BYTES.get(mode, 4)
    rgba_copy = 4 if mode == "PA" or (mode in ("P", "L", "1", "RGB") and transparency) else 0
    return pixels * max(stored + 4 + rgba_copy, 8) + PEAK_SLACK_BYTES


def _check_decode_cost(im: Image.Image, size_hw: Size) -> None:
    cost = decode_cost_bytes(im.mode, size_hw.area, "transparency" in im.info)
    if cost > PEAK_MEMORY_BOUND:
        raise ValueError(
            f"the image is {size_hw} in mode {im.mode}; decoding it would take about "
            f"{cost / 1e6:,.0f} MB, over the {PEAK_MEMORY_BOUND / 1e6:,.0f} MB per-image bound; "
            "not decoded. Save it as an ordinary RGB PNG or JPEG, or smaller")


def _mp(pixels: int) -> str:
    return f"{pixels / 1e6:,.1f} megapixels"


def _bit_depth(im: Image.Image, head: bytes) -> int:
    """Bits per sample of the stored file (Pillow quietly reduces 16-bit RGB to 8)."""
    if im.mode.startswith("I;16"):
        return 16
    if head.startswith(b"\x89PNG") and len(head) > 24:
        return head[24]
    tags = getattr(im, "tag_v2", None)  # TIFF BitsPerSample
    if tags is not None:
        bits = tags.get(258, (8,))
        return max(bits) if isinstance(bits, tuple) else int(bits)
    return 8


def _load_pixels(im: Image.Image, fmt: str | None) -> None:
    what = fmt or "image"
    try:
        im.load()
    except MemoryError:
        raise ValueError(f"not enough memory to decode this {im.size[0]}x{im.size[1]} "
                         "image") from None
    except Exception as exc:  # OSError, SyntaxError, struct.error, zlib.error, EOFError, ...
        raise ValueError(f"the {what} file is truncated or corrupt and cannot be decoded "
                         f"({type(exc).__name__}: {exc}); re-export or re-download it") from None


def _read_orientation(im: Image.Image, notes: list[str]) -> int:
    try:
        value = im.getexif().get(_EXIF_ORIENTATION_TAG, 1)
    except Exception:  # malformed EXIF is common in the wild; the pixels are still fine
        notes.append("EXIF data is unreadable; orientation ignored")
        return 1
    if not isinstance(value, int) or not 1 <= value <= 8:
        notes.append(f"EXIF orientation {value!r} is not valid (1-8); ignored")
        return 1
    return value


def _to_rgb(im: Image.Image, depth: int, notes: list[str]) -> Image.Image:
    """Mode -> RGB, saying what changed. Returns `im` itself when it already is plain RGB."""
    if _is_deep(im):
        return _deep_to_eight(im, notes).convert("RGB")
    if depth > 8:
        notes.append(f"{depth}-bit {im.format or 'image'} reduced to 8 bits")
    if im.mode in _ALPHA_MODES or "transparency" in im.info:
        return _flatten(im, notes)
    if im.mode == "RGB":
        return im
    if im.mode == "CMYK":
        notes.append("CMYK converted to RGB (simple formula; colour profile ignored)")
    elif im.mode in ("L", "1"):
        notes.append("greyscale converted to RGB (three equal channels)")
    try:
        return im.convert("RGB")
    except ValueError as exc:
        raise ValueError(f"cannot convert a {im.mode} image to RGB ({exc})") from None


def _flatten(im: Image.Image, notes: list[str]) -> Image.Image:
    """Composite onto white; matches transformers' convert_to_rgb (alpha_composite) exactly."""
    if im.mode not in ("RGBA", "LA"):  # palette / colour-key transparency, PA, premultiplied
        im = im.convert("RGBA")
    alpha_min, _ = im.getextrema()[-1]
    if alpha_min == 255:
        notes.append("alpha channel is fully opaque; dropped")
        return im.convert("RGB")
    canvas = Image.new("RGB", im.size, BACKGROUND_RGB)
    canvas.paste(im, (0, 0), im)
    notes.append("transparency flattened onto white")
    return canvas


def _is_deep(im: Image.Image) -> bool:
    return im.mode in ("I", "F") or im.mode.startswith("I;16")


def _deep_to_eight(im: Image.Image, notes: list[str]) -> Image.Image:
    """16-bit / 32-bit greyscale -> 8-bit greyscale ("L") by scaling, in bands of rows (the
    1 B/px result and one band alive beside the decoded image, instead of four full-size
    arrays).

    Pillow's plain convert("RGB") (what transformers' load_image calls) clips values above 255,
    turning most 16-bit images white; we keep the top 8 bits instead.
    """
    width, height = im.size
    rows = max(1, _BAND_PIXELS // max(width, 1))
    bands = [(y, min(height, y + rows)) for y in range(0, height, rows)]

    def band(y0: int, y1: int) -> np.ndarray:
        return np.asarray(im.crop((0, y0, width, y1)))

    if im.mode == "F":
        peaks = [_finite_max(band(*b)) for b in bands]
        scale = 255.0 if max(peaks) <= 1.0 else 1.0
        to_eight = lambda v: np.clip(np.nan_to_num(v) * scale, 0, 255).astype(np.uint8)  # noqa: E731
        notes.append("32-bit float image converted to 8 bits")
    elif im.mode == "I" and _fits_a_byte(band, bands):
        to_eight = lambda v: v.astype(np.uint8)  # noqa: E731
        notes.append("32-bit integer image converted to 8 bits")
    else:
        to_eight = lambda v: (np.clip(v, 0, 65535) >> 8).astype(np.uint8)  # noqa: E731
        source = f"16-bit {im.format}" if im.mode.startswith("I;16") else "32-bit integer image"
        notes.append(f"{source} reduced to 8 bits (top byte kept; a plain PIL "
                     "convert('RGB') would clip it to near-white)")
    eight = Image.new("L", im.size)
    for y0, y1 in bands:
        eight.paste(Image.fromarray(to_eight(band(y0, y1))), (0, y0))
    return eight


def _finite_max(values: np.ndarray) -> float:
    """nanmax of a band (-inf for an empty or all-NaN band; inf counts, as before banding)."""
    if not values.size or np.isnan(values).all():
        return float("-inf")
    return float(np.nanmax(values))


def _fits_a_byte(band, bands) -> bool:
    """Every value of the image in 0..255 (then it is used as it is)."""
    for y0, y1 in bands:
        values = band(y0, y1)
        if values.size and (int(values.max()) > 255 or int(values.min()) < 0):
            return False
    return True

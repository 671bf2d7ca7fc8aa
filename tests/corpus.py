"""A corpus of bad and odd image files, each with the outcome `load_image` must give.

`build_corpus(directory)` writes every file (deterministically; everything is drawn here, so no
third-party images) and returns `Case`s. Sizes are (height, width) as `Size`; file names say
WxH, as people write it. Large inputs are written row by row through zlib, so building the
corpus never holds a big image in memory; `include_large=False` leaves out the 100 MP file.
"""
from __future__ import annotations

import io
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

from PIL import Image, ImageDraw

from anyres_demo.geometry import Size
from anyres_demo.images import MAX_PIXELS, MAX_UPLOAD_BYTES

RED = (255, 0, 0)
BLUE = (0, 0, 255)
WHITE = (255, 255, 255)
GREY = (128, 128, 128)


@dataclass(frozen=True)
class Probe:
    """The loaded image's pixel at (x, y) must be `rgb`, each channel within `tolerance`."""

    x: int
    y: int
    rgb: tuple[int, int, int]
    tolerance: int = 0


@dataclass(frozen=True)
class Case:
    path: Path
    outcome: str  # "ok" or "error"
    size_hw: Size | None = None  # ok: the loaded size (after EXIF orientation)
    note: str | None = None  # ok: a substring of one note; "" means: no notes at all
    message: str | None = None  # error: a substring of the ValueError message
    probes: tuple[Probe, ...] = ()
    large: bool = False  # the memory-bound test loads these

    @property
    def name(self) -> str:
        return self.path.name


def ok(path: Path, height: int, width: int, note: str | None = None, *probes: Probe,
       large: bool = False) -> Case:
    return Case(path, "ok", size_hw=Size(height, width), note=note, probes=probes, large=large)


def error(path: Path, message: str) -> Case:
    return Case(path, "error", message=message)


# ----------------------------------------------------------------------------- PNG by hand

def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _ihdr(width: int, height: int, depth: int, color_type: int) -> bytes:
    return _chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, depth, color_type, 0, 0, 0))


def write_png_rows(path: Path, width: int, height: int, depth: int, color_type: int,
                   row: Callable[[int], bytes]) -> None:
    """A valid PNG whose raw rows (without filter byte) come from `row(y)`, streamed."""
    packer = zlib.compressobj(9)
    with open(path, "wb") as out:
        out.write(b"\x89PNG\r\n\x1a\n" + _ihdr(width, height, depth, color_type))
        for y in range(height):
            block = packer.compress(b"\x00" + row(y))
            if block:
                out.write(_chunk(b"IDAT", block))
        out.write(_chunk(b"IDAT", packer.flush()) + _chunk(b"IEND", b""))


def _broken_chunk_png() -> bytes:
    """Pixel data split over two chunks, the second with a garbled chunk type."""
    raw = b"".join(b"\x00" + bytes([y * 8] * 72) for y in range(16))
    packed = zlib.compress(raw)
    half = len(packed) // 2
    return (b"\x89PNG\r\n\x1a\n" + _ihdr(24, 16, 8, 2) + _chunk(b"IDAT", packed[:half])
            + _chunk(b"ID\x00T", packed[half:]) + _chunk(b"IEND", b""))


def _header_only_png(path: Path, width: int, height: int) -> None:
    """IHDR claims width x height RGB; the single IDAT holds almost nothing."""
    body = _ihdr(width, height, 8, 2) + _chunk(b"IDAT", zlib.compress(b"\x00" * 64))
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + body + _chunk(b"IEND", b""))


# ----------------------------------------------------------------------------- TIFF / ICO / GIF by hand
_TIFF_TYPES = {"H": 3, "I": 4}  # SHORT, LONG


def _ifd(tags: dict[int, tuple[str, list[int]]], next_offset: int) -> bytes:
    """One little-endian IFD: sorted entries, values inline (every value here fits 4 bytes)."""
    out = struct.pack("<H", len(tags))
    for tag in sorted(tags):
        kind, values = tags[tag]
        packed = struct.pack("<" + kind * len(values), *values).ljust(4, b"\x00")
        out += struct.pack("<HHI", tag, _TIFF_TYPES[kind], len(values)) + packed
    return out + struct.pack("<I", next_offset)


def write_tiff(path: Path, width: int, height: int, bits: int, sample_format: int, row: bytes,
               rows_per_strip: int = 256) -> None:
    """A single-page greyscale deflate TIFF whose every row is `row` (bits 8/16/32; sample
    format 1 unsigned, 2 signed, 3 float). Each strip is compressed once: huge images, small
    files, little memory to write."""
    strips = [(y, min(height, y + rows_per_strip)) for y in range(0, height, rows_per_strip)]
    packed = {n: zlib.compress(row * n, 9) for n in {y1 - y0 for y0, y1 in strips}}
    with open(path, "wb") as out:
        out.write(b"II*\x00" + struct.pack("<I", 0))
        offsets, counts = [], []
        for y0, y1 in strips:
            offsets.append(out.tell())
            counts.append(len(packed[y1 - y0]))
            out.write(packed[y1 - y0])
        arrays = out.tell()
        out.write(struct.pack(f"<{len(strips)}I", *offsets))
        out.write(struct.pack(f"<{len(strips)}I", *counts))
        ifd = out.tell()
        # StripOffsets / StripByteCounts point at the arrays above (count > 1: an offset)
        tags = {256: ("I", [width]), 257: ("I", [height]), 258: ("H", [bits]),
                259: ("H", [8]), 262: ("H", [1]), 277: ("H", [1]),
                278: ("I", [rows_per_strip]), 339: ("H", [sample_format])}
        body = _ifd(tags, 0)
        entries = len(tags) + 2
        out.write(struct.pack("<H", entries))
        for tag in sorted(list(tags) + [273, 279]):
            if tag in (273, 279):
                where = arrays if tag == 273 else arrays + 4 * len(strips)
                value = struct.pack("<I", where if len(strips) > 1 else
                                    (offsets[0] if tag == 273 else counts[0]))
                out.write(struct.pack("<HHI", tag, 4, len(strips)) + value)
            else:
                kind, values = tags[tag]
                packed_value = struct.pack("<" + kind * len(values), *values).ljust(4, b"\x00")
                out.write(struct.pack("<HHI", tag, _TIFF_TYPES[kind], 1) + packed_value)
        out.write(struct.pack("<I", 0))
        del body
        out.seek(4)
        out.write(struct.pack("<I", ifd))


def write_many_page_tiff(path: Path, pages: int) -> None:
    """`pages` 1x1 8-bit pages, each an IFD pointing at the next (about 110 bytes a page)."""
    with open(path, "wb") as out:
        out.write(b"II*\x00" + struct.pack("<I", 8))
        for page in range(pages):
            here = out.tell()
            pixel = here + 2 + 9 * 12 + 4
            next_offset = pixel + 2 if page < pages - 1 else 0
            tags = {256: ("I", [1]), 257: ("I", [1]), 258: ("H", [8]), 259: ("H", [1]),
                    262: ("H", [1]), 273: ("I", [pixel]), 277: ("H", [1]), 278: ("I", [1]),
                    279: ("I", [1])}
            out.write(_ifd(tags, next_offset) + bytes([page % 256, 0]))


def write_ico_with_png(path: Path, png: bytes, cur: bool = False) -> None:
    """An ICO (or CUR) holding one PNG; the directory says 256x256, as it must for big icons."""
    kind = 2 if cur else 1
    entry = struct.pack("<BBBBHHII", 0, 0, 0, 0, 1, 32, len(png), 6 + 16)
    path.write_bytes(struct.pack("<HHH", 0, kind, 1) + entry + png)


def write_many_frame_gif(path: Path, frames: int) -> None:
    """A 1x1 GIF with `frames` image descriptors (12 bytes each)."""
    head = b"GIF89a" + struct.pack("<HHBBB", 1, 1, 0x80, 0, 0) + b"\x00\x00\x00\xff\xff\xff"
    frame = b"\x2c" + struct.pack("<HHHHB", 0, 0, 1, 1, 0) + b"\x02\x02\x44\x01\x00"
    path.write_bytes(head + frame * frames + b"\x3b")


def huge_png_bytes(tmp: Path, side: int) -> bytes:
    """A valid side x side RGBA PNG of one colour (13000: about 660 KB)."""
    row = b"\x10\x20\x30\xff" * side
    write_png_rows(tmp, side, side, 8, 6, lambda y: row)
    return tmp.read_bytes()


# ----------------------------------------------------------------------------- drawing helpers

def _scene(width: int, height: int) -> Image.Image:
    """Upright test picture: grey, red square top-left, blue square bottom-right."""
    im = Image.new("RGB", (width, height), GREY)
    draw = ImageDraw.Draw(im)
    draw.rectangle((0, 0, 11, 11), fill=RED)
    draw.rectangle((width - 12, height - 12, width - 1, height - 1), fill=BLUE)
    return im


def _scene_probes(width: int, height: int, tolerance: int) -> tuple[Probe, ...]:
    return (Probe(5, 5, RED, tolerance), Probe(width - 6, height - 6, BLUE, tolerance),
            Probe(width // 2, height // 2, GREY, tolerance))


def _exif_bytes(orientation: int) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    return exif.tobytes()


# The transpose that undoes each EXIF orientation; the file stores the inverse.
_STORE = {3: Image.Transpose.ROTATE_180, 6: Image.Transpose.ROTATE_90,
          8: Image.Transpose.ROTATE_270, 2: Image.Transpose.FLIP_LEFT_RIGHT}


def _save(im: Image.Image, path: Path, **params) -> Path:
    im.save(path, **params)
    return path


def _encoded(im: Image.Image, fmt: str, **params) -> bytes:
    buffer = io.BytesIO()
    im.save(buffer, fmt, **params)
    return buffer.getvalue()


# ----------------------------------------------------------------------------- the cases

def _refusals(d: Path) -> Iterable[Case]:
    (d / "zero_bytes.png").write_bytes(b"")
    yield error(d / "zero_bytes.png", "is empty (0 bytes)")
    (d / "notes_named.png").write_text("These are my meeting notes, not a picture.\n" * 5)
    yield error(d / "notes_named.png", "contains text")
    svg = ('<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="100" '
           'height="50"><rect width="100" height="50" fill="red"/></svg>\n')
    (d / "drawing.svg").write_text(svg)
    yield error(d / "drawing.svg", "SVG is not supported")
    (d / "svg_named.png").write_text(svg)
    yield error(d / "svg_named.png", "Export it to PNG")
    (d / "page_named.jpg").write_text("<!DOCTYPE html><html><body><img src=x.jpg></body></html>")
    yield error(d / "page_named.jpg", "web page (HTML)")
    (d / "document.pdf").write_bytes(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n")
    yield error(d / "document.pdf", "is a PDF")
    (d / "iphone.heic").write_bytes(struct.pack(">I", 24) + b"ftypheic" + b"\0" * 4
                                    + b"mif1heic" + b"\0" * 200)
    yield error(d / "iphone.heic", "HEIC/HEIF")
    (d / "random.bin").write_bytes(bytes((i * 97 + 13) % 256 for i in range(2048)))
    yield error(d / "random.bin", "not an image this app can read")
    with open(d / "oversize.png", "wb") as f:  # sparse: no disk used, size checked first
        f.truncate(MAX_UPLOAD_BYTES + 1)
    yield error(d / "oversize.png", "upload limit")


def _corrupt(d: Path) -> Iterable[Case]:
    scene = _scene(400, 300)
    png = _encoded(scene, "PNG")
    (d / "truncated.png").write_bytes(png[: len(png) // 2])
    yield error(d / "truncated.png", "truncated or corrupt")
    jpeg = _encoded(scene, "JPEG", quality=90)
    (d / "truncated.jpg").write_bytes(jpeg[: len(jpeg) * 2 // 3])
    yield error(d / "truncated.jpg", "truncated or corrupt")
    gif = _encoded(scene.convert("P"), "GIF")
    (d / "truncated.gif").write_bytes(gif[: len(gif) // 2])
    yield error(d / "truncated.gif", "truncated or corrupt")
    idat = png.index(b"IDAT") + 40
    smashed = png[:idat] + bytes(b ^ 0xA5 for b in png[idat: idat + 64]) + png[idat + 64:]
    (d / "corrupt_idat.png").write_bytes(smashed)
    yield error(d / "corrupt_idat.png", "truncated or corrupt")
    (d / "broken_chunk_name.png").write_bytes(_broken_chunk_png())  # Pillow: SyntaxError
    yield error(d / "broken_chunk_name.png", "truncated or corrupt")
    (d / "header_only.jpg").write_bytes(jpeg[:200])
    yield error(d / "header_only.jpg", "corrupt image header")
    (d / "zero_width.png").write_bytes(b"\x89PNG\r\n\x1a\n" + _ihdr(0, 10, 8, 2)
                                       + _chunk(b"IEND", b""))
    yield error(d / "zero_width.png", "starts like a PNG file but its header is invalid")


def _bombs(d: Path) -> Iterable[Case]:
    _header_only_png(d / "bomb_header_100000x100000.png", 100_000, 100_000)
    yield error(d / "bomb_header_100000x100000.png", "megapixels limit")
    _header_only_png(d / "bomb_header_10000x10000.png", 10_000, 10_000)  # under the pixel cap
    yield error(d / "bomb_header_10000x10000.png", "too small to hold")
    side = 20_000  # a real, valid 1-bit 400 MP PNG of ~50 KB: over Pillow's own hard stop
    white_row = b"\xff" * (side // 8)
    write_png_rows(d / "bomb_real_20000x20000.png", side, side, 1, 0, lambda y: white_row)
    yield error(d / "bomb_real_20000x20000.png", "possible decompression bomb")
    side = 12_000  # 144 MP: above MAX_PIXELS, below Pillow's 179 MP stop, so our check decides
    assert side * side > MAX_PIXELS
    black_row = b"\x00" * (side // 8)
    write_png_rows(d / "bomb_real_12000x12000.png", side, side, 1, 0, lambda y: black_row)
    yield error(d / "bomb_real_12000x12000.png", "megapixels limit")


def _modes(d: Path) -> Iterable[Case]:
    cmyk = Image.new("CMYK", (64, 48), (0, 255, 255, 0))  # red in CMYK
    yield ok(_save(cmyk, d / "cmyk.jpg", quality=95), 48, 64, "CMYK converted to RGB",
             Probe(30, 20, RED, 12))
    grey16 = Image.new("I;16", (50, 40), 40_000)  # 40000 >> 8 == 156; Pillow's convert clips to 255
    yield ok(_save(grey16, d / "grey16.png"), 40, 50, "16-bit PNG reduced to 8 bits",
             Probe(10, 10, (156, 156, 156)))
    rows = [struct.pack(">3H", 65535, 32768, 0) * 8 for _ in range(6)]
    write_png_rows(d / "rgb16.png", 8, 6, 16, 2, lambda y: rows[y])
    yield ok(d / "rgb16.png", 6, 8, "16-bit PNG reduced to 8 bits", Probe(3, 3, (255, 128, 0)))
    yield from _transparency(d)
    grey = Image.new("L", (30, 20), 77)
    yield ok(_save(grey, d / "grey.jpg", quality=95), 20, 30, "greyscale converted to RGB",
             Probe(10, 10, (77, 77, 77), 3))
    bw = Image.new("1", (17, 9), 1)
    yield ok(_save(bw, d / "one_bit.png"), 9, 17, "greyscale", Probe(0, 0, WHITE))
    palette = _scene(40, 30).convert("P", palette=Image.Palette.ADAPTIVE, colors=8)
    yield ok(_save(palette, d / "palette_opaque.png"), 30, 40, "", *_scene_probes(40, 30, 0))


def _transparency(d: Path) -> Iterable[Case]:
    pal = Image.new("P", (20, 10), 1)
    pal.putpalette([0, 0, 0, *RED] + [0] * 762)
    ImageDraw.Draw(pal).rectangle((0, 0, 9, 9), fill=0)  # left half: index 0, transparent
    yield ok(_save(pal, d / "palette_transparent.png", transparency=0), 10, 20,
             "transparency flattened onto white", Probe(2, 2, WHITE), Probe(15, 5, RED))
    la = Image.new("LA", (20, 10), (0, 255))
    ImageDraw.Draw(la).rectangle((0, 0, 9, 9), fill=(0, 0))
    yield ok(_save(la, d / "grey_alpha_la.png"), 10, 20, "transparency flattened onto white",
             Probe(2, 2, WHITE), Probe(15, 5, (0, 0, 0)))
    rgba = Image.new("RGBA", (20, 10), (255, 0, 0, 128))  # half-transparent red over white
    yield ok(_save(rgba, d / "rgba_half.png"), 10, 20, "transparency flattened onto white",
             Probe(5, 5, (255, 127, 127), 1))
    opaque = Image.new("RGBA", (20, 10), (*BLUE, 255))
    yield ok(_save(opaque, d / "rgba_opaque.png"), 10, 20, "fully opaque", Probe(5, 5, BLUE))
    gif = Image.new("P", (20, 10), 1)
    gif.putpalette([*WHITE, *BLUE] + [0] * 762)
    ImageDraw.Draw(gif).rectangle((0, 0, 9, 9), fill=0)
    yield ok(_save(gif, d / "gif_transparent.gif", transparency=0), 10, 20, "flattened",
             Probe(15, 5, BLUE))


def _orientation(d: Path) -> Iterable[Case]:
    upright = _scene(64, 48)
    for orientation, method in _STORE.items():
        stored = upright.transpose(method)
        path = _save(stored, d / f"exif_orientation_{orientation}.jpg", quality=95,
                     exif=_exif_bytes(orientation))
        yield ok(path, 48, 64, f"EXIF orientation {orientation} applied",
                 *_scene_probes(64, 48, 40))
    stored = upright.transpose(_STORE[6])
    path = _save(stored, d / "exif_orientation_6.png", exif=_exif_bytes(6))
    yield ok(path, 48, 64, "EXIF orientation 6 applied: rotated 90°", *_scene_probes(64, 48, 0))
    path = _save(upright, d / "exif_orientation_invalid.jpg", quality=95, exif=_exif_bytes(9))
    yield ok(path, 48, 64, "not valid", *_scene_probes(64, 48, 40))


def _frames(d: Path) -> Iterable[Case]:
    colours = [(255 * (i % 2), 20 * i, 255 - 20 * i) for i in range(12)]
    frames = [Image.new("RGB", (40, 30), c) for c in colours]
    frames[0].save(d / "animated.gif", save_all=True, append_images=frames[1:], duration=80, loop=0)
    yield ok(d / "animated.gif", 30, 40, "animated GIF: using the first of 12 frames",
             Probe(20, 15, colours[0]))
    frames[0].save(d / "animated.webp", save_all=True, append_images=frames[1:3], lossless=True)
    yield ok(d / "animated.webp", 30, 40, "animated WEBP: using the first of 3 frames",
             Probe(20, 15, colours[0]))
    frames[0].save(d / "pages.tiff", save_all=True, append_images=frames[1:3])
    yield ok(d / "pages.tiff", 30, 40, "multi-page TIFF: using the first of 3 pages",
             Probe(20, 15, colours[0]))


def _shapes(d: Path) -> Iterable[Case]:
    yield ok(_save(Image.new("RGB", (1, 1), RED), d / "1x1.png"), 1, 1, "", Probe(0, 0, RED))
    tall = Image.new("RGB", (1, 10_000), BLUE)
    yield ok(_save(tall, d / "1x10000.png"), 10_000, 1, "", Probe(0, 9_999, BLUE))
    wide = Image.new("RGB", (10_000, 1), RED)
    yield ok(_save(wide, d / "10000x1.png"), 1, 10_000, "", Probe(9_999, 0, RED))
    scene = _scene(64, 48)
    for fmt, ext, params, tol in (("WEBP", "webp", {"lossless": True}, 0), ("BMP", "bmp", {}, 0),
                                  ("TIFF", "tiff", {}, 0), ("PPM", "ppm", {}, 0),
                                  ("JPEG", "jpg", {"quality": 95}, 40)):
        path = _save(scene, d / f"scene.{ext}", format=fmt, **params)
        yield ok(path, 48, 64, "", *_scene_probes(64, 48, tol))
    icon = _save(_scene(32, 32), d / "icon.ico", sizes=[(32, 32)])
    yield ok(icon, 32, 32, None, Probe(5, 5, RED))


def _medium(d: Path) -> Iterable[Case]:
    """16 MP files for the other memory-hungry paths: 16-bit grey, EXIF rotation, CMYK."""
    side = 4_000
    row16 = struct.pack(">H", 40_000) * side
    write_png_rows(d / "grey16_4000x4000.png", side, side, 16, 0, lambda y: row16)
    yield ok(d / "grey16_4000x4000.png", side, side, "16-bit PNG reduced to 8 bits",
             Probe(9, 9, (156, 156, 156)), large=True)
    rgb = bytes(RED) * 8 + bytes(GREY) * (side - 8)  # stored: red strip at the left edge
    _write_png_with_exif(d / "exif6_4000x3000.png", side, 3_000, lambda y: rgb, orientation=6)
    # orientation 6 rotates 90° clockwise: the stored left edge becomes the top edge
    yield ok(d / "exif6_4000x3000.png", side, 3_000, "EXIF orientation 6 applied",
             Probe(1_500, 3, RED), Probe(1_500, 3_000, GREY), large=True)
    cmyk = Image.new("CMYK", (side, side), (0, 255, 255, 0))
    yield ok(_save(cmyk, d / "cmyk_4000x4000.jpg", quality=90), side, side, "CMYK",
             Probe(2_000, 2_000, RED, 12), large=True)


def _write_png_with_exif(path: Path, width: int, height: int, row: Callable[[int], bytes],
                         orientation: int) -> None:
    """RGB PNG with an eXIf chunk (raw TIFF, without the JPEG 'Exif\\0\\0' prefix)."""
    write_png_rows(path, width, height, 8, 2, row)
    data = path.read_bytes()
    exif = _exif_bytes(orientation).removeprefix(b"Exif\x00\x00")
    after_ihdr = 8 + 25
    path.write_bytes(data[:after_ihdr] + _chunk(b"eXIf", exif) + data[after_ihdr:])


def _large(d: Path) -> Iterable[Case]:
    """10000x10000 RGBA (100 MP, ~0.5 MB on disk): the worst decode path at full size."""
    side = 10_000
    opaque = bytes(BLUE) + b"\xff"
    top = opaque * side  # top half: opaque blue
    bottom = opaque * (side // 2) + b"\x00\x00\x00\x00" * (side // 2)  # bottom-right: clear
    write_png_rows(d / "rgba_10000x10000.png", side, side, 8, 6,
                   lambda y: top if y < side // 2 else bottom)
    yield ok(d / "rgba_10000x10000.png", side, side, "transparency flattened onto white",
             Probe(10, 10, BLUE), Probe(side - 10, side - 10, WHITE),
             Probe(10, side - 10, BLUE), large=True)


def build_corpus(directory: Path, include_large: bool = True) -> list[Case]:
    """Write every corpus file into `directory` and return the expected outcomes.

    Small cases take about a second; the large ones (16-100 MP, `Case.large`) about two more.
    """
    groups = [_refusals, _corrupt, _bombs, _modes, _orientation, _frames, _shapes]
    return _build(directory, groups + ([_medium, _large] if include_large else []))


def build_large_cases(directory: Path) -> list[Case]:
    """Only the large cases (for the memory test)."""
    return _build(directory, [_medium, _large])


def _hostile(d: Path) -> Iterable[Case]:
    """Issue 9's files: ordinary formats whose decode cost or container work the pixel cap
    alone did not bound. Small on disk (about 6 MB together), up to 108 MP decoded."""
    side = 10_392  # 108 MP, just under MAX_PIXELS
    gradient = [float(i >= side // 2) for i in range(side)]  # black | white: long runs
    write_tiff(d / "float32_10392x10392.tiff", side, side, 32, 3,
               struct.pack(f"<{side}f", *gradient))
    yield ok(d / "float32_10392x10392.tiff", side, side, "32-bit float image converted to 8 bits",
             Probe(0, 5, (0, 0, 0)), Probe(side - 1, side - 1, WHITE, 1), large=True)
    write_tiff(d / "int32_10392x10392.tiff", side, side, 32, 2,
               struct.pack(f"<{side}i", *(int(g * 65535) for g in gradient)))
    yield ok(d / "int32_10392x10392.tiff", side, side, "32-bit integer image reduced to 8 bits",
             Probe(side - 1, 7, WHITE), large=True)
    write_ico_with_png(d / "icon_13000x13000.ico", huge_png_bytes(d / "inner.png", 13_000))
    yield error(d / "icon_13000x13000.ico", "(icon 1 of 1) is 13000x13000 (169.0 megapixels)")
    write_ico_with_png(d / "cursor_13000x13000.cur", (d / "inner.png").read_bytes(), cur=True)
    yield error(d / "cursor_13000x13000.cur", "is not an image this app can read")
    (d / "inner.png").unlink()
    write_many_page_tiff(d / "pages_40000.tiff", 40_000)
    yield error(d / "pages_40000.tiff", "a TIFF with more than 100 pages")
    write_many_frame_gif(d / "frames_200000.gif", 200_000)
    yield ok(d / "frames_200000.gif", 1, 1, "using the first of more than 1,000 frames")


def build_hostile_cases(directory: Path) -> list[Case]:
    """Issue 9's hostile files (about 10 s to write)."""
    return _build(directory, [_hostile])


def _build(directory: Path, groups: list) -> list[Case]:
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    return [case for group in groups for case in group(directory)]

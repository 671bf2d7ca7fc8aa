"""Draw the bundled examples (assets/examples/*.png) with Pillow alone, deterministically.

    python -m assets.make_examples            # or: python assets/make_examples.py [OUT_DIR]

No third-party images and no randomness: shapes come from fixed formulas and text from Pillow's
bundled font (`ImageFont.load_default(size=...)`, FreeType, Pillow >= 10.1). Sizes and file
names come from `anyres_demo.examples.EXAMPLES`. Text-bearing examples get a JSON sidecar with
every word drawn, line by line with its pixel size, so OCR probes can measure recall.
"""
from __future__ import annotations

import json
import math
import re
import sys
from pathlib import Path
from typing import Callable

from PIL import Image, ImageDraw, ImageFont

if __package__ in (None, ""):  # run as a script: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from anyres_demo.examples import EXAMPLES, EXAMPLES_DIR  # noqa: E402

INK = (20, 24, 32)
PAPER = (255, 255, 255)
MUTED = (90, 96, 110)

Drawing = tuple[Image.Image, list[dict] | None]  # the image, and its text lines (or None)


def font(size: int) -> ImageFont.FreeTypeFont:
    face = ImageFont.load_default(size=size)
    if not isinstance(face, ImageFont.FreeTypeFont):  # the bitmap fallback ignores `size`
        raise RuntimeError("Pillow was built without FreeType; the examples need its default font")
    return face


class TextWriter:
    """Draws lines of text and records them (text, pixel size, position) for the sidecar."""

    def __init__(self, image: Image.Image) -> None:
        self.draw = ImageDraw.Draw(image)
        self.lines: list[dict] = []

    def line(self, xy: tuple[int, int], text: str, size: int, fill=INK, anchor: str = "la") -> None:
        face = font(size)
        self.draw.text(xy, text, font=face, fill=fill, anchor=anchor)
        box = self.draw.textbbox(xy, text, font=face, anchor=anchor)
        self.lines.append({"text": text, "size_px": size, "bbox": [round(v) for v in box]})

    def paragraph(self, x: int, y: int, width: int, text: str, size: int, leading: float = 1.45,
                  fill=INK) -> int:
        """Word-wrap `text` into `width` pixels; returns the y below the last line."""
        face = font(size)
        line = ""
        for word in text.split():
            trial = f"{line} {word}".strip()
            if line and self.draw.textlength(trial, font=face) > width:
                self.line((x, y), line, size, fill)
                y += round(size * leading)
                trial = word
            line = trial
        if line:
            self.line((x, y), line, size, fill)
            y += round(size * leading)
        return y


WORD_PATTERN = r"[a-z0-9]+(?:[.'-][a-z0-9]+)*"  # applied to lower-cased text


def words_of(lines: list[dict]) -> list[str]:
    """Words as an OCR recall check compares them: lower case, punctuation stripped
    ("9:41" -> "9", "41"; "LLaVA-NeXT" -> "llava-next"; "3.40" stays "3.40")."""
    return [w for line in lines for w in re.findall(WORD_PATTERN, line["text"].lower())]


def vertical_gradient(size_wh: tuple[int, int], top, bottom) -> Image.Image:
    """Identical pixels along each row, so PNG's Up filter keeps the file small."""
    width, height = size_wh
    column = Image.new("RGB", (1, height))
    for y in range(height):
        t = y / max(1, height - 1)
        column.putpixel((0, y), tuple(round(a + (b - a) * t) for a, b in zip(top, bottom)))
    return column.resize((width, height), Image.Resampling.NEAREST)


# ----------------------------------------------------------------------------- document

DOCUMENT_TITLE = "How AnyRes Models See a Page"
DOCUMENT_BODY = (
    "Early vision-language models squeezed every picture into one small square of 336 by 336 "
    "pixels. A page of text shrunk that far turns into grey smudges, and the model has to guess.",
    "AnyRes keeps the details. The processor picks a grid that matches the shape of the image, "
    "resizes the image onto that canvas, and cuts it into tiles of the size the vision encoder "
    "was trained on. Each tile becomes a small grid of visual tokens, and a low resolution "
    "overview is added so that the model still sees the whole page at once.",
    "Different families make different choices. LLaVA-NeXT pads the image and later removes the "
    "padding from the feature grid, adding a newline token after every row. Qwen2-VL skips tiles "
    "altogether and resizes to a multiple of 28 pixels under a pixel budget. InternVL chooses "
    "the grid whose aspect ratio is closest and appends a thumbnail.",
    "More tiles mean more tokens, more memory and slower answers. Small print is where the "
    "trade-off shows: if these words can still be read after preprocessing, the model has a "
    "fair chance of reading them too.",
)
DOCUMENT_TABLE = (
    ("Family", "Tile", "Tokens per tile"),
    ("LLaVA-NeXT", "336 px", "576"),
    ("LLaVA-OneVision", "384 px", "729"),
    ("InternVL", "448 px", "256"),
    ("Qwen2-VL", "none", "one per 28 px square"),
)
DOCUMENT_STEPS = (
    "1. Pick a model and look at the grid drawn over this page.",
    "2. Open the crops: they are exactly what the vision encoder receives.",
    "3. Compare the token ledger with the processor's count; they must agree.",
    "4. Shrink the pixel budget until the footnote below becomes unreadable.",
    "5. Try the same page on every strategy and note which words survive.",
)
DOCUMENT_CLOSING = (
    "A rule of thumb: text stays legible to a vision encoder while each character is at least "
    "a few patches tall. With 14 pixel patches, a line of 12 pixel text that is shrunk by half "
    "fits inside a single patch row, and letters start to merge.")
DOCUMENT_FOOTNOTE = ("Footnote: this page was drawn by a script with the default Pillow font, so "
                     "every word on it is known in advance. Small print like this is the first "
                     "thing a squashed image loses.")


def draw_document(size_wh: tuple[int, int]) -> Drawing:
    width, height = size_wh
    page = Image.new("RGB", size_wh, PAPER)
    text = TextWriter(page)
    margin = 70
    text.line((margin, 60), DOCUMENT_TITLE, 30)
    text.line((margin, 104), "A short note for the AnyRes Explorer workshop", 15, MUTED)
    text.draw.line((margin, 132, width - margin, 132), fill=MUTED, width=1)
    y = 156
    for paragraph in DOCUMENT_BODY:
        y = text.paragraph(margin, y, width - 2 * margin, paragraph, 15) + 12
    y = draw_table(text, margin, y + 8, width - 2 * margin, DOCUMENT_TABLE, 12) + 28
    text.line((margin, y), "Try it yourself", 18)
    y += 34
    for step in DOCUMENT_STEPS:
        text.line((margin + 10, y), step, 12)
        y += 22
    text.paragraph(margin, y + 16, width - 2 * margin, DOCUMENT_CLOSING, 12)
    text.draw.line((margin, height - 120, margin + 200, height - 120), fill=MUTED, width=1)
    text.paragraph(margin, height - 106, width - 2 * margin, DOCUMENT_FOOTNOTE, 10, fill=MUTED)
    text.line((width // 2, height - 40), "Page 1 of 1", 10, MUTED, anchor="ma")
    return page, text.lines


def draw_table(text: TextWriter, x: int, y: int, width: int, rows, size: int) -> int:
    columns = (x, x + width * 3 // 10, x + width * 5 // 10)
    row_height = round(size * 2.0)
    for index, row in enumerate(rows):
        if index == 0:
            text.draw.rectangle((x - 6, y - 5, x + width, y + row_height - 5), fill=(232, 236, 244))
        for cx, cell in zip(columns, row):
            text.line((cx, y), cell, size)
        y += row_height
    text.draw.rectangle((x - 6, y - row_height * len(rows) - 5, x + width, y - 5), outline=MUTED)
    return y


# ----------------------------------------------------------------------------- chart

RAINFALL_MM = (("Jan", 78), ("Feb", 64), ("Mar", 71), ("Apr", 55), ("May", 49), ("Jun", 38),
               ("Jul", 22), ("Aug", 27), ("Sep", 46), ("Oct", 89), ("Nov", 112), ("Dec", 95))


def draw_chart(size_wh: tuple[int, int]) -> Drawing:
    width, height = size_wh
    chart = Image.new("RGB", size_wh, PAPER)
    text = TextWriter(chart)
    title = "Average monthly rainfall in a fictional town (mm)"
    text.line((width // 2, 24), title, 28, anchor="ma")
    left, right, top, bottom = 110, width - 40, 90, height - 80
    scale = (bottom - top) / 120
    for tick in range(0, 121, 20):
        y = round(bottom - tick * scale)
        text.draw.line((left, y, right, y), fill=(225, 228, 235))
        text.line((left - 12, y), str(tick), 18, MUTED, anchor="rm")
    slot = (right - left) / len(RAINFALL_MM)
    for i, (month, mm) in enumerate(RAINFALL_MM):
        x0 = round(left + i * slot + slot * 0.18)
        x1 = round(left + (i + 1) * slot - slot * 0.18)
        y0 = round(bottom - mm * scale)
        text.draw.rectangle((x0, y0, x1, bottom), fill=(52, 101, 164) if mm < 80 else (204, 85, 0))
        text.line(((x0 + x1) // 2, y0 - 8), str(mm), 18, anchor="md")
        text.line(((x0 + x1) // 2, bottom + 12), month, 20, anchor="ma")
    text.draw.line((left, bottom, right, bottom), fill=INK, width=2)
    text.line((24, (top + bottom) // 2), "mm", 18, MUTED, anchor="lm")
    text.line((right, height - 24), "Orange bars: 80 mm or more", 16, MUTED, anchor="rd")
    return chart, text.lines


# ----------------------------------------------------------------------------- receipt

RECEIPT_ITEMS = (("Flat white", "3.40"), ("Oat milk", "0.50"), ("Almond croissant", "3.10"),
                 ("Sourdough toast", "4.25"), ("Avocado", "2.00"), ("Poached eggs", "3.50"),
                 ("Orange juice", "3.80"), ("Green tea", "2.60"), ("Banana bread", "2.95"),
                 ("Sparkling water", "1.90"), ("Granola bowl", "5.40"), ("Extra shot", "0.70"))


def draw_receipt(size_wh: tuple[int, int]) -> Drawing:
    width, height = size_wh
    screen = Image.new("RGB", size_wh, (242, 242, 247))
    text = TextWriter(screen)
    text.line((24, 16), "9:41", 17)
    text.draw.rounded_rectangle((width - 52, 18, width - 24, 30), radius=3, outline=INK, width=2)
    text.draw.rectangle((width - 49, 21, width - 32, 27), fill=INK)
    text.line((width // 2, 58), "Receipt", 20, anchor="ma")
    text.draw.rounded_rectangle((16, 100, width - 16, height - 40), radius=14, fill=PAPER)
    text.line((width // 2, 126), "CORNER CAFE", 26, anchor="ma")
    text.line((width // 2, 164), "12 Harbour Street, Port Ellis", 14, MUTED, anchor="ma")
    text.line((width // 2, 186), "2024-05-14  08:32  Table 7", 14, MUTED, anchor="ma")
    y = 230
    subtotal = 0
    for name, price in RECEIPT_ITEMS:
        text.line((36, y), name, 17)
        text.line((width - 36, y), price, 17, anchor="ra")
        subtotal += round(float(price) * 100)
        y += 40
    tax = round(subtotal * 0.08)
    y = _dashes(text, y + 6, width)
    for label, cents, size in (("Subtotal", subtotal, 17), ("Tax 8%", tax, 17),
                               ("TOTAL", subtotal + tax, 22)):
        text.line((36, y), label, size)
        text.line((width - 36, y), f"{cents / 100:.2f}", size, anchor="ra")
        y += 44
    y = _dashes(text, y, width)
    text.line((width // 2, y + 10), "Paid by card **** 4821", 15, MUTED, anchor="ma")
    text.line((width // 2, y + 44), "Thank you, see you soon!", 17, anchor="ma")
    _barcode(text.draw, width, y + 96)
    text.line((width // 2, y + 186), "Order 0417", 14, MUTED, anchor="ma")
    text.line((width // 2, y + 230), "Wi-Fi: cornercafe-guest", 15, anchor="ma")
    text.line((width // 2, y + 256), "Open daily 7:00 to 17:00", 15, anchor="ma")
    text.line((width // 2, y + 300), "Keep this receipt for returns", 13, MUTED, anchor="ma")
    return screen, text.lines


def _dashes(text: TextWriter, y: int, width: int) -> int:
    for x in range(36, width - 36, 12):
        text.draw.line((x, y, x + 6, y), fill=MUTED, width=1)
    return y + 24


def _barcode(draw: ImageDraw.ImageDraw, width: int, y: int) -> None:
    bars = [(1 + (i * 7 + i // 3) % 3, bool((i * 5) % 4), 1 + i % 2) for i in range(64)]
    x = (width - sum(bar + gap for bar, _, gap in bars)) // 2  # centred
    for bar, dark, gap in bars:
        if dark:
            draw.rectangle((x, y, x + bar - 1, y + 70), fill=INK)
        x += bar + gap


# ----------------------------------------------------------------------------- landscapes

def ridge(x: float, width: int, base: float, amplitude: float, seed: float) -> float:
    """A fixed sum of sines: a mountain profile, the same on every machine."""
    t = x / width * 2 * math.pi
    return base - amplitude * (0.55 * math.sin(3 * t + seed) + 0.3 * math.sin(7.3 * t + 2 * seed)
                               + 0.15 * math.sin(17.1 * t + 3 * seed))


def draw_ridges(draw: ImageDraw.ImageDraw, width: int, height: int, layers) -> None:
    for base, amplitude, seed, colour in layers:
        points = [(x, ridge(x, width, base, amplitude, seed)) for x in range(0, width + 8, 8)]
        draw.polygon([(0, height), *points, (width, height)], fill=colour)


def draw_tree(draw: ImageDraw.ImageDraw, x: int, ground: int, size: int, colour) -> None:
    draw.rectangle((x - size // 10, ground - size // 3, x + size // 10, ground), fill=(92, 64, 40))
    for level in range(3):
        top = ground - size + level * size // 4
        half = size // 3 + level * size // 10
        draw.polygon([(x, top), (x - half, top + size // 2), (x + half, top + size // 2)],
                     fill=colour)


def draw_sun(draw: ImageDraw.ImageDraw, cx: int, cy: int, radius: int) -> None:
    for ring in range(5, 0, -1):  # a soft glow of widening pale discs
        r = radius + ring * radius // 4
        shade = (255, 225 + ring * 4, 110 + ring * 18)  # yellow fading to cream
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=shade)
    draw.ellipse((cx - radius, cy - radius, cx + radius, cy + radius), fill=(255, 214, 64))


def draw_panorama(size_wh: tuple[int, int]) -> Drawing:
    width, height = size_wh
    image = vertical_gradient(size_wh, (255, 183, 120), (255, 236, 210))
    draw = ImageDraw.Draw(image)
    draw_sun(draw, width * 7 // 10, height * 2 // 5, 26)
    draw_ridges(draw, width, height, ((150, 45, 0.4, (150, 120, 160)),
                                      (190, 35, 1.7, (105, 90, 130)),
                                      (225, 22, 2.9, (70, 72, 100))))
    draw.rectangle((0, 250, width, height), fill=(80, 110, 150))  # lake
    for x in range(0, width, 40):
        y = 262 + (x // 40) % 5 * 7  # ripples
        draw.line((x, y, x + 22, y), fill=(140, 165, 200))
    for x in (90, 140, 620, 1480, 1530, 2210):
        draw_tree(draw, x, 252, 60, (34, 70, 50))
    return image, None


def draw_photo(size_wh: tuple[int, int]) -> Drawing:
    width, height = size_wh
    image = vertical_gradient(size_wh, (70, 130, 200), (190, 220, 245))
    draw = ImageDraw.Draw(image)
    draw_sun(draw, 780, 150, 55)
    for cx, cy in ((200, 130), (420, 90)):  # clouds
        for dx, dy, r in ((0, 0, 40), (45, -15, 50), (95, 0, 38), (45, 15, 42)):
            draw.ellipse((cx + dx - r, cy + dy - r, cx + dx + r, cy + dy + r), fill=(250, 250, 252))
    draw_ridges(draw, width, height, ((430, 70, 0.9, (120, 150, 120)),
                                      (500, 50, 2.2, (80, 130, 80))))
    draw.rectangle((0, 560, width, height), fill=(96, 150, 72))  # meadow
    draw.ellipse((520, 600, 980, 730), fill=(70, 120, 170))  # pond
    draw.ellipse((600, 625, 760, 665), fill=(120, 165, 210))
    draw.rectangle((120, 470, 330, 600), fill=(200, 90, 70))  # house
    draw.polygon([(100, 475), (225, 380), (350, 475)], fill=(110, 60, 50))
    draw.rectangle((200, 530, 245, 600), fill=(80, 50, 40))
    draw.rectangle((140, 500, 180, 535), fill=(250, 230, 150))
    draw.rectangle((270, 500, 310, 535), fill=(250, 230, 150))
    for x, size in ((400, 150), (460, 190), (890, 170), (960, 130), (60, 120)):
        draw_tree(draw, x, 600, size, (40, 95, 55))
    return image, None


# ----------------------------------------------------------------------------- small ones

def draw_icon(size_wh: tuple[int, int]) -> Drawing:
    width, height = size_wh
    icon = Image.new("RGB", size_wh, PAPER)
    draw = ImageDraw.Draw(icon)
    draw.rounded_rectangle((0, 0, width - 1, height - 1), radius=5, fill=(52, 101, 164))
    draw.ellipse((3, 7, width - 4, height - 8), fill=PAPER)  # an eye
    draw.ellipse((8, 8, width - 9, height - 9), fill=(204, 85, 0))
    draw.ellipse((10, 10, width - 11, height - 11), fill=INK)
    return icon, None


def draw_square(size_wh: tuple[int, int]) -> Drawing:
    """A bold target on the 16x16 grid of 28 px cells an InternVL tile becomes."""
    width, height = size_wh
    image = Image.new("RGB", size_wh, (246, 246, 240))
    draw = ImageDraw.Draw(image)
    for i in range(0, width + 1, 28):
        draw.line((i, 0, i, height), fill=(215, 215, 205))
        draw.line((0, i, width, i), fill=(215, 215, 205))
    colours = ((204, 85, 0), PAPER, (52, 101, 164), PAPER, (204, 85, 0))
    for ring, colour in enumerate(colours):
        r = 180 - ring * 36
        cx, cy = width // 2, height // 2
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=colour)
    text = TextWriter(image)
    cx, cy = width // 2, height // 2
    draw.rounded_rectangle((cx - 96, cy - 28, cx + 96, cy + 28), radius=12, fill=INK)
    text.line((cx, cy), "448 x 448", 34, PAPER, anchor="mm")
    text.line((width // 2, height - 14), "16 x 16 cells of 28 px", 16, MUTED, anchor="md")
    return image, None


def draw_small(size_wh: tuple[int, int]) -> Drawing:
    width, height = size_wh
    image = vertical_gradient(size_wh, (120, 180, 230), (220, 240, 250))
    draw = ImageDraw.Draw(image)
    draw_sun(draw, 252, 52, 16)
    draw_ridges(draw, width, height, ((140, 25, 1.1, (90, 140, 90)),))
    draw_tree(draw, 60, 175, 50, (40, 95, 55))
    text = TextWriter(image)
    text.line((16, 14), "300 x 200", 26, INK)
    return image, None


DRAWERS: dict[str, Callable[[tuple[int, int]], Drawing]] = {
    "document_page.png": draw_document,
    "chart_wide.png": draw_chart,
    "receipt_tall.png": draw_receipt,
    "panorama_8to1.png": draw_panorama,
    "icon_24.png": draw_icon,
    "photo_scene.png": draw_photo,
    "square_448.png": draw_square,
    "small_300x200.png": draw_small,
}


def generate(out_dir: Path = EXAMPLES_DIR) -> list[Path]:
    """Draw every example (and sidecar) into `out_dir`; returns the paths written."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for example in EXAMPLES:
        image, lines = DRAWERS[example.file_name](example.size_hw.wh)
        if image.size != example.size_hw.wh:
            raise RuntimeError(f"{example.file_name} drew {image.size}, expected {example.size_hw}")
        image.save(out_dir / example.file_name, optimize=True)
        written.append(out_dir / example.file_name)
        if example.sidecar:
            sidecar = {"image": example.file_name, "word_pattern": WORD_PATTERN,
                       "lines": lines, "words": words_of(lines)}
            (out_dir / example.sidecar).write_text(json.dumps(sidecar, indent=1) + "\n")
            written.append(out_dir / example.sidecar)
    return written


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    for path in generate(Path(args[0]) if args else EXAMPLES_DIR):
        print(f"{path.stat().st_size:>8,} bytes  {path}")


if __name__ == "__main__":
    main()

"""Pure geometry: sizes as (height, width), boxes in original-image pixels.

PIL speaks (width, height); convert once at the edge with `Size.from_pil`.
Nothing here imports numpy, torch, gradio or transformers.
"""
from __future__ import annotations

from typing import NamedTuple


class Size(NamedTuple):
    """An image or canvas size, height first. A NamedTuple (cheap: plans make many), so it
    also unpacks as (height, width)."""

    height: int
    width: int

    @classmethod
    def from_pil(cls, size_wh: tuple[int, int]) -> "Size":
        """PIL's `.size` is (width, height)."""
        width, height = size_wh
        return cls(int(height), int(width))

    @property
    def hw(self) -> tuple[int, int]:
        return (self.height, self.width)

    @property
    def wh(self) -> tuple[int, int]:
        return (self.width, self.height)

    @property
    def area(self) -> int:
        return self.height * self.width

    def __str__(self) -> str:  # how people write sizes: W x H
        return f"{self.width}x{self.height}"


class Box(NamedTuple):
    """Axis-aligned box [x0, x1) x [y0, y1), floats allowed (original-image pixels).

    A NamedTuple rather than a frozen dataclass: plans make dozens per image and tuples are
    4x cheaper to build.
    """

    x0: float
    y0: float
    x1: float
    y1: float

    @property
    def width(self) -> float:
        return self.x1 - self.x0

    @property
    def height(self) -> float:
        return self.y1 - self.y0

    @property
    def area(self) -> float:
        return max(0.0, self.width) * max(0.0, self.height)

    def clip(self, size_hw: Size) -> "Box":
        """Intersect with the image [0, width) x [0, height)."""
        x0 = min(max(self.x0, 0.0), size_hw.width)
        x1 = min(max(self.x1, 0.0), size_hw.width)
        y0 = min(max(self.y0, 0.0), size_hw.height)
        y1 = min(max(self.y1, 0.0), size_hw.height)
        return Box(x0, y0, max(x0, x1), max(y0, y1))

    def scale(self, sx: float, sy: float) -> "Box":
        return Box(self.x0 * sx, self.y0 * sy, self.x1 * sx, self.y1 * sy)

    def as_tuple(self) -> tuple[float, float, float, float]:
        return tuple(self)


def parse_size(text: str) -> Size:
    """Parse 'WxH' (how people and the CLI write it) into Size(height, width)."""
    parts = text.lower().replace(" ", "").split("x")
    if len(parts) != 2 or not all(p.lstrip("-").isdigit() for p in parts):
        raise ValueError(f"size {text!r} is not of the form WIDTHxHEIGHT, e.g. 1920x1080")
    width, height = (int(p) for p in parts)
    return Size(height, width)


def check_size(size_hw: Size) -> None:
    """Every strategy needs at least one pixel on each side."""
    if size_hw.height < 1 or size_hw.width < 1:
        raise ValueError(
            f"image size {size_hw.width}x{size_hw.height} has a side below 1 pixel; "
            "width and height must be positive")


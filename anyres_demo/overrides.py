"""User overrides as typed in the UI or CLI -> keyword arguments for Preset.with_overrides.

Pure: no gradio. Empty / None / 0 fields mean "use the checkpoint's value". Every value is
checked against `presets.SETTING_BOUNDS` while it is parsed, before it becomes an int or a
list, so a 20-digit number, 1e30, NaN or a megabyte of canvases costs nothing.
"""
from __future__ import annotations

import math
import re
from typing import Any

from .presets import OVERRIDABLE, Preset, bound_for, check_bound

# The UI's names for the settings fields (a new family's settings map here if they differ).
LABELS = {"max_pixels": "max_pixels", "min_pixels": "min_pixels", "max_tiles": "max tiles",
          "min_tiles": "min tiles", "pinpoints_hw": "the canvas list"}
_CANVAS = re.compile(r"(\d{1,7})[xX*](\d{1,7})")


def _check_length(name: str, text: str, what: str) -> None:
    bound = bound_for(name)
    if len(text) > bound.high:
        raise ValueError(f"{what} is {len(text):,} characters long, above this app's limit of "
                         f"{bound.high:,} ({bound.why})")


def parse_pinpoints(text: str | None) -> tuple[tuple[int, int], ...] | None:
    """'672x336, 336x672' (width x height, as people write sizes) -> ((336, 672), (672, 336)) (h, w)."""
    if text is None or not str(text).strip():
        return None
    text = str(text).strip()
    _check_length("canvas_list_chars", text, "the canvas list")
    parts = [p for p in re.split(r"[,;\s]+", text) if p]
    check_bound("pinpoints_hw", len(parts), label="the canvas list's length")
    out = []
    for part in parts:
        m = _CANVAS.fullmatch(part)
        if not m:
            raise ValueError(f"canvas {part[:40]!r} is not of the form WIDTHxHEIGHT with sides of "
                             "at most 7 digits, e.g. 672x336")
        out.append((int(m.group(2)), int(m.group(1))))
    return tuple(out)


def format_pinpoints(pinpoints_hw) -> str:
    return ", ".join(f"{w}x{h}" for h, w in pinpoints_hw)


def parse_number(name: str, value: Any, label: str | None = None) -> int | None:
    """A whole-number setting as typed or sent ("abc", 1e30, NaN, "Infinity", 12.5 refused
    with a message naming the value and the limit); None/""/0 -> None (the checkpoint's)."""
    what = label or LABELS.get(name, name)
    if value is None or isinstance(value, bool):
        return None
    text = str(value).strip()
    if text == "":
        return None
    _check_length("number_chars", text, what)
    try:
        number = float(text)
    except (TypeError, ValueError):
        raise ValueError(f"{what} must be a whole number, got {text[:40]!r}") from None
    if not math.isfinite(number):
        raise ValueError(f"{what} must be a finite whole number, got {text!r}")
    if number == 0:
        return None
    if number != math.floor(number):
        raise ValueError(f"{what} must be a whole number, got {text!r}")
    check_bound(name, number, label=what)
    return int(number)


def collect_overrides(preset: Preset, max_pixels: Any = None, min_pixels: Any = None,
                      max_tiles: Any = None, min_tiles: Any = None,
                      pinpoints: Any = None) -> dict[str, Any]:
    """Only the overrides that apply to the preset's strategy; the others are ignored, so one
    set of UI controls can serve every model."""
    given = {name: parse_number(name, value) for name, value in (
        ("max_pixels", max_pixels), ("min_pixels", min_pixels), ("max_tiles", max_tiles),
        ("min_tiles", min_tiles))}
    given["pinpoints_hw"] = (parse_pinpoints(pinpoints) if isinstance(pinpoints, (str, type(None)))
                             else _pinpoint_pairs(pinpoints))
    allowed = OVERRIDABLE[preset.strategy]
    return {k: v for k, v in given.items() if v is not None and k in allowed}


def _pinpoint_pairs(pinpoints) -> tuple[tuple[int, int], ...]:
    """A list of (h, w) pairs from code: bounded like typed text."""
    pairs = tuple(pinpoints)
    check_bound("pinpoints_hw", len(pairs), label="the canvas list's length")
    return tuple((int(h), int(w)) for h, w in pairs)  # the canvas checks bound each one

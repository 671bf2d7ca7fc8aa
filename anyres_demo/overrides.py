"""User overrides as typed in the UI or CLI -> keyword arguments for Preset.with_overrides.

Pure: no gradio. Empty / None / 0 fields mean "use the checkpoint's value".
"""
from __future__ import annotations

import re
from typing import Any

from .presets import OVERRIDABLE, Preset


def parse_pinpoints(text: str | None) -> tuple[tuple[int, int], ...] | None:
    """'672x336, 336x672' (width x height, as people write sizes) -> ((336, 672), (672, 336)) (h, w)."""
    if text is None or not str(text).strip():
        return None
    out = []
    for part in re.split(r"[,;\s]+", str(text).strip()):
        if not part:
            continue
        m = re.fullmatch(r"(\d+)[xX*](\d+)", part)
        if not m:
            raise ValueError(f"canvas {part!r} is not of the form WIDTHxHEIGHT, e.g. 672x336")
        out.append((int(m.group(2)), int(m.group(1))))
    return tuple(out)


def format_pinpoints(pinpoints_hw) -> str:
    return ", ".join(f"{w}x{h}" for h, w in pinpoints_hw)


def _positive_int(name: str, value: Any) -> int | None:
    if value is None or value == "" or value == 0:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a whole number, got {value!r}") from None
    if number != int(number) or number < 1:
        raise ValueError(f"{name} must be a positive whole number, got {value!r}")
    return int(number)


def collect_overrides(preset: Preset, max_pixels: Any = None, min_pixels: Any = None,
                      max_tiles: Any = None, min_tiles: Any = None,
                      pinpoints: Any = None) -> dict[str, Any]:
    """Only the overrides that apply to the preset's strategy; the others are ignored, so one
    set of UI controls can serve every model."""
    given = {
        "max_pixels": _positive_int("max pixels", max_pixels),
        "min_pixels": _positive_int("min pixels", min_pixels),
        "max_tiles": _positive_int("max tiles", max_tiles),
        "min_tiles": _positive_int("min tiles", min_tiles),
        "pinpoints_hw": parse_pinpoints(pinpoints) if isinstance(pinpoints, (str, type(None)))
        else tuple(tuple(p) for p in pinpoints),
    }
    allowed = OVERRIDABLE[preset.strategy]
    return {k: v for k, v in given.items() if v is not None and k in allowed}

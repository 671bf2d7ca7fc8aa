"""User overrides as typed in the UI or CLI -> keyword arguments for Preset.with_overrides.

Pure: no gradio. Empty / None / 0 fields mean "use the checkpoint's value". Every value is
checked against `presets.SETTING_BOUNDS` while it is parsed, before it becomes an int or a
list, so a 20-digit number, 1e30, NaN or a megabyte of canvases costs nothing.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from .presets import OVERRIDABLE, Preset, bound_for, check_bound

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


def parse_number(name: str, value: Any, label: str | None = None, whole: bool = True,
                 strategy: str | None = None) -> int | float | None:
    """A number setting (`name`: its Settings field) as typed or sent ("abc", 1e30, NaN,
    "Infinity", and 12.5 for a whole number refused with a message naming the value and the
    limit); None/""/0 -> None (the checkpoint's)."""
    what = label or name
    kind = "whole number" if whole else "number"
    if value is None or isinstance(value, bool):
        return None
    text = str(value).strip()
    if text == "":
        return None
    _check_length("number_chars", text, what)
    try:
        number = float(text)
    except (TypeError, ValueError):
        raise ValueError(f"{what} must be a {kind}, got {text[:40]!r}") from None
    if not math.isfinite(number):
        raise ValueError(f"{what} must be a finite {kind}, got {text!r}")
    if number == 0:
        return None
    if whole and number != math.floor(number):
        raise ValueError(f"{what} must be a whole number, got {text!r}")
    check_bound(name, number, strategy, label=what)
    return int(number) if whole else number


def _switch(name: str, value: Any) -> bool | None:
    """None / "" / "checkpoint" -> None (the checkpoint's value); on/off, yes/no, true/false."""
    if value is None or isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("", "checkpoint", "default", "checkpoint default"):
        return None
    if text in ("on", "yes", "true", "1"):
        return True
    if text in ("off", "no", "false", "0"):
        return False
    raise ValueError(f"{name} must be on or off, got {value!r}")


def _pinpoints(name: str, value: Any):
    if value is None or isinstance(value, str):
        return parse_pinpoints(value)
    pairs = tuple(value)  # (h, w) pairs from code: bounded like typed text
    check_bound("pinpoints_hw", len(pairs), label="the canvas list's length")
    return tuple(tuple(int(v) for v in p) for p in pairs)  # validate_settings bounds each


def _choice(spec: "SettingSpec", value: Any):
    if value is None or value == "" or value == 0:
        return None
    if isinstance(value, str) and value.strip().lower() in ("checkpoint", "default", "checkpoint default"):
        return None  # the UI's "checkpoint" entry, as for on/off switches
    for option in spec.choices:
        if str(option) == str(value).strip() or (isinstance(option, int) and _same_int(option, value)):
            return option
    raise ValueError(f"{spec.label} must be one of {', '.join(str(c) for c in spec.choices)}, got {value!r}")


def _same_int(option: int, value: Any) -> bool:
    try:
        return float(value) == option
    except (TypeError, ValueError):
        return False


@dataclass(frozen=True)
class SettingSpec:
    """One user setting: how the UI shows it, how the CLI spells it, which field it sets."""

    name: str  # handler / CLI name (flag: --max-pixels); also the UI component's elem_id suffix
    field: str  # the field of the preset's Settings dataclass it overrides
    label: str  # UI label, plain words first
    kind: str  # "int" | "float" | "bool" | "pinpoints" | "choice"
    help: str = ""
    choices: tuple = ()  # for "choice"

    def parse(self, value: Any, strategy: str | None = None) -> Any:
        """The typed value, or None for "use the checkpoint's value"; ValueError with a message
        (bounds from presets.SETTING_BOUNDS, `strategy`'s own rows first)."""
        if self.kind in ("int", "float"):
            return parse_number(self.field, value, label=self.name, whole=self.kind == "int",
                                strategy=strategy)
        if self.kind == "bool":
            return _switch(self.name.replace("_", " "), value)
        if self.kind == "pinpoints":
            return _pinpoints(self.label, value)
        if self.kind == "choice":
            return _choice(self, value)
        raise ValueError(f"unknown setting kind {self.kind!r}")


# Every setting a user can change, in the order the UI shows them. A family adds rows here
# (for fields new to it) and lists the fields it reads in presets.OVERRIDABLE.
SETTING_SPECS: dict[str, SettingSpec] = {s.name: s for s in (
    SettingSpec("max_pixels", "max_pixels", "max pixels (Qwen pixel budget)", "int",
                "largest image area after resizing, in pixels"),
    SettingSpec("min_pixels", "min_pixels", "min pixels (Qwen)", "int",
                "smallest image area after resizing; smaller images are upscaled"),
    SettingSpec("max_tiles", "max_tiles", "max tiles (InternVL, Llama 4)", "int", "most tiles per image"),
    SettingSpec("min_tiles", "min_tiles", "min tiles (InternVL)", "int", "fewest tiles per image"),
    SettingSpec("pinpoints", "pinpoints_hw", "Canvas list, W x H (LLaVA)", "pinpoints",
                "the canvases the processor may pick, e.g. '672x336, 336x672'"),
    # Gemma 3 pan-and-scan (off as released) and Gemma 4's soft-token budget
    SettingSpec("pan_and_scan", "do_pan_and_scan", "pan-and-scan crops (Gemma 3)", "bool",
                "also cut the image into 2-4 crops along its long side, each its own 896 view; "
                "off in the released checkpoints"),
    SettingSpec("pan_and_scan_max_crops", "pan_and_scan_max_num_crops",
                "pan-and-scan max crops (Gemma 3)", "int", "most crops per image (released: 4)"),
    SettingSpec("pan_and_scan_min_crop_size", "pan_and_scan_min_crop_size",
                "pan-and-scan min crop size, px (Gemma 3)", "int",
                "no crops if a crop's shorter side would be below this (released: 256)"),
    SettingSpec("pan_and_scan_min_ratio", "pan_and_scan_min_ratio_to_activate",
                "pan-and-scan activation aspect ratio (Gemma 3)", "float",
                "crops only when long side / short side reaches this (released: 1.2)"),
    SettingSpec("max_soft_tokens", "max_soft_tokens", "image token budget (Gemma 4)", "choice",
                "the most soft tokens one image may use; the 48-px rounding leaves some unused "
                "(released: 280)", choices=(70, 140, 280, 560, 1120)),
    SettingSpec("longest_edge", "longest_edge", "longest edge, px (SmolVLM / Idefics3, Pixtral / Mistral Small)",
                "int", "SmolVLM: the long side is resized to exactly this (4 tiles at the "
                "checkpoint's value); Pixtral: a longer side is scaled down to it, at most the "
                "vision tower's image_size"),
)}


def settings_for(preset: Preset) -> list[SettingSpec]:
    """The settings `preset`'s family reads, in UI order."""
    allowed = OVERRIDABLE[preset.strategy]
    return [spec for spec in SETTING_SPECS.values() if spec.field in allowed]


def collect_overrides(preset: Preset, **values: Any) -> dict[str, Any]:
    """Settings keyed by SettingSpec.name -> overrides keyed by Settings field, keeping only
    those the preset's strategy reads; the others are ignored, so one set of UI controls can
    serve every model. Unknown names raise ValueError."""
    unknown = sorted(set(values) - set(SETTING_SPECS))
    if unknown:
        raise ValueError(f"unknown setting {', '.join(unknown)}; known: {', '.join(SETTING_SPECS)}")
    allowed = OVERRIDABLE[preset.strategy]
    out = {}
    for name, value in values.items():
        spec = SETTING_SPECS[name]
        parsed = spec.parse(value, preset.strategy)
        if parsed is not None and spec.field in allowed:
            out[spec.field] = parsed
    return out

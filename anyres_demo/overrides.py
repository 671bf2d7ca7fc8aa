"""User overrides as typed in the UI or CLI -> keyword arguments for Preset.with_overrides.

Pure: no gradio. Empty / None / 0 fields mean "use the checkpoint's value".
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
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


def _positive_float(name: str, value: Any) -> float | None:
    if value is None or value == "" or value == 0:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(number) or number <= 0:
        raise ValueError(f"{name} must be a positive number, got {value!r}")
    return number


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
    return tuple(tuple(int(v) for v in p) for p in value)


def _choice(spec: "SettingSpec", value: Any):
    if value is None or value == "" or value == 0:
        return None
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

    def parse(self, value: Any) -> Any:
        """The typed value, or None for "use the checkpoint's value"; ValueError with a message."""
        if self.kind == "int":
            return _positive_int(self.name.replace("_", " "), value)
        if self.kind == "float":
            return _positive_float(self.name.replace("_", " "), value)
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
    SettingSpec("max_tiles", "max_tiles", "max tiles (InternVL)", "int", "most tiles per image"),
    SettingSpec("min_tiles", "min_tiles", "min tiles (InternVL)", "int", "fewest tiles per image"),
    SettingSpec("pinpoints", "pinpoints_hw", "Canvas list, W x H (LLaVA)", "pinpoints",
                "the canvases the processor may pick, e.g. '672x336, 336x672'"),
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
        parsed = spec.parse(value)
        if parsed is not None and spec.field in allowed:
            out[spec.field] = parsed
    return out

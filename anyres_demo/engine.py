"""Front door of the pure core: resolve a preset, apply overrides, plan, count."""
from __future__ import annotations

from typing import Any

import numpy as np

from .geometry import Size, check_size
from .presets import Preset, get_preset
from .strategies import get_strategy
from .strategies.base import Plan


def resolve_preset(model: str | Preset, **overrides: Any) -> Preset:
    """A preset by repo id / alias (or as given), with user overrides applied."""
    preset = model if isinstance(model, Preset) else get_preset(model)
    return preset.with_overrides(**overrides)


def as_size(image_or_size: Any) -> Size:
    """Accept a Size, a (height, width) tuple or anything with PIL's `.size` (width, height)."""
    if isinstance(image_or_size, Size):
        return image_or_size
    if hasattr(image_or_size, "size") and not isinstance(image_or_size, tuple):
        return Size.from_pil(image_or_size.size)
    height, width = image_or_size
    return Size(int(height), int(width))


def plan_image(image_or_size: Any, model: str | Preset, **overrides: Any) -> Plan:
    """Plan one image. `image_or_size` is a Size, (height, width) or a PIL image."""
    size_hw = as_size(image_or_size)
    check_size(size_hw)
    preset = resolve_preset(model, **overrides)
    return get_strategy(preset.strategy).plan(size_hw, preset)


def count_tokens_many(heights: Any, widths: Any, model: str | Preset, **overrides: Any) -> np.ndarray:
    """Placeholder-token counts for many sizes at once (vectorized); -1 where the processor
    would reject the size (non-positive side, Qwen aspect ratio over 200)."""
    preset = resolve_preset(model, **overrides)
    h = np.asarray(heights, dtype=np.int64)
    w = np.asarray(widths, dtype=np.int64)
    return get_strategy(preset.strategy).count_many(h, w, preset)


def count_total_many(heights: Any, widths: Any, model: str | Preset, **overrides: Any) -> np.ndarray:
    """Every token an image puts in the prompt (placeholders + special tokens) for many sizes
    at once, as `plan.num_tokens` counts them; -1 where the processor would reject the size."""
    preset = resolve_preset(model, **overrides)
    h = np.asarray(heights, dtype=np.int64)
    w = np.asarray(widths, dtype=np.int64)
    strategy = get_strategy(preset.strategy)
    total = getattr(strategy, "count_many_total", None)
    if total is not None:
        return total(h, w, preset)
    counts = strategy.count_many(h, w, preset)
    specials = 2 if preset.wrapper_tokens else 0
    return np.where(counts >= 0, counts + specials, -1)

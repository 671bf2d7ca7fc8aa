"""AnyRes Explorer: what LLaVA-NeXT, LLaVA-OneVision, Qwen2-VL and InternVL do to an image.

The public API (pure: no torch, gradio or transformers imported):

    from anyres_demo import plan_image, build_layout, get_preset
    plan = plan_image((1080, 1920), "llava-next")     # (height, width), or a Size, or a PIL image
    layout = build_layout(plan)
    plan.num_image_tokens, layout.counts_by_kind()
"""
from __future__ import annotations

from .engine import count_tokens_many, plan_image
from .geometry import Box, Size
from .layout import KINDS, Layout, build_layout
from .presets import ALIASES, PRESETS, Preset, get_preset, list_presets

__all__ = ["Box", "Size", "Preset", "PRESETS", "ALIASES", "get_preset", "list_presets",
           "plan_image", "build_layout", "Layout", "KINDS", "count_tokens_many"]

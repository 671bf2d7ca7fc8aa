"""Strategy registry: one module per family, each exposing

    plan(size_hw: Size, preset: Preset) -> Plan            exact geometry for one image
    layout(plan: Plan) -> Layout                           every token, in LLM order
    count_many(heights, widths, preset) -> np.ndarray      vectorized token counts (placeholders
                                                           only, no wrappers) for sweeps; raises
                                                           nothing: invalid sizes give -1
"""
from __future__ import annotations

from types import ModuleType

from . import gemma3, gemma4, internvl, llava_next, qwen2_vl

STRATEGIES: dict[str, ModuleType] = {
    "llava_next": llava_next,
    "llava_onevision": llava_next,  # same module: OneVision is anyres + bilinear downscale
    "qwen2_vl": qwen2_vl,
    "internvl": internvl,
    "gemma3": gemma3,
    "gemma4": gemma4,
}

STRATEGY_LABELS = {
    "llava_next": "LLaVA-NeXT (anyres)",
    "llava_onevision": "LLaVA-OneVision (anyres_max_9)",
    "qwen2_vl": "Qwen2-VL / Qwen2.5-VL (native resolution)",
    "internvl": "InternVL (dynamic tiles + thumbnail)",
    "gemma3": "Gemma 3 (896 view + pan-and-scan)",
    "gemma4": "Gemma 4 (soft-token budget)",
}


def get_strategy(name: str) -> ModuleType:
    if name not in STRATEGIES:
        raise ValueError(f"unknown strategy {name!r}; known: {', '.join(STRATEGIES)}")
    return STRATEGIES[name]


"""Strategy registry: one module per family, each exposing

    plan(size_hw: Size, preset: Preset) -> Plan            exact geometry for one image
    layout(plan: Plan) -> Layout                           every token, in LLM order
    count_many(heights, widths, preset) -> np.ndarray      vectorized token counts (placeholders
                                                           only, no wrappers) for sweeps; raises
                                                           nothing: invalid sizes give -1
"""
from __future__ import annotations

from types import ModuleType

from . import internvl, llava_next, pixtral, qwen2_vl

STRATEGIES: dict[str, ModuleType] = {
    "llava_next": llava_next,
    "llava_onevision": llava_next,  # same module: OneVision is anyres + bilinear downscale
    "qwen2_vl": qwen2_vl,
    "internvl": internvl,
    "qwen3_vl": qwen2_vl,  # same module: Qwen3-VL / Qwen3.5 differ only in settings (factor 32)
    "pixtral": pixtral,
}

STRATEGY_LABELS = {
    "llava_next": "LLaVA-NeXT (anyres)",
    "llava_onevision": "LLaVA-OneVision (anyres_max_9)",
    "qwen2_vl": "Qwen2-VL / Qwen2.5-VL (native resolution)",
    "internvl": "InternVL (dynamic tiles + thumbnail)",
    "qwen3_vl": "Qwen3-VL / Qwen3.5 (native resolution, 32 px)",
    "pixtral": "Pixtral / Mistral Small 3.1 (native resolution, row breaks)",
}


def get_strategy(name: str) -> ModuleType:
    if name not in STRATEGIES:
        raise ValueError(f"unknown strategy {name!r}; known: {', '.join(STRATEGIES)}")
    return STRATEGIES[name]


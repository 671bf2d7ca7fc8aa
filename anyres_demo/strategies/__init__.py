"""Strategy registry: one module per family, registered as data.

A strategy module exposes (pure: numpy at most)

    plan(size_hw: Size, preset: Preset) -> Plan            exact geometry for one image
    layout(plan: Plan) -> Layout                           every token, in LLM order
    count_many(heights, widths, preset) -> np.ndarray      vectorized placeholder counts for
                                                           sweeps; invalid sizes give -1

and optionally, each with a generic fallback where it is used:

    count_many_total(heights, widths, preset)   placeholders + special tokens (-1 invalid);
                                                default: count_many + 2 if the preset has wrappers
    ledger_how(plan, kind) -> str               the ledger's "how" for one kind of token
    why_summary(plan) -> str                    the rule the strategy applied (markdown)
    resize_note(plan) -> str                    how the image was resized, one sentence
    candidates_chart(plan) -> base.ChartSpec    the numbers "why this grid" compares
    teaching(view) -> str | None                the family's paragraph for a view's help text

A new family is a new module plus one `Family` row below (and its presets): no view changes.
"""
from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType

from . import gemma3, gemma4, internvl, llama4, llava_next, mllama, pixtral, qwen2_vl, smolvlm


@dataclass(frozen=True)
class Family:
    name: str  # the key presets name in Preset.strategy
    module: ModuleType
    label: str  # "Qwen2-VL / Qwen2.5-VL (native resolution)"
    color: str  # "#rrggbb" for charts (Okabe-Ito where possible)


FAMILIES: dict[str, Family] = {f.name: f for f in (
    Family("llava_next", llava_next, "LLaVA-NeXT (anyres)", "#0072b2"),
    # Same module: OneVision is anyres + bilinear downscale.
    Family("llava_onevision", llava_next, "LLaVA-OneVision (anyres_max_9)", "#cc79a7"),
    Family("qwen2_vl", qwen2_vl, "Qwen2-VL / Qwen2.5-VL (native resolution)", "#009e73"),
    Family("internvl", internvl, "InternVL (dynamic tiles + thumbnail)", "#d55e00"),
    # Gemma 3 / Gemma 4
    Family("gemma3", gemma3, "Gemma 3 (896 view + pan-and-scan)", "#b8860b"),
    Family("gemma4", gemma4, "Gemma 4 (soft-token budget)", "#4285f4"),
    Family("smolvlm", smolvlm, "SmolVLM2 / Idefics3 (4-tile long side + global image)", "#e69f00"),
    Family("llama4", llama4, "Llama 4 (336 px tiles + global tile)", "#56b4e9"),
    Family("mllama", mllama, "Llama 3.2 Vision (tiles via cross-attention)", "#999999"),
    # wave 1a. Same module as Qwen2-VL: Qwen3-VL / Qwen3.5 differ only in settings (factor 32).
    Family("qwen3_vl", qwen2_vl, "Qwen3-VL / Qwen3.5 (native resolution, 32 px)", "#117733"),
    Family("pixtral", pixtral, "Pixtral / Mistral Small 3.1 (native resolution, row breaks)",
           "#882255"),
)}

STRATEGIES: dict[str, ModuleType] = {k: f.module for k, f in FAMILIES.items()}
STRATEGY_LABELS: dict[str, str] = {k: f.label for k, f in FAMILIES.items()}
STRATEGY_COLORS: dict[str, str] = {k: f.color for k, f in FAMILIES.items()}


def get_strategy(name: str) -> ModuleType:
    if name not in STRATEGIES:
        raise ValueError(f"unknown strategy {name!r}; known: {', '.join(STRATEGIES)}")
    return STRATEGIES[name]


def hook(name: str, hook_name: str):
    """The family's optional hook `hook_name`, or None."""
    return getattr(get_strategy(name), hook_name, None)

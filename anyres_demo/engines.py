"""What each serving engine makes of the image: its own limits, as data, run through the same
strategies.

One small table per engine (ENGINES). A rule names the families (and optionally the repo ids)
it covers, what it changes, the flag or variable that changes it, and where the rule was read.
What it changes is one of: settings the engine fixes (`fields`, run through the family's own
strategy), an own resize before the HF processor (`pre_resize`: the Qwen strategy's smart_resize
at the engine's factor and limits), or the engine's own resize instead of the processor's
(`resize_tokens`: llama.cpp's calc_size_preserved_ratio within a token range). `engine_rows(size_hw, preset)` plans the image once per engine with that engine's
limits applied to the CHECKPOINT's settings (an engine does not see the explorer's overrides;
the transformers row is the preset as the user chose it). A rule whose source could not be
confirmed is marked `confirmed=False` and shown as such.

Pure: no gradio, torch or PIL.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from .engine import plan_image
from .geometry import Size
from .presets import OVERRIDABLE, Preset, QwenSettings, get_preset
from .strategies import qwen2_vl

ALL = "*"


@dataclass(frozen=True)
class EngineRule:
    strategies: tuple[str, ...]  # families it covers ("*": all)
    rule: str  # what the engine does, in words
    knob: str  # the flag / variable / request field that changes it
    source: str  # file and line, or issue, where the rule was read
    confirmed: bool
    fields: tuple[tuple[str, Any], ...] = ()  # settings the engine fixes (Settings field, value)
    # llama.cpp's own resize (calc_size_preserved_ratio) within (min, max) tokens of `align` px;
    # the strategy still gives the special tokens around the image
    resize_tokens: tuple[int, int] | None = None
    # the engine's own smart_resize before the HF processor: (factor, min_pixels, max_pixels),
    # each side clamped to at least one factor (as qwen-vl-utils)
    pre_resize: tuple[int, int, int] | None = None
    align: int | None = None  # px per token side; None: the preset's resize factor (patch x merge)
    repo_contains: str = ""  # only repo ids containing this (case-insensitive)
    min_side_factor: bool = False  # the engine refuses images with a side below the resize factor
    note: str = ""


@dataclass(frozen=True)
class Engine:
    name: str
    version: str  # the version / commit the rules were read from
    rules: tuple[EngineRule, ...]
    default_note: str  # what is assumed for a family no rule covers


_QWEN = ("qwen2_vl", "qwen3_vl", "qwen3_5")  # strategy names of the native-resolution Qwen families

ENGINES: tuple[Engine, ...] = (
    Engine("transformers", "5.24.0 (pinned)", (
        EngineRule((ALL,), "the checkpoint's processor settings, with the explorer's overrides",
                   "processor kwargs (the explorer's settings)", "anyres_demo/presets.py "
                   "(checkpoint values; parity tests against the real processors)", True),
    ), ""),
    Engine("vLLM", "V1 engine (HF-processor path)", (
        EngineRule((ALL,), "runs the model's Hugging Face processor with the checkpoint's "
                   "preprocessor config: the same tokens as transformers",
                   "--mm-processor-kwargs '{\"max_pixels\": N}' (Qwen), '{\"do_pan_and_scan\": true}' "
                   "(Gemma 3), '{\"max_soft_tokens\": N}' (Gemma 4)",
                   "anyres-spec-2026 2.7 (vllm-project/vllm#14672: pan-and-scan via mm_processor_kwargs, "
                   "default off) and 3.5 (max_soft_tokens per request)", True),
    ), ""),
    Engine("SGLang", "builds that pre-resize images (srt/multimodal/processors/qwen_vl.py)", (
        EngineRule(_QWEN, "resizes the image itself before the HF processor: smart_resize with "
                   "factor 28, each side at least 28 px (qwen-vl-utils' clamp), min_pixels 4·28² = "
                   "3,136 and max_pixels = SGLANG_IMAGE_MAX_PIXELS (default 16384·28² = 12,845,056), "
                   "whatever the checkpoint says; then the checkpoint's processor",
                   "env SGLANG_IMAGE_MAX_PIXELS=N",
                   "sglang python/sglang/srt/environ.py: SGLANG_IMAGE_MAX_PIXELS = EnvInt(16384 * 28 * 28); "
                   "multimodal/processors/qwen_vl.py: IMAGE_FACTOR = 28, MIN_PIXELS = 4 * 28 * 28, "
                   "MAX_PIXELS = envs.SGLANG_IMAGE_MAX_PIXELS.get(); smart_resize: h_bar = max(factor, "
                   "round_by_factor(height, factor)); resize_image_async before process_mm_data", True,
                   pre_resize=(28, 4 * 28 * 28, 16384 * 28 * 28),
                   note="the newest main sends images straight to the HF processor (same as "
                        "transformers); which release changed it is not confirmed"),
    ), "no SGLang rule researched for this family: assumed to run the checkpoint's processor"),
    Engine("llama.cpp", "b10760+ (tools/mtmd/clip.cpp, mtmd-image.cpp)", (
        EngineRule(_QWEN, "clamps the image to [8, 4096] tokens: calc_size_preserved_ratio rounds "
                   "each side half up to the factor (at least one), then scales into "
                   "[8, 4096] x factor² pixels (floor down, ceil up)",
                   "--image-min-tokens N / --image-max-tokens N",
                   "llama.cpp tools/mtmd/clip.cpp: hparams.set_limit_image_tokens(8, 4096) for the "
                   "Qwen2-VL / 2.5-VL / 3-VL projectors; image_min_pixels = n_tokens_min * patch_size² "
                   "* n_merge²; mtmd-image.cpp calc_size_preserved_ratio", True,
                   resize_tokens=(8, 4096)),
        EngineRule(("gemma4",), "calc_size_preserved_ratio on 48 px tokens (patch 16 x merge 3) "
                   "within [40, 280] tokens, instead of transformers' budget fill",
                   "--image-min-tokens N / --image-max-tokens N",
                   "llama.cpp clip.cpp PROJECTOR_TYPE_GEMMA4V/GEMMA4UV: set_limit_image_tokens(40, 280) "
                   "(quoted by ports of clip.cpp; their verified vectors: 640x640 -> 624x624, 100x100 -> "
                   "336x336)", True, resize_tokens=(40, 280), align=48,
                   note="build b10864 changed the limits to (70, 1120) (third-party patch notes)"),
    ), "no llama.cpp rule researched for this family"),
    Engine("Ollama", "main @057c32c (model/models/qwen25vl/process_image.go)", (
        EngineRule(("qwen2_vl",), "its own SmartResize (round half to even): min_pixels 56·56, "
                   "max_pixels = the GGUF's vision.max_pixels, else 2<<20 = 2,097,152; refuses "
                   "images with a side under 28 px",
                   "no setting: the model file's vision.max_pixels key",
                   "ollama model/models/qwen25vl/process_image.go @057c32c: maxPixels: "
                   "c.Uint(\"vision.max_pixels\", 2<<20) // 2M limit; minPixels: 56 * 56; SmartResize "
                   "panics when height or width < factor", True,
                   fields=(("min_pixels", 56 * 56), ("max_pixels", 2 << 20)),
                   repo_contains="qwen2.5-vl", min_side_factor=True,
                   note="earlier builds capped at 28·28·1280 = 1,003,520 px (~1 MP), as users "
                        "report; which version changed it is not confirmed"),
        EngineRule(("gemma3",), "no pan-and-scan: always the single 896 view (256 tokens)",
                   "none (not implemented)", "anyres-spec-2026 2.7: ollama/ollama#13985 (open)", True,
                   fields=(("do_pan_and_scan", False),)),
        EngineRule(("gemma4",), "runs llama.cpp's Gemma 4 projector: calc_size_preserved_ratio on "
                   "48 px tokens within [40, 280] tokens", "none (a patched build passes --image-max-tokens)",
                   "ollama/ollama#15626 as cited by a third-party build note (llama.cpp's hardcoded "
                   "set_limit_image_tokens(40, 280)); issue 14's report of a fixed 280 budget", False,
                   resize_tokens=(40, 280), align=48),
    ), "no Ollama rule researched for this family (it may not serve it)"),
)


@dataclass(frozen=True)
class EngineRow:
    engine: str
    version: str
    rule: str
    knob: str
    source: str
    confirmed: bool
    num_tokens: int | None  # tokens of the image in the prompt (placeholders + specials)
    num_image_tokens: int | None
    resized: str  # the canvas / resized size, for the table
    delta: int | None  # num_tokens - transformers' num_tokens
    error: str = ""  # the engine refuses the image, or the rule cannot be computed here
    note: str = ""

    @property
    def differs(self) -> bool:
        return bool(self.error) or bool(self.delta)


def _applies(rule: EngineRule, preset: Preset) -> bool:
    family = ALL in rule.strategies or preset.strategy in rule.strategies
    return family and rule.repo_contains.lower() in preset.repo_id.lower()


def rule_for(engine: Engine, preset: Preset) -> EngineRule | None:
    return next((r for r in engine.rules if _applies(r, preset)), None)


def engine_settings(rule: EngineRule, preset: Preset) -> dict[str, Any]:
    """The settings overrides the rule implies for `preset` (ValueError if it cannot apply)."""
    overrides = dict(rule.fields)
    missing = sorted(set(overrides) - set(OVERRIDABLE.get(preset.strategy, ())))
    if missing:
        raise ValueError(f"the rule sets {', '.join(missing)}, which this build's "
                         f"{preset.strategy} preset does not expose")
    return overrides


def calc_size_preserved_ratio(size_hw: Size, align: int, min_pixels: int, max_pixels: int) -> Size:
    """llama.cpp mtmd-image.cpp calc_size_preserved_ratio: each side rounded half up to `align`
    (at least one align), then, like smart_resize, scaled down (floor) above max_pixels or up
    (ceil) below min_pixels, keeping the aspect ratio."""
    h, w = size_hw.hw
    h_bar = max(align, (h + align // 2) // align * align)
    w_bar = max(align, (w + align // 2) // align * align)
    if h_bar * w_bar > max_pixels:
        beta = math.sqrt(h * w / max_pixels)
        h_bar = max(align, math.floor(h / beta / align) * align)
        w_bar = max(align, math.floor(w / beta / align) * align)
    elif h_bar * w_bar < min_pixels:
        beta = math.sqrt(min_pixels / (h * w))
        h_bar = math.ceil(h * beta / align) * align
        w_bar = math.ceil(w * beta / align) * align
    return Size(h_bar, w_bar)


def _pre_resized(rule: EngineRule, size_hw: Size, preset: Preset) -> Size:
    """The size the HF processor receives after the engine's own resize (the Qwen strategy's
    smart_resize at the engine's factor and limits, sides clamped to one factor)."""
    if not rule.pre_resize:
        return size_hw
    factor, min_pixels, max_pixels = rule.pre_resize
    settings = preset.settings
    if not isinstance(settings, QwenSettings) or factor % settings.merge_size:
        raise ValueError(f"{preset.repo_id}: the engine's resize needs Qwen settings")
    engine_settings_ = dataclasses.replace(settings, patch_size=factor // settings.merge_size,
                                           min_pixels=min_pixels, max_pixels=max_pixels)
    return qwen2_vl.smart_resize(size_hw, engine_settings_, clamp_rounding=True)


def _own_resize_row(base: dict, rule: EngineRule, size_hw: Size, preset: Preset,
                    reference: int | None) -> EngineRow:
    align = rule.align or getattr(preset.settings, "factor", None)
    if not align:
        return EngineRow(**base, num_tokens=None, num_image_tokens=None, resized="", delta=None,
                         error=f"{preset.repo_id}'s settings have no resize factor for a token range")
    lo, hi = rule.resize_tokens
    resized = calc_size_preserved_ratio(size_hw, align, lo * align ** 2, hi * align ** 2)
    image_tokens = (resized.height // align) * (resized.width // align)
    checkpoint_plan = plan_image(size_hw, preset)
    total = image_tokens + checkpoint_plan.num_tokens - checkpoint_plan.num_image_tokens
    delta = None if reference is None else total - reference
    return EngineRow(**base, num_tokens=total, num_image_tokens=image_tokens,
                     resized=f"{resized.width}x{resized.height}", delta=delta)


def _row(engine: Engine, rule: EngineRule | None, size_hw: Size, preset: Preset,
         reference: int | None) -> EngineRow:
    if rule is None:
        rule = EngineRule((ALL,), engine.default_note, "—", "not researched", False)
    base = dict(engine=engine.name, version=engine.version, rule=rule.rule, knob=rule.knob,
                source=rule.source, confirmed=rule.confirmed, note=rule.note)
    factor = getattr(preset.settings, "factor", 0)
    if rule.min_side_factor and factor and min(size_hw.hw) < factor:
        return EngineRow(**base, num_tokens=None, num_image_tokens=None, resized="", delta=None,
                         error=f"refused: a side under {factor} px")
    if rule.resize_tokens:
        return _own_resize_row(base, rule, size_hw, preset, reference)
    try:
        seen_hw = _pre_resized(rule, size_hw, preset)
        plan = plan_image(seen_hw, preset.with_overrides(**engine_settings(rule, preset)))
    except ValueError as exc:
        return EngineRow(**base, num_tokens=None, num_image_tokens=None, resized="", delta=None,
                         error=str(exc))
    delta = None if reference is None else plan.num_tokens - reference
    return EngineRow(**base, num_tokens=plan.num_tokens, num_image_tokens=plan.num_image_tokens,
                     resized=f"{plan.resized_hw.width}x{plan.resized_hw.height}", delta=delta)


def _checkpoint(preset: Preset) -> Preset:
    """The registered checkpoint preset (without the user's overrides); the preset itself when
    it is not registered (a preset built by hand)."""
    try:
        return get_preset(preset.repo_id)
    except ValueError:
        return preset


def engine_rows(size_hw: Size, preset: Preset | str) -> list[EngineRow]:
    """One row per engine for this image: transformers first (the preset as given, with the
    user's overrides), then every engine at its defaults on the checkpoint's settings."""
    chosen = preset if isinstance(preset, Preset) else get_preset(preset)
    checkpoint = _checkpoint(chosen)
    reference_plan = plan_image(size_hw, chosen)
    rows = [EngineRow(engine="transformers", version=ENGINES[0].version, rule=ENGINES[0].rules[0].rule,
                      knob=ENGINES[0].rules[0].knob, source=ENGINES[0].rules[0].source, confirmed=True,
                      num_tokens=reference_plan.num_tokens,
                      num_image_tokens=reference_plan.num_image_tokens,
                      resized=f"{reference_plan.resized_hw.width}x{reference_plan.resized_hw.height}",
                      delta=0)]
    for engine in ENGINES[1:]:
        rows.append(_row(engine, rule_for(engine, checkpoint), size_hw, checkpoint,
                         reference_plan.num_tokens))
    return rows


ROW_HEADERS = ["engine", "version", "image tokens", "vs transformers", "resized to", "rule",
               "flag / variable", "source", "confirmed"]


def row_cells(row: EngineRow) -> list[Any]:
    tokens = row.error or f"{row.num_tokens:,}"
    if row.error:
        delta = "refused" if row.error.startswith("refused") else "not computed"
    elif row.delta:
        delta = f"{row.delta:+,}"
    else:
        delta = "same"
    rule = row.rule + (f" ({row.note})" if row.note else "")
    return [row.engine, row.version, tokens, delta, row.resized, rule, row.knob, row.source,
            "yes" if row.confirmed else "UNCONFIRMED"]


def row_record(row: EngineRow) -> dict[str, Any]:
    return {"engine": row.engine, "version": row.version, "num_tokens": row.num_tokens,
            "num_image_tokens": row.num_image_tokens, "delta_vs_transformers": row.delta,
            "differs": row.differs, "resized": row.resized, "rule": row.rule, "knob": row.knob,
            "source": row.source, "confirmed": row.confirmed, "note": row.note, "error": row.error}

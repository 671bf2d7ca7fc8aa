"""What one image costs: vision-encoder FLOPs, LLM prefill FLOPs, KV-cache bytes, context share.

Pure (no torch): the numbers come from the plan (its crops and token counts, so every family
that gives a Plan gets a cost with only an architecture row) and `architectures.py`.

FLOP conventions (one multiply-add = 2 FLOPs, as torch.utils.flop_counter counts matmuls):
  vision encoder, per crop of N tokens (patches + class tokens), width w, MLP width m, per layer:
    attention projections  8·N·w²          (q, k, v and output: four w x w matmuls)
    attention scores       4·N²·w          (QKᵀ and AV; Qwen2.5-VL's windowed layers: per window)
    MLP                    4·N·w·m, gated 6·N·w·m
  patch embedding          2·patches·(3·T·p²)·w    (T = 2 for Qwen's stacked frames)
  projector                2·rows·Σ(in·out)        rows = patches / merge² (2x2 merge, pixel
                                                   shuffle, Gemma 3's 4x4 pool), per merger
  LLM prefill for n image tokens after P prompt tokens, per layer with H query heads of d_h:
    projections            2·n·d·(H·d_h)·2 + 2·n·d·(2·KV·d_h)
    attention              4·H·d_h·Σᵢ keys(i)   keys(i) = P + i + 1 (causal), capped at the
                                                   window on local layers
    MLP                    6·n·d·m (gated), MoE: 6·n·d·(k·m_e + m_shared) + router 2·n·d·E
Not counted (as torch's counter does not count them either): norms, softmax, activations,
residual adds, biases, rotary embeddings, bilinear resizes, Gated DeltaNet's state update, and
the LM head (a prefill needs logits for the last position only).
KV cache: layers that keep one x KV heads x head dim x 2 (K and V) x 2 bytes (bf16) per token.
"""
from __future__ import annotations

from dataclasses import dataclass
from collections.abc import Iterable

from .architectures import Architecture, TextArch, VisionArch, get_architecture
from .geometry import Size

BYTES_BF16 = 2
FIXED_VIEW_SIDE = 336  # the single-view baseline: LLaVA-1.5's 336x336 squash (CLIP-L/14-336)
VISION_TERMS = ("patch_embed", "attn_proj", "attn_scores", "mlp", "projector")
LLM_TERMS = ("attn_proj", "attn_scores", "mlp")


class MissingArchitecture(ValueError):
    """A cost term needs a value the architecture table does not have (unconfirmed)."""


@dataclass(frozen=True)
class CropCost:
    index: int
    kind: str
    size_hw: Size
    patches: int  # patch tokens the encoder sees
    tokens: int  # patches + class tokens
    flops: dict[str, float]

    @property
    def total(self) -> float:
        return sum(self.flops.values())


@dataclass(frozen=True)
class Cost:
    """The cost of one image under one preset (None: the architecture row lacks a value)."""

    repo_id: str
    num_tokens: int  # tokens the image occupies in the LLM sequence (placeholders + specials)
    num_image_tokens: int  # placeholders only
    prompt_tokens: int  # tokens before the image (the attention term attends to them)
    crops: tuple[CropCost, ...] | None
    vision: dict[str, float] | None
    llm: dict[str, float] | None
    kv_bytes: int | None
    kv_bytes_per_token: int | None
    context: int | None
    missing: tuple[str, ...] = ()  # what could not be computed and why
    unconfirmed: tuple[str, ...] = ()  # architecture values used that are not confirmed
    notes: tuple[str, ...] = ()

    @property
    def vision_flops(self) -> float | None:
        return None if self.vision is None else sum(self.vision.values())

    @property
    def llm_flops(self) -> float | None:
        return None if self.llm is None else sum(self.llm.values())

    @property
    def total_flops(self) -> float | None:
        if self.vision is None or self.llm is None:
            return None
        return self.vision_flops + self.llm_flops

    @property
    def context_share(self) -> float | None:
        return None if not self.context else self.num_tokens / self.context

    @property
    def images_fit(self) -> int | None:
        return None if not self.context or not self.num_tokens else self.context // self.num_tokens


# ----------------------------------------------------------------------------- vision encoder
def _need(values: dict[str, int | None], where: str) -> None:
    missing = [k for k, v in values.items() if v is None]
    if missing:
        raise MissingArchitecture(f"{where}: {', '.join(missing)} not confirmed")


def window_sizes(grid_hw: tuple[int, int], v: VisionArch) -> list[int]:
    """Patches in each attention window (Qwen2.5-VL get_window_index): windows of
    window_patches/merge merged tokens per side over the merged grid, the last ones partial."""
    side = v.window_patches // v.merge
    merged_h, merged_w = grid_hw[0] // v.merge, grid_hw[1] // v.merge
    rows = [min(side, merged_h - i) for i in range(0, merged_h, side)]
    cols = [min(side, merged_w - j) for j in range(0, merged_w, side)]
    return [r * c * v.merge ** 2 for r in rows for c in cols]


def encoder_flops(size_hw: Size, v: VisionArch) -> tuple[int, int, dict[str, float]]:
    """(patches, tokens, FLOPs by term) for one crop of `size_hw` pixels."""
    _need({"depth": v.depth, "width": v.width, "intermediate": v.intermediate}, "vision encoder")
    grid = (size_hw.height // v.patch, size_hw.width // v.patch)
    patches = grid[0] * grid[1]
    n = patches + v.cls_tokens
    w, m, depth = v.width, v.intermediate, v.depth
    full = 4.0 * n * n * w
    if v.window_patches:
        windowed = 4.0 * sum(s * s for s in window_sizes(grid, v)) * w
        scores = v.full_attention_layers * full + (depth - v.full_attention_layers) * windowed
    else:
        scores = depth * full
    rows = patches // v.merge ** 2
    flops = {
        "patch_embed": 2.0 * patches * 3 * v.temporal_patch * v.patch ** 2 * w,
        "attn_proj": depth * 8.0 * n * w * w,
        "attn_scores": scores,
        "mlp": depth * (6.0 if v.gated_mlp else 4.0) * n * w * m,
        "projector": v.projector_copies * 2.0 * rows * sum(i * o for i, o in v.projector),
    }
    return patches, n, flops


def crop_costs(crops: Iterable[tuple[int, str, Size]], v: VisionArch) -> tuple[CropCost, ...]:
    out = []
    for index, kind, size_hw in crops:
        patches, n, flops = encoder_flops(size_hw, v)
        out.append(CropCost(index, kind, size_hw, patches, n, flops))
    return tuple(out)


def sum_terms(parts: Iterable[dict[str, float]], terms: tuple[str, ...]) -> dict[str, float]:
    total = dict.fromkeys(terms, 0.0)
    for part in parts:
        for k, val in part.items():
            total[k] += val
    return total


# ----------------------------------------------------------------------------- language model
def attention_pairs(n: int, prompt: int, window: int | None = None, causal: bool = True) -> int:
    """Σ over the n new queries of the keys each attends to. Causal: query i (0-based) sees
    prompt + i + 1 keys, at most `window` on local layers. causal=False: every query sees all
    prompt + n keys (what torch's flop counter charges a causal SDPA call: it ignores masks)."""
    if not causal:
        return n * (prompt + n)
    first, last = prompt + 1, prompt + n  # keys seen by the first and the last new query
    if window is None or last <= window:
        return (first + last) * n // 2
    if first >= window:
        return n * window
    below = window - first + 1  # queries whose key count is still under the window
    return (first + window) * below // 2 + (n - below) * window


def llm_flops(t: TextArch, n: int, prompt: int = 0, causal: bool = True) -> dict[str, float]:
    """Prefill FLOPs of `n` tokens that follow `prompt` tokens, by term."""
    _need({"layers": t.layers, "hidden": t.hidden, "heads": t.heads, "kv_heads": t.kv_heads,
           "head_dim": t.head_dim}, "language model")
    d, q_width, kv_width = t.hidden, t.heads * t.head_dim, t.kv_heads * t.head_dim
    linear_layers = t.linear.layers if t.linear else 0
    attn_layers = t.layers - linear_layers
    q_out = q_width * (2 if t.query_gate else 1)
    proj = attn_layers * 2.0 * n * d * (q_out + 2 * kv_width + q_width)
    if t.linear:
        la = t.linear
        key, value = la.key_heads * la.head_dim, la.value_heads * la.head_dim
        proj += linear_layers * 2.0 * n * d * (2 * key + 2 * value + 2 * la.value_heads + value)
    local = min(t.sliding_layers, attn_layers)
    pairs = (attn_layers - local) * attention_pairs(n, prompt, None, causal)
    if local:
        pairs += local * attention_pairs(n, prompt, t.sliding_window, causal)
    return {"attn_proj": proj, "attn_scores": 4.0 * q_width * pairs, "mlp": _mlp_flops(t, n)}


def _mlp_flops(t: TextArch, n: int) -> float:
    d = t.hidden
    if t.moe is None:
        _need({"intermediate": t.intermediate}, "language model MLP")
        return t.layers * 6.0 * n * d * t.intermediate
    moe = t.moe
    moe_layers = t.layers if moe.moe_layers is None else moe.moe_layers
    per_token = moe.experts_per_token * moe.expert_intermediate + moe.shared_intermediate
    flops = moe_layers * (6.0 * n * d * per_token + 2.0 * n * d * moe.experts)
    if moe_layers < t.layers:
        _need({"intermediate": t.intermediate}, "language model dense MLP")
        flops += (t.layers - moe_layers) * 6.0 * n * d * t.intermediate
    return flops


def kv_bytes_per_token(t: TextArch, dtype_bytes: int = BYTES_BF16) -> int:
    """K and V of every layer that keeps a cache (Gated DeltaNet layers keep a fixed state)."""
    _need({"layers": t.layers, "kv_heads": t.kv_heads, "head_dim": t.head_dim}, "KV cache")
    layers = t.layers - (t.linear.layers if t.linear else 0)
    return layers * t.kv_heads * t.head_dim * 2 * dtype_bytes


def kv_bytes(t: TextArch, n: int, dtype_bytes: int = BYTES_BF16) -> int:
    """KV-cache bytes for n tokens; local (sliding-window) layers keep at most the window."""
    per_layer = t.kv_heads * t.head_dim * 2 * dtype_bytes if t.kv_heads and t.head_dim else None
    total = kv_bytes_per_token(t, dtype_bytes) * n
    if t.sliding_layers and t.sliding_window and n > t.sliding_window:
        total -= t.sliding_layers * per_layer * (n - t.sliding_window)
    return total


# ----------------------------------------------------------------------------- one image
def _unconfirmed(arch: Architecture) -> tuple[str, ...]:
    return tuple(arch.unconfirmed)


def cost_of(repo_id: str, crops: list[tuple[int, str, Size]], num_tokens: int,
            num_image_tokens: int, prompt_tokens: int = 0) -> Cost:
    """The cost of an image that the encoder sees as `crops` and the LLM as `num_tokens`."""
    arch = get_architecture(repo_id)
    if arch is None:
        return Cost(repo_id, num_tokens, num_image_tokens, prompt_tokens, None, None, None, None,
                    None, None, missing=(f"no architecture row for {repo_id}",))
    missing, notes = [], []
    crop_rows = vision = llm = kv = per_token = None
    try:
        crop_rows = crop_costs(crops, arch.vision)
        vision = sum_terms((c.flops for c in crop_rows), VISION_TERMS)
    except MissingArchitecture as exc:
        missing.append(str(exc))
    text = arch.text
    llm_tokens, kv_tokens = num_tokens, num_tokens
    if text.cross_attention_layers and crop_rows is not None:
        # the image states enter through cross-attention: their K/V are computed and cached in
        # the cross-attention layers only; the prompt holds the placeholder tokens
        kv_tokens = sum(c.tokens for c in crop_rows)
        notes.append(f"cross-attention: {kv_tokens:,} vision states cached in "
                     f"{text.cross_attention_layers} cross-attention layers")
    try:
        llm = llm_flops(text, llm_tokens, prompt_tokens)
        if text.cross_attention_layers:
            llm["attn_proj"] += (text.cross_attention_layers * 2.0 * kv_tokens * text.hidden
                                 * 2 * text.kv_heads * text.head_dim)
    except MissingArchitecture as exc:
        missing.append(str(exc))
    try:
        if text.cross_attention_layers:
            per_token = text.cross_attention_layers * text.kv_heads * text.head_dim * 2 * BYTES_BF16
            kv = per_token * kv_tokens
        else:
            per_token = kv_bytes_per_token(text)
            kv = kv_bytes(text, kv_tokens)
    except MissingArchitecture as exc:
        missing.append(str(exc))
    if text.sliding_layers:
        notes.append(f"{text.sliding_layers} of {text.layers} layers attend to a window of "
                     f"{text.sliding_window} tokens and cache at most that many")
    if text.linear:
        notes.append(f"{text.linear.layers} of {text.layers} layers are Gated DeltaNet (linear "
                     "attention): a fixed-size state, no KV cache; their state update is not counted")
    return Cost(repo_id, num_tokens, num_image_tokens, prompt_tokens, crop_rows, vision, llm, kv,
                per_token, text.context, tuple(missing), _unconfirmed(arch), tuple(notes))


def plan_crops(plan) -> list[tuple[int, str, Size]]:
    """(index, kind, pixel size) of every crop the encoder receives, from the generic plan."""
    return [(c.index, c.kind, c.out_hw) for c in plan.crops]


def image_cost(plan, prompt_tokens: int = 0) -> Cost:
    """The cost of the image as the preset processes it."""
    return cost_of(plan.preset.repo_id, plan_crops(plan), plan.num_tokens, plan.num_image_tokens,
                   prompt_tokens)


# ----------------------------------------------------------------------------- three ways
@dataclass(frozen=True)
class Way:
    name: str  # "as the preset processes it", ...
    how: str  # one sentence
    views: tuple[Size, ...]  # the views the encoder would see
    cost: Cost


def view_tokens(size_hw: Size, v: VisionArch) -> int:
    """LLM tokens one view gives at this encoder's patch and merge."""
    return (size_hw.height // v.patch // v.merge) * (size_hw.width // v.patch // v.merge)


def full_detail_view(plan) -> Size:
    """One view with the detail the tiles give: the tile canvas when the plan tiles (LLaVA,
    InternVL, ...), else the largest crop (native-resolution families already are one view)."""
    if any(c.kind == "tile" for c in plan.crops):
        return plan.canvas_hw
    return max((c.out_hw for c in plan.crops), key=lambda s: s.area)


def three_ways(plan, prompt_tokens: int = 0) -> list[Way]:
    """The same image as the preset processes it, as one 336 px squash, and as one view at the
    full detail of the tiles (what running the encoder on the whole canvas at once costs)."""
    repo = plan.preset.repo_id
    ways = [Way("as the preset processes it",
                f"{plan.num_crops} crop{'s' if plan.num_crops > 1 else ''}, "
                f"{plan.num_tokens:,} tokens", tuple(c.out_hw for c in plan.crops),
                image_cost(plan, prompt_tokens))]
    arch = get_architecture(repo)
    if arch is None:
        return ways
    for name, view, how in (
            ("one 336 px squash", Size(FIXED_VIEW_SIDE, FIXED_VIEW_SIDE),
             f"the whole image squashed to {FIXED_VIEW_SIDE}x{FIXED_VIEW_SIDE}, one view"),
            ("one view at full detail", full_detail_view(plan),
             "the encoder run once on the whole canvas the tiles cover")):
        n = view_tokens(view, arch.vision)
        # cross-attention models keep the prompt's placeholder tokens; the view's states are cached
        in_prompt = plan.num_tokens if arch.text.cross_attention_layers else n
        ways.append(Way(name, f"{how}: {view.width}x{view.height} px, {n:,} tokens", (view,),
                        cost_of(repo, [(0, "view", view)], in_prompt, in_prompt, prompt_tokens)))
    return ways


# ----------------------------------------------------------------------------- formatting
def human(value: float | None, unit: str = "") -> str:
    """1.23 TFLOP / 45.6 MiB style numbers; '—' for None."""
    if value is None:
        return "—"
    if unit == "B":
        for step, name in ((2 ** 30, "GiB"), (2 ** 20, "MiB"), (2 ** 10, "KiB")):
            if value >= step:
                return f"{value / step:.2f} {name}"
        return f"{int(value)} B"
    for step, name in ((1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M")):
        if value >= step:
            return f"{value / step:.2f} {name}{unit}"
    return f"{value:.0f} {unit}".strip()


def cost_record(cost: Cost) -> dict:
    """JSON-ready dict of a Cost."""
    return {
        "model": cost.repo_id, "num_tokens": cost.num_tokens, "num_image_tokens": cost.num_image_tokens,
        "prompt_tokens": cost.prompt_tokens,
        "vision_flops": cost.vision_flops, "vision_flops_by_term": cost.vision,
        "crops": None if cost.crops is None else [
            {"index": c.index, "kind": c.kind, "size_hw": list(c.size_hw.hw), "patches": c.patches,
             "tokens": c.tokens, "flops": c.total} for c in cost.crops],
        "llm_prefill_flops": cost.llm_flops, "llm_flops_by_term": cost.llm,
        "total_flops": cost.total_flops, "kv_bytes_bf16": cost.kv_bytes,
        "kv_bytes_per_token": cost.kv_bytes_per_token, "context": cost.context,
        "context_share": cost.context_share, "images_fit": cost.images_fit,
        "missing": list(cost.missing), "unconfirmed": list(cost.unconfirmed), "notes": list(cost.notes),
    }


def ratio(a: float | None, b: float | None) -> str:
    if a is None or b is None or not b:
        return "—"
    return f"{a / b:.2f}x"


__all__ = [
    "FIXED_VIEW_SIDE",
    "Cost",
    "CropCost",
    "MissingArchitecture",
    "Way",
    "attention_pairs",
    "cost_of",
    "cost_record",
    "encoder_flops",
    "human",
    "image_cost",
    "kv_bytes",
    "kv_bytes_per_token",
    "llm_flops",
    "three_ways",
]

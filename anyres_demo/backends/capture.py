"""Answer -> image attention without materialising any layer's L x L attention matrix.

Generation runs with the fast kernel (sdpa / flash), which returns no attention weights
(spec 8.4). Afterwards ONE extra pass recovers only the rows we need:

* the queries are the positions whose outputs produced the answer tokens: prompt position L-1
  for answer token 0, then answer tokens 0..T-2 (spec 8.2);
* an attention function registered with transformers' AttentionInterface runs sdpa for the
  layer output, and for just those T query rows recomputes softmax(q k^T * scale + mask) in
  float32 from the very q and k the model uses (its own rotary / M-RoPE already applied, GQA
  expanded like `repeat_kv`), then keeps the image columns reduced over heads (mean and max)
  and the other prompt columns (mean) for sink reporting, and drops the rest.

Per layer the transient is heads x T x keys floats (chunked over T), never heads x L x L.

Two ways to feed the pass:
* after `generate(..., return_dict_in_generate=True)`: reuse its KV cache cut back to L-1
  positions and run only the T query tokens (no vision tower, about the cost of one decode
  step) -- `capture_from_cache`;
* from scratch: one forward over prompt + answer with the same pixel inputs, so M-RoPE
  positions are rebuilt identically (spec 8.4) -- `capture_full`; `capture_after_generate`
  takes this way when the cache cannot be cut back (Qwen3.5's linear-attention state).

torch and transformers are imported lazily; numpy arrays come out.
"""
from __future__ import annotations

import inspect
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Iterator

import numpy as np

IMPL_NAME = "anyres_capture"
_REGISTER_LOCK = threading.Lock()
_ROW_CHUNK_ELEMENTS = 1 << 25  # scores kept at once per layer: heads x rows x keys (128 MB fp32)


@dataclass(frozen=True)
class AttentionCapture:
    """Attention from each answer token to the prompt, reduced over heads, per layer.

    image_mean / image_max: (layers, T, N) float32 -- mean / max over query heads of the
        post-softmax attention from answer token t to image token n (N = the image-token
        columns, in sequence order, i.e. the layout's placeholder order).
    other_mean: (layers, T, P) float32 -- mean over heads to the other prompt positions
        (BOS, chat template text, <img>/<|vision_start|> wrappers, earlier turns): where sinks live.
    Rows are raw probabilities over the whole sequence (they sum to 1 with the answer-to-answer
    columns that are not kept); renormalise over image tokens for a spatial distribution.
    """

    image_mean: np.ndarray
    image_max: np.ndarray
    other_mean: np.ndarray
    image_positions: np.ndarray  # (N,) sequence index of each image column
    other_positions: np.ndarray  # (P,) sequence index of each other prompt column
    answer_ids: tuple[int, ...]  # the T answer tokens (row t produced answer_ids[t])
    layers: tuple[int, ...]  # LLM layer index of each captured layer
    num_heads: int
    prompt_len: int

    @property
    def num_layers(self) -> int:
        return len(self.layers)

    @property
    def num_image_tokens(self) -> int:
        return int(self.image_positions.shape[0])

    def nbytes(self) -> int:
        return self.image_mean.nbytes + self.image_max.nbytes + self.other_mean.nbytes


class _Session:
    """What one capture pass collects; attached to each attention module while it runs."""

    def __init__(self, rows_abs: np.ndarray, image_pos: np.ndarray, other_pos: np.ndarray):
        self.rows_abs = rows_abs  # absolute query positions to keep
        self.image_pos = image_pos
        self.other_pos = other_pos
        self.per_layer: dict[int, tuple[Any, Any, Any]] = {}
        self.num_heads = 0


# ----------------------------------------------------------------------------- the kernel
def _capture_attention_forward(module, query, key, value, attention_mask, dropout=0.0,
                               scaling=None, is_causal=None, **kwargs):
    """sdpa for the output; plus the kept rows' softmax when a session is attached."""
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    session: _Session | None = getattr(module, "_anyres_session", None)
    if session is not None:
        _record_rows(module, session, query, key, attention_mask, scaling)
    return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout,
                                  scaling=scaling, is_causal=is_causal, **kwargs)


def _record_rows(module, session: _Session, query, key, attention_mask, scaling) -> None:
    import torch

    batch, heads, q_len, dim = query.shape
    if batch != 1:
        raise ValueError(f"attention capture handles one sequence at a time, got batch {batch}")
    kv_len = key.shape[2]
    q_offset = kv_len - q_len  # absolute position of query row 0 (cache holds the prefix)
    local = torch.as_tensor(session.rows_abs - q_offset, device=query.device)
    if int(local.min()) < 0 or int(local.max()) >= q_len:
        raise ValueError("the capture pass did not see every answer position; "
                         f"queries cover {q_offset}..{kv_len - 1}")
    scale = scaling if scaling is not None else dim ** -0.5
    kv_heads = key.shape[1]
    groups = heads // kv_heads
    k32 = key[0].float()  # (kv_heads, keys, dim)
    img = torch.as_tensor(session.image_pos, device=query.device)
    oth = torch.as_tensor(session.other_pos, device=query.device)
    chunk = max(1, _ROW_CHUNK_ELEMENTS // max(1, heads * kv_len))
    means, maxes, others = [], [], []
    for start in range(0, local.shape[0], chunk):
        rows = local[start:start + chunk]
        probs = _row_softmax(query, k32, rows, q_offset, attention_mask, scale, kv_heads, groups)
        image = probs[:, :, img]  # (heads, rows, N)
        means.append(image.mean(0))
        maxes.append(image.amax(0))
        others.append(probs[:, :, oth].mean(0))
    session.num_heads = heads
    session.per_layer[module.layer_idx] = (torch.cat(means).cpu(), torch.cat(maxes).cpu(),
                                           torch.cat(others).cpu())


def _row_softmax(query, k32, rows, q_offset, attention_mask, scale, kv_heads, groups):
    """(heads, rows, keys) float32 post-softmax weights, matching eager_attention_forward."""
    import torch

    q = query[0, :, rows].float()  # (heads, r, dim)
    r = q.shape[1]
    # head h uses kv head h // groups, as repeat_kv expands them
    scores = torch.matmul(q.view(kv_heads, groups * r, -1), k32.transpose(1, 2))
    scores = scores.view(kv_heads * groups, r, -1) * scale  # (heads, r, keys)
    if attention_mask is not None:
        mask = attention_mask[0, :, rows]  # (1 or heads, r, keys)
        if mask.dtype == torch.bool:
            scores = scores.masked_fill(~mask, float("-inf"))
        else:
            scores = scores + mask.float()
    else:  # sdpa skipped the mask: plain causal
        keys = torch.arange(scores.shape[-1], device=scores.device)
        scores = scores.masked_fill(keys[None, None, :] > (rows + q_offset)[None, :, None],
                                    float("-inf"))
    return torch.softmax(scores, dim=-1)


def register_capture_kernel() -> None:
    """Register IMPL_NAME with transformers (once): our kernel + sdpa's mask builder."""
    from transformers import AttentionInterface
    from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, sdpa_mask

    with _REGISTER_LOCK:
        AttentionInterface.register(IMPL_NAME, _capture_attention_forward)
        ALL_MASK_ATTENTION_FUNCTIONS.register(IMPL_NAME, sdpa_mask)


# ----------------------------------------------------------------------------- model plumbing
def attention_modules(model) -> list:
    """The language model's self-attention modules, in layer order."""
    lm = _language_model(model)
    mods = [m for m in lm.modules()
            if hasattr(m, "layer_idx") and hasattr(m, "q_proj") and hasattr(m, "k_proj")]
    if not mods:
        raise ValueError(f"found no attention layers with q_proj/k_proj in {type(lm).__name__}")
    return sorted(mods, key=lambda m: m.layer_idx)


def _language_model(model):
    base = getattr(model, "model", model)
    lm = getattr(base, "language_model", None) or getattr(base, "text_model", None)  # SmolVLM
    if lm is None:
        raise ValueError(f"{type(model).__name__} has no language_model to capture attention from")
    return lm


@contextmanager
def _capturing(model, session: _Session, layers: tuple[int, ...]) -> Iterator[None]:
    """Route the LLM's attention through our kernel and attach the session to chosen layers."""
    register_capture_kernel()
    text_config = _language_model(model).config
    previous = text_config._attn_implementation_internal
    chosen = [m for m in attention_modules(model) if m.layer_idx in layers]
    text_config._attn_implementation_internal = IMPL_NAME
    for m in chosen:
        m._anyres_session = session
    try:
        yield
    finally:
        text_config._attn_implementation_internal = previous
        for m in chosen:
            m._anyres_session = None


def image_positions(input_ids, image_token_id: int) -> np.ndarray:
    """Sequence indices of the image placeholder tokens (spec 8.3) in a 1-D id list/tensor."""
    ids = np.asarray(input_ids.tolist() if hasattr(input_ids, "tolist") else input_ids).reshape(-1)
    return np.flatnonzero(ids == int(image_token_id))


def _build_capture(session: _Session, answer_ids, layers, prompt_len) -> AttentionCapture:
    missing = [i for i in layers if i not in session.per_layer]
    if missing:
        raise RuntimeError(f"layers {missing} were not captured; the model did not route its "
                           "attention through AttentionInterface")
    stack = [np.stack([session.per_layer[i][j].numpy() for i in layers]) for j in range(3)]
    return AttentionCapture(image_mean=stack[0], image_max=stack[1], other_mean=stack[2],
                            image_positions=session.image_pos, other_positions=session.other_pos,
                            answer_ids=tuple(int(a) for a in answer_ids), layers=tuple(layers),
                            num_heads=session.num_heads, prompt_len=prompt_len)


def _session_for(prompt_ids: np.ndarray, answer_len: int, image_token_id: int) -> _Session:
    prompt_len = prompt_ids.shape[0]
    img = image_positions(prompt_ids, image_token_id)
    if img.size == 0:
        raise ValueError(f"the prompt holds no image tokens (id {image_token_id})")
    other = np.setdiff1d(np.arange(prompt_len), img)
    rows = np.arange(prompt_len - 1, prompt_len - 1 + answer_len)
    return _Session(rows, img, other)


def attention_layer_ids(model) -> tuple[int, ...]:
    """The LLM layer indices that have self-attention: every layer, except in a hybrid model
    (Qwen3.5: three linear-attention layers to each full-attention one)."""
    return tuple(int(m.layer_idx) for m in attention_modules(model))


def _layers(model, layers) -> tuple[int, ...]:
    ids = attention_layer_ids(model)
    chosen = ids if layers is None else tuple(sorted(int(i) for i in layers))
    bad = [i for i in chosen if i not in ids]
    if bad:
        raise ValueError(f"layer(s) {bad} have no self-attention to record (those that do: "
                         f"{', '.join(map(str, ids))})")
    return chosen


def generation_cache(output):
    """The KV cache of a `generate(..., return_dict_in_generate=True)` output (`cache` in
    transformers 5.24, `past_key_values` before)."""
    cache = getattr(output, "cache", None)
    return cache if cache is not None else getattr(output, "past_key_values", None)


def _cache_kwarg(base) -> str:
    params = inspect.signature(base.forward).parameters
    return "cache" if "cache" in params else "past_key_values"


# ----------------------------------------------------------------------------- entry points
def capture_full(model, inputs: dict, answer_ids, image_token_id: int,
                 layers=None) -> AttentionCapture:
    """One forward over prompt + answer[:-1] with the original pixel inputs (no cache).

    `inputs` are the processor outputs used for generation (input_ids of shape (1, L)).
    """
    import torch

    prompt = inputs["input_ids"][0]
    answer = [int(a) for a in answer_ids]
    if not answer:
        raise ValueError("no answer tokens to capture attention for")
    session = _session_for(prompt.cpu().numpy(), len(answer), image_token_id)
    chosen = _layers(model, layers)
    tail = torch.tensor([answer[:-1]], dtype=prompt.dtype, device=prompt.device)
    feed = dict(inputs)
    feed["input_ids"] = torch.cat([inputs["input_ids"], tail], dim=1)
    feed["attention_mask"] = torch.ones_like(feed["input_ids"])
    base = getattr(model, "model", model)
    # Qwen / Gemma 4 mark image tokens in mm_token_type_ids, Gemma 3 in token_type_ids (its
    # bidirectional image blocks): answer tokens are text (type 0). Models that take no
    # token_type_ids get none.
    if "token_type_ids" in feed and "token_type_ids" not in inspect.signature(base.forward).parameters:
        feed.pop("token_type_ids")
    for name in ("mm_token_type_ids", "token_type_ids"):
        if name in feed:
            types = feed[name]
            feed[name] = torch.cat([types, torch.zeros_like(tail, dtype=types.dtype)], 1)
    with torch.inference_mode(), _capturing(model, session, chosen):
        base(**feed, use_cache=False)
    return _build_capture(session, answer, chosen, prompt.shape[0])


def cache_rolls_back(cache) -> bool:
    """Whether the KV cache can be cut back to a past position: not when some of its layers
    keep a recurrent state (Qwen3.5's Gated DeltaNet linear attention keeps one fixed-size
    state, and transformers 5.24 crops it only with past recording on)."""
    return not any(type(layer).__name__.startswith("LinearAttention")
                   or hasattr(layer, "recurrent_states") for layer in getattr(cache, "layers", ()))


def capture_after_generate(model, inputs: dict, answer_ids, cache, image_token_id: int,
                           layers=None) -> AttentionCapture:
    """After `generate`: from its cache when that can be cut back (one decode step's cost),
    otherwise from scratch (a hybrid linear-attention model: one more prefill)."""
    if cache is not None and cache_rolls_back(cache):
        return capture_from_cache(model, inputs, answer_ids, cache, image_token_id, layers)
    return capture_full(model, inputs, answer_ids, image_token_id, layers)


def capture_from_cache(model, inputs: dict, answer_ids, cache, image_token_id: int,
                       layers=None) -> AttentionCapture:
    """Reuse generate()'s KV cache: cut it back to L-1 positions, run the T query tokens.

    Valid right after `generate(**inputs, return_dict_in_generate=True)` on the same model
    (Qwen keeps its M-RoPE offsets from that call in `model.model.rope_deltas`). The cache is
    cropped in place.
    """
    import torch

    prompt = inputs["input_ids"][0]
    answer = [int(a) for a in answer_ids]
    if not answer:
        raise ValueError("no answer tokens to capture attention for")
    prompt_len = prompt.shape[0]
    session = _session_for(prompt.cpu().numpy(), len(answer), image_token_id)
    chosen = _layers(model, layers)
    seen = cache.get_seq_length()
    if seen < prompt_len - 1:
        raise ValueError(f"the cache holds {seen} positions, fewer than the prompt ({prompt_len})")
    cache.crop(-(seen - (prompt_len - 1)))
    queries = torch.tensor([[int(prompt[-1])] + answer[:-1]], dtype=prompt.dtype,
                           device=prompt.device)
    base = getattr(model, "model", model)
    # no attention_mask: positions then continue from the cache (Qwen adds its rope_deltas)
    with torch.inference_mode(), _capturing(model, session, chosen):
        base(input_ids=queries, use_cache=True, **{_cache_kwarg(base): cache})
    return _build_capture(session, answer, chosen, prompt_len)

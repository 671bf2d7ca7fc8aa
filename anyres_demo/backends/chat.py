"""Chat with a real VLM about the image, with the explorer's settings, and record attention.

* Models: LLaVA-NeXT, LLaVA-OneVision, Qwen2-VL, Qwen2.5-VL and InternVL (-hf) through
  AutoProcessor + AutoModelForImageTextToText, never with trust_remote_code. The checkpoint is
  a preset's repo id (UI dropdown, `--model`, or $ANYRES_MODEL), found in $ANYRES_MODEL_DIR
  when pre-downloaded there, else in the Hugging Face cache / hub.
* Device: CUDA in bfloat16 where the GPU supports it (else float16), else CPU in float32.
  Loaded lazily, one model at a time, except on ZeroGPU Spaces: there the host's model is
  placed on cuda at start-up in the main thread (`preload_for_zero_gpu`, spaces' documented
  pattern) and stays the only one. A failed load raises ModelLoadError saying why and how to
  fix it. Sizes come from the checkpoint's own files (safetensors headers, index or config),
  never from the family.
* Before generating, the processor (copied, with the explorer's max pixels / max tiles /
  pinpoints) must insert exactly as many image tokens as the engine's layout holds, so the
  numbers on screen are the numbers the model used; otherwise TokenCountMismatch.
* Generation streams through TextIteratorStreamer from a worker thread, can be stopped, and
  ends with an attention capture (capture.py) reusing the KV cache.
* Every sampling parameter is passed to `generate` (a checkpoint's generation_config, e.g.
  Qwen2-VL's top_k=1, would otherwise silently win); prompt + max_new_tokens must fit the
  model's context before anything is generated.
* GPU work runs inside `spaces.GPU`, a no-op off Hugging Face ZeroGPU Spaces.

torch and transformers are imported inside functions.
"""
from __future__ import annotations

import copy
import gc
import glob
import json
import math
import os
import socket
import struct
import threading
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

import numpy as np
import spaces

from ..engine import plan_image
from ..presets import FAMILY_DEFAULTS, Preset, get_preset
from ..strategies.base import Plan
from . import capture as cap
from . import hf_processors as hp

ENV_MODEL = "ANYRES_MODEL"  # default model: preset repo id, alias, or a local checkpoint folder
ENV_MODEL_DIR = "ANYRES_MODEL_DIR"  # folder holding pre-downloaded checkpoints
DEFAULT_MODEL = "llava-hf/llava-onevision-qwen2-0.5b-ov-hf"  # smallest released preset
RANDOM_WEIGHTS_MARKER = "ANYRES_RANDOM_WEIGHTS"  # file in a checkpoint folder: test weights
RANDOM_LABEL = ("⚠️ Tiny random-weight TEST model: the text below is noise from untrained "
                "weights, not an answer.\n\n")
TINY_HIDDEN_SIZE = 256  # no real VLM has a language model this narrow
MEMORY_HEADROOM = 1.15  # weights x this must fit in free memory before we try to load
CAPTURE_BUDGET_BYTES = 128 * 2 ** 20  # per turn; above it only every k-th layer is kept
STORE_BUDGET_BYTES = 1024 * 2 ** 20  # all remembered turns together (oldest dropped first)
GPU_SECONDS = 120  # ceiling of one ZeroGPU allocation for a chat turn
GPU_MIN_SECONDS = 15

# transformers model_type -> the preset whose geometry a local checkpoint of that type uses
MODEL_TYPE_PRESETS = {
    "llava_next": FAMILY_DEFAULTS["llava_next"],
    "llava_onevision": FAMILY_DEFAULTS["llava_onevision"],
    "qwen2_vl": "Qwen/Qwen2-VL-2B-Instruct",
    "qwen2_5_vl": "Qwen/Qwen2.5-VL-3B-Instruct",
    "internvl": FAMILY_DEFAULTS["internvl"],
    "qwen3_vl": "Qwen/Qwen3-VL-2B-Instruct",
    "qwen3_vl_moe": "Qwen/Qwen3-VL-30B-A3B-Instruct",
    "qwen3_5": "Qwen/Qwen3.5-2B",
    "mistral3": "mistralai/Mistral-Small-3.1-24B-Instruct-2503",
    "gemma3": FAMILY_DEFAULTS["gemma3"],
    "gemma4": FAMILY_DEFAULTS["gemma4"],
    "smolvlm": "HuggingFaceTB/SmolVLM2-2.2B-Instruct",
    "idefics3": "HuggingFaceM4/Idefics3-8B-Llama3",
    "llama4": FAMILY_DEFAULTS["llama4"],
    "mllama": FAMILY_DEFAULTS["mllama"],
}
# model_type "llava" is many models; only a Pixtral vision tower gives pixtral-12b's geometry
VISION_TYPE_PRESETS = {("llava", "pixtral"): "mistral-community/pixtral-12b"}


class ModelLoadError(RuntimeError):
    """A model could not be loaded; the message says why and how to fix it."""


class TokenCountMismatch(ValueError):
    """The processor's image-token count differs from the engine's layout count."""


# ----------------------------------------------------------------------------- sources
FAMILY_NAMES = {"llava_next": "LLaVA-NeXT", "llava_onevision": "LLaVA-OneVision",
                "qwen2_vl": "Qwen2-VL", "qwen2_5_vl": "Qwen2.5-VL", "internvl": "InternVL",
                "gemma3": "Gemma 3", "gemma4": "Gemma 4", "smolvlm": "SmolVLM",
                "idefics3": "Idefics3", "llama4": "Llama 4", "mllama": "Llama 3.2 Vision"}


@dataclass(frozen=True)
class ModelSource:
    """Which weights to load and which preset (geometry) describes them."""

    preset: Preset
    weights: str  # repo id or local folder for from_pretrained
    local: bool
    random_weights: bool  # test model: its output must never be shown as an answer
    params_b: float | None = None  # from the folder's own files; None: the preset's (hub id)

    @property
    def size_b(self) -> float:
        """Billions of parameters of THESE weights (0.0: unknown). A folder is never sized
        as its family's preset: a 7B OneVision folder is not the 0.5B checkpoint."""
        if self.params_b is not None:
            return self.params_b
        return 0.0 if self.local else self.preset.params_b

    @property
    def label(self) -> str:
        if not self.local:
            return self.preset.label
        family = FAMILY_NAMES.get(_model_type(self.weights), self.preset.strategy)
        size = f" {self.size_b:.2g}B" if self.size_b >= 0.01 else ""
        random = " [random weights]" if self.random_weights else ""
        return f"{family}{size} from {self.weights}{random}"


def _read_config(folder: str) -> dict:
    path = os.path.join(folder, "config.json")
    if not os.path.isfile(path):
        raise ModelLoadError(f"{folder} has no config.json, so it is not a saved transformers "
                             "checkpoint. Point it at a folder made by save_pretrained or "
                             "`hf download`.")
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def is_random_weights(folder: str) -> bool:
    """True for test checkpoints: a marker file, or a language model too narrow to be real."""
    if os.path.exists(os.path.join(folder, RANDOM_WEIGHTS_MARKER)):
        return True
    config = _read_config(folder)
    hidden = (config.get("text_config") or {}).get("hidden_size", config.get("hidden_size"))
    return hidden is not None and int(hidden) < TINY_HIDDEN_SIZE


def _model_type(folder: str) -> str | None:
    try:
        return _read_config(folder).get("model_type")
    except ModelLoadError:
        return None


# ----------------------------------------------------------------------------- sizing
def _safetensors_count(path: str) -> int:
    """Parameters in one .safetensors file, from its JSON header alone (no weights read)."""
    with open(path, "rb") as f:
        (length,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(length))
    return sum(math.prod(v["shape"]) for k, v in header.items() if k != "__metadata__")


DTYPE_BYTES = {"float32": 4, "float16": 2, "bfloat16": 2, "float64": 8, "int8": 1}


def _index_count(folder: str, config: dict) -> int | None:
    """From model.safetensors.index.json's total_size (bytes) and the config's dtype."""
    path = os.path.join(folder, "model.safetensors.index.json")
    if not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8") as f:
        total = (json.load(f).get("metadata") or {}).get("total_size")
    dtype = str(config.get("dtype") or config.get("torch_dtype") or "bfloat16")
    return int(total) // DTYPE_BYTES.get(dtype, 2) if total else None


def _config_count(config: dict) -> int | None:
    """An estimate from the config's widths and depths (language model + vision tower)."""
    text = config.get("text_config") or config
    try:
        h, layers = int(text["hidden_size"]), int(text["num_hidden_layers"])
        inter, vocab = int(text["intermediate_size"]), int(text["vocab_size"])
    except (KeyError, TypeError, ValueError):
        return None
    heads = int(text.get("num_attention_heads") or 1)
    kv = int(text.get("num_key_value_heads") or heads)
    head_dim = int(text.get("head_dim") or h // heads)
    tied = bool(text.get("tie_word_embeddings", config.get("tie_word_embeddings", False)))
    lm = layers * (h * head_dim * (2 * heads + 2 * kv) + 3 * h * inter) + vocab * h * (2 - tied)
    vision = config.get("vision_config") or {}
    vh = int(vision.get("hidden_size") or vision.get("embed_dim") or 0)
    vl = int(vision.get("num_hidden_layers") or vision.get("depth") or 0)
    vi = int(vision.get("intermediate_size") or vh * float(vision.get("mlp_ratio") or 4))
    return lm + vl * (4 * vh * vh + 2 * vh * vi)


def folder_params(folder: str) -> int | None:
    """Parameter count of a checkpoint folder: exact from its safetensors headers, else from
    the safetensors index's byte total, else estimated from config.json; None if unknown."""
    files = sorted(glob.glob(os.path.join(folder, "*.safetensors")))
    if files:
        try:
            return sum(_safetensors_count(f) for f in files)
        except (OSError, ValueError, KeyError, struct.error):
            pass
    config = _read_config(folder)
    return _index_count(folder, config) or _config_count(config)


def _preset_for_folder(folder: str) -> Preset:
    config = _read_config(folder)
    model_type = config.get("model_type")
    vision_type = (config.get("vision_config") or {}).get("model_type")
    if (model_type, vision_type) in VISION_TYPE_PRESETS:
        return get_preset(VISION_TYPE_PRESETS[(model_type, vision_type)])
    if model_type not in MODEL_TYPE_PRESETS:
        raise ModelLoadError(f"{folder} holds a {model_type!r} model; the chat supports "
                             f"{', '.join(MODEL_TYPE_PRESETS)}")
    return get_preset(MODEL_TYPE_PRESETS[model_type])


def _in_model_dir(repo_id: str) -> str | None:
    root = os.environ.get(ENV_MODEL_DIR)
    if not root:
        return None
    org_name = repo_id.split("/")
    for candidate in (os.path.join(root, *org_name), os.path.join(root, "--".join(org_name)),
                      os.path.join(root, org_name[-1])):
        if os.path.isfile(os.path.join(candidate, "config.json")):
            return candidate
    return None


def resolve_source(model: str | Preset | None = None, weights: str | None = None) -> ModelSource:
    """A preset id / alias / Preset (default: $ANYRES_MODEL, else DEFAULT_MODEL) or a local
    checkpoint folder -> ModelSource. `weights` forces the folder or repo to load.

    Where the weights come from, first match wins: `weights`; a folder named by $ANYRES_MODEL
    when it stands for this preset (the UI's dropdown only holds preset ids); the preset's
    folder inside $ANYRES_MODEL_DIR; the Hugging Face cache / hub.
    """
    model = model if model is not None else os.environ.get(ENV_MODEL) or DEFAULT_MODEL
    if isinstance(model, str) and os.path.isdir(model):
        weights, model = model, None
    if model is None:
        preset = _preset_for_folder(weights)
    else:
        preset = model if isinstance(model, Preset) else get_preset(model)
    target = weights or _env_folder_for(preset) or _in_model_dir(preset.repo_id) or preset.repo_id
    local = os.path.isdir(target)
    params = folder_params(target) if local else None
    return ModelSource(preset=preset, weights=target, local=local,
                       random_weights=local and is_random_weights(target),
                       params_b=None if params is None else params / 1e9)


def _env_folder_for(preset: Preset) -> str | None:
    folder = os.environ.get(ENV_MODEL)
    if not folder or not os.path.isdir(folder):
        return None
    return folder if _preset_for_folder(folder).repo_id == preset.repo_id else None


def default_model() -> str:
    """The preset the UI starts with: $ANYRES_MODEL's (a folder stands for its family's
    preset), else DEFAULT_MODEL."""
    env = os.environ.get(ENV_MODEL)
    if not env:
        return DEFAULT_MODEL
    try:
        return resolve_source(env).preset.repo_id
    except (ValueError, ModelLoadError):
        return DEFAULT_MODEL


# ----------------------------------------------------------------------------- loading
@dataclass
class LoadedModel:
    source: ModelSource
    model: Any
    processor: Any
    device: str
    dtype: Any
    image_token_id: int
    suppress_ids: tuple[int, ...]  # never generated: image / video / wrapper placeholders
    context_len: int | None = None  # the language model's trained context (positions)
    checkpoint_sampling: dict = field(default_factory=dict)  # its generation_config's values

    @property
    def random_weights(self) -> bool:
        return self.source.random_weights

    def describe(self) -> str:
        dtype = str(self.dtype).replace("torch.", "")
        return f"{self.source.label} on {self.device} ({dtype})"


ProgressFn = Callable[[float, str], None]


def _pick_device():
    """cuda in bfloat16 where the GPU has it (Ampere and newer), float16 on older GPUs (a T4,
    a V100: bf16 there is emulated or refused), else the CPU in float32."""
    import torch

    if torch.cuda.is_available():
        return "cuda", torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return "cpu", torch.float32


CGROUP_ROOT = "/sys/fs/cgroup"
MEMINFO = "/proc/meminfo"


def _read_int(path: str) -> int | None:
    try:
        with open(path, encoding="ascii") as f:
            text = f.read().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None  # cgroup v2 writes "max" for no limit


def _cgroup_free_bytes(root: str = CGROUP_ROOT) -> int | None:
    """Memory left under this container's cgroup limit (v2, else v1); None without a limit.
    On Spaces /proc/meminfo shows the whole host, not what this Space may use."""
    for limit_file, usage_file in (("memory.max", "memory.current"),
                                   ("memory/memory.limit_in_bytes",
                                    "memory/memory.usage_in_bytes")):
        limit = _read_int(os.path.join(root, limit_file))
        usage = _read_int(os.path.join(root, usage_file))
        if limit is not None and usage is not None and limit < 1 << 60:  # v1: "no limit" ~2^63
            return max(0, limit - usage)
    return None


def _meminfo_available(path: str = MEMINFO) -> int | None:
    try:
        with open(path, encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def _free_memory_bytes(device: str, cgroup_root: str = CGROUP_ROOT,
                       meminfo: str = MEMINFO) -> int | None:
    """Free memory for the weights: the GPU's, else the cgroup's room when a limit is set
    (the smaller of it and MemAvailable), else MemAvailable; None when unknown."""
    if device == "cuda":
        try:
            import torch

            return int(torch.cuda.mem_get_info()[0])
        except Exception:  # noqa: BLE001 -- unknown memory (ZeroGPU's emulation): let it try
            return None
    cgroup = _cgroup_free_bytes(cgroup_root)
    host = _meminfo_available(meminfo)
    if cgroup is not None:
        return cgroup if host is None else min(cgroup, host)
    return host


def _check_memory(source: ModelSource, device: str, dtype) -> None:
    """Refuse before loading when the weights cannot fit: an out-of-memory kill would take
    the whole app (and the explorer) down with it."""
    if source.random_weights or not source.size_b:
        return
    import torch

    bytes_per = torch.finfo(dtype).bits // 8
    need = source.size_b * 1e9 * bytes_per * MEMORY_HEADROOM
    free = _free_memory_bytes(device)
    if free is not None and need > free:
        where = "GPU" if device == "cuda" else "RAM"
        raise ModelLoadError(
            f"Not enough memory for {source.label}: it needs about {need / 1e9:.1f} GB "
            f"({source.size_b:.2g}B parameters in {str(dtype).replace('torch.', '')}) but "
            f"only {free / 1e9:.1f} GB of {where} is free. Pick a smaller model (LLaVA-OneVision "
            "0.5B, InternVL3 1B), close other programs, or run on a GPU Space. The explorer "
            "keeps working without a model.")


def _hub_reachable(timeout: float = 2.0) -> bool:
    from huggingface_hub import constants

    host = constants.ENDPOINT.split("://")[-1].split("/")[0]
    try:
        socket.create_connection((host, 443), timeout=timeout).close()
        return True
    except OSError:
        return False


def check_available(source: ModelSource) -> None:
    """Fail in seconds, with a fix, when the weights are neither local, cached nor reachable."""
    if source.local:
        return
    from huggingface_hub import constants, try_to_load_from_cache

    cached = try_to_load_from_cache(source.weights, "config.json")
    if isinstance(cached, str):
        return
    offline = constants.HF_HUB_OFFLINE
    if offline or not _hub_reachable():
        why = ("offline mode is on (HF_HUB_OFFLINE=1)" if offline
               else "the Hugging Face Hub cannot be reached (no network?)")
        raise ModelLoadError(
            f"Cannot load {source.weights}: it is not downloaded on this machine and {why}. "
            f"Fix: download it once while online (`hf download {source.weights}`), "
            f"or copy it into a folder and set {ENV_MODEL_DIR} to that folder "
            f"({ENV_MODEL_DIR}/{source.weights}), or use a GPU Space. The explorer keeps working "
            "without a model.")


def explain_load_error(exc: BaseException, source: ModelSource) -> str:
    """A person-readable reason and fix for an exception raised while loading."""
    text = f"{type(exc).__name__}: {exc}"
    low = text.lower()
    if isinstance(exc, MemoryError) or "out of memory" in low or "can't allocate" in low \
            or "cannot allocate" in low:
        return (f"Ran out of memory loading {source.preset.label} ({text[:200]}). Pick a smaller "
                "model, free memory, or use a GPU Space.")
    if "trust_remote_code" in low:
        return (f"{source.weights} needs custom code from the hub, which this app never runs. "
                "Use the transformers-native conversion (the '-hf' repositories).")
    if "couldn't connect" in low or "offline" in low or "connection" in low:
        return (f"Could not fetch {source.weights}: the Hugging Face Hub is unreachable. Download "
                f"it while online or set {ENV_MODEL_DIR} to a folder holding it.")
    return f"Loading {source.label} failed: {text[:400]}"


def load_model(source: ModelSource, progress: ProgressFn | None = None) -> LoadedModel:
    """AutoProcessor + AutoModelForImageTextToText, never trust_remote_code; sdpa attention.
    Call `check_available(source)` first for a fast, explained failure when offline."""
    progress = progress or (lambda f, d: None)
    device, dtype = _pick_device()
    progress(0.05, f"checking memory for {source.weights}")
    _check_memory(source, device, dtype)
    try:
        from transformers import AutoModelForImageTextToText, AutoProcessor

        progress(0.15, "loading the processor")
        processor = AutoProcessor.from_pretrained(source.weights, trust_remote_code=False)
        progress(0.3, f"loading the weights ({source.size_b:.2g}B parameters)"
                 if not source.random_weights else "loading the test weights")
        model = AutoModelForImageTextToText.from_pretrained(
            source.weights, dtype=dtype, trust_remote_code=False, attn_implementation="sdpa")
        progress(0.85, f"moving to {device}")
        model = model.to(device).eval()
    except ModelLoadError:
        raise
    except Exception as exc:  # noqa: BLE001 -- every failure becomes a message with a fix
        raise ModelLoadError(explain_load_error(exc, source)) from exc
    progress(1.0, "ready")
    return _wrap(source, model, processor, device, dtype)


def _image_token_id(processor, preset: Preset) -> int:
    """The id the model scatters visual features into (Gemma 3's processor.image_token_id is its
    <start_of_image> marker instead)."""
    try:
        return hp.soft_token_id(processor, preset)
    except ValueError:  # a family hf_processors does not know
        return int(processor.image_token_id)


def _wrap(source, model, processor, device, dtype) -> LoadedModel:
    token_id = _image_token_id(processor, source.preset)
    config_id = getattr(model.config, "image_token_id", None)
    if config_id is not None and int(config_id) != token_id:
        raise ModelLoadError(f"{source.weights}: the processor's image token id ({token_id}) "
                             f"differs from the model's ({config_id}); the checkpoint is broken")
    suppress = {token_id}
    for name in ("video_token_id", "vision_start_token_id", "vision_end_token_id", "boi_token_id",
                 "eoi_token_id", "audio_token_id", "boa_token_id"):
        if getattr(model.config, name, None) is not None:
            suppress.add(int(getattr(model.config, name)))
    for name in ("start_image_token_id", "end_image_token_id", "video_token_id"):
        if getattr(processor, name, None) is not None:
            suppress.add(int(getattr(processor, name)))
    context = getattr(model.config.get_text_config(), "max_position_embeddings", None)
    return LoadedModel(source=source, model=model, processor=processor, device=device,
                       dtype=dtype, image_token_id=token_id, suppress_ids=tuple(sorted(suppress)),
                       context_len=int(context) if context else None,
                       checkpoint_sampling=checkpoint_sampling(model.generation_config))


SAMPLING_FIELDS = ("do_sample", "temperature", "top_p", "top_k", "repetition_penalty")


def checkpoint_sampling(generation_config) -> dict:
    """The sampling values a checkpoint's generation_config sets (shown in the settings:
    generate() would apply any of them the caller leaves out)."""
    config = generation_config.to_diff_dict() if generation_config is not None else {}
    return {k: config[k] for k in SAMPLING_FIELDS if config.get(k) is not None}


def sampling_note(values: dict) -> str:
    """'temperature 0.01, top_p 0.001, top_k 1' -> a line for the generation settings."""
    if not values:
        return "The checkpoint sets no sampling defaults; the values below are used as shown."
    shown = ", ".join(f"{k} {v:g}" if isinstance(v, float) else f"{k} {v}"
                      for k, v in values.items())
    return (f"The checkpoint's own defaults: {shown}. The app passes every value below "
            "explicitly, so these defaults never override your settings.")


# ----------------------------------------------------------------------------- prompts
def _text_of(content: Any) -> str:
    """Chatbot message content (str, list of parts, dict) -> its text."""
    if isinstance(content, str):
        return content
    if isinstance(content, dict):
        return str(content.get("text") or "")
    if isinstance(content, (list, tuple)):
        return " ".join(_text_of(c) for c in content if _text_of(c))
    return ""


def clean_reply(text: str) -> str:
    """An assistant message as the model wrote it (without our random-weights label)."""
    return text[len(RANDOM_LABEL):] if text.startswith(RANDOM_LABEL) else text


def build_messages(history: list[dict], message: str,
                   placeholders: tuple[str, ...] = ()) -> list[dict]:
    """Chatbot history (messages format) + the new message -> chat-template messages, with the
    image attached to the first user turn. Each of `placeholders` (the image / video token
    strings) is removed from the text: typed, or written by a model into an earlier answer, it
    would otherwise become an extra image token in the prompt."""
    turns = [(h.get("role"), _text_of(h.get("content"))) for h in history or []]
    turns = [(r, t) for r, t in turns if r in ("user", "assistant") and t]
    turns.append(("user", message))
    out, image_placed = [], False
    for role, text in turns:
        if role == "assistant":
            text = clean_reply(text)
        for placeholder in placeholders:
            text = text.replace(placeholder, "")
        content = [{"type": "text", "text": text}]
        if role == "user" and not image_placed:
            content.insert(0, {"type": "image"})
            image_placed = True
        out.append({"role": role, "content": content})
    return out


# ----------------------------------------------------------------------------- settings
def processor_with_overrides(processor, preset: Preset, overrides: dict):
    """A shallow copy of the processor whose image processor carries the overrides (the
    shared one is never mutated, so concurrent users cannot see each other's settings)."""
    if not overrides:
        return processor
    ip = copy.deepcopy(processor.image_processor)
    s = preset.with_overrides(**overrides).settings
    if "pinpoints_hw" in overrides:
        ip.image_grid_pinpoints = [list(p) for p in s.pinpoints_hw]
    if "max_pixels" in overrides or "min_pixels" in overrides:
        ip.size = type(ip.size)(shortest_edge=s.min_pixels, longest_edge=s.max_pixels) \
            if not isinstance(ip.size, dict) else {"shortest_edge": s.min_pixels,
                                                   "longest_edge": s.max_pixels}
        for name, value in (("min_pixels", s.min_pixels), ("max_pixels", s.max_pixels)):
            if getattr(ip, name, None) is not None:
                setattr(ip, name, value)
    if "max_tiles" in overrides or "min_tiles" in overrides:
        ip.max_patches = s.max_tiles  # InternVL and Llama 4
        if hasattr(s, "min_tiles"):
            ip.min_patches = s.min_tiles
    if "max_soft_tokens" in overrides:  # Gemma 4's budget
        ip.max_soft_tokens = s.max_soft_tokens
    # Gemma 3's pan-and-scan settings are call arguments (hp.call_kwargs), not processor state
    if "longest_edge" in overrides:  # SmolVLM / Idefics3
        ip.size = type(ip.size)(longest_edge=s.longest_edge) if not isinstance(ip.size, dict) \
            else {"longest_edge": s.longest_edge}
    proc = copy.copy(processor)
    proc.image_processor = ip
    return proc


def check_image_tokens(input_ids, image_token_id: int, plan: Plan) -> int:
    """The processor's image-token count must equal the engine's; raise TokenCountMismatch."""
    got = int((np.asarray(input_ids.tolist() if hasattr(input_ids, "tolist") else input_ids)
               == image_token_id).sum())
    want = plan.num_image_tokens
    if got != want:
        raise TokenCountMismatch(
            f"The processor put {got} image tokens in the prompt, but the explorer's plan for this "
            f"{plan.image_hw} image under these settings has {want}. Generating would fail inside "
            "the model ('image features and image tokens do not match') or show you numbers the "
            "model did not use, so nothing was sent. Usually a setting (max pixels, max tiles, "
            "canvases) differs between the checkpoint's processor and the explorer, or the prompt "
            "was truncated; reset the settings or load the checkpoint that matches this preset.")
    return got


def model_config_patch(loaded: LoadedModel, processor) -> dict:
    """LLaVA models tile and unpad with their own config's canvases, not the processor's: give
    the model the processor's (overridden) list for the turn, or it would count differently."""
    if getattr(getattr(loaded.model, "config", None), "image_grid_pinpoints", None) is None:
        return {}  # not LLaVA, or a processor without its model (a serving engine's turn)
    canvases = processor.image_processor.image_grid_pinpoints
    return {"image_grid_pinpoints": [list(p) for p in canvases]}


@contextmanager
def _patched_config(config, patch: dict) -> Iterator[None]:
    saved = {k: getattr(config, k) for k in patch}
    for k, v in patch.items():
        setattr(config, k, v)
    try:
        yield
    finally:
        for k, v in saved.items():
            setattr(config, k, v)


@dataclass(frozen=True)
class GenerationSettings:
    """What generate() gets, every sampling value explicit (see _generate_kwargs)."""

    max_new_tokens: int = 256
    temperature: float = 0.0  # 0: greedy (deterministic)
    top_p: float = 0.9
    capture_attention: bool = True
    top_k: int = 0  # 0: no top-k cut
    repetition_penalty: float = 1.0  # 1.0: none


@dataclass
class Prepared:
    """Everything for one turn, made on the CPU before the GPU is asked for."""

    inputs: dict
    plan: Plan
    prompt_len: int
    overrides: dict
    image: Any
    config_patch: dict = field(default_factory=dict)  # model config values for this turn
    source: ModelSource | None = None  # the model the prompt was made for
    messages: list = field(default_factory=list)  # the chat-template messages (image part first)
    context_len: int | None = None  # that model's trained context
    params_b: float | None = None  # its size (for the ZeroGPU duration); None: the preset's


class ContextTooLong(ValueError):
    """Prompt + max_new_tokens would run past the model's trained context."""


def check_context(prepared: Prepared, max_new_tokens: int) -> None:
    """Refuse a turn that cannot fit the context, with what to lower. Past its trained
    context a model does not fail: it goes on producing text of silently worse quality."""
    limit = prepared.context_len
    if not limit or prepared.prompt_len + int(max_new_tokens) <= limit:
        return
    image = prepared.plan.num_tokens
    room = limit - prepared.prompt_len
    fixes = [f"lower max new tokens to {room} or less" if room > 0 else None,
             "lower the explorer's max pixels / max tiles, or pick fewer or smaller canvases, "
             f"so the image takes fewer than its {image:,} tokens",
             "clear the conversation (earlier turns are part of every prompt)"]
    raise ContextTooLong(
        f"This turn does not fit the model's context: the prompt is {prepared.prompt_len:,} "
        f"tokens (the image alone {image:,}) and up to {int(max_new_tokens):,} new tokens make "
        f"{prepared.prompt_len + int(max_new_tokens):,}, but the model was trained on "
        f"{limit:,}. Nothing was sent. To fit: " + "; ".join(f for f in fixes if f) + ".")


def placeholder_strings(loaded: LoadedModel) -> tuple[str, ...]:
    """The strings the processor expands or wraps images and videos with."""
    names = ("image_token", "video_token", "start_image_token", "end_image_token",
             "vision_start_token", "vision_end_token", "boi_token", "eoi_token")
    found = {getattr(loaded.processor, n, None) for n in names}
    found |= set(loaded.source.preset.wrapper_tokens or ()) | {loaded.source.preset.image_token}
    return tuple(sorted(t for t in found if isinstance(t, str) and t))


def check_turn_inputs(image, message: str | None) -> None:
    """A turn needs an image and a question (checked before any model is loaded)."""
    if image is None:
        raise ValueError("Upload an image first: the chat is about the image in the explorer.")
    if not (message or "").strip():
        raise ValueError("Type a question about the image.")


def prepare_turn(loaded: LoadedModel, image, history: list[dict], message: str,
                 overrides: dict | None = None) -> Prepared:
    """Prompt through the chat template, processor with the explorer's settings, count check."""
    check_turn_inputs(image, message)
    preset = loaded.source.preset
    overrides = dict(overrides or {})
    plan = plan_image(image, preset, **overrides)
    processor = processor_with_overrides(loaded.processor, preset, overrides)
    messages = build_messages(history, message.strip(), placeholder_strings(loaded))
    text = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    inputs = dict(processor(images=[image.convert("RGB")], text=[text], return_tensors="pt",
                            **hp.call_kwargs(preset.with_overrides(**overrides))))
    check_image_tokens(inputs["input_ids"][0], loaded.image_token_id, plan)
    return Prepared(inputs=inputs, plan=plan, prompt_len=int(inputs["input_ids"].shape[1]),
                    overrides=overrides, image=image,
                    config_patch=model_config_patch(loaded, processor), source=loaded.source,
                    messages=messages,
                    context_len=loaded.context_len, params_b=loaded.source.size_b or None)


# ----------------------------------------------------------------------------- generation
@dataclass
class TurnResult:
    """One finished answer and what was recorded about it (picklable, numpy only)."""

    text: str
    answer_ids: tuple[int, ...]
    answer_tokens: tuple[str, ...]  # each answer token decoded alone, for the token picker
    plan: Plan
    random_weights: bool
    stopped: bool
    seconds: float
    capture: cap.AttentionCapture | None = None
    capture_note: str = ""
    turn_id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    prompt_check_ok: bool | None = None  # serving engine: its prompt length equalled ours
    prompt_check: str = ""  # ... and that, in words


class _StopOnEvent:
    """StoppingCriteria: stop every sequence once the event is set."""

    def __init__(self, event: threading.Event):
        self.event = event

    def __call__(self, input_ids, scores, **kwargs):
        import torch

        return torch.full((input_ids.shape[0],), self.event.is_set(), dtype=torch.bool,
                          device=input_ids.device)


def _to_device(inputs: dict, device: str, dtype) -> dict:
    out = {}
    for k, v in inputs.items():
        if hasattr(v, "to"):
            v = v.to(device)
            if v.is_floating_point():
                v = v.to(dtype)
        out[k] = v
    return out


def _generate_kwargs(loaded: LoadedModel, settings: GenerationSettings, streamer, stop) -> dict:
    from transformers import StoppingCriteriaList

    kw = {"max_new_tokens": int(settings.max_new_tokens), "streamer": streamer,
          "stopping_criteria": StoppingCriteriaList([_StopOnEvent(stop)]),
          "return_dict_in_generate": True, "suppress_tokens": list(loaded.suppress_ids),
          "pad_token_id": loaded.processor.tokenizer.pad_token_id}
    return {**kw, **sampling_kwargs(settings)}


def sampling_kwargs(settings: GenerationSettings) -> dict:
    """Every sampling parameter, explicit: generate() keeps each value of the checkpoint's
    generation_config the caller leaves out (Qwen2-VL ships top_k=1, top_p=0.001,
    temperature=0.01, which would make any temperature greedy). None switches a warper off."""
    penalty = float(settings.repetition_penalty or 1.0)
    if settings.temperature <= 0:
        return {"do_sample": False, "temperature": None, "top_p": None, "top_k": None,
                "repetition_penalty": penalty}
    return {"do_sample": True, "temperature": float(settings.temperature),
            "top_p": float(settings.top_p), "top_k": int(settings.top_k) or None,
            "repetition_penalty": penalty}


def _layers_within_budget(loaded: LoadedModel, n_answer: int, prepared: Prepared) -> tuple | None:
    ids = cap.attention_layer_ids(loaded.model)
    n_layers = len(ids)
    per_layer = n_answer * (2 * prepared.plan.num_image_tokens + prepared.prompt_len) * 4
    if per_layer * n_layers <= CAPTURE_BUDGET_BYTES:
        return None
    step = int(np.ceil(per_layer * n_layers / CAPTURE_BUDGET_BYTES))
    return ids[::step]


def _capture(loaded: LoadedModel, prepared: Prepared, inputs: dict, answer, cache):
    """(capture or None, note): attention from the answer to the image, reusing the cache."""
    if not answer:
        return None, "No answer tokens, so no attention to show."
    if loaded.source.preset.strategy == "mllama":
        return None, ("Llama 3.2 Vision reads its tiles only through cross-attention layers; its "
                      "prompt holds a single <|image|> token, so there is no self-attention to "
                      "image tokens to show, and cross-attention heatmaps are not recorded yet.")
    layers = _layers_within_budget(loaded, len(answer), prepared)
    try:
        result = cap.capture_after_generate(loaded.model, inputs, answer, cache,
                                            loaded.image_token_id, layers=layers)
    except Exception as exc:  # noqa: BLE001 -- the answer stands; only the heatmap is lost
        return None, f"Attention could not be recorded: {type(exc).__name__}: {exc}"
    note = "" if layers is None else (
        f"Long answer: attention kept for {len(layers)} of the "
        f"{len(cap.attention_layer_ids(loaded.model))} attention layers ({', '.join(map(str, layers))}) to stay within "
        f"{CAPTURE_BUDGET_BYTES >> 20} MB.")
    return result, note


def _run_generation(loaded: LoadedModel, inputs: dict, kwargs: dict, holder: dict, streamer):
    try:
        holder["out"] = loaded.model.generate(**inputs, **kwargs)
    except BaseException as exc:  # noqa: BLE001 -- handed to the consumer thread
        holder["error"] = exc
    finally:
        streamer.end()


LLAMA4_524_BUG = "object has no attribute 'image_outputs'"


def _friendly(exc: BaseException) -> BaseException:
    if LLAMA4_524_BUG in str(exc):
        return RuntimeError(
            "Llama 4 cannot generate with transformers 5.24: Llama4ForConditionalGeneration.forward "
            "reads `outputs.image_outputs`, which its language model's output does not have. The "
            "explorer's counts, crops and token map are unaffected; the chat needs a transformers "
            "release with this fixed.")
    if "image features and image tokens do not match" in str(exc).lower():
        return TokenCountMismatch(
            "The model produced a different number of image features than the prompt has image "
            f"tokens ({exc}). The processor and the model disagree on a setting; reset the "
            "explorer's settings.")
    return exc


def stream_turn(loaded: LoadedModel, prepared: Prepared, settings: GenerationSettings,
                stop: threading.Event | None = None) -> Iterator[tuple[str, TurnResult | None]]:
    """Yield (text so far, None) while generating, then (final text, TurnResult)."""
    with _patched_config(loaded.model.config, prepared.config_patch):
        yield from _stream(loaded, prepared, settings, stop or threading.Event())


def _stream(loaded: LoadedModel, prepared: Prepared, settings: GenerationSettings,
            stop: threading.Event) -> Iterator[tuple[str, TurnResult | None]]:
    import torch
    from transformers import TextIteratorStreamer

    tokenizer = loaded.processor.tokenizer
    streamer = TextIteratorStreamer(tokenizer, skip_prompt=True, skip_special_tokens=True)
    inputs = _to_device(prepared.inputs, loaded.device, loaded.dtype)
    holder: dict = {}
    started = time.perf_counter()
    kwargs = _generate_kwargs(loaded, settings, streamer, stop)
    worker = threading.Thread(target=_run_generation, daemon=True,
                              args=(loaded, inputs, kwargs, holder, streamer))
    worker.start()
    text, finished = "", False
    try:
        for chunk in streamer:
            text += chunk
            yield text, None
        finished = True
    finally:
        if not finished:  # the consumer went away (Stop, closed tab): end the worker too
            stop.set()
        worker.join()
    if "error" in holder:
        raise _friendly(holder["error"])
    out = holder["out"]
    answer = [int(t) for t in out.sequences[0, prepared.prompt_len:].tolist()]
    capture_result, note = (None, "")
    if settings.capture_attention:
        with torch.inference_mode():
            capture_result, note = _capture(loaded, prepared, inputs, answer,
                                            cap.generation_cache(out))
    result = TurnResult(
        text=text.strip(), answer_ids=tuple(answer),
        answer_tokens=tuple(tokenizer.decode([t]) for t in answer), plan=prepared.plan,
        random_weights=loaded.random_weights, stopped=stop.is_set(),
        seconds=time.perf_counter() - started, capture=capture_result, capture_note=note)
    yield result.text, result


# ----------------------------------------------------------------------------- the registry
class ChatBackend:
    """Holds at most one loaded model; serialises GPU work on it."""

    def __init__(self, loader: Callable[[ModelSource, ProgressFn | None], LoadedModel] = load_model,
                 preflight: Callable[[ModelSource], None] = check_available):
        self._loader = loader
        self._preflight = preflight
        self._loaded: LoadedModel | None = None
        self._load_lock = threading.Lock()
        self.run_lock = threading.Lock()  # one generation + capture at a time on the model
        self.last_error: str | None = None
        self.pinned = False  # ZeroGPU: the start-up model is the only one (see pin)

    @property
    def loaded(self) -> LoadedModel | None:
        return self._loaded

    def status(self) -> str:
        if self._loaded is not None:
            failed = f" (loading another model failed: {self.last_error})" \
                if self.last_error else ""
            return f"Loaded: {self._loaded.describe()}{failed}"
        if self.last_error:
            return f"No model loaded. Last attempt: {self.last_error}"
        return "No model loaded yet; the first message loads the explorer's model."

    def ensure(self, source: ModelSource, progress: ProgressFn | None = None) -> LoadedModel:
        """The model for `source`, loading it (and unloading any other) if needed."""
        with self._load_lock:
            current = self._loaded
            if current is not None and current.source == source:
                return current
            if self.pinned:
                self.last_error = None
                raise ModelLoadError(pinned_message(current, source))
            try:
                self._preflight(source)  # fast checks first: a doomed load keeps the old model
                self.unload()
                self._loaded = self._loader(source, progress)
            except ModelLoadError as exc:
                self.last_error = str(exc)
                raise
            self.last_error = None
            return self._loaded

    def pin(self, source: ModelSource, progress: ProgressFn | None = None) -> LoadedModel:
        """Load `source` now and keep it as the only model (ZeroGPU start-up, main thread).

        spaces emulates CUDA only in the thread that imported it, so a later load from a
        gradio worker thread cannot place weights on cuda; and the GPU worker process spaces
        forks once and reuses keeps the module state of its fork, so a model swapped in after
        that would not be the one it runs. One model, loaded before the first request, avoids
        both."""
        loaded = self.ensure(source, progress)
        self.pinned = True
        return loaded

    def unload(self) -> None:
        if self._loaded is None:
            return
        with self.run_lock:
            self._loaded = None
            gc.collect()
            try:
                import torch

                if torch.cuda.is_available():
                    torch.cuda.empty_cache()
            except Exception:  # noqa: BLE001
                pass


class TurnStore:
    """Finished turns (answer, capture, plan, image) by turn id, newest kept, bounded in bytes,
    so the browser state only holds ids and the heatmap controls never re-run the model."""

    def __init__(self, budget_bytes: int = STORE_BUDGET_BYTES, max_items: int = 64):
        self._items: dict[str, tuple[TurnResult, Any]] = {}
        self._lock = threading.Lock()
        self.budget_bytes, self.max_items = budget_bytes, max_items

    def put(self, result: TurnResult, image) -> str:
        with self._lock:
            self._items[result.turn_id] = (result, image)
            while len(self._items) > 1 and (len(self._items) > self.max_items
                                            or self._bytes() > self.budget_bytes):
                self._items.pop(next(iter(self._items)))
        return result.turn_id

    def get(self, turn_id: str) -> tuple[TurnResult, Any] | None:
        with self._lock:
            return self._items.get(turn_id)

    def _bytes(self) -> int:
        return sum(r.capture.nbytes() for r, _ in self._items.values() if r.capture is not None)


def pinned_message(current: LoadedModel | None, wanted: ModelSource) -> str:
    have = current.source.label if current is not None else "no model"
    return (f"This Space runs on ZeroGPU, where the chat model is loaded onto the GPU once at "
            f"start-up: it has {have}, so {wanted.label} cannot be loaded here. Pick the loaded "
            f"model, or ask the host to set {ENV_MODEL} (or `--model`) to the one you want "
            "and restart the Space. The explorer works with every model.")


def zero_gpu() -> bool:
    """True on a Hugging Face ZeroGPU Space (spaces reads SPACES_ZERO_GPU at import)."""
    return bool(spaces.config.Config.zero_gpu)


def preload_for_zero_gpu(model: str | None = None, backend: ChatBackend | None = None
                         ) -> LoadedModel | None:
    """On ZeroGPU: load the host's model onto (emulated) cuda now, in the calling (main)
    thread, and pin it; elsewhere: nothing (models load lazily on first use). A failure is
    kept as the backend's last error for the status line, never raised: the explorer must
    start whatever happens to the chat."""
    if not zero_gpu():
        return None
    backend = backend or BACKEND
    try:
        source = resolve_source(model)
        check_available(source)
        return backend.pin(source)
    except (ValueError, ModelLoadError) as exc:
        backend.last_error = str(exc)
        backend.pinned = True  # a load from a worker thread would fail with a CUDA error
        return None


BACKEND = ChatBackend()
TURNS = TurnStore()
_STOPS: dict[str, threading.Event] = {}


def stop_event(key: str) -> threading.Event:
    """The stop flag of one browser session (the Stop button sets it)."""
    return _STOPS.setdefault(key, threading.Event())


def forget_stop(key: str) -> None:
    _STOPS.pop(key, None)


def gpu_seconds(prepared: Prepared, settings: GenerationSettings, stop_key: str = "",
                backend: ChatBackend | None = None) -> int:
    """The ZeroGPU time to ask for one turn, sized to the work.

    ZeroGPU refuses a call unless the caller's quota still holds the requested duration, and
    shorter requests are scheduled first; a workshop room shares one quota per IP, so asking
    for the ceiling on every 5-second answer would lock the room out early. Estimate: prefill of
    the prompt plus decoding at a per-token rate that grows with the model size, plus the
    attention-capture pass, within [GPU_MIN_SECONDS, GPU_SECONDS].
    """
    params_b = prepared.params_b or prepared.plan.preset.params_b or 8.0
    per_token = 0.02 + 0.006 * params_b  # seconds per new token in bf16 on one A100/H100 slice
    prefill = 2.0 + prepared.prompt_len / 4000.0 * (1.0 + params_b / 4.0)
    capture = prefill if settings.capture_attention else 0.0
    estimate = 5.0 + prefill + settings.max_new_tokens * per_token + capture
    return int(min(GPU_SECONDS, max(GPU_MIN_SECONDS, round(estimate))))


@spaces.GPU(duration=gpu_seconds)
def gpu_stream(prepared: Prepared, settings: GenerationSettings, stop_key: str,
               backend: ChatBackend | None = None) -> Iterator[tuple[str, TurnResult | None]]:
    """stream_turn on the loaded model, inside a ZeroGPU allocation when on Spaces."""
    backend = backend or BACKEND
    loaded = backend.loaded
    if loaded is None:
        raise ModelLoadError("The model was unloaded before generation started; send again.")
    if prepared.source is not None and loaded.source != prepared.source:
        # a reused ZeroGPU worker holds the model of its fork time, not the one just loaded
        raise ModelLoadError(f"The GPU worker holds {loaded.source.label}, but this turn was "
                             f"prepared for {prepared.source.label}; nothing was generated. "
                             "Send again, or restart the Space after changing its model.")
    stop = stop_event(stop_key)
    stop.clear()
    with backend.run_lock:
        yield from stream_turn(loaded, prepared, settings, stop)


def _capture_seconds(prepared: Prepared, answer_ids, backend: ChatBackend | None = None) -> int:
    return gpu_seconds(prepared, GenerationSettings(max_new_tokens=0))


@spaces.GPU(duration=_capture_seconds)
def gpu_capture(prepared: Prepared, answer_ids: list[int], backend: ChatBackend | None = None
                ) -> tuple[cap.AttentionCapture | None, str]:
    """(capture, note) for an answer written elsewhere (a serving engine), from one pass of
    the loaded model over prompt + answer: the heatmap for an answer this app did not
    generate. The loaded model must be the one the turn was prepared for."""
    import torch

    backend = backend or BACKEND
    with backend.run_lock:
        loaded = backend.loaded
        if loaded is None or loaded.source != prepared.source:
            return None, "The local model changed, so this answer has no heatmap."
        inputs = _to_device(prepared.inputs, loaded.device, loaded.dtype)
        layers = _layers_within_budget(loaded, len(answer_ids), prepared)
        try:
            with _patched_config(loaded.model.config, prepared.config_patch), \
                    torch.inference_mode():
                result = cap.capture_full(loaded.model, inputs, answer_ids,
                                          loaded.image_token_id, layers=layers)
        except Exception as exc:  # noqa: BLE001 -- the answer stands; only the heatmap is lost
            return None, f"Attention could not be recorded: {type(exc).__name__}: {exc}"
    return result, ("Heatmap from this app's copy of the model, over the server's answer.")

"""What to run when a CUDA GPU is at hand: `python -m anyres_demo.gpu_check`.

The CUDA-only paths cannot run in CI (no GPU there). On a GPU machine this builds a tiny
random-weight model of every family and, in bfloat16 (where the GPU has it) and float16, runs
the chat (prepare + streamed generate), the attention capture and the heatmap, printing one
line per check: `PASS` / `FAIL` / `SKIP`. Without a GPU it prints one SKIP line and exits 0;
with a failure it exits 1. Offline: nothing is downloaded.
"""
from __future__ import annotations

import os
import sys
import tempfile
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")

FAMILY_MODELS = ("llava-hf/llava-v1.6-mistral-7b-hf", "llava-hf/llava-onevision-qwen2-0.5b-ov-hf",
                 "Qwen/Qwen2-VL-2B-Instruct", "Qwen/Qwen2.5-VL-3B-Instruct",
                 "OpenGVLab/InternVL3-1B-hf")
IMAGE_HW = (300, 500)
NEW_TOKENS = 6


def _dtypes():
    import torch

    out = [torch.float16]
    if torch.cuda.is_bf16_supported():
        out.insert(0, torch.bfloat16)
    return out


def _load(folder: str, dtype):
    """A LoadedModel on cuda in `dtype` (the chat's own loader picks the dtype itself)."""
    from transformers import AutoModelForImageTextToText, AutoProcessor

    from .backends import chat

    source = chat.resolve_source(folder)
    processor = AutoProcessor.from_pretrained(folder, trust_remote_code=False)
    model = AutoModelForImageTextToText.from_pretrained(
        folder, dtype=dtype, trust_remote_code=False, attn_implementation="sdpa")
    loaded = chat._wrap(source, model.to("cuda").eval(), processor, "cuda", dtype)
    loaded.model.generation_config.min_new_tokens = NEW_TOKENS
    return loaded


def _check_one(model_id: str, folder: str, dtype) -> list[str]:
    import numpy as np

    from . import attention as att
    from .backends import chat
    from .bench import test_image
    from .layout import build_layout

    name = f"{model_id.split('/')[-1]} {str(dtype).replace('torch.', '')}"
    loaded = _load(folder, dtype)
    image = test_image(IMAGE_HW)
    prepared = chat.prepare_turn(loaded, image, [], "describe the image")
    start = time.perf_counter()
    *_, (_, result) = chat.stream_turn(loaded, prepared, chat.GenerationSettings(NEW_TOKENS))
    lines = [f"PASS chat     {name}: {len(result.answer_ids)} tokens in "
             f"{time.perf_counter() - start:.2f} s, prompt {prepared.prompt_len}"]
    capture = result.capture
    if capture is None:
        return lines + [f"FAIL capture  {name}: {result.capture_note}"]
    finite = bool(np.isfinite(capture.image_mean).all())
    shape_ok = capture.image_mean.shape[1:] == (len(result.answer_ids),
                                                result.plan.num_image_tokens)
    lines.append(f"{'PASS' if finite and shape_ok else 'FAIL'} capture  {name}: "
                 f"{capture.num_layers} layer(s), {capture.num_image_tokens} image tokens, "
                 f"finite={finite}")
    scores = att.select_scores(capture.image_mean, (0, capture.num_layers - 1), None)
    heat = att.map_heat(build_layout(result.plan), scores)
    panels = att.render_panels(image, heat)
    lines.append(f"{'PASS' if panels else 'FAIL'} heatmap  {name}: {len(panels)} panel(s)")
    del loaded
    return lines


def run() -> int:
    """Print the checks; 0 when all passed (or skipped), 1 otherwise."""
    import torch

    if not torch.cuda.is_available():
        print("SKIP gpu_check: no CUDA GPU here (torch.cuda.is_available() is False)")
        return 0
    from .backends import tiny_models
    from .presets import get_preset

    print(f"GPU: {torch.cuda.get_device_name(0)}, bf16 supported: "
          f"{torch.cuda.is_bf16_supported()}")
    failed = False
    with tempfile.TemporaryDirectory(prefix="anyres-gpu-check-") as root:
        for model_id in FAMILY_MODELS:
            folder = os.path.join(root, model_id.replace("/", "--"))
            tiny_models.build_tiny_model(get_preset(model_id), folder)
            for dtype in _dtypes():
                try:
                    lines = _check_one(model_id, folder, dtype)
                except Exception as exc:  # noqa: BLE001 -- one line per failed check
                    lines = [f"FAIL chat     {model_id} {dtype}: {type(exc).__name__}: {exc}"]
                for line in lines:
                    print(line, flush=True)
                    failed |= line.startswith("FAIL")
                torch.cuda.empty_cache()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(run())

"""Benchmark of the attention capture (not a test; nothing asserts).

A tiny random-weight LLaVA-NeXT model at a real image-token count (a 672x672 image: 2x2
tiles, 2,928 image tokens), all in one run on one machine:

* time: generate + capture (KV-cache reuse) vs plain generate -- target <= 1.3x;
  for reference, the one-forward-from-scratch capture and generate(output_attentions=True);
* memory: extra peak memory of the capture over plain generate vs the extra of
  generate(output_attentions=True) (eager) -- target <= 5%.

Memory is torch's peak allocation on CUDA, else the process's peak RSS (VmHWM, reset through
/proc/self/clear_refs, freed memory trimmed back to the OS first).
`python -m anyres_demo.bench_chat` prints the lines; `run_chat_bench()` returns them.
"""
from __future__ import annotations

import ctypes
import gc
import os
import statistics
import time
from typing import Callable

os.environ.setdefault("HF_HUB_OFFLINE", "1")

BENCH_MODEL = "llava-hf/llava-v1.6-mistral-7b-hf"
BENCH_HW = (672, 672)  # -> 576 + 48 x 48 + 48 = 2,928 image tokens
NEW_TOKENS = 16


class _Memory:
    """Peak memory of a call above the level just before it, in bytes."""

    def __init__(self, device: str):
        self.device = device
        try:
            self._libc = ctypes.CDLL("libc.so.6")
        except OSError:
            self._libc = None

    def _settle(self) -> None:
        gc.collect()
        if self._libc is not None:
            self._libc.malloc_trim(0)

    def peak_over(self, fn: Callable[[], object]) -> int:
        import torch

        self._settle()
        if self.device == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            before = torch.cuda.memory_allocated()
            result = fn()
            torch.cuda.synchronize()
            peak = torch.cuda.max_memory_allocated() - before
        else:
            before = self._rss("VmRSS")
            with open("/proc/self/clear_refs", "w", encoding="ascii") as f:
                f.write("5")
            result = fn()
            peak = self._rss("VmHWM") - before
        del result
        return peak

    @staticmethod
    def _rss(field: str) -> int:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
        return 0


def _median_time(fn: Callable[[], object], device: str, repeat: int = 3) -> float:
    import torch

    runs = []
    for _ in range(repeat):
        if device == "cuda":
            torch.cuda.synchronize()
        t = time.perf_counter()
        fn()
        if device == "cuda":
            torch.cuda.synchronize()
        runs.append(time.perf_counter() - t)
    return statistics.median(runs)


def _setup():
    import torch

    from .backends import tiny_models
    from .bench import test_image
    from .presets import get_preset

    preset = get_preset(BENCH_MODEL)
    model, processor = tiny_models.build_tiny_model(preset)
    device, dtype = ("cuda", torch.bfloat16) if torch.cuda.is_available() else ("cpu", torch.float32)
    model = model.to(device=device, dtype=dtype).eval()
    text = processor.apply_chat_template(
        [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "describe the image"}]}],
        add_generation_prompt=True, tokenize=False)
    inputs = processor(images=[test_image(BENCH_HW)], text=[text], return_tensors="pt")
    inputs = {k: (v.to(device, dtype) if v.is_floating_point() else v.to(device))
              for k, v in inputs.items()}
    return model, inputs, device, dtype


def run_chat_bench() -> list[str]:
    import torch

    from .backends import capture as cap

    torch.manual_seed(0)
    model, inputs, device, dtype = _setup()
    token_id = int(model.config.image_token_id)
    n_image = int((inputs["input_ids"] == token_id).sum())
    gen = {"max_new_tokens": NEW_TOKENS, "min_new_tokens": NEW_TOKENS, "do_sample": False,
           "suppress_tokens": [token_id]}

    def plain():
        with torch.inference_mode():
            return model.generate(**inputs, **gen)

    def with_capture():
        with torch.inference_mode():
            out = model.generate(**inputs, **gen, return_dict_in_generate=True)
        answer = out.sequences[0, inputs["input_ids"].shape[1]:].tolist()
        return cap.capture_from_cache(model, inputs, answer, out.cache, token_id)

    answer = plain()[0, inputs["input_ids"].shape[1]:].tolist()

    def full_pass():
        return cap.capture_full(model, inputs, answer, token_id)

    def eager_attentions():
        model.set_attn_implementation({"text_config": "eager"})
        try:
            with torch.inference_mode():
                return model.generate(**inputs, **gen, output_attentions=True,
                                      return_dict_in_generate=True)
        finally:
            model.set_attn_implementation({"text_config": "sdpa"})

    for fn in (plain, with_capture, full_pass, eager_attentions):
        fn()  # warm-up
    times = {name: _median_time(fn, device) for name, fn in
             (("plain", plain), ("capture", with_capture), ("full", full_pass),
              ("eager", eager_attentions))}
    mem = _Memory(device)
    peaks = {name: mem.peak_over(fn) for name, fn in
             (("plain", plain), ("capture", with_capture), ("full", full_pass),
              ("eager", eager_attentions))}
    return _report(model, inputs, n_image, device, dtype, times, peaks)


def _report(model, inputs, n_image, device, dtype, times, peaks) -> list[str]:
    from .backends import capture as cap

    mb = 2 ** 20
    layers = len(cap.attention_modules(model))
    heads = model.config.get_text_config().num_attention_heads
    cap_extra = max(0, peaks["capture"] - peaks["plain"])
    eager_extra = max(1, peaks["eager"] - peaks["plain"])
    where = "CUDA peak allocated" if device == "cuda" else "peak RSS"
    return [
        f"chat attention capture: tiny random-weight LLaVA-NeXT ({layers} layer(s), {heads} heads), "
        f"{BENCH_HW[1]}x{BENCH_HW[0]} image = {n_image} image tokens, prompt "
        f"{inputs['input_ids'].shape[1]} tokens, {NEW_TOKENS} new tokens, {device} "
        f"{str(dtype).replace('torch.', '')}",
        f"  time: generate {times['plain'] * 1e3:.0f} ms | generate + capture (cache reuse) "
        f"{times['capture'] * 1e3:.0f} ms = {times['capture'] / times['plain']:.2f}x (target <= 1.3x)",
        f"        capture from scratch (one forward, prompt + answer) {times['full'] * 1e3:.0f} ms "
        f"= {times['full'] / times['plain']:.2f}x of generate | generate(output_attentions=True, "
        f"eager) {times['eager'] * 1e3:.0f} ms = {times['eager'] / times['plain']:.2f}x",
        f"  memory ({where} above the loaded model): generate {peaks['plain'] / mb:.1f} MB | "
        f"generate + capture {peaks['capture'] / mb:.1f} MB | capture from scratch "
        f"{peaks['full'] / mb:.1f} MB | generate(output_attentions=True) {peaks['eager'] / mb:.1f} MB",
        f"        capture's extra over generate {cap_extra / mb:.2f} MB = "
        f"{cap_extra / eager_extra:.1%} of output_attentions' extra {eager_extra / mb:.1f} MB "
        f"(target <= 5%); {cap_extra / max(1, peaks['eager']):.1%} of its whole peak",
    ]


if __name__ == "__main__":
    for line in run_chat_bench():
        print(line, flush=True)

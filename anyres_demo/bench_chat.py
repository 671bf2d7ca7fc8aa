"""Benchmark of the attention capture (not a test; nothing asserts).

A tiny random-weight LLaVA-NeXT model at a real image-token count (a 672x672 image: 2x2
tiles, 2,928 image tokens), all in one run on one machine:

* time: generate + capture (KV-cache reuse) vs plain generate -- target <= 1.3x;
  for reference, the one-forward-from-scratch capture and generate(output_attentions=True);
* memory: extra peak memory of the capture over plain generate vs the extra of
  generate(output_attentions=True) (eager) -- target <= 5%.

Memory is torch's peak allocation on CUDA, else the process's peak RSS (VmHWM, reset through
/proc/self/clear_refs, freed memory trimmed back to the OS first).

Then the serving engine (`transformers serve`, started here on 127.0.0.1 with a tiny
random-weight Qwen2-VL, CPU or CUDA as present) against the same model in-process: time to
first token and decode tokens/s for one chat, then 4 chats at once through the endpoint
(a report; no target).

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


def _median_time(fn: Callable[[object], object], device: str, repeat: int = 5,
                 setup: Callable[[], object] = lambda: None) -> float:
    """Median seconds of fn(setup()) over `repeat` runs; setup is not timed."""
    import torch

    runs = []
    for _ in range(repeat):
        arg = setup()
        if device == "cuda":
            torch.cuda.synchronize()
        t = time.perf_counter()
        fn(arg)
        if device == "cuda":
            torch.cuda.synchronize()
        runs.append(time.perf_counter() - t)
    return statistics.median(runs)


# A wider language model for GPU runs (~110M parameters, grouped-query attention), so the
# memory comparison has realistic layers x heads: output_attentions then stores ~2 GB.
WIDE_TEXT = {"hidden_size": 1024, "intermediate_size": 2816, "num_hidden_layers": 8,
             "num_attention_heads": 16, "num_key_value_heads": 4}


def _setup(text_overrides: dict | None):
    import torch
    import transformers

    from .backends import hf_processors as hp
    from .backends import tiny_models
    from .bench import test_image
    from .presets import get_preset

    preset = get_preset(BENCH_MODEL)
    processor = hp.build_processor(preset, tokenizer=hp.build_tiny_tokenizer(preset))
    config = tiny_models.tiny_config(preset, processor.tokenizer)
    for key, value in (text_overrides or {}).items():
        setattr(config.get_text_config(), key, value)
    torch.manual_seed(0)
    model = getattr(transformers, tiny_models.MODEL_CLASS[hp.model_type(preset)])(config)
    cuda = torch.cuda.is_available()
    device, dtype = ("cuda", torch.bfloat16) if cuda else ("cpu", torch.float32)
    model = model.to(device=device, dtype=dtype).eval()
    content = [{"type": "image"}, {"type": "text", "text": "describe the image"}]
    text = processor.apply_chat_template([{"role": "user", "content": content}],
                                         add_generation_prompt=True, tokenize=False)
    inputs = processor(images=[test_image(BENCH_HW)], text=[text], return_tensors="pt")
    inputs = {k: (v.to(device, dtype) if v.is_floating_point() else v.to(device))
              for k, v in inputs.items()}
    return model, inputs, device, dtype


def run_chat_bench(wide: bool | None = None) -> list[str]:
    """The report lines. `wide` (default: only when CUDA is present) adds a second run with
    WIDE_TEXT's language model."""
    import torch

    lines = _bench_one(None)
    if torch.cuda.is_available() if wide is None else wide:
        lines += _bench_one(WIDE_TEXT)
    return lines + run_endpoint_bench()


def _bench_one(text_overrides: dict | None) -> list[str]:
    import torch

    from .backends import capture as cap

    model, inputs, device, dtype = _setup(text_overrides)
    token_id = int(model.config.image_token_id)
    n_image = int((inputs["input_ids"] == token_id).sum())
    prompt_len = inputs["input_ids"].shape[1]
    gen = {"max_new_tokens": NEW_TOKENS, "min_new_tokens": NEW_TOKENS, "do_sample": False,
           "suppress_tokens": [token_id]}

    def plain():
        with torch.inference_mode():
            return model.generate(**inputs, **gen)

    def with_capture():
        with torch.inference_mode():
            out = model.generate(**inputs, **gen, return_dict_in_generate=True)
        answer = out.sequences[0, prompt_len:].tolist()
        return cap.capture_from_cache(model, inputs, answer, cap.generation_cache(out), token_id)

    answer = plain()[0, prompt_len:].tolist()

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

    def generated():
        with torch.inference_mode():
            return model.generate(**inputs, **gen, return_dict_in_generate=True)

    def capture_alone(out):
        answer = out.sequences[0, prompt_len:].tolist()
        return cap.capture_from_cache(model, inputs, answer, cap.generation_cache(out), token_id)

    runs = (("plain", plain), ("capture", with_capture), ("full", full_pass),
            ("eager", eager_attentions))
    for _, fn in runs:
        fn()  # warm-up
    times = {name: _median_time(lambda _: fn(), device) for name, fn in runs}
    times["alone"] = _median_time(capture_alone, device, setup=generated)
    mem = _Memory(device)
    peaks = {name: mem.peak_over(fn) for name, fn in runs}
    answer_out = generated()
    peaks["alone"] = mem.peak_over(lambda: capture_alone(answer_out))
    return _report(model, inputs, n_image, device, dtype, times, peaks)


def _report(model, inputs, n_image, device, dtype, times, peaks) -> list[str]:
    from .backends import capture as cap

    mb = 2 ** 20
    t, p = times, {k: v / mb for k, v in peaks.items()}
    layers = len(cap.attention_modules(model))
    heads = model.config.get_text_config().num_attention_heads
    width = model.config.get_text_config().hidden_size
    cap_extra = max(0.0, p["capture"] - p["plain"])
    eager_extra = max(1 / mb, p["eager"] - p["plain"])
    where = "CUDA peak allocated" if device == "cuda" else "peak RSS"
    precision = str(dtype).replace("torch.", "")
    return [
        f"chat attention capture: random-weight LLaVA-NeXT, LM {layers} layer(s) x {heads} "
        f"heads x width {width}, {BENCH_HW[1]}x{BENCH_HW[0]} image = {n_image} image tokens, prompt "
        f"{inputs['input_ids'].shape[1]} tokens, {NEW_TOKENS} new tokens, {device} {precision}",
        f"  time: generate {t['plain'] * 1e3:.0f} ms | generate + capture (cache reuse) "
        f"{t['capture'] * 1e3:.0f} ms = {t['capture'] / t['plain']:.2f}x (target <= 1.3x); "
        f"the capture pass alone {t['alone'] * 1e3:.1f} ms = "
        f"{(t['plain'] + t['alone']) / t['plain']:.2f}x",
        f"        for reference: capture from scratch (one forward over prompt + answer) "
        f"{t['full'] * 1e3:.0f} ms = {t['full'] / t['plain']:.2f}x of generate; "
        f"generate(output_attentions=True, eager) {t['eager'] * 1e3:.0f} ms "
        f"= {t['eager'] / t['plain']:.2f}x",
        f"  memory, {where} above the loaded model: generate {p['plain']:.1f} MB | generate + "
        f"capture {p['capture']:.1f} MB | capture from scratch {p['full']:.1f} MB | "
        f"generate(output_attentions=True) {p['eager']:.1f} MB",
        f"        capture's extra over generate {cap_extra:.2f} MB = "
        f"{cap_extra / eager_extra:.1%} of output_attentions' extra ({eager_extra:.1f} MB; "
        f"target <= 5%); the capture pass alone peaks {p['alone']:.2f} MB above the "
        f"post-generate level = {p['alone'] / eager_extra:.2%}",
    ]


# ----------------------------------------------------------------------------- endpoint
ENDPOINT_MODEL = "Qwen/Qwen2-VL-2B-Instruct"
ENDPOINT_HW = (300, 500)
ENDPOINT_TOKENS = 48
CONCURRENT = 4


def _serve(folder: str):
    """(process, base URL) of `transformers serve` on a free port, once /health answers."""
    import shutil
    import socket
    import subprocess

    import httpx

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    exe = shutil.which("transformers") or "transformers"
    proc = subprocess.Popen([exe, "serve", "--host", "127.0.0.1", "--port", str(port),
                             "--log-level", "error"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    url = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            if httpx.get(url + "/health", timeout=2).status_code == 200:
                return proc, url + "/v1"
        except httpx.HTTPError:
            time.sleep(0.5)
    proc.kill()
    raise RuntimeError("transformers serve did not start")


def _in_process(loaded, prepared, settings) -> tuple[float, float, int]:
    """(time to first token, decode tokens/s, tokens) of one in-process streamed turn."""
    from .backends import chat

    start, first = time.perf_counter(), None
    for text, result in chat.stream_turn(loaded, prepared, settings):
        if result is None and first is None:
            first = time.perf_counter() - start
    n = len(result.answer_ids)
    return first, (n - 1) / max(1e-9, result.seconds - first), n


def _through(endpoint, prepared, settings) -> tuple[float, float, int]:
    import json

    from .backends import endpoint as ep

    body = ep.request_body(endpoint, ep.openai_messages(prepared.messages, prepared.image),
                           settings, {})
    config = json.loads(body["generation_config"])
    body["generation_config"] = json.dumps({**config, "min_new_tokens": settings.max_new_tokens})
    *_, (_, result) = ep.stream_chat(endpoint, body)
    n = result.completion_tokens or 0
    return result.first_token_s, (n - 1) / max(1e-9, result.seconds - result.first_token_s), n


def run_endpoint_bench(repeat: int = 3) -> list[str]:
    import tempfile
    import threading

    from .backends import chat, tiny_models
    from .backends import endpoint as ep
    from .bench import test_image
    from .presets import get_preset

    folder = tempfile.mkdtemp(prefix="anyres-bench-serve-")
    tiny_models.build_tiny_model(get_preset(ENDPOINT_MODEL), folder)
    loaded = chat.load_model(chat.resolve_source(folder))
    loaded.model.generation_config.min_new_tokens = ENDPOINT_TOKENS
    prepared = chat.prepare_turn(loaded, test_image(ENDPOINT_HW), [], "describe the image")
    settings = chat.GenerationSettings(ENDPOINT_TOKENS, capture_attention=False)
    proc, url = _serve(folder)
    try:
        endpoint = ep.Endpoint(url=url, model=folder, engine="transformers", timeout_s=600)
        _through(endpoint, prepared, settings)  # the server loads the model on first use
        _in_process(loaded, prepared, settings)
        local = [_in_process(loaded, prepared, settings) for _ in range(repeat)]
        remote = [_through(endpoint, prepared, settings) for _ in range(repeat)]
        many: list = []
        start = time.perf_counter()
        threads = [threading.Thread(target=lambda: many.append(
            _through(endpoint, prepared, settings))) for _ in range(CONCURRENT)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.perf_counter() - start
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    return _endpoint_report(loaded, prepared, local, remote, many, wall)


def _endpoint_report(loaded, prepared, local, remote, many, wall) -> list[str]:
    med = statistics.median
    ttft = sorted(m[0] for m in many)
    tokens = sum(m[2] for m in many)
    return [
        f"chat through a serving engine: transformers serve (127.0.0.1) vs in-process, the same "
        f"random-weight Qwen2-VL, prompt {prepared.prompt_len} tokens, {ENDPOINT_TOKENS} new "
        f"tokens, {loaded.device}, median of {len(local)}",
        f"  in-process: first token {med(m[0] for m in local) * 1e3:.0f} ms, decode "
        f"{med(m[1] for m in local):.0f} tokens/s | endpoint: first token "
        f"{med(m[0] for m in remote) * 1e3:.0f} ms, decode {med(m[1] for m in remote):.0f} tokens/s",
        f"  {CONCURRENT} chats at once through the endpoint: all done in {wall:.2f} s, first "
        f"tokens after {', '.join(f'{t:.2f}' for t in ttft)} s, {tokens / wall:.0f} tokens/s "
        "in all (a report, no target)",
    ]


if __name__ == "__main__":
    for line in run_chat_bench():
        print(line, flush=True)

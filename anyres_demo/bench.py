"""Benchmarks (not tests): `python -m anyres_demo.bench [--only engine,sweep,analyze,startup,chat,probes]`.

Every target is a ratio against a reference measured in the same run on the same machine,
so shared, noisy machines give comparable numbers. Nothing here asserts.
"""
from __future__ import annotations

import argparse
import os
import statistics
import time
from typing import Callable

import numpy as np

from .engine import count_tokens_many, plan_image
from .layout import build_layout
from .presets import FAMILY_DEFAULTS, get_preset, list_presets

os.environ.setdefault("HF_HUB_OFFLINE", "1")
BIG_HW = (3000, 4000)  # 12 MP


def timeit(fn: Callable[[], object], repeat: int = 5, min_time: float = 0.2) -> float:
    """Median seconds per call over `repeat` rounds, each running long enough to time."""
    fn()
    runs, n = [], 1
    while True:
        t = time.perf_counter()
        for _ in range(n):
            fn()
        dt = time.perf_counter() - t
        if dt >= min_time / repeat or n >= 1 << 16:
            break
        n *= 4
    runs.append(dt / n)
    for _ in range(repeat - 1):
        t = time.perf_counter()
        for _ in range(n):
            fn()
        runs.append((time.perf_counter() - t) / n)
    return statistics.median(runs)


def test_image(size_hw=BIG_HW, seed: int = 0):
    """A deterministic photo-like RGB image (noise + gradients; not a flat colour)."""
    from PIL import Image

    h, w = size_hw
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (h // 16 + 1, w // 16 + 1, 3), dtype=np.uint8)
    return Image.fromarray(small).resize((w, h), Image.Resampling.BILINEAR)


# Settings worth their own row: Gemma 3 with pan-and-scan (3 views of 896 on the 12 MP image).
EXTRA_ENGINE_CASES = [("gemma3 +pan-scan", "google/gemma-3-4b-it", {"do_pan_and_scan": True})]


def bench_engine() -> list[str]:
    from .backends.hf_processors import build_processor, processor_outputs
    from .render import render_crops

    image = test_image()
    lines = [f"engine vs transformers processor, 12 MP image {BIG_HW[1]}x{BIG_HW[0]} "
             "(targets: plan+layout >= 1000x faster; crops <= 0.5x processor time)"]
    cases = [(strategy, get_preset(repo)) for strategy, repo in FAMILY_DEFAULTS.items()]
    cases += [(name, get_preset(repo).with_overrides(**over)) for name, repo, over in EXTRA_ENGINE_CASES]
    for strategy, preset in cases:
        proc = build_processor(preset)
        t_proc = timeit(lambda: processor_outputs(proc, image, preset), repeat=3, min_time=0)
        t_plan = timeit(lambda: build_layout(plan_image(BIG_HW, preset)))
        plan = plan_image(BIG_HW, preset)
        t_crops = timeit(lambda: render_crops(image, plan), repeat=3, min_time=0)
        lines.append(f"  {strategy:16} processor {t_proc * 1e3:8.1f} ms | plan+layout "
                     f"{t_plan * 1e6:7.0f} us = {t_proc / t_plan:7.0f}x faster | crops "
                     f"{t_crops * 1e3:7.1f} ms = {t_crops / t_proc:.2f}x processor")
    return lines


def bench_sweep(n_sizes: int = 10_000) -> list[str]:
    rng = np.random.default_rng(0)
    h = np.exp(rng.uniform(0, np.log(8000), n_sizes)).astype(np.int64) + 1
    w = np.exp(rng.uniform(0, np.log(8000), n_sizes)).astype(np.int64) + 1
    presets = list_presets()
    t = timeit(lambda: [count_tokens_many(h, w, p) for p in presets], repeat=5)
    t_scalar = timeit(lambda: [plan_image((int(a), int(b)), presets[0]) for a, b in zip(h[:200], w[:200])],
                      repeat=3) / 200 * n_sizes * len(presets)
    return [f"sweep: {n_sizes} sizes x {len(presets)} presets in {t * 1e3:.1f} ms "
            f"(target < 200 ms: {t / 0.2:.3f}x of the budget; one plan_image per size would take "
            f"~{t_scalar:.1f} s)"]


def bench_ui_analyze() -> list[str]:
    from .bench_ui import bench_analyze
    return bench_analyze()


def bench_ui_startup() -> list[str]:
    from .bench_ui import bench_startup
    return bench_startup()


def bench_probes() -> list[str]:
    from .probes.bench import run_probe_bench
    return run_probe_bench(emit=None)


def bench_chat() -> list[str]:
    from .bench_chat import run_chat_bench
    return run_chat_bench()


SECTIONS = {"engine": bench_engine, "sweep": bench_sweep, "analyze": bench_ui_analyze,
            "startup": bench_ui_startup, "chat": bench_chat, "probes": bench_probes}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--only", default=",".join(SECTIONS), help="comma-separated sections: "
                    + ", ".join(SECTIONS))
    args = ap.parse_args(argv)
    for name in args.only.split(","):
        for line in SECTIONS[name.strip()]():
            print(line, flush=True)


if __name__ == "__main__":
    main()

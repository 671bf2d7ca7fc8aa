"""Benchmarks (not tests): `python -m anyres_demo.bench [--only counts,...] [--smoke]`.

What is timed is what a user waits for, each figure a ratio against a like-for-like reference
measured in the same run, interleaved (A B A B ...): medians, with the spread of the per-round
ratios. Sections iterate over presets.FAMILY_DEFAULTS, so a new family is benchmarked as soon
as it is registered. `--smoke` runs every section small and once (CI: no thresholds, a check
that the benchmark still runs). Nothing here asserts.
"""
from __future__ import annotations

import argparse
import functools
import os
import statistics
import time
from typing import Callable

import numpy as np

from .engine import count_tokens_many, plan_image
from .layout import build_layout
from .presets import FAMILY_DEFAULTS, get_preset

os.environ.setdefault("HF_HUB_OFFLINE", "1")
BIG_HW = (3000, 4000)  # 12 MP
SMOKE = False  # set by --smoke: small inputs, one round


def _calibrate(fn: Callable[[], object], min_time: float) -> int:
    """Calls per sample so that one sample lasts at least `min_time` seconds."""
    n = 1
    while True:
        start = time.perf_counter()
        for _ in range(n):
            fn()
        if time.perf_counter() - start >= min_time or n >= 1 << 16:
            return n
        n *= 4


def interleaved(fns: dict[str, Callable[[], object]], rounds: int = 5,
                min_time: float = 0.05) -> dict[str, list[float]]:
    """Seconds per call of each fn, one sample of each per round, in turn (A B A B ...), so
    drifting machine load hits all alike. Each fn runs once first (warm-up)."""
    counts = {name: _calibrate(fn, min_time) if min_time else 1 for name, fn in fns.items()}
    for fn in fns.values():
        fn()
    samples: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(1 if SMOKE else rounds):
        for name, fn in fns.items():
            start = time.perf_counter()
            for _ in range(counts[name]):
                fn()
            samples[name].append((time.perf_counter() - start) / counts[name])
    return samples


def ratio(samples: dict[str, list[float]], a: str, b: str) -> str:
    """'1.23x (1.10-1.40)': median of a / median of b, and the range of per-round ratios."""
    per_round = [x / y for x, y in zip(samples[a], samples[b])]
    mid = statistics.median(samples[a]) / statistics.median(samples[b])
    return f"{mid:.2f}x ({min(per_round):.2f}-{max(per_round):.2f})"


def ms(samples: list[float]) -> str:
    return f"{statistics.median(samples) * 1e3:.2f} ms"


def test_image(size_hw=BIG_HW, seed: int = 0):
    """A deterministic photo-like RGB image (noise + gradients; not a flat colour)."""
    from PIL import Image

    h, w = size_hw
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (h // 16 + 1, w // 16 + 1, 3), dtype=np.uint8)
    return Image.fromarray(small).resize((w, h), Image.Resampling.BILINEAR)


def random_sizes(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(heights, widths), log-uniform in 1..8000."""
    rng = np.random.default_rng(seed)
    h = np.exp(rng.uniform(0, np.log(8000), n)).astype(np.int64) + 1
    w = np.exp(rng.uniform(0, np.log(8000), n)).astype(np.int64) + 1
    return h, w


@functools.lru_cache(maxsize=None)
def processor(repo: str):
    """The transformers processor built offline with the checkpoint's values (once per run)."""
    from .backends.hf_processors import build_processor
    return build_processor(get_preset(repo))


def _api(proc, sizes_hw) -> Callable[[], object]:
    """The processor's own pixel-free counting API over `sizes_hw`."""
    def run():
        for size in sizes_hw:
            try:
                proc._get_num_multimodal_tokens(image_sizes=[size])
            except ValueError:  # Qwen above 200:1, as the engine
                pass
    return run


def _engine(preset, sizes_hw) -> Callable[[], object]:
    """Plan + every token's box + counts by kind over `sizes_hw`."""
    def run():
        for size in sizes_hw:
            try:
                build_layout(plan_image(size, preset)).counts_by_kind()
            except ValueError:
                pass
    return run


def bench_counts() -> list[str]:
    """Counts for one size: plan + token layout + counts against the processor's counting API
    (the like-for-like reference: no pixels either); the full processor call on a 12 MP image
    as a second reference; crop rendering against that call."""
    from .backends.hf_processors import processor_outputs
    from .render import render_crops

    big = (300, 400) if SMOKE else BIG_HW
    image = test_image(big)
    h, w = random_sizes(5 if SMOKE else 50, seed=1)
    sizes = [(int(a), int(b)) for a, b in zip(h, w)]
    lines = [f"counts: plan + token layout + counts vs the processor's counting API "
             f"(_get_num_multimodal_tokens), {len(sizes)} sizes, interleaved (target <= 2x); "
             f"second reference: the full processor call on {big[1]}x{big[0]}"]
    for strategy, repo in FAMILY_DEFAULTS.items():
        preset = get_preset(repo)
        proc = processor(repo)
        if not hasattr(proc, "_get_num_multimodal_tokens"):  # SmolVLM: no counting API
            lines.append(f"  {strategy:16} no pixel-free counting API in transformers: skipped")
            continue
        s = interleaved({"engine": _engine(preset, sizes), "api": _api(proc, sizes)})
        plan = plan_image(big, preset)
        full = interleaved({"processor": lambda: processor_outputs(proc, image, preset),
                            "crops": lambda: render_crops(image, plan),
                            "layout": lambda: build_layout(plan_image(big, preset))},
                           rounds=3, min_time=0)
        lines.append(f"  {strategy:16} engine {ms(s['engine'])} vs API {ms(s['api'])} = "
                     f"{ratio(s, 'engine', 'api')} | full processor {ms(full['processor'])}: "
                     f"layout {ratio(full, 'layout', 'processor')}, crops "
                     f"{ratio(full, 'crops', 'processor')}")
    return lines


def bench_sweep() -> list[str]:
    """Counts for many sizes at once against looping the counting API over the same sizes."""
    n = 200 if SMOKE else 2_000
    h, w = random_sizes(n)
    sizes = [(int(a), int(b)) for a, b in zip(h, w)]
    lines = [f"sweep: count_tokens_many over {n} sizes vs looping the counting API over them"]
    for strategy, repo in FAMILY_DEFAULTS.items():
        preset = get_preset(repo)
        if not hasattr(processor(repo), "_get_num_multimodal_tokens"):  # SmolVLM: no counting API
            lines.append(f"  {strategy:16} no pixel-free counting API in transformers: skipped")
            continue
        s = interleaved({"sweep": lambda: count_tokens_many(h, w, preset),
                         "api": _api(processor(repo), sizes)}, rounds=5, min_time=0.02)
        lines.append(f"  {strategy:16} sweep {ms(s['sweep'])} vs API loop {ms(s['api'])} = "
                     f"{ratio(s, 'sweep', 'api')}")
    return lines


def bench_encode() -> list[str]:
    """The display formats (ui/formats.py) against PNG on every family's overlay and token map
    of a bundled photo: encode time, bytes, PSNR (how alike they look)."""
    from . import analysis
    from .examples import EXAMPLES
    from .images import load_image
    from .ui import formats

    image = load_image(EXAMPLES[0].path).image
    lines = [f"encode: display pictures as {formats.DISPLAY} {formats.PARAMS[formats.DISPLAY]} "
             f"vs PNG, on {EXAMPLES[0].path.name} ({image.width}x{image.height})"]
    for strategy, repo in FAMILY_DEFAULTS.items():
        a = analysis.analyze(image, analysis.choose(repo))
        for name, picture in (("overlay", a.overlay), ("token map", a.token_map)):
            s = interleaved({"display": lambda: formats.encode(picture, formats.DISPLAY),
                             "png": lambda: formats.encode(picture, "png")}, rounds=3, min_time=0)
            data, png = formats.encode(picture, formats.DISPLAY), formats.encode(picture, "png")
            lines.append(f"  {strategy:16} {name:9} {ratio(s, 'display', 'png')} of PNG's time, "
                         f"{len(data) / 1e3:.0f} kB vs {len(png) / 1e3:.0f} kB, PSNR "
                         f"{_psnr(picture, data):.1f} dB")
    return lines


def _psnr(picture, data: bytes) -> float:
    import io

    from PIL import Image

    ref = np.asarray(picture.convert("RGB"), dtype=np.float64)
    got = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"), dtype=np.float64)
    mse = float(((ref - got) ** 2).mean())
    return float("inf") if mse == 0 else 10 * np.log10(255 ** 2 / mse)


def bench_userpath() -> list[str]:
    from .bench_ui import bench_userpath as run
    return run(smoke=SMOKE)


def bench_ui_startup() -> list[str]:
    from .bench_ui import bench_startup
    return bench_startup(rounds=1 if SMOKE else 3)


def bench_probes() -> list[str]:
    from .probes.bench import run_probe_bench
    return run_probe_bench(emit=None, smoke=SMOKE)


def bench_chat() -> list[str]:
    from .bench_chat import run_chat_bench
    return run_chat_bench()


SECTIONS = {"counts": bench_counts, "sweep": bench_sweep, "encode": bench_encode,
            "userpath": bench_userpath, "startup": bench_ui_startup, "chat": bench_chat,
            "probes": bench_probes}
SMOKE_SECTIONS = ("counts", "sweep", "encode", "userpath", "probes")


def main(argv=None) -> None:
    global SMOKE
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--only", default=None, help="comma-separated sections: " + ", ".join(SECTIONS))
    ap.add_argument("--smoke", action="store_true", help="small inputs, one round (CI)")
    args = ap.parse_args(argv)
    SMOKE = args.smoke
    names = args.only.split(",") if args.only else list(SMOKE_SECTIONS if SMOKE else SECTIONS)
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    print(f"{os.cpu_count()} CPU core(s), load average at start "
          f"{' '.join(f'{v:.1f}' for v in load) if load else 'unknown'}"
          f"{' (smoke run)' if SMOKE else ''}", flush=True)
    for name in names:
        for line in SECTIONS[name.strip()]():
            print(line, flush=True)
    if load:
        print(f"load average at end {' '.join(f'{v:.1f}' for v in os.getloadavg())}", flush=True)


if __name__ == "__main__":
    main()

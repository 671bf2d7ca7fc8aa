"""UI benchmarks, called by `python -m anyres_demo.bench --only ui,startup` (or run directly).

bench_analyze: the explorer's full analyze step for a 12 MP image (plan, layout, overlay,
    crops, token map, ledger and why-this-grid tables) against the transformers processor
    alone on the same image, in the same run. Target <= 0.5x.
bench_startup: `python app.py` until its first page is served, against a bare gr.Blocks app
    launched the same way. Target <= 2x.
Nothing here asserts; every number is a ratio against a reference measured alongside it.
"""
from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time

from .presets import FAMILY_DEFAULTS, get_preset
from .serving import free_port, stop_process, wait_until_serving

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BARE_APP = """
import os
import gradio as gr
with gr.Blocks() as demo:
    gr.Markdown("bare")
demo.launch(server_name="127.0.0.1", server_port=int(os.environ["GRADIO_SERVER_PORT"]))
"""


def analyze_step(image, choice):
    """What a user waits for after an upload: every explorer view of one image."""
    from . import analysis, ledger, plots

    result = analysis.analyze(image, choice)
    ledger.ledger_table(result.plan)
    ledger.why_table(result.plan)
    plots.candidates_chart(result.plan)
    return result


def _processor(preset):
    try:
        from .backends.hf_processors import build_processor, processor_outputs
    except ImportError:  # the backend module is optional: use transformers directly
        return None
    proc = build_processor(preset)
    return lambda image: processor_outputs(proc, image, preset)


def bench_analyze() -> list[str]:
    from . import analysis
    from .bench import BIG_HW, test_image, timeit

    image = test_image(BIG_HW)
    lines = [f"ui analyze step vs transformers processor, 12 MP image {BIG_HW[1]}x{BIG_HW[0]} "
             "(target: analyze <= 0.5x processor)"]
    for strategy, repo in FAMILY_DEFAULTS.items():
        preset = get_preset(repo)
        run_processor = _processor(preset)
        if run_processor is None:
            lines.append(f"  {strategy:16} processor backend unavailable; skipped")
            continue
        choice = analysis.choose(repo)
        t_proc = timeit(lambda: run_processor(image), repeat=3, min_time=0)
        t_ui = timeit(lambda: analyze_step(image, choice), repeat=5, min_time=0)
        lines.append(f"  {strategy:16} processor {t_proc * 1e3:7.1f} ms | analyze {t_ui * 1e3:7.1f} ms "
                     f"= {t_ui / t_proc:.2f}x processor")
    return lines


def time_to_first_page(argv: list[str], timeout: float = 180.0) -> float:
    """Seconds from starting `argv` (in the repo root) until GET / answers 200."""
    port = free_port()
    env = {**os.environ, "GRADIO_SERVER_NAME": "127.0.0.1", "GRADIO_SERVER_PORT": str(port),
           "GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_OFFLINE": "1"}
    start = time.perf_counter()
    proc = subprocess.Popen(argv, cwd=REPO, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        wait_until_serving(f"http://127.0.0.1:{port}/", proc, timeout)
        return time.perf_counter() - start
    finally:
        stop_process(proc)


def bench_startup(rounds: int = 3) -> list[str]:
    with tempfile.NamedTemporaryFile("w", suffix="_bare_app.py", delete=False) as f:
        f.write(BARE_APP)
        bare = f.name
    try:
        t_app, t_bare = [], []
        for _ in range(rounds):  # interleaved, so drifting machine load hits both alike
            t_bare.append(time_to_first_page([sys.executable, bare]))
            t_app.append(time_to_first_page([sys.executable, "app.py"]))
    finally:
        os.unlink(bare)
    app, ref = statistics.median(t_app), statistics.median(t_bare)
    return [f"ui startup to first served page (median of {rounds}; target <= 2x bare gr.Blocks): "
            f"app.py {app:.2f} s | bare Blocks {ref:.2f} s = {app / ref:.2f}x"]


if __name__ == "__main__":
    for line in bench_analyze() + bench_startup():
        print(line, flush=True)

"""UI benchmarks, called by `python -m anyres_demo.bench --only userpath,startup`.

bench_userpath: the user's wait through the running app: a client (gradio_client, as a browser
    would) uploads a 12 MP JPEG, gets every view of each family, Compare and What-if, and fetches
    every image the server sends (bytes counted); then switches family, then changes a setting.
    Reference, measured interleaved in the same run: the floor, the same work in-process without
    a server: decode + the engine's compute + encoding the same pictures in the app's formats
    (ui/formats.py). Target <= 1.5x the floor.
bench_startup: `python app.py` until its first page is served, against a bare gr.Blocks app
    launched the same way. Target <= 2x.
Nothing here asserts; every number is a ratio against a reference measured alongside it.
"""
from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any, Callable

from .presets import FAMILY_DEFAULTS, OVERRIDABLE, get_preset
from .serving import free_port, stop_process, wait_until_serving

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BARE_APP = """
import os
import gradio as gr
with gr.Blocks() as demo:
    gr.Markdown("bare")
demo.launch(server_name="127.0.0.1", server_port=int(os.environ["GRADIO_SERVER_PORT"]))
"""
def _no_settings() -> tuple:
    """Every setting control at "the checkpoint's value", in overrides.SETTING_SPECS order (the
    API needs a value for each)."""
    from .overrides import SETTING_SPECS

    empty = {"int": None, "float": None, "pinpoints": "", "bool": "checkpoint", "choice": None}
    return tuple(empty[spec.kind] for spec in SETTING_SPECS.values())


NO_SETTINGS = _no_settings()


HALVED = ("max_pixels", "max_tiles", "max_soft_tokens", "longest_edge")  # tried in this order


def changed_setting(model: str) -> tuple | None:
    """The UI's setting values (overrides.SETTING_SPECS order) with one setting of `model`'s
    family changed to a value its processor accepts: a halved budget or limit, else one canvas
    fewer; None when the family reads none of these."""
    from . import analysis
    from .overrides import SETTING_SPECS

    preset, values = get_preset(model), analysis.checkpoint_settings(model)
    reads = OVERRIDABLE.get(preset.strategy, ())
    names = list(SETTING_SPECS)
    tries = [(n, values[n] // 2) for n in HALVED
             if n in names and SETTING_SPECS[n].field in reads and values.get(n)]
    if values.get("pinpoints") and "pinpoints" in names and SETTING_SPECS["pinpoints"].field in reads:
        tries.append(("pinpoints", ", ".join(values["pinpoints"].split(", ")[:-1])))
    for name, value in tries:
        try:
            analysis.choose(model, **{name: value})
        except ValueError:
            continue
        row = list(NO_SETTINGS)
        # a menu (Gemma 4's budget) holds its choices as text, as the browser sends them
        row[names.index(name)] = str(value) if SETTING_SPECS[name].kind == "choice" else value
        return tuple(row)
    return None


# ----------------------------------------------------------------------------- the floor
def named(settings: tuple) -> dict:
    """UI setting values (SETTING_SPECS order, maybe fewer) as keyword arguments."""
    from .overrides import SETTING_SPECS
    return dict(zip(SETTING_SPECS, settings))


def floor_work(path: str, model: str, settings: tuple = NO_SETTINGS, decode: bool = True,
               image=None) -> Any:
    """What the app computes for one analyze + Compare + What-if, in-process: decode (unless
    given the image), plan, every view, the tables and charts, every family on the image, the
    staircases, and each picture encoded as the app sends it."""
    from . import analysis, ledger, plots
    from .images import load_image
    from .ui import formats
    from .views import display_source

    image = load_image(path).image if decode else image
    choice = analysis.choose(model, **named(settings))
    display = display_source(image)
    a = analysis.analyze(image, choice, display=display)
    ledger.ledger_table(a.plan), ledger.why_table(a.plan), ledger.divergence_markdown(a.plan)
    plots.candidates_chart(a.plan)
    gallery, _, _ = analysis.compare(display, choice)
    analysis.whatif(a.plan.image_hw.width, a.plan.image_hw.height)
    for picture in (a.overlay, a.token_map, *(g for g, _ in gallery)):
        formats.encode(picture, formats.DISPLAY)
    for crop, _ in a.crops:
        formats.encode(crop, formats.EXACT)
    return image


# ----------------------------------------------------------------------------- the client
class UserSession:
    """One browser-like session on the running app (its own State), downloading every file."""

    def __init__(self, url: str):
        from gradio_client import Client

        self.folder = tempfile.mkdtemp(prefix="anyres_bench_client_")
        self.client = Client(url, verbose=False, download_files=self.folder)
        self.bytes = 0

    def analyze(self, path: str, model: str, settings: tuple = NO_SETTINGS) -> None:
        from gradio_client import handle_file
        from PIL import Image

        with Image.open(path) as im:
            width, height = im.size
        before = self._stored()
        self.client.predict(handle_file(path), model, *settings, api_name="/analyze")
        self.client.predict(handle_file(path), list(FAMILY_DEFAULTS), api_name="/compare")
        self.client.predict(width, height, 12845056, 12, "280", api_name="/whatif")
        self.bytes = self._stored() - before  # what this view fetched

    def _stored(self) -> int:
        return sum(os.path.getsize(os.path.join(d, f))
                   for d, _, files in os.walk(self.folder) for f in files)

    def close(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


def _jpeg(size_hw, seed: int, folder: str) -> str:
    """A fresh 12 MP camera-like JPEG (new pixels each round: nothing is cached between)."""
    from .bench import test_image

    path = os.path.join(folder, f"photo_{seed}.jpg")
    test_image(size_hw, seed=seed).save(path, quality=90)
    return path


def _rounds(fns: dict[str, Callable[[int], object]], rounds: int) -> dict[str, list[float]]:
    """Like bench.interleaved, for work that takes seconds: each fn gets the round number."""
    samples: dict[str, list[float]] = {name: [] for name in fns}
    for r in range(rounds):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn(r)
            samples[name].append(time.perf_counter() - start)
    return samples


def bench_userpath(smoke: bool = False) -> list[str]:
    from .bench import BIG_HW, ratio
    from .images import load_image

    size_hw = (750, 1000) if smoke else BIG_HW
    rounds = 1 if smoke else 3
    families = list(FAMILY_DEFAULTS.items())[:1] if smoke else list(FAMILY_DEFAULTS.items())
    folder = tempfile.mkdtemp(prefix="anyres_bench_jpeg_")
    lines = [f"user path through the running app (gradio client, every image fetched) vs the "
             f"floor in-process (decode + compute + encode the same pictures), "
             f"{size_hw[1]}x{size_hw[0]} JPEG, {rounds} interleaved round(s) (target <= 1.5x)"]
    with serving(["app.py"]) as url:
        session = UserSession(url)
        try:
            warm = _jpeg((300, 400), 999, folder)
            session.analyze(warm, families[0][1])  # first-use imports on both sides
            floor_work(warm, families[0][1])
            for strategy, model in families:
                paths = [_jpeg(size_hw, 100 * r + len(lines), folder) for r in range(rounds)]
                upload = _rounds({"app": lambda r: session.analyze(paths[r], model),
                                  "floor": lambda r: floor_work(paths[r], model)}, rounds)
                sent = session.bytes
                images = [load_image(p).image for p in paths]
                other = next(m for s, m in FAMILY_DEFAULTS.items() if s != strategy)
                switch = _rounds({"app": lambda r: session.analyze(paths[r], other),
                                  "floor": lambda r: floor_work(paths[r], other, decode=False,
                                                                image=images[r])}, rounds)
                setting = changed_setting(model)
                line = (f"  {strategy:16} upload: app {statistics.median(upload['app']):.2f} s vs "
                        f"floor {statistics.median(upload['floor']):.2f} s = "
                        f"{ratio(upload, 'app', 'floor')}, {sent / 1e6:.1f} MB fetched a view | switch "
                        f"family {ratio(switch, 'app', 'floor')}")
                if setting is not None:
                    s = _rounds({"app": lambda r: session.analyze(paths[r], model, setting),
                                 "floor": lambda r: floor_work(paths[r], model, setting,
                                                               decode=False, image=images[r])},
                                rounds)
                    line += f" | change a setting {ratio(s, 'app', 'floor')}"
                lines.append(line)
        finally:
            session.close()
            shutil.rmtree(folder, ignore_errors=True)
    return lines


# ----------------------------------------------------------------------------- start-up
class serving:
    """`with serving(argv) as url:` a server started from the repo root on a free port."""

    def __init__(self, argv: list[str], timeout: float = 300.0):
        self.argv, self.timeout = argv, timeout

    def __enter__(self) -> str:
        port = free_port()
        env = {**os.environ, "GRADIO_SERVER_NAME": "127.0.0.1", "GRADIO_SERVER_PORT": str(port),
               "GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_OFFLINE": "1"}
        self.proc = subprocess.Popen([sys.executable, *self.argv], cwd=REPO, env=env,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        url = f"http://127.0.0.1:{port}/"
        try:
            wait_until_serving(url, self.proc, self.timeout)
        except BaseException:
            stop_process(self.proc)
            raise
        return url

    def __exit__(self, *exc) -> None:
        stop_process(self.proc)


def time_to_first_page(argv: list[str], timeout: float = 180.0) -> float:
    """Seconds from starting `argv` (in the repo root) until GET / answers 200."""
    start = time.perf_counter()
    with serving(argv, timeout):
        return time.perf_counter() - start


def bench_startup(rounds: int = 3) -> list[str]:
    with tempfile.NamedTemporaryFile("w", suffix="_bare_app.py", delete=False) as f:
        f.write(BARE_APP)
        bare = f.name
    try:
        t_app, t_bare = [], []
        for _ in range(rounds):  # interleaved, so drifting machine load hits both alike
            t_bare.append(time_to_first_page([bare]))
            t_app.append(time_to_first_page(["app.py"]))
    finally:
        os.unlink(bare)
    app, ref = statistics.median(t_app), statistics.median(t_bare)
    return [f"ui startup to first served page (median of {rounds}; target <= 2x bare gr.Blocks): "
            f"app.py {app:.2f} s | bare Blocks {ref:.2f} s = {app / ref:.2f}x"]


if __name__ == "__main__":
    for line in bench_userpath() + bench_startup():
        print(line, flush=True)

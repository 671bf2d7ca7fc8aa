"""A room full of people: many sessions at once, each with its own image and its own state.

The queue settings are read from the app's dependency table; the concurrency test drives a
launched `python app.py` with 16 gradio_client sessions at once, each analysing a different
size with a different model and then exporting, so a session that saw another's image,
settings or state (gr.State) would get another's numbers.
"""
from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from gradio_client import Client, handle_file
from PIL import Image

from anyres_demo import plan_image
from anyres_demo.presets import FAMILY_DEFAULTS
from anyres_demo.ui import QUEUE
from anyres_demo.ui.explorer import IMAGE_QUEUE

from app_server import api_settings, running_app

SESSIONS = 16
MODELS = list(FAMILY_DEFAULTS.values())
# 16 distinct (height, width): portrait, landscape, square, tiny and wide, none repeated
SIZES = [(61 + 97 * i, 1501 - 83 * i) for i in range(SESSIONS)]


@pytest.fixture(scope="module")
def app_module():
    import app  # builds the demo and its queue exactly as `python app.py` does

    return app


def _fns(demo, name: str) -> list:
    found = [fn for fn in demo.fns.values() if fn.name == name]
    assert found, name
    return found


def test_queue_settings(app_module):
    queue = app_module.demo._queue
    assert queue.max_size == QUEUE["max_size"] >= 100  # a room, not ZeroGPU's default of 1
    assert queue.default_concurrency_limit == QUEUE["default_concurrency_limit"] >= 4
    assert app_module.demo.api_open is False  # every API call goes through the queue


def test_image_events_share_one_bounded_queue(app_module):
    fns = [fn for name in ("on_analyze", "on_compare", "on_export")
           for fn in _fns(app_module.demo, name)]
    # analyze (a setting or the page load, a new image, a model change), compare (after each,
    # and on picking families), export
    assert len(fns) == 8
    assert {fn.concurrency_id for fn in fns} == {IMAGE_QUEUE["concurrency_id"]}
    assert {fn.concurrency_limit for fn in fns} == {IMAGE_QUEUE["concurrency_limit"]}
    assert 2 <= IMAGE_QUEUE["concurrency_limit"] <= 8


def test_probes_run_one_at_a_time_with_a_visible_queue(app_module):
    fns = _fns(app_module.demo, "on_attention") + _fns(app_module.demo, "on_legibility")
    assert len({fn.concurrency_id for fn in fns}) == 1
    for fn in fns:
        assert fn.concurrency_limit == 1 and fn.queue
        assert fn.show_progress != "hidden"  # the waiting user sees their place in the queue


def _total(html: str) -> int:
    return int(html.split('token-total-number">')[1].split("<")[0].replace(",", ""))


def _session(url: str, path: Path, model: str, start: threading.Barrier) -> dict:
    client = Client(url, verbose=False)
    start.wait(timeout=120)  # every session analyses at the same moment
    out = client.predict(handle_file(str(path)), model, *api_settings(), api_name="/analyze")
    json_path, _, _, code = client.predict(handle_file(str(path)), api_name="/export")
    plan = json.load(open(json_path))["plan"]
    return {"total": _total(out[0]), "ledger_total": out[8]["data"][-1][1],
            "export_total": plan["num_tokens"], "export_model": plan["model"],
            "export_hw": (plan["image"]["height"], plan["image"]["width"]), "code": code}


@pytest.mark.slow
def test_sixteen_sessions_at_once_each_get_their_own_counts(tmp_path):
    paths = []
    for i, (h, w) in enumerate(SIZES):
        path = tmp_path / f"session_{i:02d}_{w}x{h}.png"
        Image.new("RGB", (w, h), (i * 15, 255 - i * 15, 128)).save(path)
        paths.append(path)
    start = threading.Barrier(SESSIONS)
    with running_app() as url, ThreadPoolExecutor(SESSIONS) as pool:
        futures = [pool.submit(_session, url, paths[i], MODELS[i % len(MODELS)], start)
                   for i in range(SESSIONS)]
        results = [f.result(timeout=600) for f in futures]
    for i, ((h, w), got) in enumerate(zip(SIZES, results)):
        model = MODELS[i % len(MODELS)]
        expected = plan_image((h, w), model).num_tokens
        assert got["total"] == got["ledger_total"] == got["export_total"] == expected, (i, got)
        # export reads the session's gr.State: this session's model and size, nobody else's
        assert got["export_model"] == model and got["export_hw"] == (h, w), (i, got)
        assert f"the {w}x{h} image analysed" in got["code"] and repr(model) in got["code"]
    assert len({r["total"] for r in results}) >= 12  # the sizes really differ in cost


def test_chat_runs_one_request_at_a_time_with_a_visible_queue(app_module):
    from anyres_demo.ui.chat import CHAT_QUEUE

    fns = _fns(app_module.demo, "respond") + _fns(app_module.demo, "load_model")
    assert len(fns) == 3  # Send, Enter in the textbox, Load model
    assert {fn.concurrency_id for fn in fns} == {CHAT_QUEUE["concurrency_id"]}
    for fn in fns:
        assert fn.concurrency_limit == 1 and fn.queue
        assert fn.show_progress != "hidden"

"""Offline mode makes no network call: the app, launched as `python app.py` with every proxy
variable pointing at a loopback listener (tests/listener.py), analyses an image, answers a
probe from the shipped cache and refuses a chat with a clear "offline" message, and not one
connection reaches the listener.

The app is launched without GRADIO_ANALYTICS_ENABLED or HF_HUB_DISABLE_TELEMETRY, so app.py's
own defaults must keep gradio quiet: with GRADIO_ANALYTICS_ENABLED=True the same run makes
one connection (b"CONNECT api.gradio.app:443"); without ORT_DISABLE_TELEMETRY (app.py and
probes/ set it) an uncached probe makes two (b"CONNECT mobile.events.data.microsoft.com:443").
Python-level connections and name lookups that ignore the proxy variables are caught too, by
an audit hook loaded into the server. HF_HOME is an empty folder, so no model is on disk and
the chat must fail.
"""
from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
from gradio_client import Client, handle_file
from PIL import Image, ImageDraw

from anyres_demo import plan_image
from anyres_demo.examples import get_example
from anyres_demo.presets import FAMILY_DEFAULTS

from app_server import api_settings, serving_app
from listener import CountingListener, proxy_env

QWEN = "Qwen/Qwen2-VL-2B-Instruct"
CHAT_MODEL = "llava-hf/llava-onevision-qwen2-0.5b-ov-hf"
EXAMPLE = "document_page.png"


# Loaded into the server through PYTHONPATH: every socket connection and name lookup the
# Python process makes (to anything but loopback) is written to $ANYRES_NET_LOG, so even
# calls that ignore the proxy variables (plain DNS) are seen.
SITECUSTOMIZE = textwrap.dedent("""
    import os, sys
    _LOG = os.environ["ANYRES_NET_LOG"]
    _LOCAL = ("127.", "::1", "localhost", "0.0.0.0", "")

    def _hook(event, args):
        if event == "socket.getaddrinfo":
            target = str(args[0])
        elif event == "socket.connect" and isinstance(args[1], tuple):
            target = str(args[1][0])
        else:
            return
        if not target.startswith(_LOCAL):
            with open(_LOG, "a") as f:
                f.write(event + " " + target + "\\n")

    sys.addaudithook(_hook)
""")


@pytest.fixture(scope="module")
def net_log(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("audit")
    (folder / "sitecustomize.py").write_text(SITECUSTOMIZE)
    return folder / "net.log"


@pytest.fixture(scope="module")
def offline(tmp_path_factory, net_log):
    listener = CountingListener()
    env = {**proxy_env(listener), "HF_HUB_OFFLINE": "1",
           "PYTHONPATH": str(net_log.parent), "ANYRES_NET_LOG": str(net_log),
           "ANYRES_CACHE_DIR": str(tmp_path_factory.mktemp("probe-cache")),  # probes uncached
           "HF_HOME": str(tmp_path_factory.mktemp("hf")),  # no model on disk
           # app.py's own defaults must keep these quiet; TRANSFORMERS_OFFLINE is not needed
           "GRADIO_ANALYTICS_ENABLED": None, "HF_HUB_DISABLE_TELEMETRY": None,
           "TRANSFORMERS_OFFLINE": None, "ORT_DISABLE_TELEMETRY": None}
    try:
        with serving_app(env=env) as served:
            yield served, Client(served.url, verbose=False), listener
    finally:
        listener.close()


def _text(part: dict) -> str:
    return part.get("text", "") if isinstance(part, dict) else str(part)


def test_analysis_works_offline(offline):
    _, client, _ = offline
    example = get_example(EXAMPLE)
    out = client.predict(handle_file(str(example.path)), QWEN, *api_settings(),
                         api_name="/analyze")
    expected = plan_image(example.size_hw, QWEN).num_tokens
    assert f'token-total-number">{expected:,}<' in out[0]


def test_a_bundled_example_probe_comes_from_the_shipped_cache(offline):
    _, client, _ = offline
    example = get_example(EXAMPLE)
    panels, crops, note, table = client.predict(handle_file(str(example.path)), "last", QWEN,
                                                *api_settings(), api_name="/on_attention")
    assert "from the cache" in note and panels and crops


def _checkpoint_settings() -> list:
    """One "use the checkpoint's value" per settings control, in SETTING_SPECS order."""
    from anyres_demo.overrides import SETTING_SPECS

    empty = {"pinpoints": "", "bool": "checkpoint", "choice": "checkpoint"}
    return [empty.get(spec.kind) for spec in SETTING_SPECS.values()]


def test_a_chat_turn_fails_clearly_and_keeps_the_conversation(offline):
    _, client, _ = offline
    example = get_example(EXAMPLE)
    history = [{"role": "user", "content": [{"type": "text", "text": "hello"}]},
               {"role": "assistant", "content": [{"type": "text", "text": "hi there"}]}]
    chatbot, box, status, _ = client.predict(
        "what does the page say?", history, handle_file(str(example.path)), 8, 0.0, 0.9, False,
        0, 1.0, "local", CHAT_MODEL, *_checkpoint_settings(), api_name="/chat")
    assert [(m["role"], [_text(p) for p in m["content"]]) for m in chatbot] == \
        [("user", ["hello"]), ("assistant", ["hi there"])]  # the failed turn added nothing
    assert box == "what does the page say?"  # the question stays, ready to resend
    assert "❌ Cannot load " + CHAT_MODEL in status
    assert "offline mode is on (HF_HUB_OFFLINE=1)" in status
    assert "ANYRES_MODEL_DIR" in status  # ...and how to fix it


@pytest.fixture(scope="module")
def fresh_page(tmp_path_factory) -> Path:
    """A small page of text no cache has seen (the probes must compute, not look up)."""
    im = Image.new("RGB", (360, 240), "white")
    draw = ImageDraw.Draw(im)
    for i, line in enumerate(("Offline probes", "make no calls", "to any server")):
        draw.text((20, 30 + 60 * i), line, fill="black", font_size=28)
    path = tmp_path_factory.mktemp("page") / "fresh_page.png"
    im.save(path)
    return path


def test_every_explorer_tab_works_offline(offline, fresh_page):
    _, client, _ = offline
    out = client.predict(handle_file(str(fresh_page)), QWEN, *api_settings(),
                         api_name="/analyze")
    assert f'token-total-number">{plan_image((240, 360), QWEN).num_tokens:,}<' in out[0]
    gallery, _, table = client.predict(handle_file(str(fresh_page)), list(FAMILY_DEFAULTS),
                                       api_name="/compare")
    assert len(table["data"]) == len(FAMILY_DEFAULTS) and gallery
    json_path = client.predict(handle_file(str(fresh_page)), api_name="/export")[0]
    assert json.load(open(json_path))["plan"]["num_tokens"] == plan_image((240, 360), QWEN).num_tokens
    assert client.predict(1920, 1080, 12845056, 12, "280", api_name="/whatif")[2]["data"]


def test_uncached_probes_work_offline(offline, fresh_page):
    """Both probes computed on the spot (onnxruntime sessions built in this server), which is
    when onnxruntime 1.32 sent its telemetry (b"CONNECT mobile.events.data.microsoft.com")."""
    _, client, _ = offline
    panels, crops, note, _ = client.predict(handle_file(str(fresh_page)), "last", QWEN,
                                            *api_settings(), api_name="/on_attention")
    assert "computed in" in note and panels and crops
    table, pictures, summary = client.predict(handle_file(str(fresh_page)), QWEN, *api_settings(),
                                              api_name="/on_legibility")
    assert "Reference:" in summary and len(table["data"]) == 1 + len(FAMILY_DEFAULTS) and pictures


def test_no_connection_left_the_machine(offline, net_log):
    """Runs after the others in this module: start-up, every tab, uncached probes, chat."""
    served, client, listener = offline
    assert served.proc.poll() is None
    assert listener.seen() == []
    assert not net_log.exists() or net_log.read_text() == ""

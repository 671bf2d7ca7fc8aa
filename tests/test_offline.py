"""Offline mode makes no network call: the app, launched as `python app.py` with every proxy
variable pointing at a loopback listener (tests/listener.py), analyses an image, answers a
probe from the shipped cache and refuses a chat with a clear "offline" message, and not one
connection reaches the listener.

The app is launched without GRADIO_ANALYTICS_ENABLED or HF_HUB_DISABLE_TELEMETRY, so app.py's
own defaults must keep gradio quiet: with GRADIO_ANALYTICS_ENABLED=True the same run makes
one connection (b"CONNECT api.gradio.app:443"). HF_HOME is an empty folder, so no model is
on disk and the chat must fail.
"""
from __future__ import annotations

import pytest
from gradio_client import Client, handle_file

from anyres_demo import plan_image
from anyres_demo.examples import get_example

from app_server import serving_app
from listener import CountingListener, proxy_env

QWEN = "Qwen/Qwen2-VL-2B-Instruct"
CHAT_MODEL = "llava-hf/llava-onevision-qwen2-0.5b-ov-hf"
EXAMPLE = "document_page.png"


@pytest.fixture(scope="module")
def offline(tmp_path_factory):
    listener = CountingListener()
    env = {**proxy_env(listener), "HF_HUB_OFFLINE": "1",
           "HF_HOME": str(tmp_path_factory.mktemp("hf")),  # no model on disk
           # app.py's own defaults must keep these quiet; TRANSFORMERS_OFFLINE is not needed
           "GRADIO_ANALYTICS_ENABLED": None, "HF_HUB_DISABLE_TELEMETRY": None,
           "TRANSFORMERS_OFFLINE": None}
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
    out = client.predict(handle_file(str(example.path)), QWEN, None, None, None, None, "",
                         api_name="/analyze")
    expected = plan_image(example.size_hw, QWEN).num_tokens
    assert f'token-total-number">{expected:,}<' in out[0]


def test_a_bundled_example_probe_comes_from_the_shipped_cache(offline):
    _, client, _ = offline
    example = get_example(EXAMPLE)
    panels, crops, note, table = client.predict(handle_file(str(example.path)), "last", QWEN, None,
                                                None, None, None, "", api_name="/on_attention")
    assert "from the cache" in note and panels and crops


def test_a_chat_turn_fails_clearly_and_keeps_the_conversation(offline):
    _, client, _ = offline
    example = get_example(EXAMPLE)
    history = [{"role": "user", "content": [{"type": "text", "text": "hello"}]},
               {"role": "assistant", "content": [{"type": "text", "text": "hi there"}]}]
    chatbot, box, status, _ = client.predict(
        "what does the page say?", history, handle_file(str(example.path)), 8, 0.0, 0.9, False,
        0, 1.0, "local", CHAT_MODEL, None, None, None, None, "", api_name="/chat")
    assert [(m["role"], [_text(p) for p in m["content"]]) for m in chatbot] == \
        [("user", ["hello"]), ("assistant", ["hi there"])]  # the failed turn added nothing
    assert box == "what does the page say?"  # the question stays, ready to resend
    assert "❌ Cannot load " + CHAT_MODEL in status
    assert "offline mode is on (HF_HUB_OFFLINE=1)" in status
    assert "ANYRES_MODEL_DIR" in status  # ...and how to fix it


def test_no_connection_left_the_machine(offline):
    """Runs after the others in this module: start-up, analysis, probe and chat attempt."""
    served, client, listener = offline
    assert served.proc.poll() is None
    assert client.predict(1920, 1080, 12845056, 12, api_name="/whatif")[2]["data"]
    assert listener.seen() == []

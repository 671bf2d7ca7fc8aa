"""Chat through a real OpenAI-compatible serving engine: `transformers serve` (from
transformers[serving] at the pinned version), started once for this module on 127.0.0.1,
serving tiny random-weight models from folders, offline, on the CPU.

Streaming reaches the chat window; the server's usage.prompt_tokens equals the local
processor's count (and the explorer's settings reach the server); a server whose processor
has another max_pixels is caught by that check, with both numbers; a server that is down,
slow or serves another model gives a clear message and the conversation is kept; with the
same model also loaded here the server's answers get heatmaps. The engine runs requests one
at a time, so nothing here assumes batching.
"""
import json
import os
import shutil
import socket
import subprocess
import time
import warnings

import gradio as gr
import httpx
import pytest

from anyres_demo.backends import chat
from anyres_demo.backends import endpoint as ep
from anyres_demo.ui import chat as ui
from anyres_demo import security
from anyres_demo.overrides import SETTING_SPECS
from hf_helpers import noise_image

IMAGE = noise_image((300, 500), seed=3)
SERVER_START_S = 240


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """`transformers serve` on a free loopback port; models load on first request by folder."""
    exe = shutil.which("transformers")
    if exe is None:  # requirements-dev.txt installs transformers[serving]
        pytest.fail("the `transformers` CLI is missing: pip install -r requirements-dev.txt")
    port = _free_port()
    log = tmp_path_factory.mktemp("serve") / "serve.log"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    with open(log, "wb") as out:
        proc = subprocess.Popen([exe, "serve", "--host", "127.0.0.1", "--port", str(port),
                                 "--device", "cpu", "--log-level", "warning"],
                                stdout=out, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + SERVER_START_S
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if httpx.get(url + "/health", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.5)
    else:
        proc.kill()
        pytest.fail("transformers serve did not start: " + log.read_text()[-3000:])
    yield url + "/v1"
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()


@pytest.fixture
def use_server(server, monkeypatch):
    """Point the app at the server for `folder` (the server's model name is the folder)."""
    monkeypatch.setattr(chat, "BACKEND", chat.ChatBackend())
    monkeypatch.setenv(security.ENV_ALLOW_ANY_MODEL, "1")
    monkeypatch.setenv(ep.ENV_ENDPOINT_ENGINE, "transformers")
    monkeypatch.delenv(ep.ENV_ENDPOINT_TIMEOUT, raising=False)

    def point(folder, url=server, timeout=None):
        monkeypatch.setenv(ep.ENV_ENDPOINT, url)
        monkeypatch.setenv(ep.ENV_ENDPOINT_MODEL, folder)
        if timeout is not None:
            monkeypatch.setenv(ep.ENV_ENDPOINT_TIMEOUT, str(timeout))
    return point


def run_turn(message, history, model, **kw):
    """All yields of one ui.respond call (arguments as the Send button passes them)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        image = kw.pop("image", IMAGE)
        values = [kw.pop(name, None) for name in SETTING_SPECS]  # the explorer's settings
        gen = [kw.pop("max_new_tokens", 8), 0.0, 0.9, True, 0, 1.0, kw.pop("answer_with", None)]
        assert not kw, f"unknown arguments {sorted(kw)}"
        outs = list(ui.respond(message, history, image, *gen, None, model, gr.Progress(),
                               *values))
    shown = [w for w in caught if w.filename.replace(os.sep, "/").endswith("gradio/helpers.py")]
    return outs, [str(w.message) for w in shown]


def local_prompt_len(folder, overrides=None):
    loaded = ep.PROCESSORS.get(chat.resolve_source(folder))
    return chat.prepare_turn(loaded, IMAGE, [], "describe the image", overrides).prompt_len


@pytest.mark.parametrize("family,overrides", [
    ("qwen2_vl", {}), ("qwen2_vl", {"max_pixels": 50_000}), ("qwen2_5_vl", {"min_pixels": 200_000}),
    ("llava_next", {}), ("llava_onevision", {}), ("internvl", {"max_tiles": 2})])
def test_streamed_answers_and_the_prompt_check_passes(family, overrides, tiny_model_dirs,
                                                      use_server):
    folder = tiny_model_dirs[family]
    use_server(folder)
    outs, warned = run_turn("describe the image", [], folder, **overrides)
    assert not warned
    streamed = [o[0][-1]["content"] for o in outs[1:-1]]
    assert len(set(streamed)) >= 2  # chunks arrived one after another
    history, box, state, status, _ = outs[-1]
    assert box == "" and history[0]["content"] == "describe the image"
    assert history[1]["content"].startswith(chat.RANDOM_LABEL)  # never shown as an answer
    want = local_prompt_len(folder, {k.replace("pinpoints", "pinpoints_hw"): v
                                     for k, v in overrides.items()})
    assert f"Prompt check passed: the server counted {want:,} prompt tokens" in status
    assert "Heatmaps need the model inside this app" in status
    result, _ = chat.TURNS.get(state.turns[-1])
    assert result.prompt_check_ok and result.capture is None
    if overrides:  # the setting reached the server: its count moved with ours
        assert want != local_prompt_len(folder)
    outs2, warned = run_turn("and now ?", history, folder)  # multi-turn through the server
    assert not warned and len(outs2[-1][0]) == 4 and "Prompt check passed" in outs2[-1][3]


def test_a_server_with_other_max_pixels_is_caught(tiny_model_dirs, tmp_path, use_server):
    ours = tiny_model_dirs["qwen2_vl"]
    theirs = shutil.copytree(ours, tmp_path / "server-qwen")
    path = theirs / "processor_config.json"
    config = json.loads(path.read_text())
    config["image_processor"]["size"]["longest_edge"] = 50_000  # the server resizes smaller
    path.write_text(json.dumps(config))
    use_server(str(theirs))
    outs, warned = run_turn("describe the image", [], ours)
    local = local_prompt_len(ours)
    history, _, _, status, _ = outs[-1]
    assert len(history) == 2  # the answer is shown, with the failed check beside it
    message = next(w for w in warned if "Prompt check failed" in w)
    assert f"this app's processor {local:,}" in message
    server_count = int(message.split("the server counted ")[1].split(" ")[0].replace(",", ""))
    assert server_count < local and "other limits" in message and message in status


@pytest.mark.parametrize("what", ["down", "slow", "wrong model"])
def test_server_trouble_is_explained_and_the_conversation_kept(what, tiny_model_dirs,
                                                               use_server):
    folder = tiny_model_dirs["qwen2_vl"]
    history = [{"role": "user", "content": "hello"}, {"role": "assistant", "content": "hi"}]
    if what == "down":
        use_server(folder, url=f"http://127.0.0.1:{_free_port()}/v1")
        expected = "cannot be reached"
    elif what == "slow":
        silent = socket.socket()
        silent.bind(("127.0.0.1", 0))
        silent.listen(4)  # accepts the connection, never answers
        use_server(folder, url=f"http://127.0.0.1:{silent.getsockname()[1]}/v1", timeout=1)
        expected = "sent nothing for 1 s"
    else:
        use_server("no-such/model")
        expected = "refused the request (HTTP"
    outs, warned = run_turn("what is this ?", history, folder)
    assert outs[-1][0] == history and outs[-1][1] == "what is this ?"
    assert any(expected in w and "conversation is kept" in w for w in warned)
    assert expected in outs[-1][3]
    if what == "wrong model":
        assert "ANYRES_ENDPOINT_MODEL (no-such/model)" in outs[-1][3]


def test_the_same_model_loaded_here_gives_the_servers_answers_heatmaps(tiny_model_dirs,
                                                                       use_server):
    folder = tiny_model_dirs["internvl"]
    use_server(folder)
    chat.BACKEND.ensure(chat.resolve_source(folder))
    outs, warned = run_turn("describe the image", [], folder)
    assert not warned
    result, _ = chat.TURNS.get(outs[-1][2].turns[-1])
    assert result.prompt_check_ok and result.capture is not None
    assert result.capture.image_mean.shape[1:] == (len(result.answer_ids),
                                                    result.plan.num_image_tokens)
    _, _, token, box = ui.turn_controls(result.turn_id)
    assert box["visible"] is True
    panels, text = ui.render_heatmap(result.turn_id)
    assert len(panels) == 2 and "Random-weight test model" in text
    # the host can still answer with the local model
    outs, warned = run_turn("describe the image", [], folder, answer_with=ui.LOCAL)
    assert not warned and "Prompt check" not in outs[-1][3]


def test_request_bodies_per_engine_and_the_key_from_the_environment():
    settings = chat.GenerationSettings(32, temperature=0.7, top_p=0.8, top_k=5,
                                       repetition_penalty=1.1)
    msgs = ep.openai_messages(chat.build_messages([], "what?"), IMAGE)
    assert msgs[0]["content"][0]["image_url"]["url"].startswith("data:image/png;base64,")
    env = {ep.ENV_ENDPOINT: "http://h:8000/v1/", ep.ENV_ENDPOINT_MODEL: "m",
           ep.ENV_ENDPOINT_KEY: "secret"}
    vllm = ep.Endpoint.from_env(env)
    assert vllm.url == "http://h:8000/v1" and vllm.engine == "vllm" and "secret" not in repr(vllm)
    assert vllm.headers() == {"Authorization": "Bearer secret"}
    body = ep.request_body(vllm, msgs, settings, {"max_pixels": 50_000})
    assert body["mm_processor_kwargs"] == {"max_pixels": 50_000}
    assert (body["top_k"], body["repetition_penalty"], body["temperature"]) == (5, 1.1, 0.7)
    assert body["stream_options"] == {"include_usage": True} and body["max_tokens"] == 32
    serve = ep.Endpoint.from_env({**env, ep.ENV_ENDPOINT_ENGINE: "transformers"})
    body = ep.request_body(serve, msgs, settings, {"max_pixels": 50_000})
    assert body["chat_template_kwargs"] == {"processor_kwargs": {"max_pixels": 50_000}}
    assert json.loads(body["generation_config"])["top_k"] == 5 and "top_k" not in body
    with pytest.raises(ValueError, match="ANYRES_ENDPOINT_MODEL"):
        ep.Endpoint.from_env({ep.ENV_ENDPOINT: "http://h/v1"})
    assert ep.Endpoint.from_env({}) is None
    ok, note = ep.token_check(100, 130, True)
    assert not ok and "130" in note and "100" in note and "30 more" in note

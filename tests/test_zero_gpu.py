"""ZeroGPU, offline, with spaces' own CUDA emulation (SPACES_ZERO_GPU=true, as the spaces
package's tests run it): the emulation intercepts only in the thread that imported spaces, so
a lazy load from a gradio worker thread fails with its "did not intercept" error; the app
therefore places the host's model on cuda at start-up in the main thread and keeps it as the
only one. A subprocess, because spaces patches torch for the whole process at import."""
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from anyres_demo.backends import chat
from hf_helpers import noise_image

REPO = Path(__file__).resolve().parents[1]
SCRIPT = textwrap.dedent("""
    import spaces  # first, as on a Space: before anything touches CUDA
    import json, sys, threading
    from anyres_demo.backends import chat
    from anyres_demo.ui import chat as ui
    from hf_helpers import noise_image

    folder, other = sys.argv[1], sys.argv[2]
    out = {"zero_gpu": chat.zero_gpu()}

    def in_worker(fn):
        box = {}
        def run():
            try:
                box["value"] = fn()
            except Exception as exc:
                box["error"] = f"{type(exc).__name__}: {exc}"
        thread = threading.Thread(target=run)
        thread.start()
        thread.join()
        return box

    # yesterday's pattern: the first message loads lazily, in a gradio worker thread
    out["lazy"] = in_worker(lambda: chat.load_model(chat.resolve_source(folder))).get("error")
    # the fix: app.py loads the host's model at start-up, in the main thread
    loaded = chat.preload_for_zero_gpu(folder)
    out["device"] = [loaded.device, str(next(loaded.model.parameters()).device)]
    same = in_worker(lambda: chat.BACKEND.ensure(chat.resolve_source(folder)))
    out["same_is_loaded"] = same.get("value") is loaded
    out["switch"] = in_worker(lambda: chat.BACKEND.ensure(chat.resolve_source(other))).get("error")
    prepared = in_worker(lambda: chat.prepare_turn(loaded, noise_image((300, 500)), [], "hi"))
    out["prepared_source"] = prepared["value"].source == loaded.source
    out["start_model"] = ui.start_model()
    print("RESULT " + json.dumps(out))
""")


@pytest.fixture(scope="module")
def emulated(tiny_model_dirs):
    env = {**os.environ, "SPACES_ZERO_GPU": "true",
           "SPACES_ZERO_DEVICE_API_URL": "http://127.0.0.1:9/",  # never reached here
           "PYTHONPATH": os.pathsep.join([str(REPO), str(REPO / "tests")]),
           "ANYRES_ALLOW_ANY_MODEL": "1"}
    proc = subprocess.run([sys.executable, "-c", SCRIPT, tiny_model_dirs["qwen2_vl"],
                           tiny_model_dirs["internvl"]], env=env, capture_output=True,
                          text=True, timeout=600, cwd=str(REPO))
    line = next((x for x in proc.stdout.splitlines() if x.startswith("RESULT ")), None)
    assert line, proc.stdout[-2000:] + proc.stderr[-4000:]
    return json.loads(line[len("RESULT "):])


def test_a_lazy_load_from_a_worker_thread_is_what_fails_on_zero_gpu(emulated):
    assert emulated["zero_gpu"] is True
    assert "did not intercept" in emulated["lazy"]


def test_the_start_up_load_places_the_model_on_cuda_in_the_main_thread(emulated):
    assert emulated["device"] == ["cuda", "cuda:0"]
    assert emulated["same_is_loaded"] and emulated["prepared_source"]
    assert emulated["start_model"] == "Qwen/Qwen2-VL-2B-Instruct"  # the chat starts on it


def test_a_model_switch_is_refused_with_a_clear_message(emulated):
    message = emulated["switch"]
    assert message.startswith("ModelLoadError: This Space runs on ZeroGPU")
    assert "ANYRES_MODEL" in message and "restart the Space" in message


def test_a_reused_gpu_worker_never_answers_with_another_model(tiny_model_dirs):
    """spaces reuses its forked GPU worker, which keeps the module state of its fork: a turn
    prepared for one model must not run on whatever model that state holds."""
    backend = chat.ChatBackend()
    first = backend.ensure(chat.resolve_source(tiny_model_dirs["qwen2_vl"]))
    prepared = chat.prepare_turn(first, noise_image((300, 500)), [], "describe the image")
    backend.ensure(chat.resolve_source(tiny_model_dirs["internvl"]))
    with pytest.raises(chat.ModelLoadError, match="GPU worker holds InternVL"):
        next(chat.gpu_stream(prepared, chat.GenerationSettings(4), "zero", backend=backend))
    assert backend.run_lock.acquire(timeout=1)
    backend.run_lock.release()


def test_off_zero_gpu_nothing_is_preloaded():
    backend = chat.ChatBackend()
    assert chat.preload_for_zero_gpu("qwen2-vl", backend) is None
    assert backend.loaded is None and not backend.pinned

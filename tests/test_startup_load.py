"""`python app.py` starts on a busy machine: five starts while CPU hogs run on every core, all
serve the page (gradio's own 3-second start-up self-check used to make some exit; see
ui/hardening.patient_startup_check).

To keep this short, one launcher imports gradio and the app's package once (6 s of CPU each
time otherwise) and forks five children that each run app.py as `python app.py` would
(runpy, __main__, their own port). The five start at once, so each also competes with the
other four and the hogs."""
from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request

import pytest

from anyres_demo.serving import free_port, stop_process

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STARTS = 5
HOG = "while True:\n    pass\n"
LAUNCHER = """
import os, runpy, sys
import gradio, anyres_demo.ui, anyres_demo.backends.chat  # shared by every start
children = []
for port in sys.argv[1:]:
    pid = os.fork()
    if pid == 0:
        os.environ["GRADIO_SERVER_PORT"] = port
        sys.argv = ["app.py"]
        try:
            runpy.run_path("app.py", run_name="__main__")
        except BaseException as exc:
            print(f"start on port {port} failed: {exc!r}", file=sys.stderr, flush=True)
            os._exit(1)
        os._exit(0)
    children.append(pid)
for pid in children:
    os.waitpid(pid, 0)
"""


def _serves(url: str, deadline: float) -> bool:
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=5) as resp:
                if resp.status == 200:
                    return True
        except OSError:
            time.sleep(0.2)
    return False


@pytest.mark.skipif(not hasattr(os, "fork"), reason="the launcher forks")
def test_app_starts_under_load_five_times():
    ports = [str(free_port()) for _ in range(STARTS)]
    env = {**os.environ, "GRADIO_SERVER_NAME": "127.0.0.1", "GRADIO_ANALYTICS_ENABLED": "False",
           "HF_HUB_OFFLINE": "1"}
    hogs = [subprocess.Popen([sys.executable, "-c", HOG]) for _ in range(os.cpu_count() or 1)]
    launcher = subprocess.Popen([sys.executable, "-c", LAUNCHER, *ports], cwd=REPO, env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                                start_new_session=True)
    try:
        deadline = time.monotonic() + 300
        served = [_serves(f"http://127.0.0.1:{port}/", deadline) for port in ports]
    finally:
        for hog in hogs:
            hog.kill()
        os.killpg(launcher.pid, 15)  # the launcher and its five children
        stop_process(launcher)
    errors = launcher.stderr.read()
    assert all(served), (served, errors[-1500:])
    assert "failed" not in errors, errors[-1500:]


def test_startup_check_waits_for_a_slow_first_page():
    """The mechanism, deterministically: a page that takes 4 s to answer (a busy machine's
    first page) fails gradio's own check and passes the patient one."""
    import http.server
    import threading

    from gradio import networking

    from anyres_demo.ui import hardening

    class Slow(http.server.BaseHTTPRequestHandler):
        def do_HEAD(self):
            time.sleep(4)
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Slow)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/"
    try:
        original = networking.url_ok
        hardening.patient_startup_check()
        assert networking.url_ok.patient and networking.url_ok(url)
        if not getattr(original, "patient", False):
            assert not original(url)  # gradio's 3-second check gives up
    finally:
        server.shutdown()

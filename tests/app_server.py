"""Run `python app.py` on a free loopback port for the client and browser tests."""
from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass

from anyres_demo.serving import free_port, stop_process, wait_until_serving

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@dataclass
class ServedApp:
    """A launched app: its base URL and its process (tests read /proc/PID/status)."""

    url: str
    proc: subprocess.Popen
    log: object = None  # the server's stdout + stderr (a temporary file)

    def output(self) -> str:
        """Everything the server printed so far."""
        self.log.flush()
        self.log.seek(0)
        return self.log.read().decode(errors="replace")


@contextlib.contextmanager
def serving_app(script: str = "app.py", timeout: float = 180.0,
                env: dict[str, str | None] | None = None):
    """Yield a ServedApp for `script` on a free port; stop it afterwards. `env` overrides the
    test defaults; a None value removes that variable."""
    port = free_port()
    full_env = {**os.environ, "GRADIO_SERVER_NAME": "127.0.0.1", "GRADIO_SERVER_PORT": str(port),
                "GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_OFFLINE": "1"}
    for key, value in (env or {}).items():
        if value is None:
            full_env.pop(key, None)
        else:
            full_env[key] = value
    log = tempfile.TemporaryFile()
    proc = subprocess.Popen([sys.executable, script], cwd=REPO, env=full_env, stdout=log,
                            stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    try:
        wait_until_serving(url, proc, timeout)
        yield ServedApp(url, proc, log)
    except Exception:
        log.seek(0)
        sys.stderr.write(log.read().decode(errors="replace")[-4000:])
        raise
    finally:
        stop_process(proc)
        log.close()


@contextlib.contextmanager
def running_app(script: str = "app.py", timeout: float = 180.0):
    """Yield the base URL of `script` served on a free port; stop it afterwards."""
    with serving_app(script, timeout) as served:
        yield served.url

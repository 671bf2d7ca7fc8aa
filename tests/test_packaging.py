"""pyproject.toml: `pip install .` gives a package that works from any directory.

A copy of the checkout is installed (no dependencies, no index: they are the system's) into a
fresh virtual environment that sees the system's packages; everything then runs from an
unrelated folder, where the checkout is not importable: the token calculator, the README's
Python API snippet, the bundled examples, and the `anyres-explorer` command serving the app.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import urllib.request

import pytest

from anyres_demo import plan_image
from anyres_demo.serving import free_port, stop_process, wait_until_serving

from app_server import REPO


def _tracked_copy(dest: str) -> None:
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=REPO,
                           capture_output=True, text=True, check=True).stdout.split()
    for rel in files:
        src = os.path.join(REPO, rel)
        if os.path.isfile(src):
            os.makedirs(os.path.dirname(os.path.join(dest, rel)), exist_ok=True)
            shutil.copy2(src, os.path.join(dest, rel))


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(python, bin folder, a working folder outside the checkout) of the installed package."""
    root = tmp_path_factory.mktemp("pkg")
    src, venv, work = root / "src", root / "venv", root / "work"
    _tracked_copy(str(src))
    work.mkdir()
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip",
                    str(venv)], check=True)
    python = str(venv / "bin" / "python")
    out = subprocess.run([python, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                          "--no-index", str(src)], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-3000:]
    return python, str(venv / "bin"), str(work)


def _run(installed, *argv: str) -> str:
    python, bindir, work = installed
    env = {**os.environ, "PATH": bindir + os.pathsep + os.environ["PATH"], "HF_HUB_OFFLINE": "1"}
    env.pop("PYTHONPATH", None)
    argv = (python,) + argv[1:] if argv[0] == "python" else argv
    out = subprocess.run(argv, cwd=work, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout


def test_installed_package_is_imported_from_site_packages(installed):
    where = _run(installed, "python", "-c", "import anyres_demo; print(anyres_demo.__file__)")
    assert "site-packages" in where and not where.startswith(REPO)


def test_token_calculator_runs_from_anywhere(installed):
    out = json.loads(_run(installed, "python", "-m", "anyres_demo", "tokens", "--model",
                          "qwen2-vl", "--size", "1920x1080", "--json"))
    assert out[0]["num_image_tokens"] == plan_image((1080, 1920), "qwen2-vl").num_image_tokens


def test_readme_api_snippet_and_examples_run_from_anywhere(installed):
    code = textwrap.dedent("""
        from anyres_demo import plan_image, build_layout
        from anyres_demo.examples import EXAMPLES
        plan = plan_image((1080, 1920), "llava-next")
        layout = build_layout(plan)
        assert all(e.path.is_file() for e in EXAMPLES), [str(e.path) for e in EXAMPLES]
        print(plan.num_tokens, len(layout), len(EXAMPLES))
    """)
    plan = plan_image((1080, 1920), "llava-next")
    from anyres_demo.examples import EXAMPLES
    assert _run(installed, "python", "-c", code).split() == [str(plan.num_tokens)] * 2 + [str(len(EXAMPLES))]


def test_anyres_explorer_command_serves_the_app(installed):
    python, bindir, work = installed
    port = free_port()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False"}
    env.pop("PYTHONPATH", None)
    proc = subprocess.Popen([os.path.join(bindir, "anyres-explorer"), "--port", str(port)],
                            cwd=work, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_until_serving(f"http://127.0.0.1:{port}/", proc, 180)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/config", timeout=30) as resp:
            config = resp.read().decode()
        assert "AnyRes Explorer" in config
    finally:
        stop_process(proc)

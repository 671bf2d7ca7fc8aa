"""Hugging Face Spaces: the README front matter is what Spaces needs, and the workshop section
documents every environment variable the code reads."""
from __future__ import annotations

import re
from pathlib import Path

import gradio
import yaml

from anyres_demo.backends.chat import DEFAULT_MODEL
from anyres_demo.presets import PRESETS

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text()
# https://huggingface.co/docs/hub/spaces-config-reference (suggested_hardware)
HARDWARE = {"cpu-basic", "cpu-upgrade", "t4-small", "t4-medium", "l4x1", "l4x4", "a10g-small",
            "a10g-large", "a10g-largex2", "a10g-largex4", "a100-large"}


def front_matter() -> dict:
    match = re.match(r"---\n(.*?)\n---\n", README, re.DOTALL)
    assert match, "README.md must start with the Spaces YAML block"
    return yaml.safe_load(match.group(1))


def test_front_matter_runs_this_app_with_the_pinned_gradio():
    meta = front_matter()
    assert meta["sdk"] == "gradio"
    assert meta["sdk_version"] == gradio.__version__
    assert f"gradio=={meta['sdk_version']}" in (REPO / "requirements.txt").read_text()
    assert (REPO / meta["app_file"]).is_file()
    assert str(meta["python_version"]) == "3.11"
    assert meta["license"] and meta["title"] and len(meta["short_description"]) <= 60


def test_front_matter_models_and_hardware():
    meta = front_matter()
    assert set(meta["models"]) == set(PRESETS)
    assert meta["suggested_hardware"] in HARDWARE
    preloaded = [entry.split()[0] for entry in meta["preload_from_hub"]]
    assert DEFAULT_MODEL in preloaded and set(preloaded) <= set(PRESETS)


def test_every_environment_variable_the_code_reads_is_documented():
    section = README.split("## Hosting a workshop", 1)[1].split("\n## ", 1)[0]
    sources = [*sorted((REPO / "anyres_demo").rglob("*.py")), REPO / "app.py"]
    names = set()
    for path in sources:
        if path.name.startswith("bench"):
            continue  # benchmarks set variables for their own runs
        text = path.read_text()
        names |= set(re.findall(r"environ(?:\.get|\.setdefault)?\(\s*\"([A-Z_]+)\"", text))
        names |= set(re.findall(r"^(?:ENV_[A-Z_]*|ENV_VAR) = \"([A-Z_]+)\"", text, re.MULTILINE))
    assert {"ANYRES_MODEL", "ANYRES_MODEL_DIR", "ANYRES_CACHE_DIR", "ANYRES_ALLOW_ANY_MODEL",
            "GRADIO_SERVER_NAME", "GRADIO_SERVER_PORT", "GRADIO_ANALYTICS_ENABLED"} <= names
    missing = sorted(n for n in names | {"HF_HUB_OFFLINE"} if f"`{n}`" not in section)
    assert missing == []

"""The pure core imports no torch, gradio, transformers or onnxruntime (style: dependencies
point one way). Checked in a fresh interpreter so other tests' imports don't leak in."""
import json
import subprocess
import sys

HEAVY = ["torch", "gradio", "transformers", "onnxruntime", "PIL", "plotly"]
CORE = ["anyres_demo", "anyres_demo.geometry", "anyres_demo.presets", "anyres_demo.layout",
        "anyres_demo.engine", "anyres_demo.strategies", "anyres_demo.overrides", "anyres_demo.cli"]


def test_core_imports_nothing_heavy():
    code = (
        "import sys, json\n"
        f"for m in {CORE!r}: __import__(m)\n"
        "from anyres_demo import plan_image, build_layout\n"
        "build_layout(plan_image((1080, 1920), 'llava-onevision'))\n"
        f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == []


def test_the_check_can_fail():
    code = "import sys, json; import PIL.Image; print(json.dumps('PIL' in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) is True

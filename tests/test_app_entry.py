"""app.py: the host's model choice reaches the UI; the module-level demo exists for Spaces."""
import subprocess
import sys
import textwrap


def run(code: str, **env) -> str:
    import os

    out = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                         text=True, env={**os.environ, **env}, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout.strip().splitlines()[-1]


MODEL_VALUE = """
    import app
    box = next(b for b in app.demo.blocks.values() if getattr(b, "elem_id", None) == "model-select")
    print(box.value)
"""


def test_default_model_comes_from_the_first_example():
    assert run(MODEL_VALUE) == "llava-hf/llava-v1.6-mistral-7b-hf"


def test_anyres_model_sets_the_starting_model():
    assert run(MODEL_VALUE, ANYRES_MODEL="qwen2.5-vl") == "Qwen/Qwen2.5-VL-3B-Instruct"


def test_model_host_and_port_flags_parse():
    code = """
        import app
        args = app.parse_args(["--model", "internvl", "--port", "7999"])
        print(args.model, args.port, args.host)
    """
    assert run(code) == "internvl 7999 127.0.0.1"

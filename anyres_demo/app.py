"""AnyRes Explorer's web app: `anyres-explorer` (installed) or `python app.py` (a checkout).

GRADIO_SERVER_NAME / GRADIO_SERVER_PORT (or --host / --port) choose the address; Hugging Face
Spaces sets them. --model (or ANYRES_MODEL) picks the model the app starts on and the chat
loads. Only the explorer's light dependencies load here: models and transformers load lazily
inside the tabs that use them, so the first page appears quickly. Nothing phones home:
gradio's analytics and the hub's telemetry are off unless the host turns them on.
"""
from __future__ import annotations

import argparse
import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # read when gradio is imported
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")  # onnxruntime (the probes) phones home

from .backends.chat import ENV_MODEL, default_model  # noqa: E402
from .security import return_freed_memory  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="anyres-explorer", description=__doc__.splitlines()[0])
    ap.add_argument("--host", default=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"))
    ap.add_argument("--port", type=int, default=int(os.environ.get("GRADIO_SERVER_PORT", "7860")))
    ap.add_argument("--model", default=os.environ.get(ENV_MODEL),
                    help=f"preset repo id / alias or a local checkpoint folder (sets ${ENV_MODEL})")
    return ap.parse_args(argv)


def build_app(args: argparse.Namespace):
    """The queued gradio app for parsed `args` (sets ANYRES_MODEL from --model)."""
    from .ui import QUEUE, app_tabs, build_demo

    return_freed_memory()  # a room of 100 MP uploads must not leave the server holding gigabytes
    if args.model:
        os.environ[ENV_MODEL] = args.model
    return build_demo(extra_tabs=app_tabs(),
                      initial_model=default_model() if args.model else None).queue(**QUEUE)


def launch(demo, args: argparse.Namespace) -> None:
    from .ui import launch_kwargs

    demo.launch(server_name=args.host, server_port=args.port, **launch_kwargs())


def main(argv: list[str] | None = None) -> int:
    """The `anyres-explorer` command."""
    args = parse_args(argv)
    launch(build_app(args), args)
    return 0

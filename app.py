"""AnyRes Explorer: `python app.py` serves the app at http://127.0.0.1:7860.

GRADIO_SERVER_NAME / GRADIO_SERVER_PORT (or --host / --port) choose the address; Hugging Face
Spaces sets them. Only the explorer's light dependencies load here: models and transformers
load lazily inside the tabs that use them, so the first page appears quickly.
"""
from __future__ import annotations

import argparse
import os

from anyres_demo.ui import build_demo, launch_kwargs, optional_tabs


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--host", default=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"))
    ap.add_argument("--port", type=int, default=int(os.environ.get("GRADIO_SERVER_PORT", "7860")))
    return ap.parse_args(argv)


demo = build_demo(extra_tabs=optional_tabs())

if __name__ == "__main__":
    args = parse_args()
    demo.queue(default_concurrency_limit=2).launch(server_name=args.host, server_port=args.port,
                                                   **launch_kwargs())

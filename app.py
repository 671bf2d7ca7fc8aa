"""AnyRes Explorer: `python app.py` serves the app at http://127.0.0.1:7860.

GRADIO_SERVER_NAME / GRADIO_SERVER_PORT (or --host / --port) choose the address; Hugging Face
Spaces sets them. --model (or ANYRES_MODEL) picks the model the app starts on and the chat
loads. On a ZeroGPU Space that model is loaded here, at start-up in the main thread (spaces'
pattern); elsewhere only the explorer's light dependencies load here: models and transformers load lazily
inside the tabs that use them, so the first page appears quickly. Nothing phones home:
gradio's analytics and the hub's telemetry are off unless the host turns them on.
"""
from __future__ import annotations

import argparse
import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # read when gradio is imported
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

from anyres_demo.backends.chat import ENV_MODEL, default_model, preload_for_zero_gpu  # noqa: E402
from anyres_demo.security import return_freed_memory  # noqa: E402
from anyres_demo.ui import QUEUE, app_tabs, build_demo, launch_kwargs  # noqa: E402

return_freed_memory()  # a room of 100 MP uploads must not leave the server holding gigabytes


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--host", default=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"))
    ap.add_argument("--port", type=int, default=int(os.environ.get("GRADIO_SERVER_PORT", "7860")))
    ap.add_argument("--model", default=os.environ.get(ENV_MODEL),
                    help=f"preset repo id / alias or a local checkpoint folder (sets ${ENV_MODEL})")
    return ap.parse_args(argv)


# Spaces and gradio's reload mode import this module and look for `demo`: no argv there.
ARGS = parse_args(None if __name__ == "__main__" else [])
if ARGS.model:
    os.environ[ENV_MODEL] = ARGS.model
# ZeroGPU: the chat model goes onto (emulated) cuda now, in the main thread; a no-op elsewhere
preload_for_zero_gpu()
demo = build_demo(extra_tabs=app_tabs(),
                  initial_model=default_model() if ARGS.model else None).queue(**QUEUE)

if __name__ == "__main__":
    demo.launch(server_name=ARGS.host, server_port=ARGS.port, **launch_kwargs())

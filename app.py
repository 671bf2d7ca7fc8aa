"""AnyRes Explorer: `python app.py` serves the app at http://127.0.0.1:7860.

The same as the installed `anyres-explorer` command (anyres_demo/app.py has the options);
Spaces and gradio's reload mode import this module and look for `demo`.
"""
from __future__ import annotations

from anyres_demo.app import build_app, launch, parse_args

# Spaces and gradio's reload mode import this module: no argv there.
ARGS = parse_args(None if __name__ == "__main__" else [])
demo = build_app(ARGS)

if __name__ == "__main__":
    launch(demo, ARGS)

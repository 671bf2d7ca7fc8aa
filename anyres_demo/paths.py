"""Where the bundled assets (example images, precomputed probe results) live.

In a checkout (and with `pip install -e .`) they are the repository's assets/ folder next to
this package; `pip install .` copies them to <prefix>/share/anyres-explorer/assets
(pyproject.toml's data-files), so the app and the API work from any directory.
"""
from __future__ import annotations

import sys
from pathlib import Path

CHECKOUT_ASSETS = Path(__file__).resolve().parent.parent / "assets"
INSTALLED_ASSETS = Path(sys.prefix) / "share" / "anyres-explorer" / "assets"


def assets_dir() -> Path:
    """The checkout's assets/ when present, else the installed copy."""
    return CHECKOUT_ASSETS if (CHECKOUT_ASSETS / "examples").is_dir() else INSTALLED_ASSETS

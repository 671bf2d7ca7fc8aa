"""Fill assets/probe_cache/ with the probes' results for the bundled examples, so a workshop
room sees them at once (and spends no CPU or GPU quota on them).

    ANYRES_CACHE_DIR=assets/probe_cache python assets/precompute_probes.py
"""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("ANYRES_CACHE_DIR", str(ROOT / "assets" / "probe_cache"))

from anyres_demo.examples import example_paths  # noqa: E402
from anyres_demo.images import load_image  # noqa: E402
from anyres_demo.probes import precompute  # noqa: E402


def main() -> None:
    for path in example_paths():
        t = time.perf_counter()
        precompute(load_image(path).image, modes=("last", "rollout"))
        print(f"{Path(path).name}: {time.perf_counter() - t:.1f} s", flush=True)


if __name__ == "__main__":
    main()

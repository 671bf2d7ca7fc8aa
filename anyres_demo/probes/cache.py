"""Disk cache for probe results, so workshop examples answer instantly.

One `.npz` file per result: numpy arrays plus a JSON string under "__meta__" (no pickle, so a
cache folder shipped with the app cannot run code). Keys hash the image content, the view
(strategy + settings), the probe's own settings and the probe version; bump a probe's VERSION
when its output changes and old entries are simply never read again.

Folders: $ANYRES_CACHE_DIR (several joined with os.pathsep are all read; writes go to the
first), else ~/.cache/anyres_demo; assets/probe_cache (shipped) is always read last. Point it at a folder in the repo to ship precomputed
examples, e.g. ANYRES_CACHE_DIR=~/.cache/anyres_demo:assets/probe_cache. A cache that cannot
be written (read-only Space disk) only costs speed: errors are logged, never raised.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Any, Optional

import numpy as np

from ..paths import assets_dir

ENV_VAR = "ANYRES_CACHE_DIR"
DEFAULT_DIR = Path("~/.cache/anyres_demo")
# Precomputed results for the bundled examples, shipped with the app and always read last.
SHIPPED_DIR = assets_dir() / "probe_cache"
META = "__meta__"

log = logging.getLogger(__name__)


def cache_dirs() -> list[Path]:
    """Folders searched in order; the first is where new entries are written."""
    raw = os.environ.get(ENV_VAR, "").strip()
    parts = [p for p in raw.split(os.pathsep) if p.strip()] if raw else [str(DEFAULT_DIR)]
    folders = [Path(p).expanduser() for p in parts]
    return folders + ([SHIPPED_DIR] if SHIPPED_DIR not in folders else [])


def make_key(*parts: Any) -> str:
    """A stable file name from any printable parts (image digest, view, settings, version)."""
    text = "\x1f".join(str(p) for p in parts)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:40]


def _path(folder: Path, probe: str, key: str) -> Path:
    return folder / probe / f"{key}.npz"


def load(probe: str, key: str) -> Optional[tuple[dict[str, np.ndarray], dict]]:
    """(arrays, meta) of a stored result, or None when no folder holds it."""
    for folder in cache_dirs():
        path = _path(folder, probe, key)
        if not path.is_file():
            continue
        try:
            with np.load(path, allow_pickle=False) as data:
                arrays = {k: data[k] for k in data.files if k != META}
                meta = json.loads(str(data[META]))
            return arrays, meta
        except (OSError, ValueError, KeyError) as err:  # a torn or foreign file: recompute
            log.warning("ignoring unreadable cache entry %s: %s", path, err)
    return None


def save(probe: str, key: str, arrays: dict[str, np.ndarray], meta: dict) -> Optional[Path]:
    """Store a result atomically in the first cache folder; None if that is not possible."""
    path = _path(cache_dirs()[0], probe, key)
    payload = dict(arrays)
    payload[META] = np.array(json.dumps(meta))
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        with os.fdopen(fd, "wb") as fh:
            np.savez_compressed(fh, **payload)
        os.replace(tmp, path)  # readers never see a half-written file
        return path
    except OSError as err:
        log.warning("could not write probe cache %s: %s", path, err)
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)
        return None

"""One decode per upload, shared by every tab.

gr.Image hands each event the upload's file path. Analyze decodes it once here; Compare and
Export reuse the display copy analyze drew from (views.display_source, about 1000 px a side),
and the probes the decoded image itself, so a 12 MP JPEG is decoded once however many tabs
read it. Entries are keyed by the file (real path, size, modification time), so a new upload
is a new entry. Memory: display copies are small (at most 16 MB each, DISPLAY_ENTRIES kept);
full images are kept only while they total at most FULL_CACHE_BYTES, so a room of 100 MP
uploads is decoded again rather than held.
"""
from __future__ import annotations

import os
import threading
from collections import OrderedDict
from typing import Any

from ..images import LoadedImage, load_image
from ..views import Source, display_source

FULL_CACHE_BYTES = 200_000_000  # decoded RGB images kept (Pillow: 4 bytes per pixel)
DISPLAY_ENTRIES = 16
_LOCK = threading.Lock()
_FULL: "OrderedDict[tuple, LoadedImage]" = OrderedDict()
_DISPLAY: "OrderedDict[tuple, Source]" = OrderedDict()


def file_key(path: str) -> tuple:
    st = os.stat(path)
    return (os.path.realpath(path), st.st_size, st.st_mtime_ns)


def _nbytes(loaded: LoadedImage) -> int:
    return 4 * loaded.size_hw.area


def _remember(cache: OrderedDict, key: tuple, value: Any) -> None:
    cache[key] = value
    cache.move_to_end(key)


def decoded(path: str) -> LoadedImage:
    """The upload as RGB (images.load_image, ValueError for anything that is not an image),
    decoded once per file."""
    key = file_key(path) if os.path.isfile(path) else None
    with _LOCK:
        if key in _FULL:
            _FULL.move_to_end(key)
            return _FULL[key]
    loaded = load_image(path)
    if key is not None and _nbytes(loaded) <= FULL_CACHE_BYTES:
        with _LOCK:
            _remember(_FULL, key, loaded)
            while sum(_nbytes(v) for v in _FULL.values()) > FULL_CACHE_BYTES:
                _FULL.popitem(last=False)
    return loaded


def display(path: str, loaded: LoadedImage | None = None) -> Source:
    """The display copy every drawing of this upload starts from (decoding only if needed)."""
    key = file_key(path) if os.path.isfile(path) else None
    with _LOCK:
        if key in _DISPLAY:
            _DISPLAY.move_to_end(key)
            return _DISPLAY[key]
    source = display_source((loaded or decoded(path)).image)
    if key is not None:
        with _LOCK:
            _remember(_DISPLAY, key, source)
            while len(_DISPLAY) > DISPLAY_ENTRIES:
                _DISPLAY.popitem(last=False)
    return source


def clear() -> None:
    with _LOCK:
        _FULL.clear()
        _DISPLAY.clear()

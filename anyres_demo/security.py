"""What the app lets people do to the machine it runs on: which models, which files, no URLs.

* Models: people using the app pick from the presets (`presets.PRESETS`, by repo id or alias).
  Any other model (another hub repo, a folder on the server) needs the host's opt-in,
  ``ANYRES_ALLOW_ANY_MODEL=1``. What the host configures is trusted: ``ANYRES_MODEL`` (a preset
  or a folder), ``ANYRES_MODEL_DIR`` (pre-downloaded checkpoints) and folders that code passes
  to the backend (the tests' tiny random-weight models), because whoever sets those already
  controls the server. `allowed_model` is the check for strings that come from people (the
  chat tab calls it; the model box only offers the presets and, with the opt-in, takes typed
  values).
* Code from the hub never runs: every `from_pretrained` passes ``trust_remote_code=False``
  (tests/test_security.py reads the package source to prove it).
* URLs are never fetched on behalf of a user: `is_url` is the test, `URL_REFUSAL` the message
  (the loader refuses URL strings; ui/hardening.py stops gradio's own downloads).
* Sizes: the caps below, enforced by the loader (`images`) and by the server (launch's
  ``max_file_size`` and a request-size limit); `return_freed_memory` so that memory freed
  after a large image goes back to the system.

Pure: no gradio, torch or transformers.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os
import re
from typing import Mapping

from .images import MAX_PIXELS, MAX_UPLOAD_BYTES, PEAK_MEMORY_BOUND
from .presets import ALIASES, PRESETS, get_preset

ENV_ALLOW_ANY_MODEL = "ANYRES_ALLOW_ANY_MODEL"
_TRUE = ("1", "true", "yes", "on")

# One request body: one upload at the loader's cap, plus multipart headers. API calls carry
# file references, not files, so they are far below this.
MAX_REQUEST_BYTES = MAX_UPLOAD_BYTES + 1_000_000
# Re-exported so hosts and tests read every limit from one place.
LIMITS = {"upload_bytes": MAX_UPLOAD_BYTES, "request_bytes": MAX_REQUEST_BYTES,
          "image_pixels": MAX_PIXELS, "decode_peak_bytes": PEAK_MEMORY_BOUND}

# Anything with a scheme ("http://", "ftp://", "file://", "s3://") or a data: URI.
_URL = re.compile(r"^\s*([a-zA-Z][a-zA-Z0-9+.-]*://|data:)")
URL_REFUSAL = ("This app never downloads files from URLs. Save the image to your computer and "
               "upload the file instead.")


def is_url(value: object) -> bool:
    """True for a string that names a remote resource rather than a local file."""
    return isinstance(value, str) and _URL.match(value) is not None


def any_model_allowed(environ: Mapping[str, str] = os.environ) -> bool:
    """Whether the host opted in to models beyond the presets."""
    return environ.get(ENV_ALLOW_ANY_MODEL, "").strip().lower() in _TRUE


def allowed_model(name: str | None, environ: Mapping[str, str] = os.environ) -> str:
    """A model name typed or sent by a person -> the name the backend may load.

    A preset repo id or alias returns the preset's repo id. Anything else (another hub repo
    id, a folder on the server) is returned unchanged only when the host set
    ANYRES_ALLOW_ANY_MODEL=1; otherwise ValueError naming the value. URLs are always refused.
    """
    text = (name or "").strip()
    if not text:
        raise ValueError("no model chosen; pick one of the presets")
    if is_url(text):
        raise ValueError(f"{text[:80]!r} is a URL; models are chosen by name from the presets")
    try:
        return get_preset(text).repo_id
    except ValueError:
        pass
    if any_model_allowed(environ):
        return text
    choices = ", ".join(list(ALIASES) + list(PRESETS))
    raise ValueError(f"{text[:200]!r} is not one of this app's models ({choices}). The host can "
                     f"allow other models by setting {ENV_ALLOW_ANY_MODEL}=1.")


# glibc's M_MMAP_THRESHOLD: allocations at least this big get their own mapping, which free()
# returns to the system at once.
_M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD_BYTES = 1 << 20


def return_freed_memory() -> bool:
    """Make big allocations (decoded images, numpy arrays) their own memory maps, so freeing
    them shrinks the process. Returns False where that is not possible (not glibc).

    Why: glibc raises its mmap threshold after the first big free, so later images land in
    per-thread heaps that are never given back. Measured on the app server: after four
    concurrent 100 MP analyses the idle process kept 2.5-3.3 GB; with this, about 5 MB, and the
    peak fell from 3.3 to 2.8 GB. A fixed threshold (set here) turns the adjustment off.
    """
    name = ctypes.util.find_library("c")
    if not name:
        return False
    try:
        libc = ctypes.CDLL(name)
        return bool(libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES))
    except (OSError, AttributeError):  # musl, macOS, Windows: no mallopt
        return False

"""Server-side limits gradio does not set by itself (gradio 6.31; tests/test_security.py).

Found in gradio's source and checked against a live server:

* An API client may send a file input as ``{"path": "https://...", "meta": {"_type":
  "gradio.FileData"}}`` (any FileData input: our image, the chat history). Before any handler
  runs, gradio downloads it (`Block.async_move_resource_to_block_cache` ->
  `processing_utils.async_ssrf_protected_download`). safehttpx refuses private addresses, but
  still fetches public hosts (huggingface.co without any check) and, for a host that resolves
  privately, asks dns.google over HTTPS: a network call made for a stranger.
  `refuse_url_downloads` replaces gradio's download helpers with a clear refusal.
* ``GET /gradio_api/file=https://...`` makes the server fetch that URL and stream it back;
  so do its alias ``/gradio_api/file/https://...`` and ``/gradio_api/proxy=...``. Rather than
  listing gradio's routes (the tests enumerate them), `RequestGuard` answers 403 to any
  request whose path holds a URL, on every route, and to the proxy route whatever it holds.
* Cached outputs are written by truncate-then-write under a content-hash name, so two sessions
  producing the same picture race (one reads a truncated file). `atomic_cache_writes` renames
  into place instead.
* ``max_file_size`` caps each uploaded file, but not the number of files in one upload
  request nor JSON bodies (a data: URI is decoded to disk). `RequestGuard` caps every request
  body at `security.MAX_REQUEST_BYTES`: a declared length over it is answered 413 at once; a
  chunked body is cut at the limit with gradio's own multipart error (so its upload parser
  deletes the partial files) and answered 413 too.

Files served: only gradio's cache (uploads, rendered outputs, the examples copied there at
start-up). The app needs no `allowed_paths`; `blocked_paths` lists the source anyway, so a
later `allowed_paths` cannot expose it.
"""
from __future__ import annotations

import functools
import os
import re
import tempfile
from pathlib import Path
from typing import Any, Callable

import gradio as gr
from gradio import processing_utils
from gradio.route_utils import MultiPartException
from starlette.middleware import Middleware

from ..security import MAX_REQUEST_BYTES, URL_REFUSAL

REPO = Path(__file__).resolve().parents[2]
# What a file route must never serve, even if someone adds allowed_paths later.
BLOCKED_PATHS = [str(REPO / name) for name in (".git", "app.py", "anyres_demo", "tests")]
# gradio's helpers that fetch a URL; each is looked up on the module at call time.
DOWNLOADERS = ("async_ssrf_protected_download", "ssrf_protected_download", "save_url_to_cache",
               "async_ssrf_protected_get", "unsafe_download")
# A URL anywhere in a request path: after "/" or "=" (file=, proxy=), any scheme, or data:.
_URL_IN_PATH = re.compile(r"[/=]\s*([a-zA-Z][a-zA-Z0-9+.-]*:/|data:)")
# Routes that fetch whatever they are given; this app serves no proxied Space.
_FETCHING_ROUTES = re.compile(r"/proxy=")


def atomic_cache_writes() -> None:
    """Make gradio's image/bytes cache writes atomic (write a temporary file, then rename).

    gradio names a cached output by the hash of its bytes and writes it with
    `Path.write_bytes`, which truncates first. When two sessions produce the same picture at
    once (a room clicking the same example), one session's write truncates the file while the
    other's browser is downloading it: "peer closed connection without sending complete message
    body". gradio's own `save_file_to_cache` already renames into place; these two do not.
    Idempotent."""
    for name, wrap in (("save_pil_to_cache", _atomic_pil), ("save_bytes_to_cache", _atomic_bytes)):
        if not getattr(getattr(processing_utils, name), "atomic", False):
            setattr(processing_utils, name, wrap)


def _write_atomic(path: Path, data: bytes) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, staging = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(staging, path)  # readers keep the complete old file or get the new one
    except BaseException:
        Path(staging).unlink(missing_ok=True)
        raise
    return str(path.resolve())


def _atomic_pil(img, cache_dir: str, name: str = "image", format: str = "webp") -> str:
    data = processing_utils.encode_pil_to_bytes(img, format)
    return _write_atomic(Path(cache_dir) / processing_utils.hash_bytes(data) / f"{name}.{format}",
                         data)


def _atomic_bytes(data: bytes, file_name: str, cache_dir: str) -> str:
    if not Path(file_name).suffix:
        file_name += processing_utils.detect_audio_format(data)
    return _write_atomic(Path(cache_dir) / processing_utils.hash_bytes(data) / Path(file_name).name,
                         data)


_atomic_pil.atomic = _atomic_bytes.atomic = True


def refuse_url_downloads() -> None:
    """Make every gradio download helper raise gr.Error(URL_REFUSAL) instead of fetching.
    Idempotent; applies to the whole process (this app is the only Blocks in it)."""
    for name in DOWNLOADERS:
        current = getattr(processing_utils, name)  # AttributeError: gradio changed; see tests
        if getattr(current, "refuses_urls", False):
            continue
        setattr(processing_utils, name, _refusal(current))


def _refusal(original: Callable) -> Callable:
    @functools.wraps(original)
    def refuse(*args: Any, **kwargs: Any):
        raise gr.Error(URL_REFUSAL)

    refuse.refuses_urls = True
    return refuse


class BodyTooLarge(MultiPartException):
    """Raised into the app when a chunked body passes the cap. A MultiPartException, because
    gradio's upload parser deletes its partial files on exactly that."""


class RequestGuard:
    """ASGI middleware: 403 for any path holding a URL (every file route and alias, the proxy
    route), 413 for request bodies over `max_body_bytes`, declared or chunked."""

    def __init__(self, app, max_body_bytes: int = MAX_REQUEST_BYTES):
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        if fetches_url(scope.get("path", "")):
            return await _plain(send, 403, URL_REFUSAL)
        declared = _content_length(scope)
        if declared is not None and declared > self.max_body_bytes:
            return await _plain(send, 413, self._too_large())
        return await self._capped(scope, receive, send)

    def _too_large(self) -> str:
        return (f"Request too large: the limit is {self.max_body_bytes:,} bytes "
                f"({self.max_body_bytes / 1e6:.0f} MB). Upload a smaller image.")

    async def _capped(self, scope, receive, send):
        """Count the body as it arrives; past the limit, raise BodyTooLarge into the app and
        answer 413 in place of whatever the app then answers (gradio: a 500)."""
        seen, over, answered = 0, False, False

        async def counted():
            nonlocal seen, over
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_body_bytes:
                    over = True
                    raise BodyTooLarge(f"Request exceeded maximum allowed size of "
                                       f"{self.max_body_bytes} bytes.")
            return message

        async def replying(message):
            nonlocal answered
            if not over:
                return await send(message)
            if message["type"] == "http.response.start" and not answered:
                answered = True
                await _plain(send, 413, self._too_large())

        try:
            await self.app(scope, counted, replying)
        except Exception:
            if not over:
                raise
        if over and not answered:
            await _plain(send, 413, self._too_large())


def fetches_url(path: str) -> bool:
    """Whether a request path could make gradio fetch something: it holds a URL, or it is a
    proxy route."""
    return bool(_URL_IN_PATH.search(path) or _FETCHING_ROUTES.search(path))


def _content_length(scope) -> int | None:
    for key, value in scope.get("headers", ()):
        if key == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def _plain(send, status: int, text: str) -> None:
    body = text.encode("utf-8")
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"text/plain; charset=utf-8"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


def server_kwargs() -> dict:
    """launch() keywords that harden the server (see the module docstring)."""
    return {"app_kwargs": {"middleware": [Middleware(RequestGuard)]},
            "blocked_paths": list(BLOCKED_PATHS)}

"""A loopback socket that records every connection made to it: a fake proxy / fake server.

Point HTTP_PROXY / HTTPS_PROXY / ALL_PROXY at `proxy_env(listener)` and any outgoing HTTP(S)
call the app makes (to the hub, to dns.google, to an image URL) arrives here as a connection
whose first bytes name the target (e.g. b"CONNECT huggingface.co:443 ..."). NO_PROXY covers
loopback so the tests can still reach the app.
"""
from __future__ import annotations

import socket
import threading


class CountingListener:
    """Accepts connections on 127.0.0.1, keeps each one's first bytes, then closes it."""

    def __init__(self) -> None:
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(64)
        self.port = self._sock.getsockname()[1]
        self.connections: list[bytes] = []
        self._lock = threading.Lock()
        threading.Thread(target=self._serve, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self._sock.accept()
            except OSError:  # closed
                return
            with conn:
                conn.settimeout(2)
                try:
                    first = conn.recv(300)
                except OSError:
                    first = b""
            with self._lock:
                self.connections.append(first)

    def seen(self) -> list[bytes]:
        with self._lock:
            return list(self.connections)

    def close(self) -> None:
        self._sock.close()


def proxy_env(listener: CountingListener) -> dict[str, str]:
    """Every proxy variable (both spellings) at the listener; loopback exempt."""
    env = {}
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        env[name] = env[name.lower()] = listener.url
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    return env

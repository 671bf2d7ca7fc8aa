"""Security limits: the model allowlist, no remote code, no URL fetching, no stray files served,
upload and request size caps (issue 6).

The served-app tests launch `python app.py` with every proxy variable pointing at a loopback
listener (tests/listener.py). safehttpx, which gradio uses for downloads, would refuse to
connect to a loopback URL anyway, but only after asking dns.google, and it fetches
huggingface.co without checks; both go through the proxy. So any download attempt, whatever
the target, shows up as a connection to the listener, and the tests assert there is none.
Before ui/hardening.py, the FileData and /file= requests below each produced one
(b"CONNECT dns.google:443", b"CONNECT huggingface.co:443").
"""
from __future__ import annotations

import ast
import http.client
import io
import json
import platform
import re
import urllib.error
import urllib.parse
import urllib.request
import uuid
from pathlib import Path

import pytest
from PIL import Image

from anyres_demo import security
from anyres_demo.images import MAX_UPLOAD_BYTES
from anyres_demo.presets import ALIASES, PRESETS

from app_server import REPO, serving_app
from listener import CountingListener, proxy_env

PACKAGE = Path(REPO) / "anyres_demo"
QWEN = "Qwen/Qwen2-VL-2B-Instruct"


# ----------------------------------------------------------------------------- allowlist
@pytest.mark.parametrize("name", list(PRESETS))
def test_every_preset_is_allowed(name):
    assert security.allowed_model(name, environ={}) == name


@pytest.mark.parametrize("alias,repo", list(ALIASES.items()))
def test_aliases_resolve_to_their_preset(alias, repo):
    assert security.allowed_model(f"  {alias.upper()} ", environ={}) == repo


@pytest.mark.parametrize("name", ["someone/llava-finetune", "Qwen/Qwen2-VL-72B-Instruct", "/etc",
                                  "../models/llava", "."])
def test_other_models_need_the_hosts_opt_in(name):
    with pytest.raises(ValueError, match="not one of this app's models") as err:
        security.allowed_model(name, environ={})
    assert "ANYRES_ALLOW_ANY_MODEL=1" in str(err.value)
    assert security.allowed_model(name, environ={"ANYRES_ALLOW_ANY_MODEL": "1"}) == name


@pytest.mark.parametrize("value,allowed", [("1", True), ("true", True), ("YES", True),
                                           ("on", True), ("0", False), ("", False),
                                           ("false", False), ("2", False)])
def test_opt_in_values(value, allowed):
    assert security.any_model_allowed({"ANYRES_ALLOW_ANY_MODEL": value}) is allowed


@pytest.mark.parametrize("name", ["https://evil.example/model", "hf://Qwen/Qwen2-VL-2B-Instruct",
                                  "file:///etc/passwd"])
def test_urls_are_never_models_even_with_the_opt_in(name):
    with pytest.raises(ValueError, match="is a URL"):
        security.allowed_model(name, environ={"ANYRES_ALLOW_ANY_MODEL": "1"})


@pytest.mark.parametrize("name", [None, "", "   "])
def test_no_model_is_a_clear_error(name):
    with pytest.raises(ValueError, match="no model chosen"):
        security.allowed_model(name, environ={})


@pytest.mark.parametrize("text,url", [("http://x/y.png", True), (" HTTPS://x", True),
                                      ("ftp://h/f", True), ("data:image/png;base64,AAAA", True),
                                      ("s3://bucket/key", True), ("/tmp/gradio/a.png", False),
                                      ("C:/images/a.png", False), ("photo.png", False),
                                      (None, False), (42, False)])
def test_is_url(text, url):
    assert security.is_url(text) is url


def test_limits_are_the_loaders_and_cover_one_upload():
    assert security.LIMITS["upload_bytes"] == MAX_UPLOAD_BYTES
    assert MAX_UPLOAD_BYTES < security.MAX_REQUEST_BYTES <= MAX_UPLOAD_BYTES + 2_000_000


# ----------------------------------------------------------------------------- remote code
def _calls(tree: ast.AST):
    return [n for n in ast.walk(tree) if isinstance(n, ast.Call)]


def _package_sources() -> list[Path]:
    files = sorted(PACKAGE.rglob("*.py")) + [Path(REPO) / "app.py"]
    assert len(files) > 20
    return files


def test_no_source_enables_trust_remote_code():
    pattern = re.compile(r"trust_remote_code\s*=\s*(?!False\b)")
    offenders = [f"{path.relative_to(REPO)}:{i}" for path in _package_sources()
                 for i, line in enumerate(path.read_text().splitlines(), 1)
                 if pattern.search(line)]
    assert offenders == []


def test_every_from_pretrained_passes_false_or_nothing():
    seen = 0
    for path in _package_sources():
        for call in _calls(ast.parse(path.read_text())):
            func = call.func
            if not (isinstance(func, ast.Attribute) and func.attr == "from_pretrained"):
                continue
            seen += 1
            where = f"{path.relative_to(REPO)}:{call.lineno}"
            assert not any(k.arg is None for k in call.keywords), f"{where}: **kwargs hides flags"
            for k in call.keywords:
                if k.arg == "trust_remote_code":
                    assert isinstance(k.value, ast.Constant) and k.value.value is False, where
    assert seen >= 4  # processors (hf_processors) and the chat loader


def test_the_chat_loader_says_false_explicitly():
    tree = ast.parse((PACKAGE / "backends" / "chat.py").read_text())
    flags = [k.value.value for call in _calls(tree) for k in call.keywords
             if isinstance(call.func, ast.Attribute) and call.func.attr == "from_pretrained"
             and k.arg == "trust_remote_code"]
    assert flags and all(flag is False for flag in flags)


# ----------------------------------------------------------------------------- the served app
@pytest.fixture(scope="module")
def temp_dir(tmp_path_factory) -> Path:
    """The served app's GRADIO_TEMP_DIR (uploads and their partial files land here)."""
    return tmp_path_factory.mktemp("gradio-temp")


@pytest.fixture(scope="module")
def watched(temp_dir):
    """The app behind a listener that every proxy variable points at: (ServedApp, listener)."""
    listener = CountingListener()
    try:
        with serving_app(env={**proxy_env(listener), "GRADIO_TEMP_DIR": str(temp_dir)}) as served:
            yield served, listener
    finally:
        listener.close()


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=60) as resp:
            return resp.status, resp.read().decode(errors="replace")
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode(errors="replace")


def _call(base: str, api: str, data: list) -> tuple[str, str]:
    """Run an API event through the queue (/gradio_api/call): (event, data) of the last message."""
    req = urllib.request.Request(f"{base}gradio_api/call/{api}",
                                 json.dumps({"data": data}).encode(),
                                 {"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=60) as resp:
        event_id = json.load(resp)["event_id"]
    with urllib.request.urlopen(f"{base}gradio_api/call/{api}/{event_id}", timeout=120) as resp:
        text = resp.read().decode()
    events = re.findall(r"event: (\w+)\ndata: (.*)", text)
    assert events, text
    return events[-1]


def _file(path: str) -> dict:
    return {"path": path, "meta": {"_type": "gradio.FileData"}}


def _api_args(base: str, api: str, **given) -> list:
    """The endpoint's data list from its own API description: `given` by parameter name, every
    other parameter at its default (so the test follows the app's input order)."""
    with urllib.request.urlopen(f"{base}gradio_api/info", timeout=60) as resp:
        params = json.load(resp)["named_endpoints"][f"/{api}"]["parameters"]
    return [given.pop(p["parameter_name"]) if p["parameter_name"] in given else p.get("parameter_default")
            for p in params]


def _analyze_args(image: dict) -> list:
    from anyres_demo.overrides import SETTING_SPECS

    return [image, QWEN, *[None] * len(SETTING_SPECS)]  # every setting: the checkpoint's


def _upload(base: str, name: str, payload: bytes) -> tuple[int, str]:
    boundary = uuid.uuid4().hex
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; "
            f"filename=\"{name}\"\r\nContent-Type: application/octet-stream\r\n\r\n").encode() \
        + payload + f"\r\n--{boundary}--\r\n".encode()
    req = urllib.request.Request(f"{base}gradio_api/upload", body,
                                 {"Content-Type": f"multipart/form-data; boundary={boundary}"})
    try:
        with urllib.request.urlopen(req, timeout=120) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode(errors="replace")


def _png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), (10, 200, 30)).save(buffer, "PNG")
    return buffer.getvalue()


def test_an_image_url_sent_as_file_data_is_refused_not_fetched(watched):
    served, listener = watched
    for url in (f"http://127.0.0.2:{listener.port}/cat.png", "https://huggingface.co/cat.png"):
        event, data = _call(served.url, "analyze", _analyze_args(_file(url)))
        assert event == "error"
        assert security.URL_REFUSAL in json.loads(data)["error"]
    assert listener.seen() == []


def test_a_url_inside_the_chat_history_is_refused_not_fetched(watched):
    served, listener = watched
    history = [{"role": "user", "content": [
        {"type": "file", "file": _file(f"http://127.0.0.4:{listener.port}/cat.png")}]}]
    data = _api_args(served.url, "chat", message="what is this?", history=history, image=None,
                     model=QWEN, max_new_tokens=8)
    event, body = _call(served.url, "chat", data)
    assert event == "error" and security.URL_REFUSAL in json.loads(body)["error"]
    assert listener.seen() == []


@pytest.mark.parametrize("target", ["http://127.0.0.3:{port}/x.png", "https://huggingface.co/x.png",
                                    "HTTP://127.0.0.5:{port}/x.png"])
def test_the_file_route_does_not_fetch_urls(watched, target):
    served, listener = watched
    status, text = _get(f"{served.url}gradio_api/file=" + target.format(port=listener.port))
    assert status == 403 and security.URL_REFUSAL in text
    assert listener.seen() == []


def _path_routes() -> list[tuple[str, str]]:
    """(method, path template) of every GET/HEAD route of the app gradio builds, nested
    routers included, whose path takes a parameter: each could be handed a URL."""
    import app
    from gradio.routes import App

    def walk(routes):
        for route in routes:
            inner = getattr(getattr(route, "original_router", None), "routes", None)
            if inner is not None:
                yield from walk(inner)
            elif "{" in getattr(route, "path", ""):
                for method in sorted(getattr(route, "methods", None) or ()):
                    if method in ("GET", "HEAD"):
                        yield method, route.path

    return sorted(set(walk(App.create_app(app.demo).routes)))


PATH_ROUTES = _path_routes()


def test_the_route_list_holds_every_file_route():
    """gradio 6.31's known URL fetchers are among the enumerated routes (else the enumeration,
    not the guard, is what broke)."""
    paths = {p for _, p in PATH_ROUTES}
    assert {"/gradio_api/file={path_or_url:path}", "/gradio_api/file/{path:path}",
            "/gradio_api/proxy={url_path:path}"} <= paths
    assert len(PATH_ROUTES) >= 10


@pytest.mark.parametrize("method,route", PATH_ROUTES, ids=[f"{m} {r}" for m, r in PATH_ROUTES])
def test_no_route_fetches_a_url(watched, method, route):
    """Every parameter of every route gets a URL; none may make the server connect out.
    Before: /gradio_api/file/http://... connected (b"CONNECT dns.google:443")."""
    served, listener = watched
    target = f"http://127.0.0.6:{listener.port}/x.png"
    path = re.sub(r"\{[^}]+\}", lambda m: target if m.group(0).endswith(":path}") else "x", route)
    if path == route.replace("{", "").replace("}", ""):
        pytest.skip("no parameter")
    if ":path}" not in route:  # a one-segment parameter: the URL goes in encoded
        path = re.sub(r"\{[^}]+\}", urllib.parse.quote(target, safe=""), route, count=1)
        path = re.sub(r"\{[^}]+\}", "x", path)
    url = served.url.rstrip("/") + path
    req = urllib.request.Request(url, method=method)
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            status = resp.status
    except urllib.error.HTTPError as err:
        status = err.code
    assert status >= 400, (url, status)
    assert listener.seen() == [], url


@pytest.mark.parametrize("target", ["https://huggingface.co/x.png", "http:/127.0.0.7/x.png",
                                    "data:image/png;base64,AAAA", "ftp://127.0.0.8/x"])
def test_the_file_alias_refuses_every_kind_of_url(watched, target):
    served, listener = watched
    status, text = _get(f"{served.url}gradio_api/file/{target}")
    assert status == 403 and security.URL_REFUSAL in text
    assert listener.seen() == []


@pytest.mark.parametrize("path", ["/etc/passwd", "{repo}/app.py", "{repo}/anyres_demo/security.py",
                                  "{repo}/assets/examples/photo_scene.png", "{repo}/.git/config",
                                  "/tmp/gradio/../../etc/passwd", "{repo}", "/proc/self/environ"])
def test_files_outside_the_cache_are_not_served(watched, path):
    served, _ = watched
    status, text = _get(f"{served.url}gradio_api/file=" + path.format(repo=REPO))
    assert status == 403, text[:200]
    assert "root:" not in text and "import" not in text


def test_an_uploaded_file_is_served_back(watched):
    """The file route does work (so the refusals above are not an accident)."""
    served, _ = watched
    status, text = _upload(served.url, "green.png", _png())
    assert status == 200, text
    (path,) = json.loads(text)
    status, _ = _get(f"{served.url}gradio_api/file={path}")
    assert status == 200


@pytest.mark.parametrize("path", ["/etc/passwd", "{repo}/app.py"])
def test_a_server_path_sent_as_file_data_is_not_read(watched, path):
    served, _ = watched
    event, data = _call(served.url, "analyze", _analyze_args(_file(path.format(repo=REPO))))
    assert event == "error"
    assert "root:" not in data and "demo = " not in data


def test_uploads_over_the_cap_are_refused_by_the_server(watched):
    served, _ = watched
    status, text = _upload(served.url, "huge.png", b"\0" * (MAX_UPLOAD_BYTES + 1))
    assert status == 413, text[:300]
    status, text = _upload(served.url, "at_cap.png", b"\0" * 1000)
    assert status == 200


def test_request_bodies_over_the_cap_are_refused_before_reading(watched):
    """Declared length over the cap: answered 413 before any of the body is sent."""
    served, _ = watched
    host, port = urllib.parse.urlsplit(served.url).netloc.split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    conn.putrequest("POST", "/gradio_api/call/analyze")
    conn.putheader("Content-Type", "application/json")
    conn.putheader("Content-Length", str(security.MAX_REQUEST_BYTES + 1))
    conn.endheaders()
    resp = conn.getresponse()
    assert resp.status == 413
    assert "Request too large" in resp.read().decode()
    conn.close()


def _chunked_upload(base: str, files: int, each: int) -> tuple[int, str]:
    """POST `files` files of `each` bytes to /gradio_api/upload with no Content-Length."""
    host, port = urllib.parse.urlsplit(base).netloc.split(":")
    boundary = uuid.uuid4().hex
    conn = http.client.HTTPConnection(host, int(port), timeout=120)
    conn.putrequest("POST", "/gradio_api/upload")
    conn.putheader("Content-Type", f"multipart/form-data; boundary={boundary}")
    conn.putheader("Transfer-Encoding", "chunked")
    conn.endheaders()

    def chunk(data: bytes) -> None:
        conn.send(f"{len(data):x}\r\n".encode() + data + b"\r\n")

    try:
        for i in range(files):
            chunk(f"--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; "
                  f"filename=\"part{i}.png\"\r\nContent-Type: image/png\r\n\r\n".encode())
            block = b"\0" * 1_000_000
            for _ in range(each // len(block)):
                chunk(block)
            chunk(b"\r\n")
        chunk(f"--{boundary}--\r\n".encode())
        conn.send(b"0\r\n\r\n")
    except OSError:  # the server answered and closed while we were still sending
        pass
    resp = conn.getresponse()
    text = resp.read().decode(errors="replace")
    conn.close()
    return resp.status, text


def _big_files(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file() and p.stat().st_size > 1_000_000]


def test_a_chunked_upload_over_the_cap_is_413_and_leaves_no_files(watched, temp_dir):
    """Two 30 MB files (each under the per-file cap, together over the request cap), sent
    without Content-Length. Before: HTTP 500 (ClientDisconnect) and ~49 MB of partial files."""
    served, _ = watched
    before = set(_big_files(temp_dir))
    status, text = _chunked_upload(served.url, 2, 30_000_000)
    assert status == 413, text[:300]
    assert "Request too large" in text
    assert set(_big_files(temp_dir)) == before
    assert served.proc.poll() is None
    status, _ = _upload(served.url, "after.png", _png())  # still serving uploads
    assert status == 200


def test_direct_posts_cannot_skip_the_queue(watched):
    served, _ = watched
    req = urllib.request.Request(f"{served.url}gradio_api/run/analyze",
                                 json.dumps({"data": _analyze_args(None)}).encode(),
                                 {"Content-Type": "application/json"})
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(req, timeout=30)
    assert err.value.code == 404
    assert "join the queue" in err.value.read().decode()


@pytest.mark.parametrize("model", ["/etc", "someone/llava-finetune"])
def test_only_presets_reach_the_backend_through_the_api(watched, model):
    served, _ = watched
    event, data = _call(served.url, "chat", _api_args(served.url, "chat", message="hi", history=[],
                                                       image=None, model=model, max_new_tokens=8))
    assert event == "error" and "not in the list of choices" in data


def test_nothing_left_the_machine(watched):
    """Runs last in this module: every request above, and start-up, made no outside call."""
    served, listener = watched
    assert served.proc.poll() is None
    assert listener.seen() == []


# ----------------------------------------------------------------------------- the chat tab
def test_the_chat_tab_loads_only_presets_without_the_opt_in(monkeypatch, tmp_path):
    from anyres_demo.backends import chat
    from anyres_demo.ui import chat as ui

    def never(*args, **kwargs):
        raise AssertionError("the backend was asked to load a model that is not allowed")

    monkeypatch.delenv(security.ENV_ALLOW_ANY_MODEL, raising=False)
    monkeypatch.setattr(chat, "BACKEND", chat.ChatBackend(loader=never, preflight=never))
    folder = str(tmp_path)  # a folder on the server, as an API client might send it
    with pytest.warns(UserWarning, match="not one of this app's models"):
        history, box, _, status, _ = list(ui.respond("hi", [], None, model=folder))[-1]
    assert history == [] and box == "hi" and "not one of this app's models" in status
    assert "not one of this app's models" in ui.model_status(folder)
    with pytest.warns(UserWarning, match="not one of this app's models"):
        ui.load_model(folder)


@pytest.mark.parametrize("opt_in", [None, "1"])
def test_the_model_box_takes_typed_values_only_with_the_opt_in(monkeypatch, opt_in):
    from anyres_demo.ui import build_demo

    if opt_in is None:
        monkeypatch.delenv(security.ENV_ALLOW_ANY_MODEL, raising=False)
    else:
        monkeypatch.setenv(security.ENV_ALLOW_ANY_MODEL, opt_in)
    demo = build_demo()
    (box,) = [b for b in demo.blocks.values() if getattr(b, "elem_id", None) == "model-select"]
    assert box.allow_custom_value is (opt_in is not None)
    assert {value for _, value in box.choices} == set(PRESETS)


# ----------------------------------------------------------------------------- memory
@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's")
def test_freed_memory_goes_back_on_glibc():
    assert security.return_freed_memory() is True

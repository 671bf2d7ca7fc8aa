"""Chat through an OpenAI-compatible serving engine (vLLM, `transformers serve`, ...).

A workshop room outgrows one in-process `generate`; the host runs a serving engine and points
the app at it. The explorer, the prompt check and (with the same model also loaded here) the
heatmaps stay local; only the answer comes from the server.

* Configured by the host only, from the environment: ANYRES_ENDPOINT (base URL, ending in
  /v1), ANYRES_ENDPOINT_MODEL (the name the server serves), optional ANYRES_ENDPOINT_KEY (sent
  as a bearer token), ANYRES_ENDPOINT_ENGINE (`vllm`, `transformers` or `other`) and
  ANYRES_ENDPOINT_TIMEOUT (seconds without a byte from the server). Never from a person.
* Each turn: the history and the image (a PNG data URL) go to /v1/chat/completions, streamed.
  The explorer's settings travel the way each engine takes them: vLLM `mm_processor_kwargs`
  (the server needs `--trust-request-mm-kwargs`), `transformers serve`
  `chat_template_kwargs.processor_kwargs`; sampling values vLLM's own fields, transformers
  serve a `generation_config`.
* The visible check: the server's `usage.prompt_tokens` (final streamed chunk, asked for with
  `stream_options.include_usage`) against the prompt length the local processor computes for
  the same messages and settings. A difference is explained with both numbers.

httpx (a gradio dependency) does the HTTP; transformers loads lazily (processor only).
"""
from __future__ import annotations

import base64
import io
import json
import os
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Iterator, Mapping

from ..presets import Preset
from . import chat

ENV_ENDPOINT = "ANYRES_ENDPOINT"  # e.g. http://127.0.0.1:8000/v1
ENV_ENDPOINT_MODEL = "ANYRES_ENDPOINT_MODEL"  # the model name the server serves
ENV_ENDPOINT_KEY = "ANYRES_ENDPOINT_KEY"  # optional API key (bearer token)
ENV_ENDPOINT_ENGINE = "ANYRES_ENDPOINT_ENGINE"  # vllm | transformers | other
ENV_ENDPOINT_TIMEOUT = "ANYRES_ENDPOINT_TIMEOUT"  # seconds without a byte from the server
ENGINES = ("vllm", "transformers", "other")
DEFAULT_TIMEOUT_S = 120.0
CONNECT_TIMEOUT_S = 5.0
NO_HEATMAP = ("Heatmaps need the model inside this app: a serving engine returns only text. "
              "Load the same model here (Load model now, if the machine can hold it) and the "
              "answers from the server get heatmaps too.")


class EndpointError(RuntimeError):
    """The serving engine could not answer; the message says why and what to do."""


@dataclass(frozen=True)
class Endpoint:
    """Where the answers come from. `key` never appears in a repr or a message."""

    url: str  # base URL, ending in /v1
    model: str
    engine: str = "vllm"
    key: str | None = field(default=None, repr=False)
    timeout_s: float = DEFAULT_TIMEOUT_S

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> "Endpoint | None":
        """The host's endpoint, or None when ANYRES_ENDPOINT is unset. A half-configured
        one raises ValueError naming the missing or wrong variable."""
        url = (environ.get(ENV_ENDPOINT) or "").strip().rstrip("/")
        if not url:
            return None
        model = (environ.get(ENV_ENDPOINT_MODEL) or "").strip()
        if not model:
            raise ValueError(f"{ENV_ENDPOINT} is set but {ENV_ENDPOINT_MODEL} is not: set it "
                             "to the model name the server serves (its /v1/models lists it)")
        engine = (environ.get(ENV_ENDPOINT_ENGINE) or "vllm").strip().lower()
        if engine not in ENGINES:
            raise ValueError(f"{ENV_ENDPOINT_ENGINE}={engine!r}; use one of {', '.join(ENGINES)}")
        timeout = float(environ.get(ENV_ENDPOINT_TIMEOUT) or DEFAULT_TIMEOUT_S)
        return cls(url=url, model=model, engine=engine,
                   key=environ.get(ENV_ENDPOINT_KEY) or None, timeout_s=timeout)

    @property
    def label(self) -> str:
        return f"{self.model} at {self.url} ({self.engine})"

    def headers(self) -> dict:
        return {"Authorization": f"Bearer {self.key}"} if self.key else {}


def configured() -> Endpoint | None:
    """The endpoint from the environment; None when unset or misconfigured (the status line
    shows `config_error()`)."""
    try:
        return Endpoint.from_env()
    except ValueError:
        return None


def config_error() -> str | None:
    try:
        Endpoint.from_env()
    except ValueError as exc:
        return str(exc)
    return None


# ----------------------------------------------------------------------------- the request
def data_url(image) -> str:
    """A PIL image as a PNG data URL (lossless: the server sees the pixels the app sees)."""
    buf = io.BytesIO()
    image.convert("RGB").save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def openai_messages(messages: list[dict], image) -> list[dict]:
    """The turns the local processor saw (Prepared.messages), in OpenAI's format."""
    url = data_url(image)
    out = []
    for turn in messages:
        parts = [{"type": "image_url", "image_url": {"url": url}} if p == {"type": "image"}
                 else p for p in turn["content"]]
        out.append({"role": turn["role"], "content": parts})
    return out


def processor_kwargs(preset: Preset, overrides: dict) -> dict:
    """The explorer's settings as Hugging Face processor call kwargs (what vLLM's
    mm_processor_kwargs and transformers' processor_kwargs take): Qwen's pixel budget and
    InternVL's tile limits. LLaVA canvas lists have no per-request form (the model's config
    decides) and the newer families' settings are not sent either; the prompt check shows
    any difference they make."""
    s = preset.with_overrides(**overrides).settings
    out = {}
    if "max_pixels" in overrides or "min_pixels" in overrides:
        out.update(min_pixels=s.min_pixels, max_pixels=s.max_pixels)
    if "max_tiles" in overrides or "min_tiles" in overrides:
        out.update(min_patches=s.min_tiles, max_patches=s.max_tiles)
    return out


def request_body(endpoint: Endpoint, messages: list[dict], settings: chat.GenerationSettings,
                 mm_kwargs: dict) -> dict:
    """The /v1/chat/completions body, with every sampling value explicit."""
    greedy = settings.temperature <= 0
    body: dict[str, Any] = {
        "model": endpoint.model, "messages": messages, "stream": True,
        "stream_options": {"include_usage": True}, "max_tokens": int(settings.max_new_tokens),
        "temperature": 0.0 if greedy else float(settings.temperature),
        "top_p": 1.0 if greedy else float(settings.top_p)}
    top_k = 0 if greedy else int(settings.top_k)
    penalty = float(settings.repetition_penalty or 1.0)
    if endpoint.engine == "vllm":
        body.update(top_k=top_k or -1, repetition_penalty=penalty)
        if mm_kwargs:
            body["mm_processor_kwargs"] = mm_kwargs
    elif endpoint.engine == "transformers":
        config = {"max_new_tokens": int(settings.max_new_tokens), "do_sample": not greedy,
                  "top_k": top_k or None, "repetition_penalty": penalty,
                  "temperature": None if greedy else float(settings.temperature),
                  "top_p": None if greedy else float(settings.top_p)}
        body["generation_config"] = json.dumps(config)
        if mm_kwargs:
            body["chat_template_kwargs"] = {"processor_kwargs": mm_kwargs}
    return body


# ----------------------------------------------------------------------------- streaming
@dataclass
class StreamResult:
    text: str
    prompt_tokens: int | None  # the server's usage.prompt_tokens (None: it sent no usage)
    completion_tokens: int | None
    seconds: float
    first_token_s: float | None  # time to the first content chunk
    stopped: bool


def _error_detail(response) -> str:
    try:
        data = json.loads(response.read() or b"{}")
    except (ValueError, UnicodeDecodeError):
        return ""
    detail = data.get("detail") or data.get("error") or data.get("message") or ""
    if isinstance(detail, dict):
        detail = detail.get("message") or json.dumps(detail)
    return str(detail)[:400]


def served_models(endpoint: Endpoint) -> list[str] | None:
    """Names from GET /v1/models (None when it cannot be read)."""
    import httpx

    try:
        r = httpx.get(endpoint.url + "/models", headers=endpoint.headers(),
                      timeout=CONNECT_TIMEOUT_S)
        return [m.get("id") for m in r.json().get("data", [])]
    except (httpx.HTTPError, ValueError, AttributeError):
        return None


def _refused(endpoint: Endpoint, status: int, detail: str) -> EndpointError:
    served = served_models(endpoint)
    listed = (f"it lists {', '.join(served)}" if served else "its /v1/models lists none"
              ) if served is not None else "its model list could not be read"
    hint = (f"Check the API key in {ENV_ENDPOINT_KEY}" if status in (401, 403) else
            f"Check that {ENV_ENDPOINT_MODEL} ({endpoint.model}) is a model the server serves "
            f"({listed}) and that the server accepts this request")
    said = f": {detail}" if detail else ""
    return EndpointError(f"The chat server refused the request (HTTP {status}{said}). {hint}. "
                         "The conversation is kept; send again once it is fixed.")


def _parse_event(line: str) -> dict | None:
    """One SSE line -> its JSON (None for keep-alives, comments and [DONE])."""
    if not line.startswith("data:"):
        return None
    data = line[5:].strip()
    if not data or data == "[DONE]":
        return None
    try:
        return json.loads(data)
    except ValueError:
        raise EndpointError(f"The chat server sent something that is not JSON: {data[:120]!r}")


def stream_chat(endpoint: Endpoint, body: dict, stop: threading.Event | None = None
                ) -> Iterator[tuple[str, StreamResult | None]]:
    """Yield (text so far, None) per chunk, then (text, StreamResult). EndpointError with a
    person-readable reason when the server is down, slow, refuses or breaks off."""
    import httpx

    stop = stop or threading.Event()
    timeout = httpx.Timeout(endpoint.timeout_s, connect=CONNECT_TIMEOUT_S)
    started, first, text, usage = time.perf_counter(), None, "", {}
    try:
        with httpx.Client(timeout=timeout) as client, client.stream(
                "POST", endpoint.url + "/chat/completions", json=body,
                headers=endpoint.headers()) as response:
            if response.status_code >= 400:
                raise _refused(endpoint, response.status_code, _error_detail(response))
            for line in response.iter_lines():
                event = _parse_event(line)
                if event is None:
                    continue
                if "error" in event:
                    raise EndpointError(f"The chat server failed while answering: "
                                        f"{str(event['error'])[:300]}. The conversation is kept.")
                usage = event.get("usage") or usage
                for choice in event.get("choices") or []:
                    piece = (choice.get("delta") or {}).get("content") or ""
                    if piece:
                        first = first if first is not None else time.perf_counter() - started
                        text += piece
                        yield text, None
                if stop.is_set():
                    break
    except httpx.ConnectError as exc:
        raise EndpointError(f"The chat server at {endpoint.url} cannot be reached ({exc}). Is it "
                            "running, and is ANYRES_ENDPOINT right? The conversation is kept; "
                            "send again when it is up.") from None
    except httpx.TimeoutException:
        raise EndpointError(f"The chat server at {endpoint.url} sent nothing for "
                            f"{endpoint.timeout_s:g} s (it may be busy with other people's "
                            "answers or loading its model). The conversation is kept; send "
                            "again in a moment.") from None
    except httpx.HTTPError as exc:
        raise EndpointError(f"The connection to the chat server broke off ({type(exc).__name__}:"
                            f" {exc}). The conversation is kept; send again.") from None
    yield text, StreamResult(text=text, prompt_tokens=usage.get("prompt_tokens"),
                             completion_tokens=usage.get("completion_tokens"),
                             seconds=time.perf_counter() - started, first_token_s=first,
                             stopped=stop.is_set())


# ----------------------------------------------------------------------------- the check
def token_check(local: int, server: int | None, sent_settings: bool) -> tuple[bool, str]:
    """(ok, a sentence): the server's prompt length against the local processor's."""
    if server is None:
        return False, (f"The server did not report its prompt length (usage.prompt_tokens), so "
                       f"the app cannot confirm it saw the {local:,} tokens computed here.")
    if server == local:
        return True, (f"Prompt check passed: the server counted {server:,} prompt tokens, the "
                      "same as this app's processor, so the image reached the model as the "
                      "explorer shows it.")
    more = "more" if server > local else "fewer"
    why = ("The server most likely resized or tiled the image with other limits (its own max "
           "pixels / max tiles or canvases), or it serves another checkpoint than the one "
           "chosen here" + ("" if sent_settings else "; the explorer's settings were not sent "
                            "because this engine takes none per request") + ".")
    return False, (f"⚠️ Prompt check failed: the server counted {server:,} prompt tokens, this "
                   f"app's processor {local:,} ({abs(server - local):,} {more}). {why} The "
                   "explorer's numbers do not describe what this server's model saw.")


# ----------------------------------------------------------------------------- local processor
class ProcessorCache:
    """Processor-only 'LoadedModel's (model=None) by source, for the local prompt count."""

    def __init__(self):
        self._items: dict[chat.ModelSource, chat.LoadedModel] = {}
        self._lock = threading.Lock()

    def get(self, source: chat.ModelSource) -> chat.LoadedModel:
        with self._lock:
            if source not in self._items:
                chat.check_available(source)
                self._items[source] = load_processor(source)
            return self._items[source]


def load_processor(source: chat.ModelSource) -> chat.LoadedModel:
    """The checkpoint's processor and context length, without its weights."""
    try:
        from transformers import AutoConfig, AutoProcessor

        processor = AutoProcessor.from_pretrained(source.weights, trust_remote_code=False)
        config = AutoConfig.from_pretrained(source.weights, trust_remote_code=False)
    except Exception as exc:  # noqa: BLE001 -- every failure becomes a message with a fix
        raise chat.ModelLoadError(chat.explain_load_error(exc, source)) from exc
    context = getattr(config.get_text_config(), "max_position_embeddings", None)
    return chat.LoadedModel(source=source, model=None, processor=processor, device="cpu",
                            dtype=None, image_token_id=chat._image_token_id(processor,
                                                                            source.preset),
                            suppress_ids=(), context_len=int(context) if context else None)


PROCESSORS = ProcessorCache()


# ----------------------------------------------------------------------------- one turn
def stream_turn(endpoint: Endpoint, prepared: chat.Prepared, settings: chat.GenerationSettings,
                stop: threading.Event | None = None,
                local: chat.LoadedModel | None = None
                ) -> Iterator[tuple[str, chat.TurnResult | None]]:
    """Yield (text so far, None) from the server, then (text, TurnResult) whose capture_note
    holds the prompt check. With `local` (the same model loaded in this app) the answer gets
    its attention capture from a local pass; otherwise NO_HEATMAP."""
    preset = prepared.source.preset
    kwargs = processor_kwargs(preset, prepared.overrides) if endpoint.engine != "other" else {}
    body = request_body(endpoint, openai_messages(prepared.messages, prepared.image),
                        settings, kwargs)
    result = None
    for text, result in stream_chat(endpoint, body, stop):
        if result is None:
            yield text, None
    sent = bool(kwargs) or not prepared.overrides
    ok, check = token_check(prepared.prompt_len, result.prompt_tokens, sent)
    turn = _turn_result(prepared, result, local, settings)
    turn.capture_note = check + " " + turn.capture_note
    turn.prompt_check_ok, turn.prompt_check = ok, check
    yield turn.text, turn


def _turn_result(prepared: chat.Prepared, result: StreamResult, local: chat.LoadedModel | None,
                 settings: chat.GenerationSettings) -> chat.TurnResult:
    tokenizer = prepared_tokenizer(local)
    answer = tuple(tokenizer(result.text, add_special_tokens=False)["input_ids"]) \
        if tokenizer is not None and result.text else ()
    capture, note = (None, NO_HEATMAP)
    if local is not None and settings.capture_attention and answer:
        capture, note = chat.gpu_capture(prepared, list(answer))
    return chat.TurnResult(
        text=result.text.strip(), answer_ids=answer,
        answer_tokens=tuple(tokenizer.decode([t]) for t in answer) if tokenizer else (),
        plan=prepared.plan, random_weights=prepared.source.random_weights,
        stopped=result.stopped, seconds=result.seconds, capture=capture, capture_note=note)


def prepared_tokenizer(local: chat.LoadedModel | None):
    return local.processor.tokenizer if local is not None else None

"""The chat tab: talk to a real VLM about the explorer's image, then see where its answer
looked, mapped through the same token layout the explorer draws.

Build with `build_chat_tab(shared)` inside a `gr.Tab`. Handlers are plain functions (tests
call them directly); errors reach people as gr.Warning toasts plus the status line, and a
failed turn leaves the conversation as it was with the question back in the textbox.
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any, Iterator

import gradio as gr
import spaces

from .. import attention as att
from .. import security
from ..backends import chat
from .. import images
from ..images import load_image
from ..layout import build_layout
from ..overrides import collect_overrides
from .shared import Shared, named_settings

WHOLE_ANSWER = -1
PRIVATE = "private"  # api_visibility of the events that are not part of the public API
# One model request at a time (load or answer); waiting users see their place in the queue.
CHAT_QUEUE = {"concurrency_id": "chat-model", "concurrency_limit": 1}
HEAD_AGGS = ("mean", "max")
INTRO = (
    "Ask about the image in the explorer. The model sees it with the explorer's settings "
    "(max pixels, max tiles, canvases); before anything is sent, the app checks that the "
    "processor puts exactly the explorer's number of image tokens in the prompt. Models load "
    "on first use (a 7B model needs a GPU or about 30 GB of RAM).")
HEAT_HELP = (
    "**Reading the map.** For each answer token the app records, in every layer, the attention "
    "weights from that token to each image token (one extra pass after generation, no full "
    "attention matrices). *Mean* averages the heads; *max* takes the strongest head per image "
    "token. The map is renormalised over image tokens and drawn through the token layout: "
    "tiles are stitched back onto the original image (padding removed), and the global view "
    "(LLaVA's base image, InternVL's thumbnail) gets its own panel.\n\n"
    + att.NEWLINE_NOTE + "\n\n" + att.SINK_NOTE.format(factor=att.DEFAULT_SINK_FACTOR)
    + "\n\n**" + att.CAPTION + "**")


@dataclass
class ChatState:
    """Per browser session: the stop key and the ids of remembered turns (small, copyable)."""

    key: str = field(default_factory=lambda: uuid.uuid4().hex)
    turns: list[str] = field(default_factory=list)


@dataclass
class ChatTab:
    chatbot: gr.Chatbot
    message: gr.Textbox
    status: gr.Markdown
    gallery: gr.Gallery
    heat_summary: gr.Markdown


# ----------------------------------------------------------------------------- handlers
def _warn(message: str) -> None:
    gr.Warning(message)


def _source(model: str | None) -> chat.ModelSource:
    """The model a person picked -> what to load. Presets only, unless the host opted in
    (security.allowed_model); None means the host's default ($ANYRES_MODEL)."""
    return chat.resolve_source(None if model is None else security.allowed_model(model))


def model_status(model: str | None) -> str:
    """Status line: what is loaded, and what the next message would load."""
    line = chat.BACKEND.status()
    try:
        source = _source(model)
    except (ValueError, chat.ModelLoadError) as exc:
        return f"{line}\n\n{exc}"
    loaded = chat.BACKEND.loaded
    if loaded is None or loaded.source != source:
        line += f"\n\nThe next message loads **{source.label}**."
    if source.random_weights:
        line += "\n\n⚠️ This is a random-weight test model: its replies are noise."
    return line


def load_model(model: str, progress=gr.Progress()) -> str:
    """The Load button: load now (with progress) instead of on the first message."""
    try:
        chat.BACKEND.ensure(_source(model), _progress_fn(progress))
    except (ValueError, chat.ModelLoadError) as exc:
        _warn(str(exc))
    return model_status(model)


def _progress_fn(progress):
    def report(fraction: float, desc: str) -> None:
        try:
            progress(fraction, desc=desc)
        except Exception:  # noqa: BLE001 -- progress outside an event is only cosmetic
            pass
    return report


def _as_pil(image):
    """The shared image (a file path from the explorer, or a PIL image) as upright RGB, loaded
    the way the explorer loads it; None stays None (prepare_turn explains)."""
    if image is None:
        return None
    return load_image(image).image


def _settings(max_new_tokens, temperature, top_p, capture) -> chat.GenerationSettings:
    return chat.GenerationSettings(max_new_tokens=int(max_new_tokens or 1),
                                   temperature=float(temperature or 0.0),
                                   top_p=float(top_p or 1.0), capture_attention=bool(capture))


def respond(message: str, history: list[dict] | None, image, max_new_tokens=256, temperature=0.0,
            top_p=0.9, capture=True, state: ChatState | None = None, model: str = "",
            progress=gr.Progress(), *values) -> Iterator[tuple]:
    """Stream one turn. Yields (history, textbox, state, status, turn picker update). `values`:
    the explorer's settings, one per overrides.SETTING_SPECS row (empty: the checkpoint's)."""
    history = list(history or [])
    state = state or ChatState()
    try:
        source = _source(model)
        loaded = chat.BACKEND.ensure(source, _progress_fn(progress))
        overrides = collect_overrides(source.preset, **(named_settings(values) if values else {}))
        with images.DECODES.hold():  # one limit with the explorer and the probes
            prepared = chat.prepare_turn(loaded, _as_pil(image), history, message, overrides)
    except (ValueError, chat.ModelLoadError) as exc:
        _warn(str(exc))
        yield history, message, state, model_status(model) + f"\n\n❌ {exc}", gr.skip()
        return
    label = chat.RANDOM_LABEL if loaded.random_weights else ""
    asked = history + [{"role": "user", "content": message.strip()}]

    def with_reply(text: str) -> list[dict]:  # a new list per yield
        return asked + [{"role": "assistant", "content": label + text}]

    yield with_reply("…"), "", state, model_status(model), gr.skip()
    try:
        for text, result in chat.gpu_stream(prepared, _settings(max_new_tokens, temperature,
                                                                top_p, capture), state.key):
            if result is None:
                yield with_reply(text), "", state, gr.skip(), gr.skip()
    except Exception as exc:  # noqa: BLE001 -- keep the conversation, report the failure
        _warn(f"The answer failed and was discarded: {exc}")
        yield history, message, state, model_status(model) + f"\n\n❌ {exc}", gr.skip()
        return
    state.turns.append(chat.TURNS.put(result, prepared.image))
    status = model_status(model) + f"\n\nAnswered in {result.seconds:.1f} s" + \
        (" (stopped)" if result.stopped else "") + \
        (f". {result.capture_note}" if result.capture_note else "")
    yield with_reply(result.text), "", state, status, turn_picker(state)


def stop(state: ChatState | None) -> None:
    """The Stop button: the running generation ends after its current token."""
    if state is not None:
        chat.stop_event(state.key).set()


def clear(state: ChatState | None) -> tuple:
    """Clear the conversation and its heatmaps (the model stays loaded)."""
    if state is not None:
        stop(state)
        chat.forget_stop(state.key)
    return [], "", ChatState(), gr.update(choices=[], value=None), [], ""


def turn_picker(state: ChatState):
    """Dropdown update listing the remembered answers, newest selected."""
    choices = []
    for i, turn_id in enumerate(state.turns, start=1):
        stored = chat.TURNS.get(turn_id)
        if stored is not None:
            choices.append((f"answer {i}: {stored[0].text[:40]!r}", turn_id))
    return gr.update(choices=choices, value=choices[-1][1] if choices else None)


def turn_controls(turn_id: str | None) -> tuple:
    """Layer sliders and the token picker for the chosen answer."""
    stored = chat.TURNS.get(turn_id) if turn_id else None
    if stored is None or stored[0].capture is None:
        return gr.update(), gr.update(), gr.update(choices=[("whole answer", WHOLE_ANSWER)],
                                                   value=WHOLE_ANSWER)
    result = stored[0]
    last = result.capture.num_layers - 1
    tokens = [("whole answer", WHOLE_ANSWER)] + [
        (f"{i}: {tok!r}", i) for i, tok in enumerate(result.answer_tokens)]
    return (gr.update(maximum=last, value=0), gr.update(maximum=last, value=last),
            gr.update(choices=tokens, value=WHOLE_ANSWER))


def render_heatmap(turn_id: str | None, layer_from=0, layer_to=None, head_agg: str = "mean",
                   token=WHOLE_ANSWER, hide_sinks: bool = False) -> tuple[list, str]:
    """(gallery items, summary markdown) for one remembered answer."""
    stored = chat.TURNS.get(turn_id) if turn_id else None
    if stored is None:
        return [], "Ask something first; the heatmap shows where the last answer looked."
    result, image = stored
    if result.capture is None:
        return [], result.capture_note or "Attention was not recorded for this answer."
    capture = result.capture
    lo = int(layer_from or 0)
    hi = capture.num_layers - 1 if layer_to is None else int(layer_to)
    lo, hi = min(lo, hi), max(lo, hi)
    token = None if token in (None, WHOLE_ANSWER, str(WHOLE_ANSWER)) else int(token)
    per_layer = capture.image_max if head_agg == "max" else capture.image_mean
    try:
        scores = att.select_scores(per_layer, (lo, hi), token)
        heat = att.map_heat(build_layout(result.plan), scores, hide_sinks=hide_sinks)
    except ValueError as exc:
        _warn(str(exc))
        return [], str(exc)
    share = _image_share(capture, (lo, hi), token) if head_agg == "mean" else None
    header = _header(result, capture, lo, hi, head_agg, token)
    return att.render_panels(image, heat), header + "\n\n" + att.summary(heat, share)


def _image_share(capture, layers, token) -> float:
    image = att.select_scores(capture.image_mean, layers, token).sum()
    return float(image)


def _header(result, capture, lo, hi, head_agg, token) -> str:
    which = "the whole answer" if token is None else \
        f"answer token {token} ({result.answer_tokens[token]!r})"
    layer_ids = capture.layers
    warn = ("**Random-weight test model: this map means nothing.**\n\n"
            if result.random_weights else "")
    return (f"{warn}Attention from {which}, layers {layer_ids[lo]}–{layer_ids[hi]} of the "
            f"language model, {head_agg} over {capture.num_heads} heads, "
            f"{capture.num_image_tokens} image tokens.")


# ----------------------------------------------------------------------------- layout
def _settings_controls():
    with gr.Accordion("Generation settings", open=False):
        max_new = gr.Slider(1, 1024, value=256, step=1, label="Max new tokens")
        temperature = gr.Slider(0.0, 1.5, value=0.0, step=0.05,
                                label="Temperature (0 = greedy, the same answer every time)")
        top_p = gr.Slider(0.05, 1.0, value=0.9, step=0.05, label="Top-p (with temperature > 0)")
        capture = gr.Checkbox(value=True, label="Record attention for the heatmap "
                              "(one short extra pass after each answer)")
    return max_new, temperature, top_p, capture


def _heat_controls():
    with gr.Row():
        turn = gr.Dropdown(choices=[], label="Answer", scale=3)
        token = gr.Dropdown(choices=[("whole answer", WHOLE_ANSWER)], value=WHOLE_ANSWER,
                            label="Answer token", scale=3)
        head_agg = gr.Radio(list(HEAD_AGGS), value="mean", label="Heads", scale=2)
    with gr.Row():
        layer_from = gr.Slider(0, 1, value=0, step=1, label="From layer")
        layer_to = gr.Slider(0, 1, value=1, step=1, label="To layer")
        hide_sinks = gr.Checkbox(value=False, label="Hide sink tokens")
    return turn, token, head_agg, layer_from, layer_to, hide_sinks


def build_chat_tab(shared: Shared) -> ChatTab:
    """The chat + attention tab; call inside a `gr.Tab`. Uses the explorer's image, model and
    budget settings from `shared`."""
    c = _components(shared)
    _wire_chat(shared, c)
    _wire_heatmap(c)
    return ChatTab(chatbot=c["chatbot"], message=c["message"], status=c["status"],
                   gallery=c["gallery"], heat_summary=c["heat_summary"])


def _components(shared: Shared) -> dict[str, Any]:
    c: dict[str, Any] = {"state": gr.State(None)}
    gr.Markdown(INTRO)
    c["status"] = gr.Markdown(model_status(shared.model.value))
    c["load"] = gr.Button("Load model now", size="sm")
    c["chatbot"] = gr.Chatbot(label="Chat about the image", height=420, buttons=["copy"])
    with gr.Row():
        c["message"] = gr.Textbox(placeholder="Ask about the image…", show_label=False, scale=6)
        c["send"] = gr.Button("Send", variant="primary", scale=1)
        c["stop"] = gr.Button("Stop", variant="stop", scale=1)
        c["clear"] = gr.Button("Clear", scale=1)
    c["generation"] = list(_settings_controls())
    with gr.Accordion("Where did the answer look? (attention heatmap)", open=True):
        (c["turn"], c["token"], c["head_agg"], c["layer_from"], c["layer_to"],
         c["hide_sinks"]) = _heat_controls()
        c["gallery"] = gr.Gallery(label="Attention on the original image", columns=2, height=420)
        c["heat_summary"] = gr.Markdown()
        gr.Markdown(HEAT_HELP)
    return c


def _wire_chat(shared: Shared, c: dict[str, Any]) -> None:
    inputs = [c["message"], c["chatbot"], shared.image, *c["generation"], c["state"],
              *shared.settings]
    outputs = [c["chatbot"], c["message"], c["state"], c["status"], c["turn"]]
    events = [c["send"].click(respond, inputs, outputs, api_name="chat", **CHAT_QUEUE),
              c["message"].submit(respond, inputs, outputs, api_visibility=PRIVATE, **CHAT_QUEUE)]
    for event in events:
        event.then(turn_controls, c["turn"], [c["layer_from"], c["layer_to"], c["token"]],
                   api_visibility=PRIVATE) \
            .then(render_heatmap, _heat_inputs(c), [c["gallery"], c["heat_summary"]],
                  api_visibility=PRIVATE)
    cancels = events if spaces.config.Config.zero_gpu else None  # no shared stop flag there
    c["stop"].click(stop, c["state"], None, cancels=cancels, queue=False,
                    api_visibility=PRIVATE)
    cleared = [c["chatbot"], c["message"], c["state"], c["turn"], c["gallery"], c["heat_summary"]]
    c["clear"].click(clear, c["state"], cleared, api_visibility=PRIVATE)
    shared.image.change(clear, c["state"], cleared, api_visibility=PRIVATE)
    c["load"].click(load_model, shared.model, c["status"], api_visibility=PRIVATE, **CHAT_QUEUE)
    shared.model.change(model_status, shared.model, c["status"], api_visibility=PRIVATE)


def _heat_inputs(c: dict[str, Any]) -> list:
    return [c["turn"], c["layer_from"], c["layer_to"], c["head_agg"], c["token"], c["hide_sinks"]]


def _wire_heatmap(c: dict[str, Any]) -> None:
    out = [c["gallery"], c["heat_summary"]]
    c["turn"].input(turn_controls, c["turn"], [c["layer_from"], c["layer_to"], c["token"]],
                    api_visibility=PRIVATE) \
        .then(render_heatmap, _heat_inputs(c), out, api_visibility=PRIVATE)
    c["head_agg"].input(render_heatmap, _heat_inputs(c), out, api_name="heatmap")
    for name in ("layer_from", "layer_to", "token", "hide_sinks"):
        c[name].input(render_heatmap, _heat_inputs(c), out, api_visibility=PRIVATE)

"""The explorer's tabs: what the model sees, compare, what-if, export.

Handlers are short typed functions that load the image, call `anyres_demo.analysis` and shape
the results for gradio. `guarded` is the one place where a ValueError (a message for people,
raised by the loader, the settings check or the engine) becomes `gr.Error`. Between events
the UI keeps only a small dict (model, overrides, image size) in gr.State.
"""
from __future__ import annotations

import collections
import functools
import inspect
import logging
import os
import tempfile
import threading
import time
import traceback
from typing import Any, Callable

import gradio as gr
import pandas as pd

from .. import analysis, ledger, teaching
from ..engine import plan_image
from ..examples import EXAMPLES, get_example
from ..export import snippet, write_exports
from .. import images
from ..overrides import parse_number
from ..layout import build_layout
from ..plots import candidates_chart
from ..presets import FAMILY_DEFAULTS, GEMMA_SOFT_TOKEN_BUDGETS, OVERRIDABLE, get_preset, list_presets
from ..security import any_model_allowed
from ..geometry import Size
from ..views import CROP_MAX_SIDE, overlay, resize_note
from ..overrides import SETTING_SPECS
from . import formats, uploads
from .shared import Shared, named_settings

DEFAULT_MODEL = FAMILY_DEFAULTS["llava_next"]
LARGE_IMAGE_PIXELS = 40_000_000  # above this, say that the analysis takes a moment
SETTING_NAMES = tuple(SETTING_SPECS)  # one control each, in this order
CHECKPOINT = "checkpoint"  # the on/off and choice controls' "use the checkpoint's value"
# Events that decode the uploaded image share one queue: each holds up to one decoded image
# (images.PEAK_MEMORY_BOUND for a 100 MP upload). The queue keeps the explorer's workers few;
# images.DECODES (held by `decodes`) is the one limit across the explorer, probes and chat.
IMAGE_QUEUE = {"concurrency_id": "explorer-image", "concurrency_limit": images.DECODE_LIMIT}
LOG = logging.getLogger("anyres_demo")


def reads(strategy: str, setting: str) -> bool:
    """Whether `strategy` reads the UI setting (presets.OVERRIDABLE is the source of truth)."""
    return SETTING_SPECS[setting].field in OVERRIDABLE[strategy]


def guarded(fn: Callable) -> Callable:
    """Run a handler; a ValueError (or running out of memory) reaches the user as gr.Error.

    The gr.Error is raised outside the `except`, after the failed frames' locals are cleared:
    gradio keeps the error it is given, and a chained traceback would keep the decoded image
    (hundreds of MB) alive with it. The server log gets one line, not a traceback. Generator
    handlers (results that arrive one by one) are guarded while they iterate."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except (ValueError, MemoryError) as exc:
            message = _people_message(exc)
        raise user_error(message, fn.__name__)

    @functools.wraps(fn)
    def generator(*args, **kwargs):
        try:
            yield from fn(*args, **kwargs)
            return
        except (ValueError, MemoryError) as exc:
            message = _people_message(exc)
        raise user_error(message, fn.__name__)
    return generator if inspect.isgeneratorfunction(fn) else wrapper


def _people_message(exc: BaseException) -> str:
    """What to tell the person; the failed frames' locals are cleared (see guarded)."""
    traceback.clear_frames(exc.__traceback__)
    if isinstance(exc, MemoryError):
        return "Not enough memory for this image; try a smaller one."
    return str(exc)


def user_error(message: str, where: str = "") -> gr.Error:
    """A gr.Error for a person's mistake: shown to them, one line in the server log."""
    LOG.warning("refused%s: %s", f" ({where})" if where else "", " ".join(message.split())[:300])
    return gr.Error(message, print_exception=False)


def decodes(fn: Callable) -> Callable:
    """Hold one of images.DECODES' slots for the whole handler (the decoded image lives that
    long), so analyses, probes and chat together never decode more than DECODE_LIMIT; a
    generator handler holds it while it iterates."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with images.DECODES.hold():
            return fn(*args, **kwargs)

    @functools.wraps(fn)
    def generator(*args, **kwargs):
        with images.DECODES.hold():
            yield from fn(*args, **kwargs)
    return generator if inspect.isgeneratorfunction(fn) else wrapper


GUARDED_IMAGES: set[str] = set()  # elem_ids of the gr.Image inputs guard_uploads covers


def guard_uploads(image: gr.Image) -> gr.Image:
    """Hand the guarded images' uploads to the handlers as a path, without gradio opening them.

    gr.Image's own preprocess opens every upload with Pillow (any format Pillow knows) before
    any handler runs, and opening an ICO decodes its largest icon: a 657 KB file became 645 MB
    before our loader could refuse it, and a failure there reached people as a bare "Error".
    The loader (images.load_image) checks every container before Pillow and says what is
    wrong, so the stored path is all the handlers need. The wrapper sits on the class, because
    gradio rebuilds components for each browser session (an instance attribute would be lost),
    and only acts for the elem_ids registered here (type="filepath" images). (A subclass would
    do, but gradio writes a .pyi stub next to the module of every component subclass.)
    """
    if not image.elem_id:
        raise ValueError("guard_uploads needs an image with an elem_id")
    GUARDED_IMAGES.add(image.elem_id)
    original = gr.Image.preprocess
    if getattr(original, "anyres_guard", False):
        return image

    @functools.wraps(original)
    def preprocess(self, payload):
        if (self.elem_id not in GUARDED_IMAGES or payload is None
                or (payload.url or "").startswith("data:")):
            return original(self, payload)  # a pasted data: URI is written to a file, not decoded
        if payload.path is None:
            raise user_error("The upload did not arrive; try again.")
        return str(payload.path)

    preprocess.anyres_guard = True
    gr.Image.preprocess = preprocess
    return image


GUARDED_NUMBERS: dict[str, str] = {}  # elem_id -> the Settings field it sets


def guard_number(number: gr.Number, field: str) -> gr.Number:
    """Parse the guarded numbers with overrides.parse_number (bounds, NaN, "abc", 1e30)
    instead of gr.Number's own preprocess, whose failures reach people as a bare "Error".
    On the class, like guard_uploads, for the elem_ids registered here."""
    if not number.elem_id:
        raise ValueError("guard_number needs a number with an elem_id")
    GUARDED_NUMBERS[number.elem_id] = field
    original = gr.Number.preprocess
    if getattr(original, "anyres_guard", False):
        return number

    @functools.wraps(original)
    def preprocess(self, payload):
        if self.elem_id not in GUARDED_NUMBERS:
            return original(self, payload)
        name = (self.elem_id or "").removeprefix("set-")
        try:
            parsed = parse_number(GUARDED_NUMBERS[self.elem_id], payload, label=name,
                                  whole=self.precision == 0)
        except ValueError as exc:
            raise user_error(str(exc), name) from None
        if parsed is None and payload not in (None, ""):
            return 0  # a typed 0: the handler says it means the checkpoint's value
        return parsed

    preprocess.anyres_guard = True
    gr.Number.preprocess = preprocess
    return number


def load(path: str | None):
    """The uploaded image as RGB (ValueError for anything that is not a usable image)."""
    if not path:
        raise ValueError("No image yet: upload one, paste one or pick an example.")
    loaded = uploads.decoded(path)
    if loaded.size_hw.area > LARGE_IMAGE_PIXELS:
        gr.Warning(f"{loaded.size_hw} is a large image ({loaded.size_hw.area / 1e6:.0f} MP): "
                   "the pictures take a moment; the counts are exact.")
    return loaded


def example_caption(path: str | None, plan) -> str:
    """The bundled example's caption when the image is one (gradio keeps the file name) and the
    caption's numbers are about the model shown, with its checkpoint settings; otherwise a
    short line naming the example, so no caption states another model's count."""
    try:
        example = get_example(os.path.basename(path or ""))
    except ValueError:
        return ""
    if example.size_hw != plan.image_hw:
        return ""
    claims = [c for c in example.claims if c.size_hw is None and c.preset_id == plan.preset.repo_id]
    unchanged = plan.preset == get_preset(plan.preset.repo_id)
    if not (claims and unchanged) or claims[0].num_image_tokens != plan.num_image_tokens:
        label = get_preset(example.preset_id).label
        return f"*Example: {example.title}. Its caption is about {label}; pick that model to read it.*"
    special = plan.num_special_tokens
    extra = (f" The caption counts image tokens; the total above adds {special} special "
             f"token{'s' if special != 1 else ''}.") if special else ""
    return f"*Example: {example.caption}*{extra}"


def frame(headers: list[str], rows: list[list[Any]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=headers)


def total_html(total: int | None, plan=None) -> str:
    """The headline count: every token the image puts in the prompt ("tokens in total"), split
    into image tokens and special tokens; tests read it from the element with id "token-total"."""
    number = "—" if total is None else f"{total:,}"
    split = ""
    if plan is not None:
        split = (f'<span class="token-total-split">{plan.num_image_tokens:,} image + '
                 f'{plan.num_special_tokens:,} special</span>')
    return (f'<div class="token-total"><span class="token-total-number">{number}</span> '
            f'tokens in total {split}</div>')


# ----------------------------------------------------------------------------- handlers
@guarded
def on_model(model: str) -> list[dict]:
    """Show the settings the chosen family reads, cleared, with the checkpoint's values as hints."""
    preset = get_preset(model)
    values = analysis.checkpoint_settings(model)
    return [_control_update(SETTING_SPECS[name], values[name], reads(preset.strategy, name),
                            preset.settings) for name in SETTING_NAMES]


def _hint(value: Any, spec=None, settings=None) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    if spec is not None and isinstance(value, int) and spec.name.endswith("pixels"):
        return pixel_budget(value, settings)
    return f"{value:,}" if isinstance(value, int) else str(value)


def pixel_budget(pixels: int, settings=None) -> str:
    """"16,384 x 28 x 28 = 12,845,056 px (up to 16,384 tokens)" for a family whose settings have
    a resize `factor` (one token per factor x factor pixels), else "12,845,056 px"."""
    factor = getattr(settings, "factor", None)
    if not factor:
        return f"{pixels:,} px"
    tokens = pixels // (factor * factor)
    exact = tokens * factor * factor == pixels
    return (f"{tokens:,} x {factor} x {factor} = {pixels:,} px (up to {tokens:,} tokens)" if exact
            else f"{pixels:,} px (up to {tokens:,} tokens of {factor} x {factor})")


def _control_update(spec, hint: Any, visible: bool, settings=None) -> dict:
    """Cleared to "the checkpoint's value", with that value shown as the hint."""
    shown = f"checkpoint: {_hint(hint, spec, settings)}" if hint is not None else None
    if spec.kind in ("bool", "choice"):
        return gr.update(visible=visible, value=CHECKPOINT, info=shown)
    return gr.update(visible=visible, value="" if spec.kind == "pinpoints" else None, placeholder=shown)


@guarded
@decodes
def on_analyze(path: str | None, model: str, *values: Any) -> tuple:
    """Every view of the explorer tab, plus the small state the other events read. `values`:
    one per overrides.SETTING_SPECS row. A bad image or setting raises gr.Error; the event's
    `.failure` then clears every view (`failed_explorer`), so nothing stale stays."""
    named = named_settings(values)
    choice = analysis.choose(model, **named)
    if not path:
        return empty_explorer()
    loaded = load(path)
    a = analysis.analyze(loaded.image, choice, display=uploads.display(path, loaded))
    plan = a.plan
    notes = "".join(f"\n\n*{n}.*" for n in loaded.notes) + zero_notes(plan.preset, named)
    return (
        total_html(a.total, plan),
        a.summary() + "\n\n" + example_caption(path, plan) + notes,
        a.overlay, resize_note(plan),
        a.crops, crops_note(a),
        a.token_map, "Click a cell of the token map.",
        frame(*ledger.ledger_table(plan)), ledger.formula_markdown(plan),
        ledger.why_summary(plan), frame(*ledger.why_table(plan)),
        candidates_chart(plan),
        ledger.divergence_markdown(plan),
        teaching.teaching("grid", plan.strategy), teaching.teaching("crops", plan.strategy),
        choice.to_state(plan.image_hw),
    )


def zero_notes(preset, named: dict[str, Any]) -> str:
    """A 0 typed into a number box means "the checkpoint's value": say so, not silently."""
    notes = []
    for name, value in named.items():
        spec = SETTING_SPECS[name]
        if spec.kind in ("int", "float") and not isinstance(value, bool) and value == 0 \
                and reads(preset.strategy, name):
            hint = _hint(getattr(preset.settings, spec.field), spec, preset.settings)
            notes.append(f"\n\n*{spec.label}: 0 means the checkpoint's value, {hint}; leave the "
                         "box empty for that.*")
    return "".join(notes)


def crops_note(a: analysis.Analysis) -> str:
    note = f"{len(a.crops)} crop{'s' if len(a.crops) > 1 else ''}, in the order the model receives them."
    if any(", shown at " in label for _, label in a.crops):
        return note + (f" Crops over {CROP_MAX_SIDE} px are shown scaled down; the caption gives the "
                       "true size.")
    if not a.crops_exact:
        return note + (" Drawn from a box-reduced copy of your large image: same geometry, pixel "
                       "values within a few grey levels.")
    return note


def empty_explorer(summary: str = "Upload an image, paste one or pick an example.") -> tuple:
    blank = frame(["part", "tokens", "how"], [])
    return (total_html(None), summary, None, "", [], "", None, "", blank, "", "",
            frame(["grid"], []), None, "", teaching.teaching("grid"), teaching.teaching("crops"), None)


FAILED = ("**Nothing to show:** this image or these settings could not be used; the message "
          "in the corner says why. Fix it, or pick an example.")


def failed_explorer() -> tuple:
    """Every view cleared after a failed analysis, the reason pointed at in the summary."""
    return empty_explorer(FAILED)


@guarded
def on_click(state: dict | None, path: str | None, evt: gr.SelectData) -> tuple:
    """Which token is at the clicked pixel of the token map, and the map with its cell marked."""
    if not state or evt is None or evt.index is None:
        return "Analyse an image first.", gr.update()
    x, y = evt.index[:2]
    source = uploads.display(path) if path else None  # analyze's display copy: no decode
    info, marked = analysis.click(state, float(x), float(y), source)
    return info, marked if marked is not None else gr.update()


@guarded
@decodes
def on_compare(path: str | None, state: dict | None, families: list[str] | None = None) -> tuple:
    if not path or not state:
        return empty_compare()
    try:
        source = uploads.display(path)
    except ValueError:  # a newer upload that cannot be read: its own analysis says why, once
        return empty_compare()
    if Size.from_pil(source.full_wh) != Size(*state["size_hw"]):
        # a compare queued behind the analysis of an image since replaced: the new image's
        # analysis runs its own compare next
        return gr.skip(), gr.skip(), gr.skip()
    choice, _ = analysis.Choice.from_state(state)
    gallery, fig, rows = analysis.compare(source, choice, families)
    for row in rows:
        if row[5] == "—":
            gr.Warning(f"{row[0]}: {row[-1]}")
    return gallery, fig, frame(analysis.COMPARE_HEADERS, rows)


def empty_compare() -> tuple:
    return [], None, frame(analysis.COMPARE_HEADERS, [])


@guarded
def on_whatif(width: float, height: float, qwen_max_pixels: float, internvl_max_tiles: float,
              gemma4_budget: Any = None) -> tuple:
    scale_fig, aspect_fig, rows = analysis.whatif(width, height, qwen_max_pixels, internvl_max_tiles,
                                                  gemma4_budget)
    return scale_fig, aspect_fig, frame(analysis.WHATIF_HEADERS, rows)


@guarded
def on_whatif_from_image(state: dict | None, qwen_max_pixels: float, internvl_max_tiles: float,
                         gemma4_budget: Any = None) -> tuple:
    """Move the what-if sliders to the analysed image's size and redraw."""
    if not state:
        return (gr.update(), gr.update()) + on_whatif(1920, 1080, qwen_max_pixels, internvl_max_tiles,
                                                      gemma4_budget)
    height, width = state["size_hw"]
    return (width, height) + on_whatif(width, height, qwen_max_pixels, internvl_max_tiles, gemma4_budget)


@guarded
@decodes
def on_export(path: str | None, state: dict | None) -> tuple:
    """Write plan.json, overlay.png and a reproducing script; return them for download."""
    if not path or not state:
        raise ValueError("Analyse an image first, then export it.")
    choice, _ = analysis.Choice.from_state(state)
    source = uploads.display(path)
    plan = plan_image(Size.from_pil(source.full_wh), choice.preset)
    layout = build_layout(plan)
    folder = tempfile.mkdtemp(prefix="anyres-export-")
    picture = overlay(source, plan, layout)
    name = os.path.basename(path)
    paths = write_exports(plan, layout, picture, folder, choice.model, choice.overrides, image_name=name)
    return (paths["json"], paths["png"], paths["py"],
            snippet(choice.model, plan.image_hw, choice.overrides, image_path=name))


# ----------------------------------------------------------------------------- layout
def model_choices() -> list[tuple[str, str]]:
    return [(f"{p.label}  ·  {p.repo_id}", p.repo_id) for p in list_presets()]


def build_inputs(initial_example: str | None, initial_model: str | None = None
                 ) -> tuple[Shared, dict[str, Any]]:
    """The image and settings row above the tabs; returns the Shared components and the
    headline outputs (total, summary, apply button). The model starts at `initial_model`
    (the host's choice), else the example's suggested preset."""
    first = get_example(initial_example) if initial_example else None
    model_id = initial_model or (first.preset_id if first else DEFAULT_MODEL)
    hints = analysis.checkpoint_settings(model_id)
    strategy = get_preset(model_id).strategy
    with gr.Row(equal_height=False):
        with gr.Column(scale=3):
            image = guard_uploads(gr.Image(
                value=str(first.path) if first else None, type="filepath", image_mode=None,
                sources=["upload", "clipboard"], label="Your image (upload or paste)", height=340,
                format="png", elem_id="input-image"))
        with gr.Column(scale=2):
            model = gr.Dropdown(model_choices(), value=model_id, label="Model (preset)",
                                allow_custom_value=any_model_allowed(), elem_id="model-select")
            settings = get_preset(model_id).settings
            controls = {name: setting_control(spec, hints[name], reads(strategy, name), settings)
                        for name, spec in SETTING_SPECS.items()}
            apply = gr.Button("Apply settings", size="sm")
            total = gr.HTML(total_html(None), elem_id="token-total")
            summary = gr.Markdown(elem_id="analysis-summary")
    shared = Shared(image=image, model=model, controls=controls)
    return shared, {"total": total, "summary": summary, "apply": apply}


def setting_control(spec, hint: Any, visible: bool, settings=None):
    """One UI control for an overrides.SettingSpec, empty = the checkpoint's value."""
    shown = f"checkpoint: {_hint(hint, spec, settings)}" if hint is not None else None
    common = dict(label=spec.label, visible=visible, elem_id=f"set-{spec.name}")
    if spec.kind == "pinpoints":
        return gr.Textbox(value="", lines=2, placeholder=shown, **common)
    if spec.kind == "bool":
        return gr.Radio([CHECKPOINT, "on", "off"], value=CHECKPOINT, info=shown, **common)
    if spec.kind == "choice":
        return gr.Dropdown([CHECKPOINT, *[str(c) for c in spec.choices]], value=CHECKPOINT,
                           info=shown, **common)
    return guard_number(gr.Number(value=None, precision=0 if spec.kind == "int" else None,
                                  minimum=0, placeholder=shown, **common), spec.field)


def submit_events(shared: Shared) -> list:
    """The events that apply a setting: Enter in a text/number box, a pick in a radio/menu."""
    return [getattr(c, "submit", None) or c.input for c in shared.setting_controls]


def build_examples(shared: Shared) -> None:
    gr.Examples([[str(e.path), e.preset_id] for e in EXAMPLES], inputs=[shared.image, shared.model],
                label="Bundled examples (click one)", example_labels=[e.title for e in EXAMPLES],
                examples_per_page=len(EXAMPLES))


def _teach(view: str, strategy: str | None = None) -> gr.Markdown:
    with gr.Accordion("What am I looking at?", open=False):
        return gr.Markdown(teaching.teaching(view, strategy))


def build_explorer_tab() -> dict[str, Any]:
    c: dict[str, Any] = {}
    with gr.Tab("What the model sees", elem_id="tab-explorer"):
        with gr.Row():
            with gr.Column():
                gr.Markdown("### Canvas and grid on your image")
                c["overlay"] = gr.Image(label="Canvas and grid", show_label=False, format=formats.DISPLAY,
                                        interactive=False, elem_id="overlay")
                c["overlay_note"] = gr.Markdown(elem_id="resize-note")
                c["teach_grid"] = _teach("grid")
            with gr.Column():
                gr.Markdown("### Crops as the model receives them")
                c["crops"] = gr.Gallery(label="Crops", show_label=False, columns=4, height=420,
                                        format=formats.EXACT, object_fit="contain", elem_id="crops")
                c["crops_note"] = gr.Markdown()
                c["teach_crops"] = _teach("crops")
        with gr.Row():
            with gr.Column(scale=3):
                gr.Markdown("### Token map: every visual token (click a cell)")
                c["token_map"] = gr.Image(label="Token map", show_label=False, format=formats.DISPLAY,
                                          interactive=False, elem_id="token-map")
            with gr.Column(scale=1):
                c["token_info"] = gr.Markdown("Click a cell of the token map.", elem_id="token-info")
                _teach("token_map")
        with gr.Row():
            with gr.Column():
                c["ledger"] = gr.Dataframe(label="Token ledger", interactive=False, wrap=True,
                                           column_widths=["28%", "17%", "55%"], elem_id="ledger")
                c["formula"] = gr.Markdown(elem_id="formula")
                _teach("ledger")
            with gr.Column():
                c["why_md"] = gr.Markdown()
                c["why"] = gr.Dataframe(label="Why this grid: every candidate", interactive=False,
                                        wrap=True, max_height=320, elem_id="why-grid")
                c["candidates"] = gr.Plot(label="Candidates' scores", elem_id="candidates")
                _teach("why")
        c["divergence"] = gr.Markdown(elem_id="divergence")
        _teach("divergence")
    return c


def build_compare_tab() -> dict[str, Any]:
    c: dict[str, Any] = {}
    with gr.Tab("Compare families", elem_id="tab-compare"):
        _teach("compare")
        options = analysis.family_options()
        c["families"] = gr.CheckboxGroup(options, value=[name for _, name in options],
                                         label="Families to compare (one checkpoint each: yours "
                                               "for its family, the family's default for the others)",
                                         elem_id="compare-families")
        c["gallery"] = gr.Gallery(label="Every family on your image", columns=4, height=360,
                                  format=formats.DISPLAY, object_fit="contain",
                                  elem_id="compare-gallery")
        c["bars"] = gr.Plot(label="Tokens by kind")
        c["table"] = gr.Dataframe(headers=analysis.COMPARE_HEADERS, label="Side by side",
                                  interactive=False, wrap=True, column_widths=analysis.COMPARE_WIDTHS,
                                  elem_id="compare-table")
    return c


def build_whatif_tab() -> dict[str, Any]:
    c: dict[str, Any] = {}
    qwen = get_preset(FAMILY_DEFAULTS["qwen2_vl"]).settings
    intern = get_preset(FAMILY_DEFAULTS["internvl"]).settings
    gemma4 = get_preset(FAMILY_DEFAULTS["gemma4"]).settings
    with gr.Tab("What-if", elem_id="tab-whatif"):
        _teach("whatif")
        with gr.Row():
            c["width"] = gr.Slider(1, 8000, value=1920, step=1, label="width (px)")
            c["height"] = gr.Slider(1, 8000, value=1080, step=1, label="height (px)")
        with gr.Row():
            c["qwen_max"] = gr.Slider(qwen.factor ** 2 * 4, qwen.max_pixels, value=qwen.max_pixels,
                                      step=qwen.factor ** 2, label="Qwen2-VL pixel budget (max_pixels)",
                                      info="checkpoint: " + pixel_budget(qwen.max_pixels, qwen),
                                      elem_id="whatif-qwen-budget")
            c["intern_max"] = gr.Slider(1, 40, value=intern.max_tiles, step=1, label="InternVL max tiles")
            c["gemma4_budget"] = gr.Radio([str(b) for b in GEMMA_SOFT_TOKEN_BUDGETS],
                                          value=str(gemma4.max_soft_tokens), elem_id="whatif-gemma4-budget",
                                          label="Gemma 4 image token budget (its five steps)")
            c["from_image"] = gr.Button("Use my image's size", size="sm")
        with gr.Row():
            c["scale_plot"] = gr.Plot(label="Tokens vs size")
            c["aspect_plot"] = gr.Plot(label="Tokens vs aspect ratio")
        c["table"] = gr.Dataframe(headers=analysis.WHATIF_HEADERS, label="At this size",
                                  interactive=False, wrap=True, column_widths=["25%", "12%", "63%"],
                                  elem_id="whatif-table")
    return c


def build_export_tab() -> dict[str, Any]:
    c: dict[str, Any] = {}
    with gr.Tab("Export", elem_id="tab-export"):
        _teach("export")
        c["button"] = gr.Button("Prepare the files", variant="primary")
        with gr.Row():
            c["json"] = gr.File(label="Plan and token layout (JSON)")
            c["png"] = gr.File(label="Overlay (PNG)")
            c["py"] = gr.File(label="Python script", elem_id="export-py")
        c["code"] = gr.Code(language="python", label="Reproduce this view in Python")
    return c


# ----------------------------------------------------------------------------- events
def explorer_outputs(head: dict, ex: dict, state: gr.State) -> list:
    """In the order on_analyze returns them."""
    return [head["total"], head["summary"], ex["overlay"], ex["overlay_note"], ex["crops"],
            ex["crops_note"], ex["token_map"], ex["token_info"], ex["ledger"], ex["formula"],
            ex["why_md"], ex["why"], ex["candidates"], ex["divergence"], ex["teach_grid"],
            ex["teach_crops"], state]


class ImageChanges:
    """Let one image change through per new image and browser session.

    Gradio 6.31's image component sends its change event twice when an upload replaces an
    image already shown (measured with a bare gr.Image: two events, same file, milliseconds
    apart), so the analysis ran twice and a refused upload said why in two toasts. `first`
    raises an invisible gr.Error for a repeat of the session's last image within
    REPEAT_SECONDS; that ends the chain. Another image, or the same one after a clear, passes.
    """

    REPEAT_SECONDS = 3.0
    SESSIONS = 4096  # the last image of this many sessions is remembered (a few bytes each)

    def __init__(self) -> None:
        self._last: collections.OrderedDict[str, tuple[str | None, float]] = collections.OrderedDict()
        self._lock = threading.Lock()

    def first(self, path: str | None, request: gr.Request) -> None:
        session = getattr(request, "session_hash", None) or ""
        now = time.monotonic()
        with self._lock:
            last = self._last.pop(session, None)
            self._last[session] = (path, now)
            while len(self._last) > self.SESSIONS:
                self._last.popitem(last=False)
        if last is not None and last[0] == path and now - last[1] < self.REPEAT_SECONDS:
            raise gr.Error("the same image again", visible=False, print_exception=False)


IMAGE_CHANGES = ImageChanges()


def clear_export() -> tuple:
    return None, None, None, ""


def connect(demo: gr.Blocks, shared: Shared, head: dict, state: gr.State, ex: dict, cmp: dict,
            wi: dict, exp: dict) -> None:
    """Wire every event: analyze -> compare -> what-if sync, on any input change."""
    inputs = [shared.image, *shared.settings]
    outputs = explorer_outputs(head, ex, state)

    export_out = [exp["json"], exp["png"], exp["py"], exp["code"]]

    def follow(dep) -> None:
        # a failed analysis clears every view: no stale total, caption or pictures
        dep.failure(failed_explorer, None, outputs, api_visibility="private") \
           .then(empty_compare, None, [cmp["gallery"], cmp["bars"], cmp["table"]], api_visibility="private")
        # the what-if follows the image at once (it is quick); compare, over every family, after
        dep.success(clear_export, None, export_out, api_visibility="private") \
           .success(on_whatif_from_image, [state, wi["qwen_max"], wi["intern_max"], wi["gemma4_budget"]],
                    [wi["width"], wi["height"], wi["scale_plot"], wi["aspect_plot"], wi["table"]],
                    api_visibility="private") \
           .success(on_compare, [shared.image, state, cmp["families"]], [cmp["gallery"], cmp["bars"], cmp["table"]],
                    api_name="compare", api_visibility="undocumented", **IMAGE_QUEUE)

    triggers = [demo.load, head["apply"].click, *submit_events(shared)]
    follow(gr.on(triggers, on_analyze, inputs, outputs, api_name="analyze", trigger_mode="always_last",
                 **IMAGE_QUEUE))
    # a new image: analysed once, though the browser may say so twice (see ImageChanges)
    follow(shared.image.change(IMAGE_CHANGES.first, shared.image, None, api_visibility="private",
                               trigger_mode="always_last", queue=False)
           .success(on_analyze, inputs, outputs, api_visibility="private", **IMAGE_QUEUE))
    settings = shared.setting_controls
    follow(shared.model.change(on_model, shared.model, settings, api_visibility="private")
           .success(on_analyze, inputs, outputs, api_visibility="private", **IMAGE_QUEUE))
    ex["token_map"].select(on_click, [state, shared.image], [ex["token_info"], ex["token_map"]],
                           api_visibility="private", **IMAGE_QUEUE)
    cmp["families"].input(on_compare, [shared.image, state, cmp["families"]],
                          [cmp["gallery"], cmp["bars"], cmp["table"]], api_visibility="private",
                          **IMAGE_QUEUE)
    whatif_in = [wi["width"], wi["height"], wi["qwen_max"], wi["intern_max"], wi["gemma4_budget"]]
    whatif_out = [wi["scale_plot"], wi["aspect_plot"], wi["table"]]
    # .change: a drag's release and a typed value (Enter or leaving the box) alike, and always
    # with every slider's current value ("always_last": the latest wins, none is dropped)
    gr.on([wi[k].change for k in ("width", "height", "qwen_max", "intern_max", "gemma4_budget")],
          on_whatif,
          whatif_in, whatif_out, api_name="whatif", trigger_mode="always_last")
    wi["from_image"].click(on_whatif_from_image, [state, wi["qwen_max"], wi["intern_max"], wi["gemma4_budget"]],
                           [wi["width"], wi["height"], *whatif_out], api_visibility="private")
    exp["button"].click(on_export, [shared.image, state], export_out,
                        api_name="export", **IMAGE_QUEUE)

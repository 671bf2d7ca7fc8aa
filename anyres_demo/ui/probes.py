"""The "Can it read this?" tab: real pretrained stand-ins (DINOv2-S/14 attention, PP-OCRv6)
run on exactly the crops each strategy makes. CPU only; bundled examples come from the shipped
cache at once, anything else shows progress.
"""
from __future__ import annotations


import gradio as gr
import pandas as pd
from gradio.context import Context

from ..overrides import collect_overrides
from ..presets import get_preset
from . import formats
from .explorer import decodes, guarded, load
from .shared import Shared, named_settings

INTRO = """\
**Real models, honest labels.** No VLM ships with weights offline, so this tab uses two small
pretrained models that do: **DINOv2-S/14** (a vision encoder; we show its CLS-to-patch
attention) and **PP-OCRv6** (a text reader). Each runs on *exactly the crops the chosen strategy
makes*, and the results are mapped back onto your image. They are stand-ins for a VLM's own
vision tower: they show what detail survives each strategy's resizing and tiling, not what a
particular VLM attends to. The first run on a new image takes a while on a CPU (OCR of every
crop); bundled examples are precomputed. With a model loaded in the Chat tab, the third button
shows *that model's own* vision tower on its crops, drawn the same way.
"""

TEACH = """\
*Why tiles help reading.* A 336x336 squash of a page of 12 px text shrinks each letter to a
couple of pixels: nothing can read it. Tiles at native resolution keep the letters big, but a
word cut by a tile edge is split across two crops, which is why the table counts words lost at
seams. The base image / thumbnail is the global view: good for layout, hopeless for small text.
"""


def _overrides(model: str, values) -> dict:
    return collect_overrides(get_preset(model), **named_settings(values))


@guarded
@decodes
def on_attention(path: str | None, mode: str, model: str, progress=gr.Progress(), *values) -> tuple:
    from ..probes.encoder import EncoderSettings, attention_panels, compare_attention, crop_panels

    loaded = load(path)
    overrides = _overrides(model, values)
    progress(0.0, desc="stand-in encoder on the crops")
    out = compare_attention(loaded.image, model, EncoderSettings(mode=mode),
                            progress=lambda f, t: progress(f, desc=t), **overrides)
    strat, base = out["strategy"], out["baseline"]
    panels = attention_panels(loaded.image, strat, baseline=base)
    crops = crop_panels(loaded.image, strat)
    caps = strat.captions
    cached = "from the cache" if strat.cached and base.cached else f"computed in {strat.seconds + base.seconds:.1f} s"
    note = (f"**{caps['view']}** vs the fixed 336x336 squash ({cached}).\n\n{caps['model']}\n\n"
            f"{caps['method']}\n\n*Attention is not an explanation: it shows where this encoder "
            "pooled information, not why any model answered what it did.*")
    rows = pd.DataFrame(strat.rows) if strat.rows else pd.DataFrame()
    return panels, crops, note, rows


def _other_model_note(explorer_model: str | None, loaded_source) -> str:
    """A line when the explorer's model is not the one the Chat tab loaded ('' otherwise)."""
    if not explorer_model or explorer_model == loaded_source.preset.repo_id:
        return ""
    return (f"The explorer shows {get_preset(explorer_model).label}, but the Chat tab has "
            f"{loaded_source.label} loaded: these are the loaded model's crops.")


def _vlm_note(result, other: str) -> str:
    caps = result.captions
    parts = [other] if other else []
    parts += [caps["model"], f"**{caps['view']}** (computed in {result.seconds:.1f} s).",
              caps["method"], "*Attention is not an explanation: it shows where this encoder "
              "pooled information, not why the model answered what it did.*"]
    return "\n\n".join(parts)


OWN_READY = "Attention of the loaded VLM's own vision tower"
OWN_NEEDS_MODEL = "Own vision tower: needs a model loaded in the Chat tab"


def own_button() -> dict:
    """The own-tower button as it should be now: clickable only with a chat model loaded,
    and saying so when there is none."""
    from ..backends import chat

    ready = chat.BACKEND.loaded is not None
    return gr.update(value=OWN_READY if ready else OWN_NEEDS_MODEL, interactive=ready)


@guarded
@decodes
def on_vlm_attention(path: str | None, model: str, progress=gr.Progress(), *values) -> tuple:
    """The chat's loaded VLM's own vision tower on its crops. With no model loaded: a
    warning, and the results already shown stay (every output skipped)."""
    from ..backends import chat
    from ..probes.encoder import attention_panels, crop_panels
    from ..probes.vlm_tower import NO_MODEL, loaded_tower_attention

    current = chat.BACKEND.loaded
    if current is None:
        gr.Warning(NO_MODEL)
        return gr.skip(), gr.skip(), gr.skip(), gr.skip()
    preset = current.source.preset
    loaded = load(path)
    overrides = collect_overrides(preset, **named_settings(values))
    progress(0.0, desc=f"{preset.label}'s own vision tower on its crops")
    result = loaded_tower_attention(loaded.image, overrides)
    other = _other_model_note(model, current.source)
    if other:
        gr.Warning(other)
    rows = pd.DataFrame(result.rows) if result.rows else pd.DataFrame()
    return (attention_panels(loaded.image, result), crop_panels(loaded.image, result),
            _vlm_note(result, other), rows)


@guarded
@decodes
def on_legibility(path: str | None, model: str, progress=gr.Progress(), *values):
    """The chosen model's crops and the reference first, then the other families as each
    finishes. A generator: gradio stops iterating it when the tab closes or Stop is pressed,
    and each step is short, so the work stops there."""
    from ..probes.legibility import comparison_steps

    loaded = load(path)
    overrides = _overrides(model, values)
    steps = comparison_steps(loaded.image, model, **overrides)
    while True:
        try:
            step = next(steps)
        except StopIteration:
            return
        progress(step.fraction, desc=step.text)
        if step.comparison is None:
            yield gr.skip(), gr.skip(), gr.skip()  # progress only; a point to stop at
        else:
            yield legibility_outputs(loaded.image, step.comparison)


def legibility_outputs(image, comparison) -> tuple:
    """(table, pictures, summary) for a comparison, finished or not."""
    from ..probes.legibility import caption, render_lost_words

    pictures = [(render_lost_words(image, r, max_side=1000), caption(r))
                for r in comparison.results]
    n = len(comparison.reference.words)
    summary = (f"Reference: **{n} words** read at full resolution. Recall = share of those words "
               "each strategy's crops let the reader recover.")
    if not n:
        summary = ("The full-resolution OCR found no words in this image; the legibility probe "
                   "needs text (try the document page example).")
    if comparison.pending:
        summary += f"\n\n*Still reading: {', '.join(comparison.pending)}.*"
    for line in comparison.skipped:
        summary += f"\n\n*Not shown: {line}*"
    return pd.DataFrame(comparison.table), pictures, summary


def build_probes_tab(shared: Shared) -> None:
    gr.Markdown(INTRO)
    with gr.Accordion("Teaching notes", open=False):
        gr.Markdown(TEACH)
    with gr.Row():
        mode = gr.Radio([("last layer", "last"), ("all layers combined", "rollout")], value="last",
                        label="Attention",
                        info="where the summary token looks in the last layer (CLS-to-patch), or "
                             "all layers multiplied together (rollout)")
        attend = gr.Button("Encoder attention for this model", variant="primary")
        read = gr.Button("Can it read this? (all strategies)", variant="primary")
        stop = gr.Button("Stop reading", variant="stop", elem_id="probe-stop")
        own = gr.Button(**_own_button_args(), elem_id="probe-own-tower")
    att_note = gr.Markdown()
    att_panels = gr.Gallery(label="Stitched onto your image: tiles | global view | 336 squash",
                            columns=3, height=420, format=formats.DISPLAY, object_fit="contain",
                            elem_id="probe-attention")
    att_crops = gr.Gallery(label="Each crop as the model receives it, with its attention",
                           columns=6, height=260, format=formats.DISPLAY, object_fit="contain",
                           elem_id="probe-crops")
    # headers before any result (an empty table would show "1 2 3")
    att_table = gr.Dataframe(pd.DataFrame(columns=["crop", "kind", "crop size", "share on image"]),
                             label="Per crop",
                             wrap=True, elem_id="probe-attention-table")
    leg_summary = gr.Markdown()
    leg_table = gr.Dataframe(pd.DataFrame(columns=["view", "crops", "image tokens", "words read",
                                                   "recall"]),
                             label="Legibility by strategy", wrap=True, elem_id="probe-legibility")
    leg_pictures = gr.Gallery(label="Green: read; red: lost; orange: lost where a tile edge cuts "
                              "the word; blue: tile edges", columns=3, height=420,
                              format=formats.DISPLAY, object_fit="contain",
                              elem_id="probe-legibility-pictures")
    attend.click(on_attention, [shared.image, mode, *shared.settings],
                 [att_panels, att_crops, att_note, att_table], concurrency_limit=1,
                 concurrency_id="probes")
    own.click(on_vlm_attention, [shared.image, *shared.settings],
              [att_panels, att_crops, att_note, att_table], concurrency_limit=1,
              concurrency_id="probes")
    reading = read.click(on_legibility, [shared.image, *shared.settings],
                         [leg_table, leg_pictures, leg_summary], concurrency_limit=1,
                         concurrency_id="probes")
    stop.click(None, None, None, cancels=[reading])
    tab = Context.block  # this builder runs inside its gr.Tab: refresh the button on opening it
    if isinstance(tab, gr.Tab):
        tab.select(own_button, None, own, queue=False, api_visibility="private")


def _own_button_args() -> dict:
    state = own_button()
    return {"value": state["value"], "interactive": state["interactive"]}


build_probes_tab.tab_label = "Can it read this?"

"""The "Cost" tab: what this image costs under the chosen model, three ways, and what each
serving engine makes of it.

It reads only the explorer's small state ({"model", "overrides", "size_hw"}): everything is
computed from the image size and the preset, so no pixels are decoded. Handlers are plain
functions over the cost and engines modules; `explorer.guarded` turns a ValueError into gr.Error.
"""
from __future__ import annotations

from typing import Any

import gradio as gr
import pandas as pd

from ..analysis import Choice
from ..cost import cost_record, human, image_cost, three_ways
from ..cost_plots import cost_charts
from ..cost_report import COST_HEADERS, WAY_HEADERS, cost_rows, way_record, way_rows
from ..engine import plan_image
from ..engines import ROW_HEADERS, engine_rows, row_cells
from .explorer import guarded

DIFF_STYLE = "background-color: #fde2c8; font-weight: 600"  # rows that differ from transformers
TEACH = (
    "**How to read this.** FLOPs count multiply-adds twice, as `torch.utils.flop_counter` does "
    "(the tests check every formula against it on tiny models of each family). The encoder's "
    "attention term grows with the *square* of the tokens in one view, so one big view costs far "
    "more than the same pixels cut into tiles; the LLM's cost and the KV cache grow with the image "
    "tokens. Norms, softmax, activations and the LM head are not counted. An architecture value "
    "that could not be confirmed from a copy of the checkpoint's config is listed below the table.\n\n"
    "**Engines.** Each serving engine applies its own limits before the model sees the image; "
    "the table plans your image with each engine's default limits (read from the cited source) "
    "and highlights where the count differs from transformers. UNCONFIRMED rows are assumptions.")


def frame(headers: list[str], rows: list[list[Any]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=headers)


def headline(rec: dict[str, Any]) -> str:
    c = rec["cost"]
    parts = [f"**{rec['model']}**, {rec['width']}x{rec['height']} image: **{c['num_tokens']:,}** tokens",
             f"vision encoder **{human(c['vision_flops'], 'FLOP')}**",
             f"LLM prefill **{human(c['llm_prefill_flops'], 'FLOP')}**",
             f"KV cache **{human(c['kv_bytes_bf16'], 'B')}** (bf16)"]
    if c["context_share"] is not None:
        parts.append(f"**{c['context_share']:.2%}** of the {c['context']:,}-token context "
                     f"({c['images_fit']:,} such images fit)")
    return ", ".join(parts) + "."


def caveats(c: dict[str, Any]) -> str:
    lines = [f"- unavailable: {m}" for m in c["missing"]]
    lines += [f"- unconfirmed architecture value: `{u}`" for u in c["unconfirmed"]]
    lines += [f"- {n}" for n in c["notes"]]
    return "\n".join(lines) if lines else "All architecture values used here are confirmed."


def engines_frame(size_hw, preset):
    rows = engine_rows(size_hw, preset)
    table = frame(ROW_HEADERS, [row_cells(r) for r in rows])
    differs = [r.differs for r in rows]
    styled = table.style.apply(lambda row: [DIFF_STYLE if differs[row.name] else "" for _ in row], axis=1)
    changed = [f"**{r.engine}** ({'refused' if r.error else f'{r.delta:+,}'})" for r in rows if r.differs]
    note = ("Differs from transformers: " + ", ".join(changed) + "." if changed
            else "Every engine gives transformers' count for this image at its defaults.")
    return styled, note


@guarded
def on_cost(state: dict | None, prompt_tokens: float | None) -> tuple:
    """Every output of the tab for the analysed image (empty until one is analysed)."""
    if not state:
        return empty_cost()
    choice, size_hw = Choice.from_state(state)
    preset = choice.preset
    prompt = int(prompt_tokens or 0)
    if prompt < 0:
        raise ValueError(f"prompt tokens must be 0 or more, got {prompt}")
    rec = report(preset, size_hw, prompt)
    flops_fig, kv_fig = cost_charts(size_hw, preset)
    styled, note = engines_frame(size_hw, preset)
    return (headline(rec), frame(COST_HEADERS, cost_rows(rec["cost"])), caveats(rec["cost"]),
            frame(WAY_HEADERS, way_rows(rec["three_ways"])), flops_fig, kv_fig, styled, note)


def report(preset, size_hw, prompt: int) -> dict[str, Any]:
    """The cost record for the preset as chosen (with the explorer's overrides)."""
    plan = plan_image(size_hw, preset)
    return {"model": preset.repo_id, "width": size_hw.width, "height": size_hw.height,
            "cost": cost_record(image_cost(plan, prompt)),
            "three_ways": [way_record(w) for w in three_ways(plan, prompt)]}


def empty_cost() -> tuple:
    return ("Analyse an image first: the cost follows the explorer's image and model.",
            frame(COST_HEADERS, []), "", frame(WAY_HEADERS, []), None, None,
            frame(ROW_HEADERS, []), "")


def build_cost_tab() -> dict[str, Any]:
    c: dict[str, Any] = {}
    with gr.Tab("Cost", elem_id="tab-cost"):
        with gr.Accordion("What am I looking at?", open=False):
            gr.Markdown(TEACH)
        c["headline"] = gr.Markdown(elem_id="cost-headline")
        c["prompt"] = gr.Number(value=0, precision=0, minimum=0, label="prompt tokens before the image",
                                elem_id="cost-prompt")
        with gr.Row():
            with gr.Column():
                c["table"] = gr.Dataframe(label="What this image costs", interactive=False, wrap=True,
                                          column_widths=["30%", "18%", "52%"], elem_id="cost-table")
                c["caveats"] = gr.Markdown(elem_id="cost-caveats")
            with gr.Column():
                c["ways"] = gr.Dataframe(label="The same image three ways", interactive=False, wrap=True,
                                         elem_id="cost-ways")
        with gr.Row():
            c["flops_plot"] = gr.Plot(label="FLOPs vs image size", elem_id="cost-flops-plot")
            c["kv_plot"] = gr.Plot(label="KV cache vs image size", elem_id="cost-kv-plot")
        gr.Markdown("### Engines: what each server makes of this image")
        c["engines_note"] = gr.Markdown(elem_id="engines-note")
        c["engines"] = gr.Dataframe(label="Image tokens per engine", interactive=False, wrap=True,
                                    elem_id="engines-table")
    return c


def outputs(c: dict[str, Any]) -> list:
    return [c["headline"], c["table"], c["caveats"], c["ways"], c["flops_plot"], c["kv_plot"],
            c["engines"], c["engines_note"]]


def connect(state: gr.State, c: dict[str, Any]) -> None:
    """Recompute whenever the explorer analyses a new image or model, or the prompt changes."""
    gr.on([state.change, c["prompt"].submit], on_cost, [state, c["prompt"]], outputs(c),
          api_name="cost", api_visibility="undocumented", trigger_mode="always_last")

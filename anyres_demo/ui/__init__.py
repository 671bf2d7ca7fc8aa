"""The Gradio app: the only package that imports gradio.

    demo = build_demo()                      # the explorer's tabs
    demo = build_demo(extra_tabs=[build_chat_tab])   # each builder adds its own gr.Tab
"""
from __future__ import annotations

from typing import Callable, Sequence

import gradio as gr

from ..images import MAX_UPLOAD_BYTES
from . import cost as cost_tab
from . import explorer, hardening
from .shared import Shared

TITLE = "AnyRes Explorer"
HEADER = (
    "# AnyRes Explorer\n"
    "See exactly how **LLaVA-NeXT**, **LLaVA-OneVision**, **Qwen2-VL** and **InternVL** resize, "
    "tile and tokenize your image: the grid, the crops, every visual token and the exact count. "
    "No GPU and no download needed.")
CSS = """
.token-total { font-size: 1.15rem; padding: 6px 0; }
.token-total-number { font-size: 2rem; font-weight: 700; }
.token-total-split { font-size: 0.95rem; opacity: 0.75; margin-left: 0.4em; white-space: nowrap; }
/* tables: break lines between words only, never inside a word or a number */
.header-cell span, .body-cell span { word-break: normal !important;
  overflow-wrap: normal !important; hyphens: none; }
/* gallery captions: the whole caption, wrapped, not cut with an ellipsis */
.caption-label { white-space: normal !important; text-overflow: clip !important;
  max-width: calc(100% - 2 * var(--block-label-margin)) !important; }
@media (max-width: 640px) {
  /* every tab visible on a phone: the tabs gradio moves into its "more" menu are shown
     inline, wrapped, and the menu button itself is hidden */
  .tab-wrapper { flex-wrap: wrap !important; height: auto !important; }
  .tab-wrapper .overflow-menu { display: contents !important; }
  .tab-wrapper .overflow-menu > button { display: none !important; }
  .tab-wrapper .overflow-dropdown, .tab-wrapper .overflow-dropdown.hide {
    display: flex !important; flex-direction: row !important; position: static !important;
    flex-wrap: wrap !important;
    box-shadow: none !important; border: none !important; background: none !important;
    padding: 0 !important; min-width: 0 !important; }
  /* tables: a smaller font, so numbers and words fit their columns */
  .header-cell span, .body-cell span { font-size: 0.8rem !important; }
  /* the crops gallery as tall as its pictures, not a fixed block */
  #crops, #crops .grid-wrap { height: auto !important; max-height: none !important; }
  #crops .grid-container { --grid-cols: 2 !important; }
  /* the token map at its own size (cells big enough to tap), scrolled sideways */
  #token-map .image-container, #token-map .image-frame { overflow-x: auto !important; }
  #token-map img { max-width: none !important; width: auto !important; height: auto !important;
    max-height: none !important; }
}
"""
# Keyboard: gradio's dropdown opens its list on focus and leaves it open when Tab moves on,
# over the settings below. When focus lands outside the model menu, its list gets the Escape
# that closes it (Escape inside the menu closes it already).
JS = """
() => {
  document.addEventListener('focusin', (e) => {
    const box = document.querySelector('#model-select');
    if (!box || box.contains(e.target)) return;
    const input = box.querySelector('input');
    const list = document.querySelector('#model-select ~ * [role=listbox], ul.options, [role=listbox]');
    if (!input || !list) return;
    input.dispatchEvent(new KeyboardEvent('keydown', {key: 'Escape', code: 'Escape', bubbles: true}));
  });
  // Tab out of the menu to something that takes no focus event (the page itself): close too
  let tabbing = false;
  document.addEventListener('keydown', (e) => {
    tabbing = e.key === 'Tab';
    const box = document.querySelector('#model-select');
    if (e.key !== 'Escape' || !box || !box.contains(e.target)) return;
    const input = e.target;  // Escape: if the list is still open a moment later, leave the box
    setTimeout(() => { if (document.querySelector('[role=listbox], ul.options')) input.blur(); }, 50);
  }, true);
  document.addEventListener('focusout', (e) => {
    const box = document.querySelector('#model-select');
    if (!tabbing || !box || !box.contains(e.target)) return;
    const input = box.querySelector('input');
    setTimeout(() => { if (!input || box.contains(document.activeElement)) return;
      input.dispatchEvent(new KeyboardEvent('keydown', {key: 'Escape', code: 'Escape', bubbles: true})); },
      50);
  }, true);
}
"""
INITIAL_EXAMPLE = "photo_scene.png"
# The queue, for a room of people on one server. Events without their own limit are cheap CPU
# work (what-if plots, clicks, settings); image-decoding events share explorer.IMAGE_QUEUE;
# models (chat, probes) run one request at a time and show each waiting user's position.
# api_open=False: direct POSTs to /run/... would skip the queue and its limits (gradio opens
# them everywhere except on Spaces). max_size: explicit, because on ZeroGPU Spaces gradio's
# default is 1 waiting event in the whole app, so a room would mostly see "queue is full".
QUEUE = {"default_concurrency_limit": 8, "max_size": 256, "api_open": False}
# Uploads and rendered images older than 3 h are deleted every hour (disk stays bounded);
# the examples copied at start-up are kept.
DELETE_CACHE = (3600, 3 * 3600)


def build_demo(extra_tabs: Sequence[Callable[[Shared], None]] = (),
               initial_example: str | None = INITIAL_EXAMPLE,
               initial_model: str | None = None) -> gr.Blocks:
    """The whole app. Each of `extra_tabs` is called inside its own gr.Tab, after the
    explorer's tabs, with the shared components (image, model, settings)."""
    hardening.refuse_url_downloads()
    hardening.atomic_cache_writes()
    hardening.patient_startup_check()
    with gr.Blocks(title=TITLE, delete_cache=DELETE_CACHE) as demo:
        gr.Markdown(HEADER)
        shared, head = explorer.build_inputs(initial_example, initial_model)
        explorer.build_examples(shared)
        state = gr.State(None)  # {"model", "overrides", "size_hw"} of the last analysis
        with gr.Tabs():
            ex = explorer.build_explorer_tab()
            cmp = explorer.build_compare_tab()
            wi = explorer.build_whatif_tab()
            exp = explorer.build_export_tab()
            cst = cost_tab.build_cost_tab()
            for build_tab in extra_tabs:
                with gr.Tab(tab_label(build_tab)):
                    build_tab(shared)
        explorer.connect(demo, shared, head, state, ex, cmp, wi, exp)
        cost_tab.connect(state, cst)
    return demo


def tab_label(build_tab: Callable) -> str:
    """A builder's `tab_label` attribute, else its name: build_chat_tab -> "Chat"."""
    label = getattr(build_tab, "tab_label", None)
    if label:
        return label
    name = getattr(build_tab, "__name__", "extra")
    return name.removeprefix("build_").removesuffix("_tab").replace("_", " ").capitalize()


def launch_kwargs() -> dict:
    """What app.py passes to launch(): theme and css live there in Gradio 6; uploads over the
    loader's own limit are refused by the server before they are stored; hardening's
    request guard and blocked paths."""
    return {"theme": gr.themes.Soft(), "css": CSS, "js": JS, "max_file_size": MAX_UPLOAD_BYTES,
            **hardening.server_kwargs()}


def app_tabs() -> list[Callable[[Shared], None]]:
    """The tabs after the explorer's: chat with a model, then the offline probes. Both are
    cheap to import: torch, transformers and onnxruntime load on first use."""
    from .chat import build_chat_tab
    from .probes import build_probes_tab

    return [build_chat_tab, build_probes_tab]


__all__ = ["build_demo", "launch_kwargs", "app_tabs", "Shared", "CSS", "TITLE", "QUEUE"]

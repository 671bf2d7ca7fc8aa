"""The "Can it read this?" tab's handlers, on a bundled example.

The bundled examples' probe results ship in assets/probe_cache, so these calls must come from
that cache (that is the workshop-speed promise), and the numbers must show what AnyRes is for:
small text survives tiles and dies in the 336x336 squash.
"""
import gradio as gr
import pandas as pd
import pytest

from anyres_demo.examples import get_example
from anyres_demo.presets import FAMILY_DEFAULTS
from anyres_demo.ui import probes as ui_probes

DOC = str(get_example("document_page.png").path)


@pytest.fixture(autouse=True)
def only_shipped_cache(tmp_path, monkeypatch):
    # an empty writable cache first: anything not in the shipped cache would be recomputed
    monkeypatch.setenv("ANYRES_CACHE_DIR", str(tmp_path))


def test_legibility_table_from_the_shipped_cache():
    table, pictures, summary = ui_probes.on_legibility(DOC)
    assert isinstance(table, pd.DataFrame) and len(table) == 1 + len(FAMILY_DEFAULTS)
    assert table["cached"].tolist() == [True] * len(table)
    recall = dict(zip(table["view"], table["recall"]))
    squash = next(v for k, v in recall.items() if k.startswith("Fixed 336x336"))
    tiled = [v for k, v in recall.items() if not k.startswith("Fixed")]
    # measured on this page (text at 15, 12 and 10 px): squash 0.59, every strategy >= 0.96
    assert squash < 0.7 and min(tiled) > 0.9 and min(tiled) > squash + 0.25
    assert len(pictures) == len(table) and "reference words read" in pictures[0][1]
    assert "words** read at full resolution" in summary


@pytest.mark.parametrize("model", [FAMILY_DEFAULTS["llava_next"], "Qwen/Qwen2.5-VL-7B-Instruct"])
def test_attention_panels_from_the_shipped_cache(model):
    panels, crops, note, rows = ui_probes.on_attention(DOC, "last", model)
    # tiles (or Qwen's native image) | global view (LLaVA base) | the 336 squash baseline
    assert len(panels) == (3 if "llava" in model else 2)
    assert "from the cache" in note and "not an explanation" in note
    assert "stand-in" in note.lower()
    assert len(crops) == len(rows) >= 1


def test_no_image_is_a_clear_message():
    with pytest.raises(gr.Error, match="No image yet"):
        ui_probes.on_legibility(None)

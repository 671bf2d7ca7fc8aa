"""UI handlers called directly: values, clear errors for bad input, the demo's structure."""
from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import zlib
from types import SimpleNamespace

import gradio as gr
import numpy as np
import pytest
from gradio.data_classes import ImageData
from PIL import Image

from anyres_demo import plan_image
from anyres_demo.examples import get_example
from anyres_demo.ui import build_demo, tab_label
from anyres_demo.ui import explorer as ui
from anyres_demo.overrides import SETTING_SPECS
from anyres_demo.presets import FAMILY_DEFAULTS
from anyres_demo.ui.shared import Shared

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CHART = str(get_example("chart_wide.png").path)  # 1600x600
LLAVA = "llava-hf/llava-v1.6-mistral-7b-hf"
QWEN = "Qwen/Qwen2-VL-2B-Instruct"
INTERNVL = "OpenGVLab/InternVL3-1B-hf"


def _total(html: str) -> int:
    number = html.split('token-total-number">')[1].split("<")[0]
    return int(number.replace(",", ""))


def test_analyze_returns_every_view_for_an_example():
    out = ui.on_analyze(CHART, LLAVA, None, None, None, None, "")
    (total, summary, overlay, note, gallery, crops_note, token_map, token_info, ledger, formula,
     why_md, why, candidates, divergence, teach_grid, teach_crops, state) = out
    assert _total(total) == plan_image((600, 1600), LLAVA).num_tokens == 2136
    assert "1600x600 image -> 4 crops" in summary and "*Example: A 1600x600 chart" in summary
    assert isinstance(overlay, Image.Image) and isinstance(token_map, Image.Image)
    assert note.startswith("1600x600 resized x0.561 to 897x336")
    assert [label for _, label in gallery][0] == "#1 base image: the whole image squashed to 336x336"
    assert len(gallery) == 4 and crops_note.startswith("4 crops")
    assert ledger.iloc[-1].tolist()[:2] == ["total", 2136]
    assert formula == "**Formula for this image:** `576 + 24x64 + 24 = 2136`"
    assert (why.iloc[:, 0] == "✓ chosen").sum() == 1
    assert candidates.data[0].name == "image px kept"
    assert "LLaVA-NeXT" in teach_grid
    assert state == {"model": LLAVA, "overrides": {}, "size_hw": [600, 1600]}


def test_analyze_applies_only_the_settings_of_the_chosen_family():
    out = ui.on_analyze(CHART, QWEN, 200_000, None, 4, None, "672x336")  # tiles/canvases ignored
    assert _total(out[0]) == plan_image((600, 1600), QWEN, max_pixels=200_000).num_tokens
    assert out[-1]["overrides"] == {"max_pixels": 200_000}
    out = ui.on_analyze(CHART, INTERNVL, 200_000, None, 4, None, "")
    assert _total(out[0]) == plan_image((600, 1600), INTERNVL, max_tiles=4).num_tokens
    out = ui.on_analyze(CHART, LLAVA, None, None, None, None, "672x336, 1008x336")
    assert out[-1]["overrides"] == {"pinpoints_hw": [[336, 672], [336, 1008]]}


@pytest.mark.parametrize("settings,message", [
    ((10**11, None, None, None, ""), "max_pixels is 100,000,000,000, above this app's safety limit"),
    ((None, None, None, None, "672 by 336"), "canvas '672' is not of the form WIDTHxHEIGHT"),
    ((1.5, None, None, None, ""), "max_pixels must be a whole number, got '1.5'"),
])
def test_bad_settings_are_a_clear_gr_error(settings, message):
    model = LLAVA if settings[-1] else QWEN
    with pytest.raises(gr.Error) as err:
        ui.on_analyze(CHART, model, *settings)
    assert message in err.value.message


def test_bad_uploads_are_clear_gr_errors(tmp_path):
    text = tmp_path / "notes.png"
    text.write_text("these are my notes, not a picture\n")
    noisy = tmp_path / "noisy.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (200, 300, 3), dtype=np.uint8)).save(noisy)
    truncated = tmp_path / "cut.png"
    truncated.write_bytes(noisy.read_bytes()[:60_000])  # of ~180 kB
    with pytest.raises(gr.Error) as err:
        ui.on_analyze(str(text), LLAVA, None, None, None, None, "")
    assert "'notes.png' is not an image: it contains text" in err.value.message
    with pytest.raises(gr.Error) as err:
        ui.on_analyze(str(truncated), LLAVA, None, None, None, None, "")
    assert "the PNG file is truncated or corrupt" in err.value.message
    tiny_but_huge = tmp_path / "bomb.png"
    tiny_but_huge.write_bytes(open(CHART, "rb").read()[:2000])  # header says 1600x600
    with pytest.raises(gr.Error) as err:
        ui.on_analyze(str(tiny_but_huge), LLAVA, None, None, None, None, "")
    assert "too small to hold that many pixels" in err.value.message


def test_gradio_does_not_open_uploads_the_loader_checks_them(tmp_path, monkeypatch):
    """gr.Image's own preprocess opened every upload with Pillow before any handler (an ICO's
    largest icon was decoded right there, and a failure showed a bare "Error"); the guarded
    image hands over the path, also for a component gradio rebuilds for a browser session
    (the guard is on the class), and the loader explains what is wrong."""
    import PIL.Image

    text = tmp_path / "notes.png"
    text.write_text("plain text\n")
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(_png_header(20_000, 20_000))  # 400 MP claimed
    ui.guard_uploads(gr.Image(type="filepath", image_mode=None, elem_id="guarded-test"))
    image = gr.Image(type="filepath", image_mode=None, elem_id="guarded-test")  # a rebuilt copy
    real_open = PIL.Image.open

    def no_open(*args, **kwargs):
        raise AssertionError("gradio opened the upload with Pillow")

    monkeypatch.setattr(PIL.Image, "open", no_open)
    for path, name in ((text, "notes.png"), (bomb, "bomb.png"), (CHART, "chart_wide.png")):
        assert image.preprocess(ImageData(path=str(path), orig_name=name)) == str(path)
    monkeypatch.setattr(PIL.Image, "open", real_open)
    with pytest.raises(gr.Error) as err:
        ui.on_analyze(str(text), LLAVA, None, None, None, None, "")
    assert "'notes.png' is not an image: it contains text" in err.value.message
    with pytest.raises(gr.Error) as err:
        ui.on_analyze(str(bomb), LLAVA, None, None, None, None, "")
    assert "far above the 110.0 megapixels limit" in err.value.message
    other = gr.Image(type="filepath", image_mode=None)  # not guarded: gradio's own behaviour
    with pytest.raises(Exception):
        other.preprocess(ImageData(path=str(text), orig_name="notes.png"))


def _png_header(width: int, height: int) -> bytes:
    """A PNG that only claims a size: signature, IHDR, an empty IDAT, IEND."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b""))
            + chunk(b"IEND", b""))


def test_no_image_clears_the_views():
    out = ui.on_analyze(None, LLAVA, None, None, None, None, "")
    assert len(out) == 17 and "—" in out[0] and out[2] is None and out[-1] is None


def test_model_change_shows_only_that_familys_settings():
    updates = ui.on_model(QWEN)
    visible = {name: u["visible"] for name, u in zip(ui.SETTING_NAMES, updates)}
    assert {n for n, v in visible.items() if v} == {"max_pixels", "min_pixels"}
    # a pixel budget in plain words: tokens x factor x factor = pixels
    assert updates[0]["placeholder"] == "checkpoint: 16,384 x 28 x 28 = 12,845,056 px (up to 16,384 tokens)"
    assert updates[0]["value"] is None
    llava = dict(zip(ui.SETTING_NAMES, ui.on_model(LLAVA)))
    assert llava["pinpoints"]["visible"] and llava["pinpoints"]["value"] == ""
    assert llava["pinpoints"]["placeholder"].startswith("checkpoint: 672x336, 336x672")


def test_clicking_the_token_map_describes_the_token():
    state = ui.on_analyze(CHART, LLAVA, None, None, None, None, "")[-1]
    from anyres_demo import build_layout, views

    plan = plan_image((600, 1600), LLAVA)
    placed, _ = views.place(views.panels(plan, build_layout(plan)))
    base = placed[0]
    x = base.left + 3
    y = base.top + 3
    text, marked = ui.on_click(state, CHART, SimpleNamespace(index=[x, y]))
    # counted from 1 like the total, the 0-based index named as such
    assert text.startswith("**Token 1 of 2,136**") and "index 0 counting from 0" in text
    assert "kind: **base**" in text and "cell row 1, column 1" in text
    # the clicked cell is marked on the map: the mark's yellow where the unmarked map has none
    plain = np.asarray(ui.on_analyze(CHART, LLAVA, None, None, None, None, "")[6])
    got = np.asarray(marked)
    assert got.shape == plain.shape
    changed = np.argwhere((got != plain).any(axis=2))
    assert changed.size and abs(changed[:, 1].mean() - x) < 12 and abs(changed[:, 0].mean() - y) < 12
    assert (got[changed[:, 0], changed[:, 1]] == views.MARK_RGB[1]).all(axis=1).any()
    text, marked = ui.on_click(state, CHART, SimpleNamespace(index=[0, 0]))
    assert text.startswith("No token there") and not isinstance(marked, Image.Image)
    assert ui.on_click(None, None, SimpleNamespace(index=[5, 5]))[0] == "Analyse an image first."


def test_compare_uses_the_chosen_model_for_its_family():
    state = ui.on_analyze(CHART, "Qwen/Qwen2.5-VL-7B-Instruct", 100_000, None, None, None, "")[-1]
    gallery, fig, table = ui.on_compare(CHART, state)
    assert len(gallery) == len(FAMILY_DEFAULTS) and len(fig.data) >= 3
    assert table["model"].tolist()[:4] == ["LLaVA-NeXT (v1.6) Mistral-7B", "LLaVA-OneVision 0.5B",
                                           "Qwen2.5-VL 7B", "InternVL3 1B"]
    assert {"Gemma 3 4B", "Gemma 4 E2B"} <= set(table["model"])
    qwen_row = table.iloc[2]
    assert qwen_row["tokens in total"] == plan_image((600, 1600), "Qwen/Qwen2.5-VL-7B-Instruct",
                                            max_pixels=100_000).num_tokens
    assert ui.on_compare(None, state)[0] == []


def test_compare_shows_only_the_picked_families():
    state = ui.on_analyze(CHART, "qwen3-vl", None, None, None, None, "")[-1]
    gallery, fig, table = ui.on_compare(CHART, state, ["pixtral", "qwen3_vl"])
    assert len(gallery) == 2
    assert table["model"].tolist() == ["Qwen3-VL 2B", "Pixtral 12B"]  # family order, not pick order
    assert table["tokens in total"].tolist() == [plan_image((600, 1600), "qwen3-vl").num_tokens,
                                        plan_image((600, 1600), "pixtral").num_tokens]
    with pytest.raises(gr.Error, match="at least one family"):
        ui.on_compare(CHART, state, [])


def test_whatif_tables_and_sync_with_the_image():
    scale_fig, aspect_fig, table = ui.on_whatif(1920, 1080, 12845056, 12)
    assert table["tokens in total"].tolist()[:4] == [1948, 7269, 2693, 2306]
    n = len(FAMILY_DEFAULTS)
    assert len(scale_fig.data) == 2 * n and len(aspect_fig.data) == 2 * n  # a line + a star each
    gemma = dict(zip(table["model"], table["tokens in total"]))
    assert (gemma["Gemma 3 4B"], gemma["Gemma 4 E2B"]) == (260, 266)  # 256 + 4 specials; 264 + 2
    # Gemma 4's budget ladder is its own control
    ladder = [dict(zip(*(lambda t: (t["model"], t["tokens in total"]))(ui.on_whatif(1920, 1080, 12845056, 12, b)[2])))
              ["Gemma 4 E2B"] for b in ("70", "140", "280", "560", "1120")]
    assert ladder == [68, 122, 266, 529, 1102]  # spec 3.6 (66, 120, 264, 527, 1100) + 2 markers
    by_model = dict(zip(table["model"], table["tokens in total"]))
    assert (by_model["Qwen3-VL 2B"], by_model["Pixtral 12B"]) == (2042, 2340)  # 2026 spec 1.7, 6.6
    budget = 28 * 28 * 256
    small = ui.on_whatif(1920, 1080, budget, 4)[2]
    assert small["tokens in total"].tolist()[2:4] == [plan_image((1080, 1920), QWEN, max_pixels=budget).num_tokens,
                                            plan_image((1080, 1920), INTERNVL, max_tiles=4).num_tokens]
    width, height, *_ = ui.on_whatif_from_image({"model": LLAVA, "overrides": {}, "size_hw": [600, 1600]},
                                                12845056, 12)
    assert (width, height) == (1600, 600)
    with pytest.raises(gr.Error) as err:
        ui.on_whatif(0, 1080, 12845056, 12)
    assert "width must be at least 1 pixel" in err.value.message


def test_export_writes_json_png_and_code():
    state = ui.on_analyze(CHART, INTERNVL, None, None, 6, None, "")[-1]
    json_path, png_path, py_path, code = ui.on_export(CHART, state)
    # named after the image and the model, and the script opens that image
    stem = f"{os.path.splitext(os.path.basename(CHART))[0]}_InternVL3-1B-hf"
    assert [os.path.basename(p) for p in (json_path, png_path, py_path)] == [
        f"{stem}_plan.json", f"{stem}_overlay.png", f"{stem}_reproduce.py"]
    assert open(py_path).read() == code and repr(os.path.basename(CHART)) in code
    data = json.load(open(json_path))
    assert data["plan"]["num_tokens"] == plan_image((600, 1600), INTERNVL, max_tiles=6).num_tokens
    assert Image.open(png_path).format == "PNG"
    assert f"plan_image(image, '{INTERNVL}', max_tiles=6)" in code
    with pytest.raises(gr.Error):
        ui.on_export(None, None)


def test_state_is_small_and_json_copyable():
    state = ui.on_analyze(CHART, LLAVA, None, None, None, None, "672x336")[-1]
    assert json.loads(json.dumps(state)) == state and len(json.dumps(state)) < 300


def test_build_demo_adds_extra_tabs_after_the_explorers():
    seen = []

    def build_probe_tab(shared: Shared) -> None:
        seen.append(shared)
        gr.Markdown("probe tab body")

    demo = build_demo(extra_tabs=[build_probe_tab])
    assert len(seen) == 1 and isinstance(seen[0].image, gr.Image)
    assert seen[0].settings == [seen[0].model, *(seen[0].controls[n] for n in SETTING_SPECS)]
    labels = [c["props"].get("label") for c in demo.config["components"] if c["type"] == "tabitem"]
    assert labels[:6] == ["What the model sees", "Compare families", "What-if", "Export", "Cost", "Probe"]
    total = [c for c in demo.config["components"] if c["props"].get("elem_id") == "token-total"]
    assert len(total) == 1
    assert tab_label(build_probe_tab) == "Probe"


def test_app_module_defines_demo_without_heavy_imports():
    code = ("import sys, app; import gradio as gr; assert isinstance(app.demo, gr.Blocks); "
            "print(sorted(m for m in ('torch', 'transformers', 'torchvision') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                         timeout=180)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_crops_gallery_items_are_images_with_labels():
    out = ui.on_analyze(str(get_example("receipt_tall.png").path), INTERNVL, None, None, None, None, "")
    gallery = out[4]
    assert [lbl.split(" ")[0] for _, lbl in gallery] == ["#1", "#2", "#3", "#4", "#5"]
    assert all(isinstance(pic, Image.Image) and pic.size == (448, 448) for pic, _ in gallery)
    assert np.asarray(gallery[-1][0]).std() > 0  # the thumbnail shows the receipt, not a blank


def test_only_the_ui_package_imports_gradio():
    modules = ["anyres_demo.views", "anyres_demo.plots", "anyres_demo.ledger", "anyres_demo.export",
               "anyres_demo.teaching", "anyres_demo.analysis", "anyres_demo.bench_ui"]
    code = (f"import sys\nfor m in {modules!r}: __import__(m)\n"
            "print(sorted(m for m in ('gradio', 'torch', 'transformers') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_example_caption_only_for_the_bundled_picture(tmp_path):
    mine = tmp_path / "chart_wide.png"  # same name as an example, different picture
    Image.new("RGB", (640, 480), (9, 9, 9)).save(mine)
    summary = ui.on_analyze(str(mine), LLAVA, None, None, None, None, "")[1]
    assert "640x480 image" in summary and "*Example:" not in summary

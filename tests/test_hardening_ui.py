"""Issue 9 through the UI handlers, in process: memory given back after refusals (RSS), one
decode limit shared by analyses and probes, probes on 1-px images, Compare beyond 200:1,
numbers gradio cannot parse, one log line per refusal.
"""
from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import gradio as gr
import pytest
from PIL import Image

from anyres_demo import images, plan_image
from anyres_demo.presets import FAMILY_DEFAULTS
from anyres_demo.security import return_freed_memory
from anyres_demo.ui import explorer as ui
from anyres_demo.ui import probes as probes_ui
from tests.corpus import huge_png_bytes, write_ico_with_png, write_png_rows

LLAVA, QWEN = FAMILY_DEFAULTS["llava_next"], FAMILY_DEFAULTS["qwen2_vl"]
INTERNVL = FAMILY_DEFAULTS["internvl"]
SETTINGS = (None, None, None, None, "")
RETURNED = 64_000_000  # RSS back within this of where it was


def _status(key: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    raise KeyError(key)


def _reset_peak() -> int:
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    return _status("VmRSS")


needs_proc = pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="Linux /proc")


@pytest.fixture(scope="module")
def hostile(tmp_path_factory) -> dict[str, str]:
    d = tmp_path_factory.mktemp("hostile-ui")
    wide = d / "wide_141000x700.png"  # 98.7 MP: decodes, then Qwen2-VL refuses (201:1)
    row = b"\x80" * 141_000
    write_png_rows(wide, 141_000, 700, 8, 0, lambda y: row)
    ico = d / "icon_13000x13000.ico"
    write_ico_with_png(ico, huge_png_bytes(d / "inner.png", 13_000))
    return {"wide": str(wide), "ico": str(ico)}


@needs_proc
def test_a_refused_analysis_gives_its_memory_back(hostile):
    """Before: the gr.Error gradio keeps chained the ValueError's traceback, whose frames held
    the decoded 395 MB image: four such refusals left 1.8 GB held."""
    return_freed_memory()
    with pytest.raises(gr.Error):  # warm: imports, caches, the decoder's first use
        ui.on_analyze(hostile["wide"], QWEN, *SETTINGS)
    before = _reset_peak()
    kept = []
    with pytest.raises(gr.Error) as err:
        ui.on_analyze(hostile["wide"], QWEN, *SETTINGS)
    kept.append(err.value)  # as gradio keeps it
    assert "above 200:1" in err.value.message
    peak, after = _status("VmHWM") - before, _status("VmRSS") - before
    print(f"141000x700 under Qwen2-VL: peak +{peak / 1e6:.0f} MB, kept +{after / 1e6:.0f} MB")
    assert peak >= 4 * 98_700_000 * 0.9  # the image really was decoded
    assert after <= RETURNED


@needs_proc
def test_an_ico_holding_a_huge_png_is_refused_without_decoding(hostile):
    """Before: Pillow decoded the 13000x13000 icon while opening the file: +645 MB."""
    return_freed_memory()
    before = _reset_peak()
    with pytest.raises(gr.Error) as err:
        ui.on_analyze(hostile["ico"], LLAVA, *SETTINGS)
    assert "13000x13000 (169.0 megapixels)" in err.value.message
    assert "not decoded" in err.value.message
    assert _status("VmHWM") - before <= RETURNED


def test_one_decode_limit_for_analyses_and_probes(tmp_path, monkeypatch):
    """Seven analyses and an encoder probe start together with the limit at 2: never more
    than 2 decoded at once. Before: the probes' own queue ran beside the 4 analyses."""
    monkeypatch.setenv("ANYRES_CACHE_DIR", str(tmp_path / "cache"))
    slots = images.DecodeSlots(2)
    monkeypatch.setattr(images, "DECODES", slots)
    paths = []
    for i in range(8):
        path = tmp_path / f"img{i}.png"
        Image.new("RGB", (300 + 40 * i, 200), (30 * i, 90, 160)).save(path)
        paths.append(str(path))
    start = threading.Barrier(8)

    def analyse(path):
        start.wait(60)
        return ui.on_analyze(path, INTERNVL, *SETTINGS)[0]

    def probe(path):
        start.wait(60)
        return probes_ui.on_attention(path, "last", LLAVA, lambda *a, **k: None)[2]

    with ThreadPoolExecutor(8) as pool:
        jobs = [pool.submit(analyse, p) for p in paths[:7]] + [pool.submit(probe, paths[7])]
        results = [j.result(timeout=600) for j in jobs]
    for path, html in zip(paths[:7], results[:7]):
        w = Image.open(path).size[0]
        assert f">{plan_image((200, w), INTERNVL).num_tokens:,}<" in html
    assert "computed in" in results[7]
    assert slots.peak == 2 and slots.active == 0


@pytest.mark.parametrize("wh", [(1, 1), (1, 20000), (20000, 1)])
def test_probes_on_one_pixel_images_answer_or_say_why(tmp_path, monkeypatch, wh):
    """Before: Pillow's "x1 must be greater than or equal to x0" (and a rapidocr traceback)."""
    monkeypatch.setenv("ANYRES_CACHE_DIR", str(tmp_path / "cache"))
    path = tmp_path / f"thin_{wh[0]}x{wh[1]}.png"
    Image.new("RGB", wh, (200, 200, 200)).save(path)
    quiet = {"progress": lambda *a, **k: None}
    panels, crops, note, _ = probes_ui.on_attention(str(path), "last", LLAVA, quiet["progress"])
    assert panels and crops and "computed in" in note
    if wh == (1, 20000):  # the OCR probe's failure was the strip (its resize rounds to 0 px)
        outs = [o for o in probes_ui.on_legibility(str(path), LLAVA, quiet["progress"])
                if not isinstance(o[0], type(gr.skip()))]  # the last one holds every result
        table, pictures, summary = outs[-1]
        refused = summary.count("Not shown:")
        assert len(pictures) == len(table) == 1 + len(FAMILY_DEFAULTS) - refused  # + baseline
        assert "Not shown: Qwen2-VL 2B: aspect ratio" in summary
    if max(wh) > 200:
        with pytest.raises(gr.Error, match="above 200:1, which the Qwen processor rejects"):
            probes_ui.on_attention(str(path), "last", QWEN, quiet["progress"])


def test_compare_beyond_200_to_1_shows_the_other_families(tmp_path):
    path = tmp_path / "strip_20100x100.png"
    Image.new("RGB", (20100, 100), (10, 120, 200)).save(path)
    state = ui.on_analyze(str(path), LLAVA, *SETTINGS)[-1]
    with pytest.warns(UserWarning, match="Qwen2-VL 2B: cannot process this image: aspect ratio"):
        gallery, _, table = ui.on_compare(str(path), state)
    rows = {r[0]: r for r in table.values.tolist()}
    refused = [r for r in rows.values() if r[5] == "—"]
    assert len(rows) == len(FAMILY_DEFAULTS) and len(gallery) == len(rows) - len(refused)
    assert "above 200:1" in rows["Qwen2-VL 2B"][-1]
    for repo in FAMILY_DEFAULTS.values():
        label = plan_image((100, 100), repo).preset.label
        if rows[label][5] != "—":
            assert rows[label][5] == plan_image((100, 20100), repo).num_tokens


@pytest.mark.parametrize("value,message", [
    ("abc", "max_pixels must be a whole number, got 'abc'"),
    ("1e30", "max_pixels is 1e+30, above this app's safety limit of 51,380,224 pixels"),
    ("NaN", "finite"), ("Infinity", "finite"), (float("inf"), "finite")])
def test_numbers_gradio_cannot_parse_get_a_message(value, message):
    """Before: gr.Number's own preprocess failed with a bare "Error" (or 1e30 went through)."""
    ui.guard_number(gr.Number(precision=0, minimum=0, elem_id="set-max_pixels"), "max_pixels")
    number = gr.Number(precision=0, minimum=0, elem_id="set-max_pixels")  # a rebuilt copy
    with pytest.raises(gr.Error) as err:
        number.preprocess(value)
    assert message in err.value.message
    assert number.preprocess(12845056) == 12845056 and number.preprocess(None) is None
    assert number.preprocess(0) == 0  # the handler says 0 means the checkpoint's value


def test_a_refusal_is_one_log_line_not_a_traceback(caplog, capsys):
    with caplog.at_level(logging.WARNING, logger="anyres_demo"):
        with pytest.raises(gr.Error) as err:
            ui.on_analyze(None, LLAVA, None, None, None, None, "garbage")
    assert err.value.print_exception is False  # gradio prints no traceback for it
    assert err.value.__context__ is None and err.value.__cause__ is None
    (record,) = [r for r in caplog.records if r.name == "anyres_demo"]
    assert "canvas 'garbage' is not of the form" in record.getMessage()
    assert "\n" not in record.getMessage() and record.exc_info is None

"""Decode once per upload (ui/uploads.py) and the output formats (ui/formats.py): display
pictures go out as JPEG, the crops as lossless WebP, Export as PNG."""
from __future__ import annotations

import io

import gradio as gr
import numpy as np
import pytest
from PIL import Image

from anyres_demo.images import load_image
from anyres_demo.presets import FAMILY_DEFAULTS
from anyres_demo.ui import build_demo, formats, uploads
from anyres_demo.ui import explorer as ui
from anyres_demo.ui import probes as probes_ui

LLAVA = "llava-hf/llava-v1.6-mistral-7b-hf"


@pytest.fixture
def photo(tmp_path):
    rng = np.random.default_rng(0)
    small = rng.integers(0, 256, (60, 80, 3), dtype=np.uint8)
    path = tmp_path / "photo.jpg"
    Image.fromarray(small).resize((1600, 1200), Image.Resampling.BILINEAR).save(path, quality=90)
    return str(path)


@pytest.fixture
def decodes(monkeypatch):
    calls = []

    def counting(source):
        calls.append(source)
        return load_image(source)

    uploads.clear()
    monkeypatch.setattr(uploads, "load_image", counting)
    yield calls
    uploads.clear()


def test_one_decode_per_upload_for_every_tab(photo, decodes):
    state = ui.on_analyze(photo, LLAVA, None, None, None, None, "")[-1]
    gallery, _, table = ui.on_compare(photo, state)
    ui.on_whatif_from_image(state, 12845056, 12)
    ui.on_export(photo, state)
    assert probes_ui.load(photo).size_hw == (1200, 1600)  # what every probe handler reads
    assert len(decodes) == 1
    assert len(gallery) == len(table) == len(FAMILY_DEFAULTS)


def test_a_new_file_is_decoded_again(photo, decodes):
    ui.on_analyze(photo, LLAVA, None, None, None, None, "")
    Image.new("RGB", (640, 480), "white").save(photo)  # same path, new content
    out = ui.on_analyze(photo, LLAVA, None, None, None, None, "")
    assert out[-1]["size_hw"] == [480, 640] and len(decodes) == 2


def test_compare_from_the_display_copy_matches_the_full_image(photo):
    state = ui.on_analyze(photo, LLAVA, None, None, None, None, "")[-1]
    from anyres_demo import analysis

    choice, _ = analysis.Choice.from_state(state)
    _, _, rows_full = analysis.compare(load_image(photo).image, choice)
    _, _, rows_cached = analysis.compare(uploads.display(photo), choice)
    assert rows_full == rows_cached


def _served(component, value):
    """What gradio writes for the browser: (format, decoded pixels) of each image."""
    out = component.postprocess(value)
    items = [out] if not hasattr(out, "root") else [
        getattr(i, "image", i) for i in out.root]
    served = []
    for item in items:
        with Image.open(item.path) as im:
            served.append((im.format, np.asarray(im.convert("RGB"))))
    return served


def test_display_pictures_are_jpeg_and_crops_lossless(photo):
    demo = build_demo()
    by_id = {getattr(b, "elem_id", None): b for b in demo.blocks.values()}
    a = ui.on_analyze(photo, LLAVA, None, None, None, None, "")
    overlay, crops, token_map = a[2], a[4], a[6]
    for elem_id, picture in (("overlay", overlay), ("token-map", token_map)):
        [(fmt, pixels)] = _served(by_id[elem_id], picture)
        assert fmt == "JPEG" and pixels.shape[:2] == picture.size[::-1]
        err = np.abs(pixels.astype(int) - np.asarray(picture, dtype=int))
        assert err.mean() < 3  # looks the same; bench --only encode measures it per family
    served = _served(by_id["crops"], crops)
    assert [fmt for fmt, _ in served] == ["WEBP"] * len(crops)
    for (_, pixels), (crop, _) in zip(served, crops):
        assert (pixels == np.asarray(crop)).all()  # the model's pixel values, unchanged
    galleries = [b for b in demo.blocks.values() if isinstance(b, gr.Gallery)]
    assert {g.format for g in galleries if g.elem_id != "crops"} == {"jpeg"}


def test_encode_settings():
    rng = np.random.default_rng(1)
    img = Image.fromarray(rng.integers(0, 256, (64, 96, 3), dtype=np.uint8))
    webp = Image.open(io.BytesIO(formats.encode(img, "webp")))
    assert webp.format == "WEBP" and (np.asarray(webp) == np.asarray(img)).all()
    assert Image.open(io.BytesIO(formats.encode(img.convert("RGBA"), "jpg"))).format == "JPEG"

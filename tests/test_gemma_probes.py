"""The probes on Gemma's crops: Gemma 3's pan-and-scan crops are cut from the original before
they are squashed, so their pixels map back through their own source boxes; the stand-in
encoder's attention and the OCR legibility probe run on them like on any crop."""
from __future__ import annotations

import numpy as np
import pytest

from anyres_demo.geometry import Box
from anyres_demo.probes import crop_to_original, original_to_crop, strategy_view
from test_probes import scene

G3, G4 = "google/gemma-3-4b-it", "google/gemma-4-E2B-it"
PAS = {"do_pan_and_scan": True}


@pytest.mark.parametrize("size_hw", [(1080, 1920), (3001, 1000), (256, 511), (300, 2000)])
def test_pan_and_scan_crops_map_to_their_source_boxes_and_back(size_hw):
    view = strategy_view(size_hw, G3, **PAS)
    assert len(view.crops) > 1
    for spec in view.crops:
        w, h = spec.window.width, spec.window.height
        ox, oy = crop_to_original(spec, view.image_hw, np.array([0.0, w]), np.array([0.0, h]))
        assert Box(ox[0], oy[0], ox[1], oy[1]).as_tuple() == pytest.approx(spec.source.as_tuple())
        xs, ys = np.array([0.0, 13.5, w]), np.array([0.0, 7.25, h])
        back = original_to_crop(spec, view.image_hw, *crop_to_original(spec, view.image_hw, xs, ys))
        np.testing.assert_allclose(back, (xs, ys), atol=1e-9)


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
    folder = tmp_path / "cache"
    monkeypatch.setenv("ANYRES_CACHE_DIR", str(folder))
    return folder


def test_encoder_attention_on_pan_and_scan_crops(cache_dir):
    from anyres_demo.probes.encoder import EncoderSettings, encoder_attention, image_share

    image = scene(700, 420)  # 5:3: two crops of 350x420
    # few patches: the stand-in sees 16x16-patch copies of the 896 views (fast on CPU)
    result = encoder_attention(image, G3, settings=EncoderSettings(max_patches=256), **PAS)
    kinds = [s.kind for s in result.view.crops]
    assert kinds == ["base", "pas_crop", "pas_crop"]
    for heat, kind in ((result.highres, "pas_crop"), (result.global_view, "base")):
        assert heat.shape == (420, 700) and (heat >= 0).all()
        shares = [image_share(s, a) for s, a in zip(result.view.crops, result.crops) if s.kind == kind]
        assert heat.sum() == pytest.approx(np.mean(shares), abs=1e-4)
    # each crop's attention is painted onto its own half of the image
    left, right = result.highres[:, :350].sum(), result.highres[:, 350:].sum()
    assert left > 0 and right > 0
    assert "pan-and-scan crops" in result.captions["highres"]


def test_legibility_counts_pan_and_scan_crops_as_the_high_resolution_views():
    """Words read by a crop count as 'high-resolution' reads, the whole view's as global ones,
    and the crops' shared edge is a seam (no OCR needed: readings are given)."""
    from anyres_demo.probes.legibility import Reading, score
    from anyres_demo.probes.ocr import Word

    view = strategy_view((512, 2048), G3, **PAS)  # 4 crops of 512x512
    assert view.tile_boxes == [c.source for c in view.crops[1:]]
    ref_words = [Word("left", (10, 10, 60, 22), 1.0), Word("seam", (490, 40, 540, 52), 1.0),
                 Word("right", (1600, 10, 1660, 22), 1.0)]
    reference = Reading("reference", ref_words, np.full(3, -1), ["reference"] * 3)
    reading = Reading(view.key, [ref_words[0], ref_words[2]], np.array([0, 4]), ["base", "pas_crop"])
    result = score(view, reference, reading)
    assert result.read.tolist() == [True, False, True]
    assert result.read_highres.tolist() == [False, False, True]
    assert result.read_global.tolist() == [True, False, False]
    assert result.cut.tolist() == [False, True, False]

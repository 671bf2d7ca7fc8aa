"""Crop rendering: every canvas is one Pillow call (also for tall, thin images), and the crops
follow the plan's geometry (pixel parity with the processors is in
test_parity_processors.py)."""
import numpy as np
import pytest
from PIL import Image

from anyres_demo import plan_image
from anyres_demo.presets import FAMILY_DEFAULTS
from anyres_demo.render import CUT_FIRST_KINDS, pad_to_canvas, render_crops, resample_of


def noise(w, h, seed=0):
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8))


# Tall, thin images whose big canvases (over 1 MP) the old banded resize cut in two: InternVL's
# 20x4000 -> 448x5376 differed from one Pillow call by up to 26/255 (Pillow's own vertical-first
# path for images over 100:1 ran on each band but not on the whole).
TALL_THIN_HW = [(4000, 20), (2688, 16), (3000, 24), (5376, 32)]


@pytest.mark.parametrize("model", list(FAMILY_DEFAULTS.values()))
@pytest.mark.parametrize("size_hw", TALL_THIN_HW, ids=lambda hw: f"{hw[1]}x{hw[0]}")
def test_every_canvas_is_one_pillow_call(model, size_hw):
    image = noise(size_hw[1], size_hw[0], seed=size_hw[0])
    plan = plan_image(image, model)
    crops = render_crops(image, plan)
    fill = getattr(plan.preset.settings, "pad_fill", 0)
    resample = resample_of(plan)
    for step_hw in plan.resize_chain_hw:  # a family's resize steps before its crops, if any
        image = image.resize(step_hw.wh, resample)
    for spec, crop in zip(plan.crops, crops):
        source = image
        if spec.kind in CUT_FIRST_KINDS:
            b = spec.source
            source = image.crop((int(b.x0), int(b.y0), int(b.x1), int(b.y1)))
        if source.size != spec.resize_hw.wh:
            source = source.resize(spec.resize_hw.wh, resample)  # one Pillow call
        w = spec.window
        expected = pad_to_canvas(source, spec, fill).crop((int(w.x0), int(w.y0), int(w.x1), int(w.y1)))
        assert (np.asarray(crop) == np.asarray(expected)).all(), (model, size_hw, spec.index)


def test_crops_follow_the_plan():
    image = noise(640, 480)
    plan = plan_image(image, "llava-next")  # 2x2 on 672x672, resized 672x504 pasted at y=84
    crops = render_crops(image, plan)
    assert [c.size for c in crops] == [(336, 336)] * 5
    top = np.asarray(crops[1])
    assert (top[:84] == 0).all() and top[84:].any()  # black padding above the image
    base = np.asarray(crops[0])
    expected = np.asarray(image.resize((336, 336), Image.Resampling.BICUBIC))
    assert (base == expected).all()  # the base image is a squash, not a pad


def test_wrong_image_for_the_plan_is_refused():
    plan = plan_image((480, 640), "internvl")
    with pytest.raises(ValueError, match="plan is for 640x480"):
        render_crops(noise(100, 100), plan)

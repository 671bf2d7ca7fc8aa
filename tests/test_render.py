"""Crop rendering: the banded parallel resize is pixel-identical to Pillow's single call, and
the crops follow the plan's geometry (pixel parity with the processors is in
test_parity_processors.py)."""
import numpy as np
import pytest
from PIL import Image

from anyres_demo import plan_image
from anyres_demo.render import BAND_MIN_PIXELS, render_crops, resize


def noise(w, h, seed=0):
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8))


@pytest.mark.parametrize("src_wh,out_wh,box", [
    ((2000, 1500), (1536, 1152), None),  # downscale, even rows
    ((1999, 1501), (1345, 1002), None),  # odd source sizes
    ((900, 700), (1792, 1344), None),  # upscale (InternVL's small-image case)
    ((3000, 2000), (1200, 900), (10.5, 20.25, 2990.0, 1980.0)),  # a fractional box
])
def test_banded_resize_is_pixel_identical(src_wh, out_wh, box):
    assert out_wh[0] * out_wh[1] >= BAND_MIN_PIXELS  # the banded path really runs
    im = noise(*src_wh)
    one = np.asarray(im.resize(out_wh, Image.Resampling.BICUBIC, box=box))
    banded = np.asarray(resize(im, out_wh, Image.Resampling.BICUBIC, box=box))
    assert banded.shape == one.shape and (banded == one).all()


def test_banded_resize_random_even_heights():
    rng = np.random.default_rng(1)
    src = noise(4003, 3001, seed=1)
    for _ in range(12):
        w, h = int(rng.integers(700, 2400)), 2 * int(rng.integers(500, 1200))
        im = src.crop((0, 0, int(rng.integers(1000, 4003)), int(rng.integers(800, 3001))))
        one = np.asarray(im.resize((w, h), Image.Resampling.BICUBIC))
        assert (np.asarray(resize(im, (w, h))) == one).all(), (im.size, w, h)


def test_odd_heights_take_one_call():
    im = noise(1999, 1501)
    one = np.asarray(im.resize((1345, 1001), Image.Resampling.BICUBIC))
    assert (np.asarray(resize(im, (1345, 1001))) == one).all()


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

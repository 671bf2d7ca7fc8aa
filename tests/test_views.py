"""views: panels hold every token once, clicks find the token drawn there, overlays shade the
right pixels, crops match render_crops."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from anyres_demo import build_layout, plan_image
from anyres_demo.geometry import Size
from anyres_demo.presets import FAMILY_DEFAULTS
from anyres_demo.render import render_crops
from anyres_demo import views

FAMILIES = list(FAMILY_DEFAULTS.values())
# (height, width): wide (LLaVA pads above / below), tall, tiny, OneVision downscale, 1x1, extreme
SIZES = [(600, 1600), (1400, 390), (24, 24), (3000, 4000), (1, 1), (28, 5600), (200, 300)]
GREEN = (40, 200, 90)


def _plan(size_hw, model, **overrides):
    plan = plan_image(size_hw, model, **overrides)
    return plan, build_layout(plan)


def _solid(size_hw, rgb=GREEN):
    return Image.new("RGB", (size_hw[1], size_hw[0]), rgb)


@pytest.mark.parametrize("model", FAMILIES)
@pytest.mark.parametrize("size_hw", SIZES, ids=str)
def test_panels_hold_every_image_token_exactly_once(model, size_hw):
    plan, layout = _plan(size_hw, model)
    seen = []
    for p in views.panels(plan, layout):
        assert p.tokens.shape == (len(p.row_start), len(p.col_start))
        seen += p.tokens[p.tokens >= 0].tolist()
        if p.newlines is not None:
            seen += p.newlines[p.newlines >= 0].tolist()
    expected = np.flatnonzero(layout.image_token_mask).tolist()  # placeholders only
    # row-end markers that are special tokens (Pixtral's [IMG_BREAK]) are drawn, not counted
    seen = [i for i in seen if layout.image_token_mask[i]]
    assert sorted(seen) == expected  # no token twice, none missing
    assert len(seen) == plan.num_image_tokens


def _cell_centre(placed, index):
    """Composite pixel at the centre of the cell (or newline marker) holding token `index`."""
    for pl in placed:
        p = pl.panel
        hit = np.argwhere(p.tokens == index)
        if hit.size:
            r, c = hit[0]
            ox = (p.col_start[c] + p.col_end[c]) / 2
            oy = (p.row_start[r] + p.row_end[r]) / 2
            return pl.left + (ox - pl.frame.x0) * pl.frame.scale, pl.top + (oy - pl.frame.y0) * pl.frame.scale
        if p.newlines is not None and index in p.newlines:
            r = int(np.nonzero(p.newlines == index)[0][0])
            oy = (p.row_start[r] + p.row_end[r]) / 2
            return pl.left + pl.frame.size_wh[0] + pl.strip / 2, pl.top + (oy - pl.frame.y0) * pl.frame.scale
    raise AssertionError(f"token {index} is in no panel")


@pytest.mark.parametrize("model", FAMILIES)
@pytest.mark.parametrize("size_hw", [(600, 1600), (1400, 390), (3000, 4000)], ids=str)
def test_clicking_a_cell_centre_finds_that_token(model, size_hw):
    plan, layout = _plan(size_hw, model)
    placed, (w, h) = views.place(views.panels(plan, layout))
    # tokens wholly in padding (Llama 4's canvas) have no pixels to click
    image_tokens = np.flatnonzero(layout.image_token_mask & ~np.isnan(layout.box).any(axis=1))
    rng = np.random.default_rng(0)
    # cells under ~2 px cannot be hit reliably at the centre pixel: skip the densest grids
    sample = rng.choice(image_tokens, min(60, len(image_tokens)), replace=False)
    checked = 0
    for index in sample:
        x, y = _cell_centre(placed, int(index))
        assert 0 <= x < w and 0 <= y < h
        info = views.token_at(plan, layout, int(x), int(y))
        if info is not None and info.index == index:
            checked += 1
    # centre pixels of sub-pixel cells may round into a neighbour
    assert checked >= (55 if len(sample) == 60 else len(sample))


def test_click_on_a_newline_marker_and_on_padding():
    plan, layout = _plan((600, 1600), "llava-next")  # 1x3 canvas, 24 rows after unpadding
    placed, _ = views.place(views.panels(plan, layout))
    tiles = placed[1]
    row0 = tiles.panel.row_start[0]
    y = tiles.top + (row0 - tiles.frame.y0) * tiles.frame.scale + 2
    x = tiles.left + tiles.frame.size_wh[0] + tiles.strip // 2
    info = views.token_at(plan, layout, x, y)
    assert info.kind == "newline"
    assert info.index == 576 + 64  # base 576, then the first row's 64 tile tokens
    # far left of the tiles panel is padding that unpadding removed: no token there
    assert views.token_at(plan, layout, tiles.left + 1, y) is None
    assert views.token_at(plan, layout, 0, 0) is None  # the margin


def test_describe_token_names_index_kind_crop_and_box():
    plan, layout = _plan((3000, 4000), "llava-next")
    text = views.describe_token(plan, layout, layout.token(600))  # 576 base, then row 0: 48 cells
    # people's numbers count from 1 (like the total); the 0-based index is named as such
    assert "**Token 601 of 2,340**" in text and "index 600 counting from 0" in text
    assert "kind: **tile**" in text
    assert "from crop 3 of 5: tile row 1, column 2" in text  # cell 24 opens the second tile
    assert "cell row 7, column 25" in text  # 6 padding rows above were removed
    assert "source: x 2000-2083, y 6-89 of the original" in text
    assert "No token there" in views.describe_token(plan, layout, None)


def test_overlay_shades_padding_and_the_unpadded_band():
    size_hw = (600, 1600)  # LLaVA-NeXT: 897x336 on 1008x336, 55 px pad left / 56 right
    plan, layout = _plan(size_hw, "llava-next")
    img = views.overlay(_solid(size_hw), plan, layout, caption=False)
    arr = np.asarray(img).astype(int)
    frame = views.fit_frame(views.canvas_extent(plan), views.OVERLAY_MAX_SIDE, views.OVERLAY_MAX_SIDE)
    assert img.size == frame.size_wh and max(img.size) == views.OVERLAY_MAX_SIDE
    x_pad, _ = frame.to_px(-20, 0)  # inside the left padding
    x_img, y_mid = frame.to_px(800, 301)
    pad, inside = arr[y_mid, x_pad], arr[y_mid + 2, x_img + 3]
    assert pad[1] < 120 and abs(pad[1] - GREEN[1]) > 80  # padding is not the image
    assert pad[0] > pad[2]  # the red 'removed by unpadding' hatching lies over it
    assert np.abs(inside - GREEN).max() <= 60  # the image shows through, under thin lines only


def test_overlay_caption_states_the_resize_factor():
    plan, layout = _plan((600, 1600), "llava-next")
    note = views.resize_note(plan)
    assert note.startswith("1600x600 resized x0.561 to 897x336 on a 1008x336 canvas (1x3 tiles)")
    assert "55 px padding left, 56 right" in note and "unpadding drops 4+4 feature columns" in note
    plain = views.overlay(_solid((600, 1600)), plan, layout, caption=False)
    captioned = views.overlay(_solid((600, 1600)), plan, layout, caption=True)
    assert captioned.height > plain.height
    q, _ = _plan((1080, 1920), "qwen2-vl")
    assert views.resize_note(q) == ("1920x1080 resized x1.006 wide, x1.011 high to 1932x1092 (sides "
                                    "multiples of 28) -> 39x69 tokens of 28x28 px.")
    i, _ = _plan((1400, 390), "internvl")
    assert "squashed" in views.resize_note(i) and "thumbnail" in views.resize_note(i)


@pytest.mark.parametrize("model", FAMILIES)
def test_token_map_is_tinted_with_the_kinds_colour(model):
    size_hw = (600, 1600)
    plan, layout = _plan(size_hw, model)
    img = np.asarray(views.token_map(_solid(size_hw, (128, 128, 128)), plan, layout)).astype(int)
    placed, (w, h) = views.place(views.panels(plan, layout))
    assert img.shape[1] == max(w, 320)
    for pl in placed:
        hit = np.argwhere(pl.panel.tokens >= 0)
        r, c = hit[len(hit) // 2]
        p = pl.panel
        x = int(pl.left + ((p.col_start[c] + p.col_end[c]) / 2 - pl.frame.x0) * pl.frame.scale)
        y = int(pl.top + ((p.row_start[r] + p.row_end[r]) / 2 - pl.frame.y0) * pl.frame.scale)
        expected = 128 * (1 - views.TINT) + np.asarray(views.KIND_COLORS[p.kind]) * views.TINT
        assert np.abs(img[y, x] - expected).max() <= 25, (p.key, img[y, x], expected)


def test_legend_counts_every_kind():
    plan, layout = _plan((3000, 4000), "internvl")
    text = views.legend_text(layout)
    assert "tile 3072" in text and "thumbnail 256" in text and "start/end marker (no pixels) 2" in text
    assert "= 3330 tokens" in text


@pytest.mark.parametrize("model", FAMILIES)
def test_small_image_crops_are_render_crops_exactly(model):
    rng = np.random.default_rng(1)
    image = Image.fromarray(rng.integers(0, 255, (300, 500, 3), dtype=np.uint8))
    plan = plan_image(image, model)
    crops, exact = views.crop_images(image, plan)
    if max(max(c.out_hw.hw) for c in plan.crops) > views.CROP_MAX_SIDE:
        # Gemma 4 resizes this image to 1008x576: shown scaled down, hence not pixel-exact
        assert not exact and all(max(c.size) <= views.CROP_MAX_SIDE for c in crops)
        return
    assert exact
    for got, ref in zip(crops, render_crops(image, plan), strict=True):
        assert got.size == ref.size and np.array_equal(np.asarray(got), np.asarray(ref))


def _photo(size_hw, seed=3):
    """Smooth, photo-like content (blocks of noise upsampled)."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (size_hw[0] // 24 + 1, size_hw[1] // 24 + 1, 3), dtype=np.uint8)
    return Image.fromarray(small).resize((size_hw[1], size_hw[0]), Image.Resampling.BICUBIC)


@pytest.mark.parametrize("model", ["llava-next", "internvl"])
def test_large_image_crops_from_a_reduced_copy_stay_within_a_few_grey_levels(model):
    image = _photo((2000, 2700))
    plan = plan_image(image, model)
    display = views.display_source(image)
    crops, exact = views.crop_images(image, plan, display=display)
    assert not exact
    refs = render_crops(image, plan)
    assert [c.size for c in crops] == [r.size for r in refs]
    for got, ref in zip(crops, refs):
        diff = np.abs(np.asarray(got, np.int16) - np.asarray(ref, np.int16))
        assert diff.mean() < 1.5 and np.percentile(diff, 99) <= 8


def test_qwen_big_image_is_shown_scaled_with_its_true_size_in_the_label():
    image = _photo((1500, 2000))
    plan = plan_image(image, "qwen2-vl")
    (pic, label), = views.crop_gallery(image, plan)[0]
    assert max(pic.size) == views.CROP_MAX_SIDE
    assert label == (f"#1 the whole image resized to {plan.resized_hw} (no tiles), "
                     f"shown at {pic.width}x{pic.height}")


def test_crop_labels_name_base_tiles_and_thumbnail():
    image = _solid((1400, 390))
    labels = [lbl for _, lbl in views.crop_gallery(image, plan_image(image, "llava-next"))[0]]
    assert labels[0] == "#1 base image: the whole image squashed to 336x336"
    assert labels[1] == "#2 tile row 1, column 1 (336x336)"
    labels = [lbl for _, lbl in views.crop_gallery(image, plan_image(image, "internvl"))[0]]
    assert labels[-1] == "#5 thumbnail: the whole image squashed to 448x448"
    assert len(labels) == 5


def test_sources_never_upsample_and_keep_the_full_extent():
    image = _photo((3000, 4000))
    src = views.Source.of(image)
    assert src.exact and src.reduced_to_cover([Size(2000, 2000)]) is src  # 4000/2000 < 2 rows
    small = src.reduced_to_cover([Size(505, 672), Size(336, 336)])
    assert small.covers(Size(505, 672)) and small.image.size == (800, 600)  # k = 5
    disp = views.display_source(image, 1000)
    assert disp.image.size == (1000, 750) and disp.full_wh == (4000, 3000)
    odd = views.Source.of(_photo((1001, 3001))).reduce(3)  # partial last pixels
    assert odd.image.size == (1001, 334) and odd.box == pytest.approx((0, 0, 3001 / 3, 1001 / 3))

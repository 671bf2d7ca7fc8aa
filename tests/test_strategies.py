"""Golden tables: the spec's section 7 test vectors (produced by transformers 5.24), with ids."""
import pytest

from anyres_demo import build_layout, plan_image

# (w, h): (grid rows x cols, canvas h x w, resized w x h, paste (x, y), unpadded H2 x W2, tokens)
LLAVA_NEXT = {
    (1, 1): ((1, 2), (336, 672), (336, 336), (168, 0), (24, 24), 1176),
    (10, 2000): ((3, 1), (1008, 336), (6, 1008), (165, 0), (72, 0), 648),
    (4000, 30): ((1, 3), (336, 1008), (1008, 8), (0, 164), (0, 72), 576),
    (8000, 8000): ((2, 2), (672, 672), (672, 672), (0, 0), (48, 48), 2928),
    (640, 480): ((2, 2), (672, 672), (672, 504), (0, 84), (36, 48), 2340),
    (1920, 1080): ((2, 2), (672, 672), (672, 378), (0, 147), (28, 48), 1948),
    (1080, 1920): ((2, 2), (672, 672), (378, 672), (147, 0), (48, 28), 1968),
    (500, 300): ((1, 2), (336, 672), (560, 336), (56, 0), (24, 40), 1560),
    (1024, 899): ((2, 2), (672, 672), (672, 590), (0, 41), (42, 48), 2634),
    (2480, 3508): ((2, 2), (672, 672), (476, 672), (98, 0), (48, 34), 2256),
}

# (w, h): (grid, unpadded H2 x W2, after downscale H3 x W3, tokens)
ONEVISION = {
    (1, 1): ((1, 1), (27, 27), (27, 27), 1485),
    (10, 2000): ((6, 1), (162, 1), (162, 1), 1053),
    (4000, 30): ((1, 6), (1, 162), (1, 162), 892),
    (8000, 8000): ((6, 6), (162, 162), (81, 81), 7371),
    (640, 480): ((2, 2), (40, 54), (40, 54), 2929),
    (1920, 1080): ((3, 5), (75, 135), (60, 108), 7269),
    (1080, 1920): ((5, 3), (135, 75), (108, 60), 7317),
    (500, 300): ((1, 2), (27, 46), (27, 46), 1998),
    (1024, 899): ((3, 3), (71, 81), (71, 81), 6551),
    (2480, 3508): ((6, 5), (162, 115), (96, 68), 7353),
}

# (w, h): (resized H x W, image_pad tokens)
QWEN = {
    (1, 1): ((56, 56), 4), (10, 2000): ((812, 28), 29), (4000, 30): ((28, 4004), 143),
    (8000, 8000): ((3584, 3584), 16384), (640, 480): ((476, 644), 391),
    (1920, 1080): ((1092, 1932), 2691), (1080, 1920): ((1932, 1092), 2691),
    (500, 300): ((308, 504), 198), (1024, 899): ((896, 1036), 1184),
    (2480, 3508): ((3500, 2492), 11125),
}

# (w, h): (grid cols x rows, crops incl. thumbnail, IMG_CONTEXT tokens)
INTERNVL = {
    (1, 1): ((1, 1), 1, 256), (10, 2000): ((1, 12), 13, 3328), (4000, 30): ((12, 1), 13, 3328),
    (8000, 8000): ((3, 3), 10, 2560), (640, 480): ((4, 3), 13, 3328),
    (1920, 1080): ((4, 2), 9, 2304), (1080, 1920): ((2, 4), 9, 2304),
    (500, 300): ((3, 2), 7, 1792), (1024, 899): ((3, 3), 10, 2560), (2480, 3508): ((2, 3), 7, 1792),
}


def ids(table):
    return [f"{w}x{h}" for w, h in table]


@pytest.mark.parametrize("wh", list(LLAVA_NEXT), ids=ids(LLAVA_NEXT))
def test_llava_next_vectors(wh):
    grid, canvas, resized, paste, unpadded, tokens = LLAVA_NEXT[wh]
    p = plan_image((wh[1], wh[0]), "llava-next")
    assert (p.grid_rows, p.grid_cols) == grid
    assert p.canvas_hw.hw == canvas
    assert p.resized_hw.wh == resized
    assert (p.paste_yx[1], p.paste_yx[0]) == paste
    assert p.unpadded_hw.hw == unpadded
    assert p.num_image_tokens == tokens and p.num_wrapper_tokens == 0
    assert p.num_crops == 1 + grid[0] * grid[1]
    assert len(build_layout(p)) == tokens


@pytest.mark.parametrize("wh", list(ONEVISION), ids=ids(ONEVISION))
def test_onevision_vectors(wh):
    grid, unpadded, final, tokens = ONEVISION[wh]
    p = plan_image((wh[1], wh[0]), "llava-onevision")
    assert (p.grid_rows, p.grid_cols) == grid
    assert p.unpadded_hw.hw == unpadded and p.final_hw.hw == final
    assert p.downscaled == (unpadded != final)
    assert p.num_image_tokens == tokens
    assert len(build_layout(p)) == tokens


@pytest.mark.parametrize("wh", list(QWEN), ids=ids(QWEN))
def test_qwen_vectors(wh):
    resized, tokens = QWEN[wh]
    for model in ("qwen2-vl", "qwen2.5-vl"):
        p = plan_image((wh[1], wh[0]), model)
        assert p.resized_hw.hw == resized
        assert p.num_image_tokens == tokens and p.num_wrapper_tokens == 2
        assert p.num_crops == 1
        assert (p.grid_rows, p.grid_cols) == (resized[0] // 28, resized[1] // 28)


@pytest.mark.parametrize("wh", list(INTERNVL), ids=ids(INTERNVL))
def test_internvl_vectors(wh):
    (cols, rows), crops, tokens = INTERNVL[wh]
    p = plan_image((wh[1], wh[0]), "internvl")
    assert (p.grid_cols, p.grid_rows) == (cols, rows)
    assert p.canvas_hw.hw == (448 * rows, 448 * cols)
    assert p.num_crops == crops and p.num_image_tokens == tokens and p.num_wrapper_tokens == 2
    assert [c.kind for c in p.crops][-1] == ("thumbnail" if crops > 1 else "tile")


def test_llava_tie_break_divergence_is_reported():
    p = plan_image((200, 100), "llava-next")  # 100x200 (w x h)
    assert (p.grid_rows, p.grid_cols) == (1, 2) and p.num_image_tokens == 888
    assert len(p.divergences) == 1 and "2x1 grid (1776 tokens)" in p.divergences[0]
    assert plan_image((1080, 1920), "llava-next").divergences == ()


def test_llava_unpad_rounding_divergence_is_reported():
    p = plan_image((1128, 47), "llava-next")  # 47x1128: transformers 936, original 792
    assert p.num_image_tokens == 936
    assert "792 tokens" in p.divergences[0]


def test_qwen_tiny_side_divergence_is_reported():
    p = plan_image((2000, 10), "qwen2-vl")
    assert p.num_image_tokens == 29
    assert "28x1988 (71 tokens)" in p.divergences[0]
    assert plan_image((1080, 1920), "qwen2-vl").divergences == ()


def test_qwen_rejects_extreme_aspect_like_the_processor():
    with pytest.raises(ValueError, match="above 200:1"):
        plan_image((3000, 10), "qwen2-vl")
    assert plan_image((2000, 10), "qwen2-vl").num_image_tokens == 29  # exactly 200:1 passes


def test_overrides_change_the_plan():
    # beta = sqrt(1920*1080 / 1003520) = 1.4375; floor(1080/beta/28) = 26, floor(1920/beta/28) = 47
    assert plan_image((1080, 1920), "qwen2-vl", max_pixels=1003520).num_image_tokens == 26 * 47
    p = plan_image((480, 640), "internvl", max_tiles=6)
    assert (p.grid_cols, p.grid_rows) == (3, 2) and p.num_crops == 7
    p = plan_image((1080, 1920), "llava-next", pinpoints_hw=[(336, 336)])
    assert (p.grid_rows, p.grid_cols) == (1, 1) and p.num_crops == 2


def test_internvl_candidates_explain_the_choice():
    p = plan_image((448, 448), "internvl")
    chosen = [c for c in p.candidates if c.chosen]
    assert len(chosen) == 1 and (chosen[0].grid_rows, chosen[0].grid_cols) == (1, 1)
    # 2x2 has the same aspect ratio, but a 448x448 image covers only a quarter of its canvas
    two = next(c for c in p.candidates if (c.grid_rows, c.grid_cols) == (2, 2))
    assert two.scores["aspect_diff"] == 0 and "half the canvas" in two.note


def test_llava_candidates_carry_scores():
    p = plan_image((1080, 1920), "llava-next")
    assert [c.chosen for c in p.candidates] == [False, False, True, False, False]
    win = p.candidates[2]
    assert win.scores["effective"] == 672 * 378 and win.scores["wasted"] == 672 * 672 - 672 * 378


def test_formula_uses_this_images_numbers():
    assert plan_image((1080, 1920), "llava-next").formula == "576 + 28x48 + 28 = 1948"
    assert plan_image((1080, 1920), "llava-onevision").formula.startswith("729 + 60x108 + 60 = 7269")

"""plots: bars add up to each plan, staircases are the vectorized counts, markers sit on them."""
from __future__ import annotations

import numpy as np
import pytest

from anyres_demo import get_preset, plan_image
from anyres_demo.engine import count_total_many
from anyres_demo.geometry import Size
from anyres_demo.plots import (aspect_sweep, candidates_chart, compare_bars, scale_sweep,
                               staircase_aspect, staircase_scale, total_tokens_many)
from anyres_demo.presets import FAMILY_DEFAULTS

PRESETS = [get_preset(r) for r in FAMILY_DEFAULTS.values()]


def _lines(fig):
    return [t for t in fig.data if t.mode == "lines"]


def _markers(fig):
    return [t for t in fig.data if t.mode == "markers"]


def test_compare_bars_stack_to_each_plans_total():
    plans = [plan_image((1080, 1920), p) for p in PRESETS]  # every family's default
    fig = compare_bars(plans)
    totals = np.zeros(len(plans))
    for trace in fig.data:
        totals += np.asarray(trace.y, float)
    assert totals.tolist() == [p.num_tokens for p in plans]
    assert totals.tolist()[:4] == [1948, 7269, 2693, 2306]
    assert {"base image", "tiles", "row-end newlines", "image patches", "thumbnail",
            "start/end markers"} <= {t.name for t in fig.data}
    assert [a.text for a in fig.layout.annotations][:4] == ["<b>1,948</b>", "<b>7,269</b>", "<b>2,693</b>",
                                                           "<b>2,306</b>"]
    gemma = {p.strategy: t for p, t in zip(plans, totals.tolist())}
    assert (gemma["gemma3"], gemma["gemma4"]) == (260, 266)


def test_total_tokens_adds_wrappers_and_marks_rejections():
    qwen = get_preset("qwen2-vl")
    got = total_tokens_many([1080, 1, 1], [1920, 201, 200], qwen)
    assert got[0] == 2693 and np.isnan(got[1]) and got[2] == plan_image((1, 200), qwen).num_tokens


def test_scale_sweep_keeps_the_aspect_ratio_and_spans_the_range():
    hs, ws, longs = scale_sweep(Size(1080, 1920))
    assert longs[0] == 8 and longs[-1] == 8000 and np.all(np.diff(longs) > 0)
    assert np.all(np.abs(hs - ws * 1080 / 1920) <= 1)  # rounding only
    assert scale_sweep(Size(3000, 10000))[2][-1] == 20000  # twice a big image


def test_staircase_scale_lines_are_the_vectorized_counts_and_stars_the_plans():
    size = Size(1080, 1920)
    fig = staircase_scale(size, PRESETS)
    hs, ws, longs = scale_sweep(size)
    assert len(_lines(fig)) == len(PRESETS) and len(_markers(fig)) == len(PRESETS)
    for line, preset in zip(_lines(fig), PRESETS):
        assert line.line.shape == "hv"
        counts = count_total_many(hs, ws, preset)
        assert np.array_equal(np.asarray(line.y), counts)
    for marker, preset in zip(_markers(fig), PRESETS):
        assert marker.x[0] == 1920 and marker.y[0] == plan_image(size, preset).num_tokens
    assert fig.layout.xaxis.type == "log"


def test_staircase_aspect_keeps_the_pixel_count_and_marks_the_ratio():
    size = Size(600, 1600)
    hs, ws, ratios = aspect_sweep(size)
    assert np.allclose(hs * ws / size.area, 1, atol=0.02)
    assert ratios[0] == pytest.approx(1 / 16, rel=0.05) and ratios[-1] == pytest.approx(16, rel=0.05)
    fig = staircase_aspect(size, PRESETS)
    stars = _markers(fig)
    assert [m.x[0] for m in stars] == [pytest.approx(1600 / 600)] * len(PRESETS)
    assert [m.y[0] for m in stars] == [plan_image(size, p).num_tokens for p in PRESETS]
    assert list(fig.layout.xaxis.ticktext) == ["1:16", "1:8", "1:4", "1:2", "1:1", "2:1", "4:1", "8:1",
                                               "16:1"]


def test_rejected_sizes_leave_no_star():
    fig = staircase_scale(Size(1, 300), [get_preset("qwen2-vl")])  # 300:1 is rejected by Qwen
    assert _markers(fig) == []
    line = _lines(fig)[0]
    ys, longs = np.asarray(line.y, float), np.asarray(line.x)
    # scaled down, the 1 px side stays 1 px, so up to 200 px wide the ratio is accepted
    assert np.isnan(ys[longs > 200]).all() and not np.isnan(ys[longs <= 200]).any()


def test_candidates_chart_outlines_the_winner():
    plan = plan_image((600, 1600), "llava-next")
    fig = candidates_chart(plan)
    kept, wasted = fig.data
    assert list(kept.x) == ["672x336", "336x672", "672x672", "336x1008", "1008x336 ✓"]
    assert list(kept.marker.line.width) == [0, 0, 0, 0, 3]
    assert list(kept.y) == [c.scores["effective"] for c in plan.candidates]
    internvl = candidates_chart(plan_image((1400, 390), "internvl"))
    colours = list(internvl.data[0].marker.color)
    assert colours.count("#d55e00") == 1 and internvl.data[0].x[colours.index("#d55e00")] == "4x1 ✓"
    qwen = candidates_chart(plan_image((4000, 4000), "qwen2-vl"))  # over max_pixels: 2 bars
    assert list(qwen.data[0].x) == ["side rounding", "budget rescale ✓"]

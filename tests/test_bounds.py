"""Every setting is bounded before any work (issue 9.3), from one table (presets.SETTING_BOUNDS)
whose limits the messages state; settings transformers accepts are followed with a note
(issue 10.3), checked against the real processors.

Before: `20160x20160` planned 3,601 crops (+3.1 GB), min_pixels = max_pixels = 1e11 and
20-digit sides ran out of memory, a 1 MB canvas list took 352 s of CPU, and the three
settings of issue 10.3 were refused.
"""
from __future__ import annotations

import dataclasses
import time
import tracemalloc

import pytest
from PIL import Image

from anyres_demo import analysis, plan_image
from anyres_demo.overrides import collect_overrides, parse_number
from anyres_demo.presets import (OVERRIDABLE, SETTING_BOUNDS, bound_for, get_preset,
                                 unusual_settings)

from hf_helpers import freeze, processor_for
from anyres_demo.backends import hf_processors as hp

QWEN, INTERNVL, LLAVA = "qwen2-vl", "internvl", "llava-next"
ONEVISION = "llava-onevision"

HOSTILE = [  # (model, settings as typed, text the refusal holds)
    (LLAVA, {"pinpoints": "20160x20160"}, "safety limit of 100 tiles per canvas"),
    (LLAVA, {"pinpoints": "33600x33600"}, "safety limit of 100 tiles per canvas"),
    (ONEVISION, {"pinpoints": "23040x23040"}, "safety limit of 100 tiles per canvas"),
    (LLAVA, {"pinpoints": "336x" + "9" * 20}, "at most 7 digits"),
    (LLAVA, {"pinpoints": ", ".join(["672x336"] * 150_000)}, "limit of 2,000"),
    (LLAVA, {"pinpoints": ", ".join(["672x336"] * 65)}, "safety limit of 64 canvases"),
    (QWEN, {"min_pixels": 1e11, "max_pixels": 1e11}, "safety limit of 51,380,224 pixels"),
    (QWEN, {"min_pixels": "1" * 25}, "safety limit of 51,380,224 pixels"),
    (QWEN, {"max_pixels": "9" * 500}, "limit of 40"),
    (INTERNVL, {"max_tiles": 10**9}, "safety limit of 256 tiles"),
    (INTERNVL, {"min_tiles": 300, "max_tiles": 12}, "safety limit of 256 tiles"),
]


@pytest.mark.parametrize("model,settings,message", HOSTILE,
                         ids=[f"{m}-{str(s)[:30]}" for m, s, _ in HOSTILE])
def test_hostile_settings_are_refused_before_any_work(model, settings, message):
    tracemalloc.start()
    start = time.process_time()
    try:
        with pytest.raises(ValueError) as err:
            analysis.choose(get_preset(model).repo_id, **settings)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert message in str(err.value)
    text = settings.get("pinpoints", "")
    assert peak < 4 * len(text) + 2_000_000, peak  # the text itself, nothing planned
    print(f"{model} {str(settings)[:40]}: refused in {time.process_time() - start:.4f} s CPU")


@pytest.mark.parametrize("value,message", [
    ("abc", "must be a whole number, got 'abc'"), ("1e30", "safety limit"),
    ("NaN", "finite"), ("Infinity", "finite"), ("-inf", "finite"), (float("nan"), "finite"),
    (12.5, "whole number"), (-3, "below the lowest allowed, 1")])
def test_bad_numbers_have_a_message(value, message):
    with pytest.raises(ValueError, match=message):
        parse_number("max_pixels", value)


def test_every_overridable_field_has_a_bound():
    """A new family's settings must come with rows (or this fails); on/off switches need none."""
    from anyres_demo.overrides import SETTING_SPECS

    switches = {s.field for s in SETTING_SPECS.values() if s.kind == "bool"}
    for strategy, fields in OVERRIDABLE.items():
        for name in set(fields) - switches:
            bound = bound_for(name, strategy)
            assert bound is not None, (strategy, name)
            assert bound.low <= bound.high and bound.why


def test_the_limits_allow_every_released_checkpoint():
    from anyres_demo.presets import PRESETS, validate_settings

    for preset in PRESETS.values():
        validate_settings(preset.settings, preset.strategy)  # raises if a bound is too tight
        assert unusual_settings(preset.settings, preset.strategy) == (), preset.repo_id


def test_a_strategy_row_wins_over_the_plain_row(monkeypatch):
    from anyres_demo import presets

    row = dataclasses.replace(SETTING_BOUNDS["max_tiles"], high=5)
    monkeypatch.setitem(presets.SETTING_BOUNDS, "internvl:max_tiles", row)
    assert bound_for("max_tiles", "internvl") is row
    assert bound_for("max_tiles", "qwen2_vl") is SETTING_BOUNDS["max_tiles"]


# ----------------------------------------------------------------------------- issue 10.3
ACCEPTED = [  # (family in hf_helpers, overrides, expected crops, note text) on 1920x1080
    ("qwen2_vl", {"max_pixels": 1568}, 1, "min_pixels (3,136) is above max_pixels (1,568)"),
    ("internvl", {"max_tiles": 100}, 46, "max_tiles = 100 is unusual"),
    ("internvl", {"min_tiles": 5, "max_tiles": 3}, 1, "falls back to a single 1x1 tile"),
]


@pytest.mark.parametrize("family,overrides,crops,note", ACCEPTED,
                         ids=[str(o) for _, o, _, _ in ACCEPTED])
def test_settings_transformers_accepts_are_followed_with_a_note(family, overrides, crops, note):
    from hf_helpers import family_preset

    preset = family_preset(family).with_overrides(**overrides)
    plan = plan_image((1080, 1920), preset)
    got = hp.processor_counts(processor_for(family, overrides=freeze(overrides)),
                              Image.new("RGB", (1920, 1080), (90, 120, 150)), preset)
    assert (plan.num_crops, plan.num_image_tokens) == (got["num_crops"], got["num_image_tokens"])
    assert plan.num_crops == crops
    assert any(note in n for n in unusual_settings(preset.settings))
    # ...and the explorer shows the note with the count
    choice = analysis.choose(preset.repo_id, **{k: v for k, v in overrides.items()})
    summary = analysis.analyze(Image.new("RGB", (1920, 1080)), choice).summary()
    assert note in summary


def test_llava_canvases_off_the_tile_are_still_refused_with_the_reason():
    with pytest.raises(ValueError, match="not a multiple of the 336px tile: transformers itself"):
        collect_overrides(get_preset(LLAVA), pinpoints="672x500") and \
            get_preset(LLAVA).with_overrides(pinpoints_hw=((500, 672),))

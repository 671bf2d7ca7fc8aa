"""The family seam: kinds, families and settings are data, and a family without view hooks
still gets every view from its plan and layout (generic fallbacks)."""
from __future__ import annotations

import types

import numpy as np
import pytest

from anyres_demo import build_layout, ledger, plan_image, plots, strategies, views
from anyres_demo.layout import KIND_INFO, KINDS
from anyres_demo.overrides import SETTING_SPECS, collect_overrides
from anyres_demo.presets import OVERRIDABLE, get_preset

SIZES = [(1080, 1920), (300, 200), (30, 4000), (4000, 30), (1, 1)]


@pytest.mark.parametrize("model", ["Qwen/Qwen2-VL-2B-Instruct", "OpenGVLab/InternVL3-1B-hf"])
@pytest.mark.parametrize("size_hw", SIZES[:4])
def test_generic_panels_equal_the_hand_written_ones(model, size_hw):
    plan = plan_image(size_hw, model)
    lay = build_layout(plan)
    own, generic = views.PANEL_BUILDERS[plan.strategy](plan, lay), views.generic_panels(plan, lay)
    assert [p.kind for p in own] == [p.kind for p in generic]
    for a, b in zip(own, generic):
        np.testing.assert_array_equal(a.tokens, b.tokens)
        for name in ("row_start", "row_end", "col_start", "col_end"):
            np.testing.assert_allclose(getattr(a, name), getattr(b, name), atol=1e-6)


def _bare(module):
    """The strategy with only the required functions: what a new family starts with."""
    return types.SimpleNamespace(plan=module.plan, layout=module.layout, count_many=module.count_many)


@pytest.mark.parametrize("model", ["llava-hf/llava-v1.6-mistral-7b-hf", "OpenGVLab/InternVL3-1B-hf",
                                   "Qwen/Qwen2-VL-2B-Instruct"])
def test_a_family_without_hooks_still_gets_every_view(model, monkeypatch):
    preset = get_preset(model)
    monkeypatch.setitem(strategies.STRATEGIES, preset.strategy, _bare(strategies.get_strategy(preset.strategy)))
    monkeypatch.delitem(views.PANEL_BUILDERS, preset.strategy)
    plan = plan_image((600, 1600), preset)
    lay = build_layout(plan)
    rows = ledger.ledger_rows(plan)
    assert sum(r.count for r in rows) == plan.num_tokens and all(r.how for r in rows)
    assert "kept" in ledger.why_summary(plan) and str(plan.image_hw) in views.resize_note(plan)
    chart = plots.candidates_chart(plan)
    assert len(chart.data) >= 1 and len(chart.data[0].x) == len(plan.candidates)
    panel_list = views.panels(plan, lay)
    drawn = sum(int((p.tokens >= 0).sum()) for p in panel_list)
    detail_or_global = sum(v for k, v in plan.tokens_by_kind.items()
                           if KIND_INFO[k].role in ("detail", "global"))
    assert drawn == detail_or_global  # every drawable token sits in exactly one cell
    assert views.token_map(views.display_source(_image(plan)), plan, lay).size[0] > 0


def _image(plan):
    from PIL import Image

    return Image.new("RGB", plan.image_hw.wh if hasattr(plan.image_hw, "wh") else
                     (plan.image_hw.width, plan.image_hw.height), (120, 130, 140))


def test_kinds_are_declared_once_with_a_role_and_colour():
    assert KINDS == tuple(KIND_INFO)
    assert {v.role for v in KIND_INFO.values()} <= {"detail", "global", "row_end", "special"}
    assert not KIND_INFO["wrapper"].placeholder and KIND_INFO["newline"].placeholder
    assert set(views.KIND_COLORS) == set(KINDS) and set(ledger.PART_NAMES) == set(KINDS)
    assert set(ledger.ORDER) == set(KINDS)


def test_every_family_is_registered_with_label_and_colour():
    for name, fam in strategies.FAMILIES.items():
        assert fam.label and fam.color.startswith("#") and callable(fam.module.plan)
        assert name in OVERRIDABLE


def test_settings_map_to_fields_the_families_read():
    fields = {f for allowed in OVERRIDABLE.values() for f in allowed}
    assert fields <= {s.field for s in SETTING_SPECS.values()}
    qwen = get_preset("Qwen/Qwen2-VL-2B-Instruct")
    assert collect_overrides(qwen, max_pixels="50000", max_tiles=4, pinpoints="") == {"max_pixels": 50000}
    with pytest.raises(ValueError, match="unknown setting"):
        collect_overrides(qwen, bogus=1)

"""The Cost tab's handler: the same numbers as the CLI, for the analysed image and model."""
from __future__ import annotations

import json

import pytest

from anyres_demo.cli import main
from anyres_demo.ui.cost import empty_cost, on_cost

pytest.importorskip("gradio")


def cli_record(capsys, *argv):
    assert main(["cost", *argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)[0]


def test_on_cost_matches_the_cli(capsys):
    state = {"model": "Qwen/Qwen2.5-VL-3B-Instruct", "overrides": {}, "size_hw": [3000, 4000]}
    headline, table, caveats, ways, flops_fig, kv_fig, engines, note = on_cost(state, 0)
    rec = cli_record(capsys, "--model", "Qwen/Qwen2.5-VL-3B-Instruct", "--size", "4000x3000")
    assert f"**{rec['cost']['num_tokens']:,}** tokens" in headline
    assert list(ways.iloc[:, 0]) == [w["way"] for w in rec["three_ways"]]
    assert "text.intermediate" in caveats  # the row's unconfirmed values are shown
    data = engines.data  # a pandas Styler: rows that differ are highlighted
    assert list(data["engine"]) == [e["engine"] for e in rec["engines"]]
    assert "llama.cpp" in note and "Ollama" in note
    styles = engines.to_html()
    assert "fde2c8" in styles
    assert len(flops_fig.data) >= 4 and len(kv_fig.data) >= 4


def test_on_cost_reads_the_explorers_overrides(capsys):
    state = {"model": "Qwen/Qwen2-VL-2B-Instruct", "overrides": {"max_pixels": 200704}, "size_hw": [3000, 4000]}
    headline = on_cost(state, 10)[0]
    rec = cli_record(capsys, "--model", "qwen2-vl", "--size", "4000x3000", "--max-pixels", "200704",
                     "--prompt-tokens", "10")
    assert f"**{rec['cost']['num_tokens']:,}** tokens" in headline


def test_on_cost_before_any_image():
    assert on_cost(None, 0)[0] == empty_cost()[0]


def test_on_cost_bad_prompt_is_a_message():
    import gradio as gr
    with pytest.raises(gr.Error, match="prompt tokens"):
        on_cost({"model": "qwen2-vl", "overrides": {}, "size_hw": [100, 100]}, -5)


def test_cost_curves_every_family_and_the_marker():
    from anyres_demo.cost import image_cost
    from anyres_demo.cost_plots import cost_charts, cost_curves, sweep_presets
    from anyres_demo.engine import plan_image
    from anyres_demo.geometry import Size
    from anyres_demo.presets import FAMILY_DEFAULTS
    size_hw = Size(3000, 4000)
    presets = sweep_presets()
    assert {p.strategy for p in presets} == set(FAMILY_DEFAULTS)
    curves = cost_curves(size_hw, presets)
    qwen = curves["Qwen/Qwen2-VL-2B-Instruct"]
    assert qwen["flops"] == sorted(qwen["flops"])  # native resolution: more pixels, more compute
    flops_fig, kv_fig = cost_charts(size_hw)
    marker = next(t for t in flops_fig.data if t.mode == "markers" and "Qwen2-VL" in t.hovertemplate)
    assert marker.y[0] == image_cost(plan_image(size_hw, "Qwen/Qwen2-VL-2B-Instruct")).total_flops


def test_choice_controls_checkpoint_value_means_the_checkpoints():
    """The explorer's choice controls start at "checkpoint" (as its on/off switches do); the app's
    first analysis (and so the Cost tab) must read it as the checkpoint's value."""
    from anyres_demo.overrides import SETTING_SPECS
    choices = [s for s in SETTING_SPECS.values() if s.kind == "choice"]
    if not choices:
        pytest.skip("no choice settings on this branch")
    for spec in choices:
        assert spec.parse("checkpoint") is None
        assert spec.parse(str(spec.choices[0])) == spec.choices[0]

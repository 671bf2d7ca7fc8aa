"""The benchmark still runs: `python -m anyres_demo.bench --smoke` (small inputs, one round, no
thresholds: speed targets are for the full run by hand, on a quiet machine)."""
import os
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_smoke_run_prints_every_section_with_ratios():
    out = subprocess.run([sys.executable, "-m", "anyres_demo.bench", "--smoke"], cwd=REPO,
                         capture_output=True, text=True, timeout=900,
                         env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert out.returncode == 0, out.stderr[-3000:]
    text = out.stdout
    for header in ("load average at start", "counts:", "sweep:", "encode:", "user path",
                   "probes on a", "legibility, uncached"):
        assert header in text, (header, text[-3000:])
    assert text.count("x (") >= 10  # ratios with their spread
    assert "same recalls: yes" in text


def test_every_familys_changed_setting_is_one_the_apps_controls_accept():
    # the full run's "change a setting" step sends these through the app's API; the app's own
    # controls (gradio's preprocess) must take them: a Gemma 4 budget is a menu of texts
    import gradio as gr

    from anyres_demo import analysis
    from anyres_demo.bench_ui import NO_SETTINGS, changed_setting, named
    from anyres_demo.overrides import SETTING_SPECS
    from anyres_demo.presets import FAMILY_DEFAULTS
    from anyres_demo.ui.explorer import setting_control

    with gr.Blocks():
        controls = [setting_control(spec, None, True) for spec in SETTING_SPECS.values()]
    changed = {}
    for strategy, model in FAMILY_DEFAULTS.items():
        row = changed_setting(model)
        if row is None:
            continue
        assert len(row) == len(SETTING_SPECS)
        moved = [name for name, value, same in zip(SETTING_SPECS, row, NO_SETTINGS) if value != same]
        assert len(moved) == 1, (strategy, row)
        for control, value in zip(controls, row):
            control.preprocess(value)  # raises for a value the control does not offer
        analysis.choose(model, **named(row))
        changed[strategy] = moved[0]
    assert changed["gemma4"] == "max_soft_tokens" and changed["qwen2_vl"] == "max_pixels"
    assert len(changed) >= 8

"""What a newcomer reads (issue 10): one name per token count everywhere, captions only for the
model they describe, nothing stale after an error, 0 not silently ignored, plain-word budgets,
charts whose winner and labels are visible. The browser checks are in test_browser.py."""
from __future__ import annotations

import json
import re

import pytest

from anyres_demo import build_layout, plan_image
from anyres_demo.cli import main
from anyres_demo.examples import get_example
from anyres_demo.export import export_dict
from anyres_demo.plots import candidates_chart
from anyres_demo.ui import explorer as ui

QWEN = "Qwen/Qwen2-VL-2B-Instruct"
LLAVA = "llava-hf/llava-v1.6-mistral-7b-hf"
INTERNVL = "OpenGVLab/InternVL3-1B-hf"
ONEVISION = "llava-hf/llava-onevision-qwen2-0.5b-ov-hf"
PHOTO = str(get_example("photo_scene.png").path)  # 1024x768, caption about LLaVA-NeXT
DOC = str(get_example("document_page.png").path)  # caption about Qwen2-VL: 1170 image tokens
# The only names a token count may have: the placeholders, the rest, and both.
NAMES = ("image tokens", "special tokens", "tokens in total")


def _token_names(text: str) -> set[str]:
    """How each 'tokens' in `text` is named: 'tokens in total', else '<word before> tokens'."""
    names = set()
    for before, in_total in re.findall(r"(\w+)?[\s>]*tokens(\s+in total)?", text.lower()):
        names.add("tokens in total" if in_total else f"{before} tokens")
    return names


def test_one_name_per_count_in_headline_cli_json_and_export(capsys):
    plan = plan_image((1080, 1920), QWEN)
    html = ui.total_html(plan.num_tokens, plan)
    assert f"{plan.num_tokens:,}</span> tokens in total" in html
    assert f"{plan.num_image_tokens:,} image + {plan.num_special_tokens:,} special" in html
    assert main(["tokens", "-m", "qwen2-vl", "-s", "1920x1080"]) == 0
    header, _, row = capsys.readouterr().out.splitlines()[:3]
    assert all(name in header for name in NAMES) and "+wrap" not in header
    assert row.split()[4:7] == [str(plan.num_image_tokens), str(plan.num_special_tokens),
                                str(plan.num_tokens)]
    assert main(["tokens", "-m", "qwen2-vl", "-s", "1920x1080", "--json"]) == 0
    record = json.loads(capsys.readouterr().out)[0]
    exported = export_dict(plan, build_layout(plan))["plan"]
    for data in (record, exported):
        assert (data["num_image_tokens"], data["num_special_tokens"], data["num_tokens"]) == (
            plan.num_image_tokens, plan.num_special_tokens, plan.num_tokens)
    headers = " | ".join(ui.analysis.COMPARE_HEADERS + ui.analysis.WHATIF_HEADERS)
    assert _token_names(" | ".join([html, header, headers])) <= set(NAMES)


def test_example_caption_only_for_the_model_it_describes():
    plan = plan_image((1100, 850), QWEN)
    caption = ui.example_caption(DOC, plan)
    assert "1170 tokens" in caption
    # the caption counts image tokens; the headline adds Qwen's 2 special tokens: said so
    assert f"adds {plan.num_special_tokens} special tokens" in caption
    other = ui.example_caption(DOC, plan_image((1100, 850), LLAVA))
    assert "1170" not in other and "Qwen2-VL 2B" in other and "pick that model" in other
    # overrides change the numbers: the caption's count is not shown either
    assert "1170" not in ui.example_caption(DOC, plan_image((1100, 850), QWEN, max_pixels=200_000))
    photo = ui.example_caption(PHOTO, plan_image((768, 1024), LLAVA))
    assert "2340 tokens" in photo and "special" not in photo  # LLaVA has none to add


def test_a_failed_analysis_clears_every_view():
    out = ui.failed_explorer()
    total, summary, overlay, _, crops, _, token_map, *_, state = out
    assert "—" in total and "Nothing to show" in summary
    assert overlay is None and crops == [] and token_map is None and state is None
    assert len(out) == len(ui.empty_explorer())


def test_zero_in_a_number_box_says_it_means_the_checkpoints_value():
    out = ui.on_analyze(PHOTO, QWEN, 0, None, None, None, "")
    assert ui.plan_image((768, 1024), QWEN).num_tokens == int(
        re.search(r'number">([\d,]+)<', out[0]).group(1).replace(",", ""))
    assert ": 0 means the checkpoint's value, 16,384 x 28 x 28 = 12,845,056 px (up to 16,384 " \
           "tokens)" in out[1]
    out = ui.on_analyze(PHOTO, INTERNVL, None, None, 0, None, "")
    assert re.search(r"max tiles \([^)]*InternVL[^)]*\): 0 means the checkpoint's value, 12;", out[1])
    assert "0 means" not in ui.on_analyze(PHOTO, INTERNVL, None, None, 6, None, "")[1]


def test_pixel_budgets_in_plain_words():
    settings = plan_image((10, 10), QWEN).preset.settings
    assert ui.pixel_budget(1280 * 28 * 28, settings) == \
        "1,280 x 28 x 28 = 1,003,520 px (up to 1,280 tokens)"
    assert ui.pixel_budget(200_000, settings) == "200,000 px (up to 255 tokens of 28 x 28)"


def test_candidates_chart_winner_with_score_0_is_marked():
    plan = plan_image((768, 1024), INTERNVL)  # 4:3 is exactly the 4x3 grid: gap 0
    chosen = next(c for c in plan.candidates if c.chosen)
    assert chosen.scores["aspect_diff"] == 0
    fig = candidates_chart(plan)
    marks = [t for t in fig.data if t.type == "scatter"]
    assert len(marks) == 1 and list(marks[0].x) == [f"{chosen.grid_rows}x{chosen.grid_cols} ✓"]
    assert marks[0].y[0] > 0
    # a winner with a visible bar needs no marker
    assert not [t for t in candidates_chart(plan_image((1080, 1920), LLAVA)).data if t.type == "scatter"]


def test_candidates_chart_with_36_canvases_angles_labels_and_lifts_the_legend():
    fig = candidates_chart(plan_image((1080, 1920), ONEVISION))
    assert len(fig.data[0].x) == 36
    assert fig.layout.xaxis.tickangle == -90 and fig.layout.xaxis.automargin
    assert fig.layout.legend.y >= 1 and fig.layout.legend.yanchor == "bottom"


@pytest.mark.parametrize("label", ["Attention"])
def test_probe_controls_say_it_in_plain_words_first(label):
    import gradio as gr
    from anyres_demo.ui.probes import build_probes_tab
    from anyres_demo.ui.shared import Shared

    from anyres_demo.overrides import SETTING_SPECS

    with gr.Blocks() as demo:
        shared = Shared(image=gr.Image(type="filepath"), model=gr.Dropdown([LLAVA], value=LLAVA),
                        controls={name: gr.Textbox() for name in SETTING_SPECS})
        build_probes_tab(shared)
    radio = next(b for b in demo.blocks.values() if getattr(b, "label", None) == label)
    assert [c[0] for c in radio.choices] == ["last layer", "all layers combined"]
    tables = [b for b in demo.blocks.values() if isinstance(b, gr.Dataframe)]
    # headers from the start: an empty table would show "1 2 3"
    assert all(t.value["headers"] and t.value["headers"][0] != "1" for t in tables)
    assert "image tokens" in next(t for t in tables if t.elem_id == "probe-legibility").value["headers"]


def test_whatif_budget_and_token_map_legend_in_plain_words_first():
    import gradio as gr

    with gr.Blocks():
        wi = ui.build_whatif_tab()
    slider = wi["qwen_max"]
    assert slider.label.startswith("Qwen2-VL pixel budget") and "max_pixels" in slider.label
    assert slider.info == "checkpoint: 16,384 x 28 x 28 = 12,845,056 px (up to 16,384 tokens)"
    from anyres_demo.views import legend_text

    text = legend_text(build_layout(plan_image((768, 1024), QWEN)))
    assert "start/end marker (no pixels) 2" in text and "wrapper" not in text
    assert "padding rows cut from the features again (unpadding)" in text

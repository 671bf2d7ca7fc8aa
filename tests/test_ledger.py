"""ledger: rows add up to the plan's (and the real processor's) count; why-this-grid tables."""
from __future__ import annotations

import pytest

from anyres_demo import build_layout, list_presets, plan_image
from anyres_demo.geometry import Size
from anyres_demo.ledger import (divergence_markdown, ledger_rows, ledger_table, ledger_total,
                                why_summary, why_table)

from hf_helpers import FAMILIES, SPEC_WH, family_preset, processor_for, spec_expected

SIZES = [(1, 1), (600, 1600), (1400, 390), (3000, 4000), (28, 5600), (8000, 8000), (200, 300)]


@pytest.mark.parametrize("preset", list_presets(), ids=lambda p: p.repo_id)
@pytest.mark.parametrize("size_hw", SIZES, ids=str)
def test_ledger_total_is_the_plan_and_layout_count(preset, size_hw):
    plan = plan_image(size_hw, preset)
    rows = ledger_rows(plan)
    layout = build_layout(plan)
    assert ledger_total(rows) == plan.num_tokens == len(layout)
    assert {r.kind: r.count for r in rows} == layout.counts_by_kind()
    headers, body = ledger_table(plan)
    assert headers == ["part", "tokens", "how"]
    assert body[-1][:2] == ["total", plan.num_tokens]


def test_llava_next_1920x1080_golden_row_by_row():
    plan = plan_image((1080, 1920), "llava-next")
    rows = ledger_rows(plan)
    assert [(r.part, r.count) for r in rows] == [("base image", 576), ("tiles", 1344),
                                                 ("row-end newlines", 28)]
    assert rows[1].how == "2x2 tiles of 24x24 cells = 48x48; unpadding keeps 28x48 = 1344"
    assert plan.formula == "576 + 28x48 + 28 = 1948"
    assert ledger_table(plan)[1][-1] == ["total", 1948, "1,948 image placeholder tokens (no special tokens)"]


def test_onevision_downscale_row_says_so():
    plan = plan_image((1080, 1920), "llava-onevision")  # spec: 7269 tokens, 3x5 grid
    tiles = ledger_rows(plan)[1]
    assert "bilinear downscale to 60x108" in tiles.how and tiles.count == 60 * 108
    assert ledger_total(ledger_rows(plan)) == 7269


def test_qwen_and_internvl_count_their_wrappers():
    q = ledger_rows(plan_image((1080, 1920), "qwen2-vl"))
    assert [(r.part, r.count) for r in q] == [("image patches", 2691), ("start/end markers", 2)]
    assert q[0].how == "resized to 1932x1092: 78x138 patches of 14 px, merged 2x2 -> 39x69"
    assert q[1].how == "<|vision_start|> and <|vision_end|> around the patches"
    i = ledger_rows(plan_image((1080, 1920), "internvl"))
    assert [(r.part, r.count) for r in i] == [("tiles", 2048), ("thumbnail", 256), ("start/end markers", 2)]
    assert i[0].how.startswith("2x4 = 8 tiles x 256")


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("wh", SPEC_WH, ids=[f"{w}x{h}" for w, h in SPEC_WH])
def test_ledger_total_matches_the_spec_table(family, wh):
    expected = spec_expected(family, wh)
    plan = plan_image((wh[1], wh[0]), family_preset(family))
    assert ledger_total(ledger_rows(plan)) == expected["num_image_tokens"] + expected["num_wrapper_tokens"]


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("size_hw", [(1080, 1920), (1400, 390), (24, 24), (3000, 4000)], ids=str)
def test_ledger_total_equals_the_real_processors_count(family, size_hw):
    pytest.importorskip("transformers")
    from anyres_demo.backends.hf_processors import processor_counts_from_size

    preset = family_preset(family)
    real = processor_counts_from_size(processor_for(family), Size(*size_hw), preset)
    total = ledger_total(ledger_rows(plan_image(size_hw, preset)))
    assert total == real["num_image_tokens"] + real["num_wrapper_tokens"]


def test_why_table_marks_exactly_the_chosen_grid():
    plan = plan_image((600, 1600), "llava-next")
    headers, rows = why_table(plan)
    assert headers == ["", "grid (rows x cols)", "canvas (W x H)", "image px kept", "canvas px wasted",
                       "resize factor", "note"]
    assert len(rows) == 5
    chosen = [r for r in rows if r[0] == "✓ chosen"]
    assert len(chosen) == 1 and chosen[0][1] == "1 x 3" and chosen[0][2] == "1008x336"
    assert chosen[0][3] == "301,056"  # int(1600 * 0.56) * int(600 * 0.56) = 896 * 336


def test_why_table_for_internvl_lists_candidates_in_the_order_tried():
    plan = plan_image((1400, 390), "internvl")
    headers, rows = why_table(plan)
    assert headers[3:5] == ["aspect-ratio gap", "tiles"]
    assert rows[0][1] == "1 x 1"
    assert [r[1] for r in rows if r[0]] == ["4 x 1"]
    assert "closest to the image's (0.279)" in why_summary(plan)


def test_why_summary_names_the_winner():
    assert "Winner: **1008x336** (1x3 tiles)" in why_summary(plan_image((600, 1600), "llava-next"))
    assert "Result: **1932x1092** = 39x69 tokens" in why_summary(plan_image((1080, 1920), "qwen2-vl"))


def test_divergence_note_only_where_the_original_repo_differs():
    small = plan_image((200, 300), "llava-next")  # examples: original repo picks 2x1, 976 tokens
    text = divergence_markdown(small)
    assert text.startswith("**Known divergence for this image:**") and "976 tokens" in text
    assert divergence_markdown(plan_image((1080, 1920), "llava-next")).startswith("No known divergence")

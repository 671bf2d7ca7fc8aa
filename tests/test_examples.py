"""The bundled examples: present, loadable, the stated sizes, honest captions, reproducible."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from anyres_demo.engine import plan_image
from anyres_demo.examples import EXAMPLES, EXAMPLES_DIR, Example, example_paths, get_example
from anyres_demo.geometry import Size
from anyres_demo.images import load_image
from anyres_demo.presets import PRESETS

REPO = Path(__file__).resolve().parents[1]
IDS = [e.file_name for e in EXAMPLES]


def test_example_paths_resolve_to_the_repo_assets() -> None:
    assert EXAMPLES_DIR == REPO / "assets" / "examples"
    assert example_paths() == [EXAMPLES_DIR / e.file_name for e in EXAMPLES]
    assert len(set(IDS)) == len(IDS) == 8


@pytest.mark.parametrize("example", EXAMPLES, ids=IDS)
def test_example_loads_at_its_stated_size(example: Example) -> None:
    loaded = load_image(example.path)
    assert loaded.size_hw == example.size_hw
    assert loaded.notes == ()  # plain 8-bit RGB, no surprises in a bundled file
    assert example.preset_id in PRESETS
    assert example.title and example.caption.endswith(".")
    assert example.caption.count(". ") == 0, "a caption is one sentence"


def test_the_set_covers_the_shapes_people_ask_about() -> None:
    sizes = {e.file_name: e.size_hw for e in EXAMPLES}
    assert sizes["chart_wide.png"] == Size(600, 1600)
    assert sizes["receipt_tall.png"] == Size(1400, 390)
    assert sizes["panorama_8to1.png"].width == 8 * sizes["panorama_8to1.png"].height
    assert sizes["icon_24.png"] == Size(24, 24)
    assert sizes["photo_scene.png"] == Size(768, 1024)
    assert sizes["square_448.png"] == Size(448, 448)
    assert max(sizes["small_300x200.png"].hw) <= 336


def test_assets_are_small() -> None:
    total = sum(p.stat().st_size for p in EXAMPLES_DIR.iterdir())
    assert total < 2_000_000


CLAIMS = [(e, c) for e in EXAMPLES for c in e.claims]


@pytest.mark.parametrize("example, claim", CLAIMS,
                         ids=[f"{e.file_name}-{c.preset_id.split('/')[-1]}-{c.size_hw or 'own'}"
                              for e, c in CLAIMS])
def test_caption_numbers_match_the_engine(example: Example, claim) -> None:
    plan = plan_image(claim.size_hw or example.size_hw, claim.preset_id)
    assert (plan.grid_rows, plan.grid_cols) == (claim.grid_rows, claim.grid_cols)
    assert plan.num_image_tokens == claim.num_image_tokens
    if claim.resized_hw is not None:
        assert plan.resized_hw == claim.resized_hw
        assert f"{claim.resized_hw.width}x{claim.resized_hw.height}" in example.caption
    assert f"{claim.num_image_tokens} tokens" in example.caption or \
        f"spends {claim.num_image_tokens}" in example.caption
    if PRESETS[claim.preset_id].strategy != "qwen2_vl":  # Qwen's "grid" is tokens, not tiles
        assert f"{claim.grid_rows}x{claim.grid_cols}" in example.caption


def test_every_example_states_at_least_one_checked_claim() -> None:
    assert all(e.claims for e in EXAMPLES)


def test_small_image_caption_matches_the_original_repo_divergence() -> None:
    example = get_example("small_300x200.png")
    plan = plan_image(example.size_hw, example.preset_id)
    (divergence,) = plan.divergences
    assert "2x1 grid (976 tokens)" in divergence and "2x1 grid (976 tokens)" in example.caption


def test_square_448_is_one_internvl_tile_without_thumbnail() -> None:
    example = get_example("square_448.png")
    plan = plan_image(example.size_hw, example.preset_id)
    assert [c.kind for c in plan.crops] == ["tile"]
    assert plan.tokens_by_kind == {"tile": 256, "wrapper": 2}


def test_example_list_is_pure_data() -> None:
    code = ("import sys, json, anyres_demo.examples\n"
            "print(json.dumps([m for m in ('PIL', 'gradio', 'torch') if m in sys.modules]))")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                         check=True)
    assert json.loads(out.stdout) == []


def test_unknown_example_names_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown example 'cat.png'; known: document_page.png"):
        get_example("cat.png")


@pytest.mark.parametrize("name", ["document_page", "chart_wide", "receipt_tall"])
def test_sidecar_lists_the_words_drawn(name: str) -> None:
    example = get_example(f"{name}.png")
    sidecar = json.loads((EXAMPLES_DIR / example.sidecar).read_text())
    assert sidecar["image"] == example.file_name
    words = sidecar["words"]
    assert len(words) >= 40
    width, height = example.size_hw.wh
    for line in sidecar["lines"]:
        x0, y0, x1, y1 = line["bbox"]
        assert 0 <= x0 < x1 <= width and 0 <= y0 < y1 <= height, line
    # every recorded line left ink inside its box
    pixels = np.asarray(Image.open(example.path).convert("L"))
    for line in sidecar["lines"]:
        x0, y0, x1, y1 = line["bbox"]
        assert np.ptp(pixels[y0:y1, x0:x1]) > 60, line


def test_document_has_small_print_in_three_sizes() -> None:
    sidecar = json.loads((EXAMPLES_DIR / "document_page.json").read_text())
    by_size = {}
    for line in sidecar["lines"]:
        by_size.setdefault(line["size_px"], []).append(line["text"])
    assert {15, 12, 10} <= set(by_size)  # the sizes the caption names
    assert sum(len(t.split()) for t in by_size[10]) >= 20
    assert {"anyres", "thumbnail", "newline", "footnote"} <= set(sidecar["words"])
    assert sidecar["words"].count("336") >= 3


def test_generator_is_deterministic_and_matches_the_committed_files(tmp_path: Path) -> None:
    from assets.make_examples import generate

    written = generate(tmp_path)
    assert sorted(p.name for p in written) == sorted(p.name for p in EXAMPLES_DIR.iterdir())
    for path in written:
        committed = EXAMPLES_DIR / path.name
        if path.suffix == ".json":
            assert json.loads(path.read_text()) == json.loads(committed.read_text()), path.name
            continue
        # pixels, not bytes: a different zlib may pack the same pixels differently
        with Image.open(path) as fresh, Image.open(committed) as kept:
            assert fresh.size == kept.size and fresh.mode == kept.mode
            assert np.array_equal(np.asarray(fresh), np.asarray(kept)), path.name

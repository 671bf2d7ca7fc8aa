"""Divergence notes: wherever the original repos' answer differs from transformers', the plan
says so with both numbers; where they agree, it says nothing.

Every size with both sides in 1..1500 is scanned for every family (and 1..3000 in the slow
test), comparing the engine's vectorized counts (checked against the processors in
test_parity_processors) with the original code's reading:
  * LLaVA-NeXT / OneVision: pinpoints read as (width, height), int() truncation in unpad
    (llava_arch.py `unpad_image`), OneVision's anyres_max_9 downscale after it;
  * Qwen2-VL: qwen-vl-utils clamps each rounded side to >= 28;
  * InternVL: `dynamic_preprocess` builds its candidates as a set (a different order).
Golden vectors from issue 10 and the spec (section 1.5, 3.5), as (width, height).
"""
from __future__ import annotations

import numpy as np
import pytest

from anyres_demo import plan_image
from anyres_demo.ledger import divergence_markdown
from anyres_demo.presets import ALIASES, get_preset
from anyres_demo.strategies import internvl, llava_next, qwen2_vl

# (model, (width, height), transformers' placeholder tokens, original repo's)
GOLDEN = [
    ("llava-onevision", (423, 47), 1114, 1004),
    ("llava-onevision", (1323, 49), 1274, 1056),
    ("llava-onevision", (2538, 94), 1870, 1544),
    ("llava-next", (100, 200), 888, 1776),
    ("llava-next", (47, 1128), 936, 792),
    ("qwen2-vl", (10, 2000), 29, 71),
    ("qwen2-vl", (1, 200), 29, 7),
]


@pytest.mark.parametrize("model,wh,hf,original", GOLDEN, ids=[f"{m}-{w}x{h}" for m, (w, h), *_ in GOLDEN])
def test_golden_divergences_are_noted_with_both_counts(model, wh, hf, original):
    plan = plan_image((wh[1], wh[0]), model)
    assert plan.num_image_tokens == hf
    assert len(plan.divergences) == 1
    note = plan.divergences[0]
    assert f"{original} tokens" in note and str(hf) in note
    assert note in divergence_markdown(plan)


def _grid(n_from: int, n_to: int, side_max: int):
    h, w = np.meshgrid(np.arange(n_from, n_to), np.arange(1, side_max + 1), indexing="ij")
    return h.ravel(), w.ravel()


def _scan(model: str, side_max: int, chunk: int = 250):
    """(h, w) of every size up to side_max where the original's answer differs, and a
    deterministic sample of sizes where it agrees."""
    preset = get_preset(model)
    differ, agree = [], []
    rng = np.random.default_rng(side_max)
    for start in range(1, side_max + 1, chunk):
        h, w = _grid(start, min(start + chunk, side_max + 1), side_max)
        if preset.strategy == "internvl":
            (c0, r0), (c1, r1) = internvl.grid_many(h, w, preset), internvl.grid_many(h, w, preset, True)
            mask = (c0 != c1) | (r0 != r1)
        else:
            module = qwen2_vl if preset.strategy == "qwen2_vl" else llava_next
            mask = module.count_many(h, w, preset) != module.original_count_many(h, w, preset)
        differ += list(zip(h[mask], w[mask]))
        same = np.flatnonzero(~mask)
        agree += [(h[i], w[i]) for i in rng.choice(same, min(8, same.size), replace=False)]
    return preset, differ, agree


def _check(preset, differ, agree, n_notes: int = 400):
    rng = np.random.default_rng(0)
    picked = [differ[i] for i in rng.choice(len(differ), min(n_notes, len(differ)), replace=False)]
    silent = [s for s in picked if not plan_image(tuple(map(int, s)), preset).divergences]
    assert not silent, f"{len(silent)} differing sizes without a note, e.g. {silent[:5]}"
    noisy = []
    for size_hw in agree:
        plan = plan_image(tuple(map(int, size_hw)), preset)
        # a note without a count difference is only allowed for a different grid (LLaVA)
        if plan.divergences and "grid" not in plan.divergences[0]:
            noisy.append(size_hw)
    assert not noisy, f"notes where the counts agree: {noisy[:5]}"


# the families whose original repositories the engine states divergences for
ORIGINAL_FAMILIES = ("llava_next", "llava_onevision", "qwen2_vl", "internvl")


@pytest.mark.parametrize("model", [a for a, r in ALIASES.items()
                                   if get_preset(r).strategy in ORIGINAL_FAMILIES])
def test_every_size_up_to_1500_noted_where_original_differs(model):
    preset, differ, agree = _scan(model, 1500)
    if preset.strategy == "internvl":
        # the set order never changes the grid: no note needed, and none given
        assert not differ
        assert not any(plan_image(tuple(map(int, s)), preset).divergences for s in agree[:50])
        return
    assert differ, "the scan should find the known divergences"
    _check(preset, differ, agree)


@pytest.mark.slow
def test_onevision_up_to_3000_has_the_186_divergent_sizes():
    """Issue 10's measurement: 186 sizes with sides up to 3000 (OneVision had no note)."""
    preset, differ, agree = _scan("llava-onevision", 3000, chunk=500)
    assert len(differ) == 186
    assert (47, 423) in differ and (49, 1323) in differ and (94, 2538) in differ
    _check(preset, differ, agree, n_notes=186)

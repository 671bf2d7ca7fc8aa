"""The presets against the released checkpoints, and the processors' real runs against the plan.

The parity tests build processors and tiny models FROM the presets, so a wrong preset value
would pass them. Here:
  * GOLDEN: each released checkpoint's processor values, typed by hand from its files on the
    Hub (sources in the comments; the same values are in the spec's sections 1.1, 2.1, 3.1,
    4.1), compared with every preset AND with the processor built from it;
  * the grid, canvas, resized size and paste offset the processor really used, observed while
    it runs (its own `_resize_for_patching` / `_pad_for_patching` for LLaVA, its first `resize`
    for InternVL, `image_grid_thw` for Qwen), not recomputed with transformers' helpers.
"""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

pytest.importorskip("transformers")
torch = pytest.importorskip("torch")

from anyres_demo import plan_image  # noqa: E402
from anyres_demo.backends import hf_processors as hp  # noqa: E402
from anyres_demo.presets import PRESETS, get_preset  # noqa: E402
from hf_helpers import SPEC_WH, solid_image  # noqa: E402

CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073]
CLIP_STD = [0.26862954, 0.26130258, 0.27577711]

# LLaVA-NeXT v1.6, https://huggingface.co/llava-hf/llava-v1.6-mistral-7b-hf/blob/main/ and
# .../llava-v1.6-vicuna-7b-hf/blob/main/: preprocessor_config.json ("crop_size" 336x336,
# "size": {"shortest_edge": 336}, "image_grid_pinpoints", "image_mean"/"image_std"),
# processor_config.json ("patch_size": 14, "vision_feature_select_strategy": "default",
# "num_additional_image_tokens": 1), config.json ("image_token_index": 32000,
# vision_config "image_size": 336, "patch_size": 14).
_LLAVA_NEXT = {
    "tile_size": 336, "patch_size": 14, "features_per_side": 24,
    "pinpoints_hw": [[336, 672], [672, 336], [672, 672], [1008, 336], [336, 1008]],
    "num_additional_image_tokens": 1, "vision_feature_select_strategy": "default",
    "image_mean": CLIP_MEAN, "image_std": CLIP_STD,
    "image_token": "<image>", "image_token_id": 32000, "wrapper_tokens": None,
}
# LLaVA-OneVision, https://huggingface.co/llava-hf/llava-onevision-qwen2-0.5b-ov-hf/blob/main/
# and .../llava-onevision-qwen2-7b-ov-hf: preprocessor_config.json ("size" 384x384, 36
# "image_grid_pinpoints" [384, 384] ... [2304, 2304], mean/std 0.5), processor_config.json
# ("num_image_tokens": 729, "vision_aspect_ratio": "anyres_max_9",
# "vision_feature_select_strategy": "full"), config.json ("image_token_index": 151646,
# SigLIP vision_config "image_size": 384, "patch_size": 14).
_ONEVISION = {
    "tile_size": 384, "patch_size": 14, "features_per_side": 27,
    "pinpoints_hw": [[384 * i, 384 * j] for i in range(1, 7) for j in range(1, 7)],
    "max_tiles_downscale": 9, "num_additional_image_tokens": 0,
    "vision_feature_select_strategy": "full", "image_mean": [0.5] * 3, "image_std": [0.5] * 3,
    "image_token": "<image>", "image_token_id": 151646, "wrapper_tokens": None,
}
# Qwen2-VL / Qwen2.5-VL, https://huggingface.co/Qwen/Qwen2-VL-2B-Instruct/blob/main/ (and
# -7B-Instruct, Qwen2.5-VL-3B/7B-Instruct): preprocessor_config.json ("min_pixels": 3136,
# "max_pixels": 12845056, "patch_size": 14, "temporal_patch_size": 2, "merge_size": 2,
# CLIP mean/std), config.json ("image_token_id": 151655, "vision_start_token_id": 151652,
# "vision_end_token_id": 151653).
_QWEN = {
    "patch_size": 14, "merge_size": 2, "temporal_patch_size": 2, "min_pixels": 3136,
    "max_pixels": 12845056, "image_mean": CLIP_MEAN, "image_std": CLIP_STD,
    "image_token": "<|image_pad|>", "image_token_id": 151655,
    "wrapper_tokens": ["<|vision_start|>", "<|vision_end|>"], "wrapper_token_ids": [151652, 151653],
}
# InternVL3 -hf, https://huggingface.co/OpenGVLab/InternVL3-1B-hf/blob/main/ (and -2B-hf,
# -8B-hf): preprocessor_config.json ("size" 448x448, "min_patches": 1, "max_patches": 12,
# ImageNet mean/std), processor_config.json ("image_seq_length": 256), config.json
# ("image_token_id": 151667, "downsample_ratio": 0.5, vision_config "patch_size": [14, 14]);
# <img> / </img> are 151665 / 151666 in tokenizer_config.json.
_INTERNVL = {
    "tile_size": 448, "patch_size": 14, "downsample_ratio": 0.5, "min_tiles": 1, "max_tiles": 12,
    "image_mean": [0.485, 0.456, 0.406], "image_std": [0.229, 0.224, 0.225],
    "image_token": "<IMG_CONTEXT>", "image_token_id": 151667,
    "wrapper_tokens": ["<img>", "</img>"], "wrapper_token_ids": [151665, 151666],
}
GOLDEN = {
    "llava-hf/llava-v1.6-mistral-7b-hf": _LLAVA_NEXT,
    "llava-hf/llava-v1.6-vicuna-7b-hf": _LLAVA_NEXT,
    "llava-hf/llava-onevision-qwen2-0.5b-ov-hf": _ONEVISION,
    "llava-hf/llava-onevision-qwen2-7b-ov-hf": _ONEVISION,
    "Qwen/Qwen2-VL-2B-Instruct": _QWEN,
    "Qwen/Qwen2-VL-7B-Instruct": _QWEN,
    "Qwen/Qwen2.5-VL-3B-Instruct": _QWEN,
    "Qwen/Qwen2.5-VL-7B-Instruct": _QWEN,
    "OpenGVLab/InternVL3-1B-hf": _INTERNVL,
    "OpenGVLab/InternVL3-2B-hf": _INTERNVL,
    "OpenGVLab/InternVL3-8B-hf": _INTERNVL,
}


def _plain(v):
    if isinstance(v, (tuple, list)):
        return [_plain(x) for x in v]
    return v


def _same(have, want) -> bool:
    if isinstance(want, list) and want and isinstance(want[0], float):
        return _plain(have) == pytest.approx(want)
    return _plain(have) == want


def preset_mismatches(preset, golden: dict) -> dict:
    """{field: (golden, preset)} for every golden field the preset states differently."""
    bad = {}
    for key, want in golden.items():
        have = getattr(preset.settings, key) if hasattr(preset.settings, key) else getattr(preset, key)
        if not _same(have, want):
            bad[key] = (want, have)
    return bad


def test_every_golden_row_is_a_preset():
    """The table covers the checkpoints of the four original families as of issue 10; a family
    or checkpoint added later brings its own rows (e.g. InternVL3.5, added since, has none
    here yet)."""
    assert set(GOLDEN) <= set(PRESETS)


@pytest.mark.parametrize("repo", list(GOLDEN))
def test_preset_holds_the_released_values(repo):
    assert preset_mismatches(get_preset(repo), GOLDEN[repo]) == {}


def test_a_wrong_preset_value_is_caught():
    """The comparison can fail: one changed value in one preset is reported by name."""
    preset = get_preset("Qwen/Qwen2-VL-2B-Instruct")
    wrong = dataclasses.replace(preset, settings=dataclasses.replace(preset.settings,
                                                                     max_pixels=28 * 28 * 1280))
    assert preset_mismatches(wrong, GOLDEN[preset.repo_id]) == {"max_pixels": (12845056, 1003520)}


@pytest.mark.parametrize("repo", list(GOLDEN))
def test_processor_built_for_the_preset_has_the_released_values(repo):
    """What build_processor hands transformers, read back from the processor it built."""
    g, preset = GOLDEN[repo], get_preset(repo)
    proc = hp.build_processor(preset)
    ip = proc.image_processor
    assert list(ip.image_mean) == pytest.approx(g["image_mean"])
    assert list(ip.image_std) == pytest.approx(g["image_std"])
    kind = hp.model_type(preset)
    if kind == hp.LLAVA_NEXT:
        assert ip.size["shortest_edge"] == ip.crop_size["height"] == g["tile_size"]
        assert [list(p) for p in ip.image_grid_pinpoints] == g["pinpoints_hw"]
        assert (proc.patch_size, proc.num_additional_image_tokens, proc.vision_feature_select_strategy) \
            == (g["patch_size"], g["num_additional_image_tokens"], g["vision_feature_select_strategy"])
    elif kind == hp.ONEVISION:
        assert ip.size["height"] == ip.size["width"] == g["tile_size"]
        assert [list(p) for p in ip.image_grid_pinpoints] == g["pinpoints_hw"]
        assert (proc.num_image_tokens, proc.vision_aspect_ratio, proc.vision_feature_select_strategy) \
            == (g["features_per_side"] ** 2, f"anyres_max_{g['max_tiles_downscale']}",
                g["vision_feature_select_strategy"])
    elif kind in (hp.QWEN2_VL, hp.QWEN2_5_VL):
        assert (ip.size["shortest_edge"], ip.size["longest_edge"]) == (g["min_pixels"], g["max_pixels"])
        assert (ip.patch_size, ip.merge_size, ip.temporal_patch_size) == (
            g["patch_size"], g["merge_size"], g["temporal_patch_size"])
    else:
        assert (ip.size["height"], ip.min_patches, ip.max_patches) == (
            g["tile_size"], g["min_tiles"], g["max_tiles"])
        cells = int(g["tile_size"] // g["patch_size"] * g["downsample_ratio"])
        assert proc.image_seq_length == cells ** 2


# ---------------------------------------------------------------- the processors' real runs
class Spy:
    """Wraps one method of one processor instance while in a `with`: the real method runs, its
    calls (args, kwargs, output) are kept."""

    def __init__(self, obj, name: str):
        self.obj, self.name, self.calls = obj, name, []

    def __enter__(self):
        original = getattr(self.obj, self.name)

        def spy(*args, **kwargs):
            out = original(*args, **kwargs)
            self.calls.append((args, kwargs, out))
            return out
        setattr(self.obj, self.name, spy)
        return self

    def __exit__(self, *exc):
        delattr(self.obj, self.name)  # back to the class's method


def _llava_run(proc, preset, size_hw):
    ip = proc.image_processor
    with Spy(ip, "_resize_for_patching") as resized, Spy(ip, "_pad_for_patching") as padded:
        hp.processor_outputs(proc, solid_image(size_hw), preset)
    (args, kwargs, resized_out), = resized.calls
    (pad_args, _, padded_out), = padded.calls
    canvas = tuple(int(v) for v in (pad_args[1] if len(pad_args) > 1 else kwargs["target_resolution"]))
    assert tuple(padded_out.shape[-2:]) == canvas
    # the paste offset: where the (non-black) resized image sits on the black canvas
    filled = np.flatnonzero(padded_out[0].abs().sum(0).numpy() > 0), \
        np.flatnonzero(padded_out[0].abs().sum(1).numpy() > 0)
    cols_on, rows_on = filled
    tile = preset.settings.tile_size
    return {"canvas_hw": canvas, "grid": (canvas[0] // tile, canvas[1] // tile),
            "resized_hw": tuple(int(v) for v in resized_out.shape[-2:]),
            "paste_yx": (int(rows_on[0]), int(cols_on[0]))}


def _internvl_run(proc, preset, size_hw):
    ip = proc.image_processor
    with Spy(ip, "resize") as resize:
        out = hp.processor_outputs(proc, solid_image(size_hw), preset)
    canvas = tuple(int(v) for v in resize.calls[0][2].shape[-2:])  # the first resize: the canvas
    tile = preset.settings.tile_size
    grid = (canvas[0] // tile, canvas[1] // tile)
    assert out["pixel_values"].shape[0] == grid[0] * grid[1] + (grid != (1, 1))
    return {"canvas_hw": canvas, "grid": grid, "resized_hw": canvas, "paste_yx": (0, 0)}


def _qwen_run(proc, preset, size_hw):
    out = hp.processor_outputs(proc, solid_image(size_hw), preset)
    _, gh, gw = (int(v) for v in out["image_grid_thw"][0])
    p, m = preset.settings.patch_size, preset.settings.merge_size
    return {"canvas_hw": (gh * p, gw * p), "grid": (gh // m, gw // m),
            "resized_hw": (gh * p, gw * p), "paste_yx": (0, 0)}


RUN_REPOS = ["llava-hf/llava-v1.6-mistral-7b-hf", "llava-hf/llava-onevision-qwen2-0.5b-ov-hf",
             "Qwen/Qwen2-VL-2B-Instruct", "Qwen/Qwen2.5-VL-3B-Instruct", "OpenGVLab/InternVL3-1B-hf"]
RUN_HW = [(h, w) for w, h in SPEC_WH if w * h <= 2_100_000] + [
    (200, 100), (47, 423), (1128, 47), (91, 37), (5, 900)]


@pytest.mark.parametrize("repo", RUN_REPOS)
def test_grid_canvas_and_paste_are_what_the_processor_really_used(repo):
    preset = get_preset(repo)
    kind = hp.model_type(preset)
    run = {hp.LLAVA_NEXT: _llava_run, hp.ONEVISION: _llava_run,
           hp.INTERNVL: _internvl_run}.get(kind, _qwen_run)
    proc = hp.build_processor(preset)
    bad = {}
    for size_hw in RUN_HW:
        got = run(proc, preset, size_hw)
        plan = plan_image(size_hw, preset)
        want = {"canvas_hw": plan.canvas_hw.hw, "grid": (plan.grid_rows, plan.grid_cols),
                "resized_hw": plan.resized_hw.hw, "paste_yx": tuple(plan.paste_yx)}
        if got != want:
            bad[size_hw] = (want, got)
    assert not bad, bad


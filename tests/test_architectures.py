"""The architecture table against golden copies of the checkpoints' config values.

GOLDEN holds the values as typed from the sources each row cites (copies of the checkpoints'
config.json quoted in public repositories, see architectures.py), independently of the table.
The [code] rows are also checked against the transformers 5.24 config class defaults whose
docstring names the checkpoint.
"""
from __future__ import annotations

import dataclasses

import pytest

from anyres_demo.architectures import ARCHITECTURES, get_architecture
from anyres_demo.presets import PRESETS

# repo -> {"field.path": value}, typed from the cited copies
GOLDEN = {
    "Qwen/Qwen2.5-VL-3B-Instruct": {
        "text.layers": 36, "text.hidden": 2048, "text.heads": 16, "text.kv_heads": 2,
        "vision.depth": 32, "vision.width": 1280, "vision.intermediate": 3420, "vision.heads": 16,
        "vision.window_patches": 112 // 14, "vision.full_attention_layers": 4,
        "vision.projector": ((5120, 5120), (5120, 2048))},
    "Qwen/Qwen3-VL-2B-Instruct": {
        "text.layers": 28, "text.hidden": 2048, "text.heads": 16, "text.kv_heads": 8,
        "text.head_dim": 128, "text.intermediate": 6144, "text.context": 262144,
        "vision.depth": 24, "vision.width": 1024, "vision.patch": 16, "vision.projector_copies": 1 + 3},
    "Qwen/Qwen3-VL-4B-Instruct": {
        "text.layers": 36, "text.hidden": 2560, "text.heads": 32, "text.kv_heads": 8,
        "text.head_dim": 128, "text.intermediate": 9728, "text.context": 262144,
        "vision.depth": 24, "vision.width": 1024, "vision.intermediate": 4096,
        "vision.projector": ((4096, 4096), (4096, 2560))},
    "Qwen/Qwen3-VL-8B-Instruct": {
        "text.layers": 36, "text.hidden": 4096, "text.heads": 32, "text.kv_heads": 8,
        "text.context": 262144, "vision.depth": 27, "vision.width": 1152, "vision.intermediate": 4304,
        "vision.projector": ((4608, 4608), (4608, 4096))},
    "Qwen/Qwen3.5-9B": {
        "text.layers": 32, "text.hidden": 4096, "text.heads": 16, "text.kv_heads": 4,
        "text.head_dim": 256, "text.intermediate": 12288, "text.context": 262144,
        "text.linear.layers": 24, "text.linear.key_heads": 16, "text.linear.value_heads": 32,
        "text.linear.head_dim": 128, "vision.depth": 27, "vision.width": 1152,
        "vision.projector_copies": 1},
    "google/gemma-3-4b-it": {
        "text.layers": 34, "text.hidden": 2560, "text.heads": 8, "text.kv_heads": 4,
        "text.head_dim": 256, "text.intermediate": 10240, "text.sliding_window": 1024,
        "text.sliding_layers": 34 - 34 // 6, "vision.depth": 27, "vision.width": 1152,
        "vision.intermediate": 4304, "vision.heads": 16, "vision.patch": 14},
    "OpenGVLab/InternVL3-2B-hf": {
        "text.hidden": 1536, "text.intermediate": 8960, "text.layers": 28, "text.heads": 12,
        "text.kv_heads": 2, "text.context": 32768},
    "OpenGVLab/InternVL3-8B-hf": {
        "text.hidden": 3584, "text.intermediate": 18944, "text.layers": 28, "text.heads": 28,
        "text.kv_heads": 4, "text.context": 32768},
    "OpenGVLab/InternVL3-1B-hf": {  # Qwen2.5-0.5B config.json copy
        "text.layers": 24, "text.hidden": 896, "text.heads": 14, "text.kv_heads": 2,
        "text.head_dim": 64, "text.intermediate": 4864},
}


def value(arch, path: str):
    obj = arch
    for part in path.split("."):
        obj = getattr(obj, part)
    return obj


@pytest.mark.parametrize("repo", sorted(GOLDEN))
def test_table_matches_golden_copy(repo):
    arch = get_architecture(repo)
    for path, expected in GOLDEN[repo].items():
        assert value(arch, path) == expected, (repo, path)


def test_golden_rows_are_not_marked_unconfirmed():
    for repo, fields in GOLDEN.items():
        marked = set(get_architecture(repo).unconfirmed)
        assert not marked & set(fields), repo


REQUESTED = [  # the presets that exist, and the ids issues 11 and 12 add
    *PRESETS,
    "Qwen/Qwen3-VL-2B-Instruct", "Qwen/Qwen3-VL-4B-Instruct", "Qwen/Qwen3-VL-8B-Instruct",
    "Qwen/Qwen3-VL-30B-A3B-Instruct", "Qwen/Qwen3.5-2B", "Qwen/Qwen3.5-9B",
    "google/gemma-3-4b-it", "google/gemma-3-12b-it", "google/gemma-3-27b-it",
    "google/gemma-4-E2B-it", "google/gemma-4-E4B-it", "google/gemma-4-31B-it", "google/gemma-4-26B-A4B-it",
    "OpenGVLab/InternVL3_5-1B-HF", "OpenGVLab/InternVL3_5-2B-HF", "OpenGVLab/InternVL3_5-8B-HF",
    "HuggingFaceTB/SmolVLM2-2.2B-Instruct", "HuggingFaceTB/SmolVLM2-500M-Video-Instruct",
    "HuggingFaceTB/SmolVLM2-256M-Video-Instruct", "HuggingFaceTB/SmolVLM-Instruct",
    "HuggingFaceM4/Idefics3-8B-Llama3", "meta-llama/Llama-4-Scout-17B-16E-Instruct",
    "meta-llama/Llama-4-Maverick-17B-128E-Instruct", "meta-llama/Llama-3.2-11B-Vision-Instruct",
    "mistral-community/pixtral-12b", "mistralai/Mistral-Small-3.1-24B-Instruct-2503",
]


@pytest.mark.parametrize("repo", REQUESTED)
def test_every_requested_id_has_a_row_with_a_source(repo):
    arch = get_architecture(repo)
    assert arch is not None and arch.source


def test_missing_values_are_marked_unconfirmed():
    """A None anywhere must be covered by the row's `unconfirmed` list (exact field or part.*)."""
    for arch in ARCHITECTURES.values():
        marked = set(arch.unconfirmed)
        for part in ("vision", "text"):
            for f in dataclasses.fields(getattr(arch, part)):
                optional = f.default is None  # moe, linear, sliding_window: None means "none"
                if value(arch, f"{part}.{f.name}") is None and not optional:
                    assert f"{part}.*" in marked or f"{part}.{f.name}" in marked, (arch.repo_id, f.name)


def test_unconfirmed_names_real_fields():
    for arch in ARCHITECTURES.values():
        for path in arch.unconfirmed:
            part, _, name = path.partition(".")
            if name == "*":
                continue
            head = name.split(".")[0]
            assert head in {f.name for f in dataclasses.fields(getattr(arch, part))}, (arch.repo_id, path)


transformers = pytest.importorskip("transformers")


@pytest.mark.parametrize("repo,config_class,fields", [
    ("llava-hf/llava-v1.6-mistral-7b-hf", "LlavaNextConfig",
     {"depth": "num_hidden_layers", "width": "hidden_size", "heads": "num_attention_heads",
      "intermediate": "intermediate_size", "patch": "patch_size"}),
    ("llava-hf/llava-onevision-qwen2-0.5b-ov-hf", "LlavaOnevisionConfig",
     {"depth": "num_hidden_layers", "width": "hidden_size", "heads": "num_attention_heads",
      "intermediate": "intermediate_size", "patch": "patch_size"}),
    ("Qwen/Qwen2-VL-2B-Instruct", "Qwen2VLConfig",
     {"depth": "depth", "width": "embed_dim", "heads": "num_heads", "patch": "patch_size"}),
    ("OpenGVLab/InternVL3-1B-hf", "InternVLConfig",
     {"depth": "num_hidden_layers", "width": "hidden_size", "heads": "num_attention_heads",
      "intermediate": "intermediate_size"}),
    ("meta-llama/Llama-3.2-11B-Vision-Instruct", "MllamaConfig",
     {"width": "hidden_size", "intermediate": "intermediate_size", "patch": "patch_size"}),
    ("mistralai/Mistral-Small-3.1-24B-Instruct-2503", "Mistral3Config",
     {"depth": "num_hidden_layers", "width": "hidden_size", "heads": "num_attention_heads",
      "intermediate": "intermediate_size", "patch": "patch_size"}),
])
def test_code_sourced_vision_rows_match_transformers_defaults(repo, config_class, fields):
    vision = getattr(transformers, config_class)().vision_config
    arch = get_architecture(repo)
    for mine, theirs in fields.items():
        assert getattr(arch.vision, mine) == getattr(vision, theirs), (repo, mine)


@pytest.mark.parametrize("repo,config_class", [
    ("meta-llama/Llama-3.2-11B-Vision-Instruct", "MllamaConfig"),
    ("mistralai/Mistral-Small-3.1-24B-Instruct-2503", "Mistral3Config"),
    ("meta-llama/Llama-4-Scout-17B-16E-Instruct", "Llama4Config"),
])
def test_code_sourced_text_rows_match_transformers_defaults(repo, config_class):
    text = getattr(transformers, config_class)().text_config
    t = get_architecture(repo).text
    assert (t.layers, t.hidden, t.heads, t.kv_heads) == (
        text.num_hidden_layers, text.hidden_size, text.num_attention_heads, text.num_key_value_heads)

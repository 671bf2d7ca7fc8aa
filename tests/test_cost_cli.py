"""`python -m anyres_demo cost` and `tokens --engines`: JSON fields, errors, exit codes."""
from __future__ import annotations

import json

from anyres_demo.cli import main


def run(capsys, *argv):
    code = main(list(argv))
    return code, capsys.readouterr().out


def test_cost_json_fields(capsys):
    code, out = run(capsys, "cost", "--model", "qwen2-vl", "--size", "4000x3000", "--json")
    assert code == 0
    (rec,) = json.loads(out)
    c = rec["cost"]
    # Qwen2-VL-2B at 4000x3000: 107 x 143 merged tokens + 2 wrappers; 28 layers x 2 KV heads x 128 x 2 x 2 B
    assert c["num_tokens"] == 107 * 143 + 2
    assert c["kv_bytes_bf16"] == (107 * 143 + 2) * 28 * 2 * 128 * 4
    assert c["images_fit"] == 32768 // (107 * 143 + 2)
    assert [w["way"] for w in rec["three_ways"]] == ["as the preset processes it", "one 336 px squash",
                                                      "one view at full detail"]
    assert rec["three_ways"][1]["num_tokens"] == 12 * 12
    assert {e["engine"] for e in rec["engines"]} == {"transformers", "vLLM", "SGLang", "llama.cpp", "Ollama"}


def test_cost_text_names_the_terms(capsys):
    code, out = run(capsys, "cost", "--model", "llava-next", "--size", "1344x1344", "--prompt-tokens", "20")
    assert code == 0
    assert "attention scores (quadratic)" in out and "after 20 prompt tokens" in out
    assert "one 336 px squash" in out and "engines:" in out


def test_cost_settings_flags_apply(capsys):
    code, out = run(capsys, "cost", "--model", "qwen2-vl", "--size", "4000x3000", "--max-pixels", "200704",
                    "--json")
    (rec,) = json.loads(out)
    assert code == 0 and rec["cost"]["num_image_tokens"] <= 256


def test_cost_errors_are_objects_with_nonzero_exit(capsys):
    code, out = run(capsys, "cost", "--model", "qwen2-vl", "--size", "1x1000", "--json")
    assert code == 1 and "above 200:1" in json.loads(out)[0]["error"]
    code, out = run(capsys, "cost", "--model", "no-such-model", "--size", "10x10")
    assert code == 1 and "unknown model" in out


def test_tokens_engines_flag(capsys):
    code, out = run(capsys, "tokens", "--model", "qwen2.5-vl", "--size", "4000x3000", "--engines", "--json")
    assert code == 0
    (rec,) = json.loads(out)
    engines = {e["engine"]: e for e in rec["engines"]}
    assert engines["Ollama"]["num_tokens"] == 44 * 59 + 2  # 2<<20 px cap, see test_engines
    assert engines["Ollama"]["differs"] and not engines["vLLM"]["differs"]
    code, out = run(capsys, "tokens", "--model", "qwen2.5-vl", "--size", "4000x3000", "--engines")
    assert "<- differs" in out and "llama.cpp" in out

"""The real app, launched with `python app.py`, driven through gradio_client."""
from __future__ import annotations

import json

import pytest
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError

from anyres_demo import plan_image
from anyres_demo.examples import get_example

from app_server import api_settings, running_app

QWEN = "Qwen/Qwen2-VL-2B-Instruct"


@pytest.fixture(scope="module")
def client():
    with running_app() as url:
        yield Client(url, verbose=False)


def _total(html: str) -> int:
    return int(html.split('token-total-number">')[1].split("<")[0].replace(",", ""))


def _analyze(client, path, model, **settings):
    return client.predict(handle_file(str(path)), model, *api_settings(**settings),
                          api_name="/analyze")


@pytest.mark.parametrize("name,model", [("document_page.png", QWEN),
                                        ("chart_wide.png", "llava-hf/llava-v1.6-mistral-7b-hf"),
                                        ("receipt_tall.png", "OpenGVLab/InternVL3-1B-hf")])
def test_analyze_an_example_gives_the_engines_total(client, name, model):
    example = get_example(name)
    out = _analyze(client, example.path, model)
    expected = plan_image(example.size_hw, model)
    assert _total(out[0]) == expected.num_tokens
    ledger = out[8]
    assert ledger["data"][-1][:2] == ["total", expected.num_tokens]
    assert len(out[4]) == expected.num_crops  # gallery items came back as files


def test_settings_change_the_count(client):
    example = get_example("document_page.png")
    out = _analyze(client, example.path, QWEN, max_pixels=200_000)
    assert _total(out[0]) == plan_image(example.size_hw, QWEN, max_pixels=200_000).num_tokens


def test_export_follows_the_last_analysis(client):
    example = get_example("chart_wide.png")
    _analyze(client, example.path, "OpenGVLab/InternVL3-1B-hf", max_tiles=3)
    json_path, png_path, _, code = client.predict(handle_file(str(example.path)), api_name="/export")
    data = json.load(open(json_path))
    assert data["plan"]["num_tokens"] == plan_image(example.size_hw, "OpenGVLab/InternVL3-1B-hf",
                                                    max_tiles=3).num_tokens
    assert "max_tiles=3" in code


def test_whatif_endpoint(client):
    scale, aspect, table = client.predict(1920, 1080, 12845056, 12, "280", api_name="/whatif")
    assert [row[1] for row in table["data"]][:4] == [1948, 7269, 2693, 2306]  # the 2024 families


def test_a_bad_upload_is_a_clear_error_and_the_app_stays_up(client, tmp_path):
    bad = tmp_path / "letter.png"
    bad.write_text("Dear workshop, this is not an image.\n")
    with pytest.raises(AppError) as err:
        _analyze(client, bad, QWEN)
    assert "'letter.png' is not an image: it contains text" in str(err.value)
    example = get_example("icon_24.png")
    assert _total(_analyze(client, example.path, QWEN)[0]) == plan_image(example.size_hw, QWEN).num_tokens

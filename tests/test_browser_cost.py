"""A real chromium: upload an image, open the Cost tab, read the cost and the engines panel."""
from __future__ import annotations

import os
import re

import pytest

from anyres_demo import plan_image
from anyres_demo.cost_report import cost_report
from anyres_demo.geometry import Size

from app_server import running_app
from test_browser import CHROMIUM, TIMEOUT_MS, _choose_model, _wait_total, browser  # noqa: F401

pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(not os.path.exists(CHROMIUM) and not os.environ.get("CI"),
                                 reason="needs Debian's chromium (apt-get install -y chromium)")]
QWEN25 = "Qwen/Qwen2.5-VL-3B-Instruct"


def test_cost_and_engines_panels_show_for_an_uploaded_image(browser, tmp_path):  # noqa: F811
    from PIL import Image
    path = tmp_path / "photo_4000x3000.png"
    Image.new("RGB", (4000, 3000), (120, 160, 200)).save(path)
    size_hw = Size(3000, 4000)
    with running_app() as url:
        page = browser.new_page()
        page.goto(url, timeout=TIMEOUT_MS)
        _wait_total(page, 2340)  # the start-up example on LLaVA-NeXT
        page.locator("#input-image input[type=file]").set_input_files(str(path))
        _choose_model(page, "Qwen2.5-VL 3B")
        _wait_total(page, plan_image(size_hw, QWEN25).num_tokens)
        page.get_by_role("tab", name="Cost").click()
        rec = cost_report(QWEN25, size_hw)
        tokens = f"{rec['cost']['num_tokens']:,}"
        page.wait_for_function(
            "t => { const e = document.querySelector('#cost-headline');"
            " return e && e.innerText.includes('Qwen2.5-VL-3B') && e.innerText.includes(t); }",
            arg=tokens, timeout=TIMEOUT_MS)
        headline = page.locator("#cost-headline").inner_text()
        assert re.search(r"KV cache [\d.]+ MiB", headline), headline
        page.wait_for_function(
            "() => { const e = document.querySelector('#engines-table');"
            " return e && e.textContent.includes('llama.cpp'); }", timeout=TIMEOUT_MS)
        table = page.locator("#engines-table").text_content()
        page.screenshot(path=str(tmp_path / "cost.png"), full_page=True)
        ollama = next(e for e in rec["engines"] if e["engine"] == "Ollama")
        assert f"{ollama['num_tokens']:,}" in table and "SGLang" in table
        assert "Differs from transformers" in page.locator("#engines-note").inner_text()
        assert page.locator("#cost-flops-plot .js-plotly-plot").count() == 1
        page.close()

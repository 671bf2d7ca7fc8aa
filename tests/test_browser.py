"""A real chromium (Debian's, driven by Playwright): upload, switch strategy, read the total.

Also takes the README screenshot, docs/screenshot.png. Skipped when /usr/bin/chromium is
missing (install it with `apt-get install -y chromium`; never `playwright install`).
"""
from __future__ import annotations

import os
import re
import tempfile

import numpy as np
import pytest
from PIL import Image

from anyres_demo import plan_image

from app_server import REPO, running_app

CHROMIUM = "/usr/bin/chromium"
SCREENSHOT = os.path.join(REPO, "docs", "screenshot.png")
QWEN = "Qwen/Qwen2-VL-2B-Instruct"
LLAVA = "llava-hf/llava-v1.6-mistral-7b-hf"
TIMEOUT_MS = 60_000

pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="needs Debian's chromium")]


def _photo(size_hw) -> Image.Image:
    """Something that looks like a scene: a sky gradient, a sun, a horizon."""
    h, w = size_hw
    y, x = np.mgrid[0:h, 0:w]
    sky = np.stack([90 + 80 * y / h, 150 + 60 * y / h, 235 - 40 * y / h], -1)
    ground = np.stack([70 + 40 * x / w, 140 + 0 * x, 60 + 0 * x], -1)
    img = np.where((y > 0.62 * h)[..., None], ground, sky)
    sun = (x - 0.72 * w) ** 2 + (y - 0.3 * h) ** 2 < (0.09 * h) ** 2
    img[sun] = (255, 214, 80)
    return Image.fromarray(img.astype(np.uint8))


def _total(page) -> int:
    text = page.locator("#token-total").inner_text()
    match = re.search(r"([\d,]+)\s+visual tokens", text)
    assert match, text
    return int(match.group(1).replace(",", ""))


def _wait_total(page, expected: int) -> None:
    page.wait_for_function(
        "n => { const e = document.querySelector('#token-total');"
        " return e && e.innerText.replace(/,/g, '').includes(String(n) + ' visual tokens'); }",
        arg=expected, timeout=TIMEOUT_MS)


def _choose_model(page, label: str) -> None:
    box = page.locator("#model-select input")
    box.click()
    box.fill(label)
    page.get_by_role("option", name=re.compile(re.escape(label))).first.click()


@pytest.fixture(scope="module")
def browser():
    """A chromium context with a fresh profile (Playwright's way to pass --user-data-dir)."""
    sync_api = pytest.importorskip("playwright.sync_api")
    with tempfile.TemporaryDirectory(prefix="anyres-chromium-") as profile, \
            sync_api.sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            profile, executable_path=CHROMIUM, headless=True,
            viewport={"width": 1440, "height": 1280},
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"])
        yield context
        context.close()


def test_upload_switch_strategy_and_read_the_total(browser, tmp_path):
    size_hw = (1080, 1620)
    path = tmp_path / "scene.png"
    _photo(size_hw).save(path)
    with running_app() as url:
        page = browser.new_page()
        page.goto(url, timeout=TIMEOUT_MS)
        _wait_total(page, 2340)  # the start-up example: photo_scene.png on LLaVA-NeXT
        page.locator("#input-image input[type=file]").set_input_files(str(path))
        expected_llava = plan_image(size_hw, LLAVA).num_tokens
        _wait_total(page, expected_llava)
        _choose_model(page, "Qwen2-VL 2B")
        expected_qwen = plan_image(size_hw, QWEN).num_tokens
        _wait_total(page, expected_qwen)
        assert _total(page) == expected_qwen != expected_llava
        page.wait_for_selector("#token-map img", timeout=TIMEOUT_MS)
        page.locator("#token-map img").click(position={"x": 60, "y": 60})
        page.wait_for_function("() => document.querySelector('#token-info').innerText.includes('Token ')",
                               timeout=TIMEOUT_MS)
        assert "kind: image" in page.locator("#token-info").inner_text()
        page.wait_for_selector("#crops img", timeout=TIMEOUT_MS)
        os.makedirs(os.path.dirname(SCREENSHOT), exist_ok=True)
        page.evaluate("window.scrollTo(0, 0)")
        page.screenshot(path=SCREENSHOT)
        assert Image.open(SCREENSHOT).size == (1440, 1280)
        page.close()

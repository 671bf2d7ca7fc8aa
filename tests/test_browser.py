"""A real chromium (Debian's, driven by Playwright): upload, switch strategy, read the total.

Also takes the README screenshot, docs/screenshot.png. Skipped when /usr/bin/chromium is
missing (install it with `apt-get install -y chromium`; never `playwright install`).
"""
from __future__ import annotations

import os
import re
import tempfile

import pytest
from PIL import Image

from anyres_demo import plan_image
from anyres_demo.examples import get_example

from app_server import REPO, running_app

CHROMIUM = "/usr/bin/chromium"
SCREENSHOT = os.path.join(REPO, "docs", "screenshot.png")
QWEN = "Qwen/Qwen2-VL-2B-Instruct"
LLAVA = "llava-hf/llava-v1.6-mistral-7b-hf"
TIMEOUT_MS = 60_000

# Locally the test is skipped without chromium; in CI (.ci/run installs it) a missing browser
# must fail, not pass quietly as a skip.
pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(not os.path.exists(CHROMIUM) and not os.environ.get("CI"),
                                 reason="needs Debian's chromium (apt-get install -y chromium)")]


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


def _wait_pictures(page, crops: int) -> None:
    """Until the overlay and all `crops` gallery pictures have loaded."""
    page.wait_for_function(
        "n => { const imgs = [...document.querySelectorAll('#overlay img, #crops img')];"
        " return imgs.length >= n + 1 && imgs.every(i => i.complete && i.naturalWidth > 0); }",
        arg=crops, timeout=TIMEOUT_MS)


def test_upload_switch_strategy_and_read_the_total(browser):
    example = get_example("chart_wide.png")  # 1600x600: LLaVA-NeXT pads it onto a 1x3 canvas
    size_hw = example.size_hw.hw
    with running_app() as url:
        page = browser.new_page()
        page.goto(url, timeout=TIMEOUT_MS)
        _wait_total(page, 2340)  # the start-up example: photo_scene.png on LLaVA-NeXT
        page.locator("#input-image input[type=file]").set_input_files(str(example.path))
        llava = plan_image(size_hw, LLAVA)
        _wait_total(page, llava.num_tokens)
        assert _total(page) == llava.num_tokens == 2136
        _wait_pictures(page, llava.num_crops)
        page.wait_for_timeout(500)  # let the layout settle before the README picture
        os.makedirs(os.path.dirname(SCREENSHOT), exist_ok=True)
        page.screenshot(path=SCREENSHOT)
        assert Image.open(SCREENSHOT).size == (1440, 1280)

        _choose_model(page, "Qwen2-VL 2B")
        qwen = plan_image(size_hw, QWEN)
        _wait_total(page, qwen.num_tokens)
        assert _total(page) == qwen.num_tokens != llava.num_tokens
        page.locator("#token-map img").click(position={"x": 60, "y": 60})
        page.wait_for_function("() => document.querySelector('#token-info').innerText.includes('Token ')",
                               timeout=TIMEOUT_MS)
        info = page.locator("#token-info").inner_text()
        assert f"of {qwen.num_tokens}" in info and "kind: image" in info
        page.close()

"""Real chromium (Debian's, via Playwright): upload an image, pick SmolVLM2, read the same total
as the CLI prints for that file; then set the longest edge and read the CLI's total again."""
from __future__ import annotations

import os

import pytest

from anyres_demo.examples import get_example

from app_server import running_app
from test_browser import (CHROMIUM, TIMEOUT_MS, _choose_model, _cli_total, _total,  # noqa: F401
                          _wait_total, browser)

pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(not os.path.exists(CHROMIUM) and not os.environ.get("CI"),
                                 reason="needs Debian's chromium (apt-get install -y chromium)")]


def test_pick_smolvlm2_on_an_uploaded_image_and_read_the_cli_total(browser):  # noqa: F811
    example = get_example("receipt_tall.png")
    path = str(example.path)
    want = _cli_total("smolvlm2", path)
    want_768 = _cli_total("smolvlm2", path, "--longest-edge", "768")
    assert want != want_768
    with running_app() as url:
        page = browser.new_page()
        page.goto(url, timeout=TIMEOUT_MS)
        page.locator("#input-image input[type=file]").set_input_files(path)
        page.wait_for_timeout(1000)
        _choose_model(page, "SmolVLM2 2.2B")
        _wait_total(page, want)
        assert _total(page) == want
        assert "third-party" in page.locator("#analysis-summary").inner_text()
        box = page.locator("#set-longest_edge input")
        box.fill("768")
        box.press("Enter")
        _wait_total(page, want_768)
        assert _total(page) == want_768
        page.close()

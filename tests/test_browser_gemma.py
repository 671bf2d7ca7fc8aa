"""Real chromium (Debian's, via Playwright): upload an image, pick Gemma 3, turn pan-and-scan on
and read the same total as the CLI prints for that file with --pan-and-scan; the page also
says the preset's values come from third-party copies of the checkpoint files."""
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


def test_pick_gemma3_with_pan_and_scan_and_read_the_cli_total(browser):  # noqa: F811
    example = get_example("chart_wide.png")  # 1600x600: pan-and-scan cuts 3 crops of 534x600
    path = str(example.path)
    want_off = _cli_total("gemma-3", path)
    want_on = _cli_total("gemma-3", path, "--pan-and-scan")
    assert (want_off, want_on) == (260, 1055)  # 256 + 4; 4 views x (256 + 4) + 15 prompt words
    with running_app() as url:
        page = browser.new_page()
        page.goto(url, timeout=TIMEOUT_MS)
        page.locator("#input-image input[type=file]").set_input_files(path)
        page.wait_for_timeout(1000)
        _choose_model(page, "Gemma 3 4B")
        _wait_total(page, want_off)
        assert _total(page) == want_off
        assert "third-party" in page.locator("#analysis-summary").inner_text()
        page.locator("#set-pan_and_scan").get_by_label("on").check()
        _wait_total(page, want_on)
        assert _total(page) == want_on
        page.close()

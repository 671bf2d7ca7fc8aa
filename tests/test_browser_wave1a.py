"""A real chromium: upload an image, pick Qwen3-VL and Pixtral, and read the same total on the
page as the command line prints for that file (`python -m anyres_demo tokens --json`)."""
from __future__ import annotations


import numpy as np
from PIL import Image

from app_server import running_app
from test_browser import (CHROMIUM, _choose_model, _cli_total, _total, _wait_total,  # noqa: F401
                          browser, pytestmark)

TIMEOUT_MS = 60_000


def test_qwen3_vl_and_pixtral_totals_equal_the_cli(browser, tmp_path):  # noqa: F811
    path = str(tmp_path / "upload_700x260.png")
    rng = np.random.default_rng(1)
    Image.fromarray(rng.integers(0, 256, (260, 700, 3), dtype=np.uint8)).save(path)
    qwen3, pixtral = _cli_total("qwen3-vl", path), _cli_total("pixtral", path)
    # 700x260: Qwen3-VL rounds to 704x256 = 22x8 = 176 (+2); Pixtral-12B to 704x272 = 17 x 44 + 17
    assert (qwen3, pixtral) == (178, 765)
    with running_app() as url:
        page = browser.new_page()
        page.goto(url, timeout=TIMEOUT_MS)
        _wait_total(page, 2340)  # the start-up example on LLaVA-NeXT
        page.locator("#input-image input[type=file]").set_input_files(path)
        page.wait_for_function("() => !document.querySelector('#token-total').innerText.includes('2,340')",
                               timeout=TIMEOUT_MS)
        _choose_model(page, "Qwen3-VL 2B")
        _wait_total(page, qwen3)
        assert _total(page) == qwen3
        _choose_model(page, "Pixtral 12B")
        _wait_total(page, pixtral)
        assert _total(page) == pixtral
        page.close()

"""A real chromium: upload an image, pick Qwen3-VL and Pixtral, and read the same total on the
page as the command line prints for that file (`python -m anyres_demo tokens --json`)."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from app_server import REPO, running_app
from test_browser import CHROMIUM, _choose_model, _total, _wait_total, browser, pytestmark  # noqa: F401

TIMEOUT_MS = 60_000


def _cli_total(path: str, model: str) -> int:
    out = subprocess.run([sys.executable, "-m", "anyres_demo", "tokens", "--model", model,
                          "--image", path, "--json"], cwd=REPO, capture_output=True, text=True,
                         check=True, timeout=120)
    (row,) = json.loads(out.stdout)
    return int(row["num_tokens"])


def test_qwen3_vl_and_pixtral_totals_equal_the_cli(browser, tmp_path):  # noqa: F811
    path = str(tmp_path / "upload_700x260.png")
    rng = np.random.default_rng(1)
    Image.fromarray(rng.integers(0, 256, (260, 700, 3), dtype=np.uint8)).save(path)
    qwen3, pixtral = _cli_total(path, "qwen3-vl"), _cli_total(path, "pixtral")
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

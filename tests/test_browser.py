"""A real chromium (Debian's, driven by Playwright) on the app: what a person sees and does.

One app server and one browser for the whole module (each test opens its own page): upload,
switch model, read the total, click the token map (and see the mark), a bad upload after an
example, the caption after a model switch, a bad setting, the what-if fields on Enter, the
model menu by keyboard, cut-off views (table headers, captions, a winner with score 0, 36
candidate labels) and a 390 px phone. Also takes the README screenshot, docs/screenshot.png.
Skipped when /usr/bin/chromium is missing (install it with `apt-get install -y chromium`;
never `playwright install`).
"""
from __future__ import annotations

import contextlib
import io
import json
import os
import re
import tempfile

import pytest
from PIL import Image

from anyres_demo import cli, plan_image
from anyres_demo.examples import get_example

from app_server import REPO, running_app

CHROMIUM = "/usr/bin/chromium"
SCREENSHOT = os.path.join(REPO, "docs", "screenshot.png")
QWEN = "Qwen/Qwen2-VL-2B-Instruct"
LLAVA = "llava-hf/llava-v1.6-mistral-7b-hf"
INTERNVL = "OpenGVLab/InternVL3-1B-hf"
ONEVISION = "llava-hf/llava-onevision-qwen2-0.5b-ov-hf"
PHOTO_HW = (768, 1024)  # the start-up example, photo_scene.png, on LLaVA-NeXT
TIMEOUT_MS = 60_000

# Locally the test is skipped without chromium; in CI (.ci/run installs it) a missing browser
# must fail, not pass quietly as a skip.
pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(not os.path.exists(CHROMIUM) and not os.environ.get("CI"),
                                 reason="needs Debian's chromium (apt-get install -y chromium)")]


# ---------------------------------------------------------------- fixtures and helpers
@pytest.fixture(scope="module")
def app_url():
    with running_app() as url:
        yield url


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


@pytest.fixture
def page(browser, app_url):
    """A fresh page on the app, its start-up analysis done."""
    page = browser.new_page()
    page.goto(app_url, timeout=TIMEOUT_MS)
    _wait_total(page, plan_image(PHOTO_HW, LLAVA).num_tokens)
    yield page
    page.close()


def _total(page) -> int | None:
    text = page.locator("#token-total").inner_text()
    match = re.search(r"([\d,]+|—)\s+tokens in total", text)
    assert match, text
    return None if match.group(1) == "—" else int(match.group(1).replace(",", ""))


def _wait_total(page, expected: int | None) -> None:
    shown = "—" if expected is None else f"{expected:,}"
    page.wait_for_function(
        "s => { const e = document.querySelector('#token-total');"
        " return e && e.innerText.includes(s + ' tokens in total'); }", arg=shown, timeout=TIMEOUT_MS)


def _cli_total(model: str, path: str, *flags: str) -> int:
    """What `python -m anyres_demo tokens -m MODEL -i PATH --json [FLAGS]` prints as the total."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert cli.main(["tokens", "-m", model, "-i", path, "--json", *flags]) == 0
    (record,) = json.loads(out.getvalue())
    return int(record["num_tokens"])


def _choose_model(page, label: str) -> None:
    box = page.locator("#model-select input")
    box.click()
    box.fill(label)
    page.get_by_role("option", name=re.compile(re.escape(label))).first.click()


def _wait_pictures(page, crops: int) -> None:
    """Until the overlay and all `crops` gallery pictures have loaded."""
    page.wait_for_function(
        "n => { const imgs = [...document.querySelectorAll('#overlay img, #crops img')];"
        " return imgs.length >= n + 1 && imgs.every(i => i.complete && i.naturalWidth > 0); }",
        arg=crops, timeout=TIMEOUT_MS)


WATCH_TOASTS = """() => { window.__toasts = {};
  new MutationObserver(() => {
    const now = {};
    document.querySelectorAll('[data-testid=toast-text]').forEach(e => {
      now[e.innerText] = (now[e.innerText] || 0) + 1; });
    for (const [t, n] of Object.entries(now)) window.__toasts[t] = Math.max(window.__toasts[t] || 0, n);
  }).observe(document.body, {childList: true, subtree: true, characterData: true}); }"""


def _toasts(page, text: str) -> int:
    """The most toasts holding `text` shown at once since WATCH_TOASTS ran (they fade out)."""
    return page.evaluate("t => Math.max(0, ...Object.entries(window.__toasts)"
                         ".filter(([s]) => s.includes(t)).map(([, n]) => n))", text)


LIST_OPEN = ("() => [...document.querySelectorAll('[role=listbox], ul.options')]"
             ".filter(e => e.getBoundingClientRect().height > 0).length > 0")

# For every element matching the selector: its text, whether its content is cut (wider or
# taller than its box), and whether a word or number was broken across lines.
CUT_REPORT = """
sel => [...document.querySelectorAll(sel)].filter(e => e.offsetParent !== null
                                                 && (e.innerText || '').trim()).map(e => {
  const words = (e.innerText || '').trim().split(/\\s+/).filter(Boolean);
  const r = document.createRange(); r.selectNodeContents(e);
  const tops = new Set([...r.getClientRects()].filter(q => q.width > 0).map(q => Math.round(q.top)));
  return {text: e.innerText, cut: e.scrollWidth > e.clientWidth + 1,
          broken: tops.size > Math.max(1, words.length)};
})
"""


def _not_cut(page, selector: str, min_count: int = 1) -> None:
    container = selector.split()[0]  # tables render their rows once scrolled into view
    page.locator(container).first.scroll_into_view_if_needed()
    page.wait_for_function("([sel, n]) => [...document.querySelectorAll(sel)]"
                           ".filter(e => (e.innerText || '').trim()).length >= n",
                           arg=[selector, min_count], timeout=TIMEOUT_MS)
    report = page.evaluate(CUT_REPORT, selector)
    assert len(report) >= min_count, (selector, report)
    bad = [r for r in report if r["cut"] or r["broken"]]
    assert not bad, (selector, bad[:5])


# ---------------------------------------------------------------- the main path
def test_upload_switch_strategy_and_read_the_total(page):
    example = get_example("chart_wide.png")  # 1600x600: LLaVA-NeXT pads it onto a 1x3 canvas
    size_hw = example.size_hw.hw
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
    before = page.locator("#token-map img").get_attribute("src")
    page.locator("#token-map img").click(position={"x": 60, "y": 60})
    page.wait_for_function("() => document.querySelector('#token-info').innerText.includes('Token ')",
                           timeout=TIMEOUT_MS)
    info = page.locator("#token-info").inner_text()
    assert f"of {qwen.num_tokens:,}" in info and "kind: image" in info
    # one numbering: counted from 1, the 0-based index named as such
    number = int(re.search(r"Token ([\d,]+) of", info).group(1).replace(",", ""))
    assert f"index {number - 1} counting from 0" in info
    # the clicked cell is marked: the map is redrawn
    page.wait_for_function("s => document.querySelector('#token-map img').src !== s", arg=before,
                           timeout=TIMEOUT_MS)


# ---------------------------------------------------------------- 5, 6, 7: nothing stale
def test_bad_upload_after_an_example_clears_the_views_and_says_why_once(page, tmp_path):
    page.get_by_text("8:1 panorama").first.click()
    _wait_total(page, plan_image((300, 2400), ONEVISION).num_tokens)
    assert "panorama" in page.locator("#analysis-summary").inner_text()
    notes = tmp_path / "notes.png"
    notes.write_text("plain text, not a picture\n")
    page.evaluate(WATCH_TOASTS)
    page.locator("#input-image input[type=file]").set_input_files(str(notes))
    _wait_total(page, None)
    summary = page.locator("#analysis-summary").inner_text()
    assert "Nothing to show" in summary and "panorama" not in summary
    page.wait_for_function("t => Object.keys(window.__toasts).some(s => s.includes(t))",
                           arg="is not an image", timeout=TIMEOUT_MS)
    page.wait_for_timeout(1500)  # any duplicate would have arrived by now
    assert _toasts(page, "is not an image") == 1
    assert page.locator("#overlay img").count() == 0 and page.locator("#crops img").count() == 0


def test_example_caption_follows_the_model(page):
    photo = plan_image(PHOTO_HW, LLAVA)
    assert f"leaving {photo.num_image_tokens} tokens" in page.locator("#analysis-summary").inner_text()
    _choose_model(page, "Qwen2-VL 2B")
    _wait_total(page, plan_image(PHOTO_HW, QWEN).num_tokens)
    summary = page.locator("#analysis-summary").inner_text()
    assert str(photo.num_image_tokens) not in summary and "pick that model" in summary


def test_a_bad_setting_clears_the_total_and_the_reason_stays_readable(page):
    page.evaluate(WATCH_TOASTS)
    page.locator("#set-pinpoints textarea").fill("garbage")
    page.get_by_role("button", name="Apply settings").click()
    _wait_total(page, None)
    page.wait_for_function("t => Object.keys(window.__toasts).some(s => s.includes(t))",
                           arg="not of the form", timeout=TIMEOUT_MS)
    # the summary says what happened and nothing (an "Error" pill) covers it
    assert "Nothing to show" in page.locator("#analysis-summary").inner_text()
    covered = page.evaluate("""() => { const s = document.querySelector('#analysis-summary');
        const r = s.getBoundingClientRect();
        const hit = document.elementFromPoint(r.left + r.width / 2, r.top + Math.min(12, r.height / 2));
        return !s.contains(hit); }""")
    assert not covered


# ---------------------------------------------------------------- 9, 10: keyboard
def test_whatif_answers_typed_values_on_enter(page):
    # the what-if follows the start-up image first (an event after the analysis); typing
    # before that lands would be overwritten by it, as it would for a person
    page.get_by_role("tab", name="What-if").click()
    page.wait_for_function("s => (document.querySelector('#whatif-table') || {}).innerText"
                           "?.includes(s)", arg=plan_image(PHOTO_HW, LLAVA).formula, timeout=TIMEOUT_MS)
    width, height = page.locator("#tab-whatif input[type=number]").nth(0), \
        page.locator("#tab-whatif input[type=number]").nth(1)
    for w, h in ((640, None), (1, 8000)):
        width.fill(str(w))
        width.press("Enter")
        if h is not None:
            height.fill(str(h))
            height.press("Enter")
        size_hw = (h or PHOTO_HW[0], w)
        expected = plan_image(size_hw, LLAVA)
        page.wait_for_function(
            "s => document.querySelector('#whatif-table').innerText.includes(s)",
            arg=expected.formula, timeout=TIMEOUT_MS)
    # 1x8000: the typed values, not a mix of old and new
    assert plan_image((8000, 1), LLAVA).formula in page.locator("#whatif-table").inner_text()


def test_model_menu_closes_when_tab_moves_on_and_on_escape(page):
    page.locator("#input-image button").last.focus()
    page.keyboard.press("Tab")
    assert page.evaluate("() => document.activeElement.closest('#model-select') !== null")
    page.wait_for_function(LIST_OPEN, timeout=TIMEOUT_MS)  # gradio opens it on focus
    page.keyboard.press("Tab")
    page.wait_for_function(f"() => !({LIST_OPEN})()", timeout=5000)
    page.locator("#input-image button").last.focus()
    page.keyboard.press("Tab")
    page.wait_for_function(LIST_OPEN, timeout=TIMEOUT_MS)
    page.keyboard.press("Escape")
    page.wait_for_function(f"() => !({LIST_OPEN})()", timeout=5000)


# ---------------------------------------------------------------- 11: nothing cut off
def test_tables_captions_and_charts_are_not_cut_off(page):
    _wait_pictures(page, plan_image(PHOTO_HW, LLAVA).num_crops)
    _not_cut(page, "#crops .caption-label", 5)
    _not_cut(page, "#ledger th span.header, #ledger [role=gridcell] span", 6)
    page.get_by_role("tab", name="Compare families").click()
    _not_cut(page, "#compare-table th span.header", 7)
    _not_cut(page, "#compare-table [role=gridcell] span", 28)  # the formula column included
    _not_cut(page, "#compare-gallery .caption-label", 4)
    wide = page.evaluate("() => { const t = document.querySelector('#compare-table table');"
                         " return t.getBoundingClientRect().width - "
                         "document.querySelector('#compare-table').getBoundingClientRect().width; }")
    assert wide <= 2
    page.get_by_role("tab", name="Can it read this?").click()
    page.wait_for_timeout(500)
    for table in ("#probe-legibility", "#probe-attention-table"):
        headers = page.locator(f"{table} th span.header").all_inner_texts()
        assert headers and headers[:3] != ["1", "2", "3"], headers
    page.get_by_role("tab", name="What the model sees").click()

    # InternVL on the 4:3 photo: the winner's score gap is 0; it must still be visible
    _choose_model(page, "InternVL3 1B")
    _wait_total(page, plan_image(PHOTO_HW, INTERNVL).num_tokens)
    page.wait_for_function("() => document.querySelectorAll('#candidates .scatterlayer .point')"
                           ".length > 0", timeout=TIMEOUT_MS)
    box = page.locator("#candidates .scatterlayer .point").first.bounding_box()
    assert box and box["height"] > 4
    # OneVision's 36 canvases: every label drawn, none overlapping another or the legend
    _choose_model(page, "LLaVA-OneVision 0.5B")
    _wait_total(page, plan_image(PHOTO_HW, ONEVISION).num_tokens)
    page.wait_for_function("() => document.querySelectorAll('#candidates .xtick text').length >= 36",
                           timeout=TIMEOUT_MS)
    overlaps = page.evaluate("""() => {
        const ticks = [...document.querySelectorAll('#candidates .xtick text')].map(t => t.getBoundingClientRect());
        const legend = document.querySelector('#candidates .legend').getBoundingClientRect();
        const meet = (a, b) => a.left < b.right - 1 && b.left < a.right - 1 && a.top < b.bottom - 1 && b.top < a.bottom - 1;
        let n = 0;
        ticks.forEach((a, i) => { if (meet(a, legend)) n++;
            ticks.slice(i + 1).forEach(b => { if (meet(a, b)) n++; }); });
        return n; }""")
    assert overlaps == 0


# ---------------------------------------------------------------- 13: a phone
def test_phone_width_390(browser, app_url):
    phone = browser.new_page()
    try:
        phone.set_viewport_size({"width": 390, "height": 844})
        phone.goto(app_url, timeout=TIMEOUT_MS)
        photo = plan_image(PHOTO_HW, LLAVA)
        _wait_total(phone, photo.num_tokens)
        # lazy pictures load once on screen: bring the whole gallery into view
        phone.evaluate("() => document.querySelector('#crops').scrollIntoView({block: 'end'})")
        _wait_pictures(phone, photo.num_crops)
        # the tab buttons people can see and press (gradio moves some into a "more" menu)
        tabs = phone.evaluate("() => [...document.querySelectorAll('.tab-wrapper button')].map(b => {"
                              " const r = b.getBoundingClientRect();"
                              " return {text: b.innerText, w: r.width, right: r.right}; })")
        names = {"What the model sees", "Compare families", "What-if", "Export", "Chat",
                 "Can it read this?"}
        visible = {t["text"].strip() for t in tabs if t["w"] > 0 and t["right"] <= 391}
        assert names <= visible, tabs
        _not_cut(phone, "#ledger [role=gridcell] span", 6)  # numbers in one piece
        # the crops gallery is about as tall as its pictures, not a fixed block with a hole
        gap = phone.evaluate("""() => { const g = document.querySelector('#crops');
            const imgs = [...g.querySelectorAll('img')].map(i => i.getBoundingClientRect());
            const bottom = Math.max(...imgs.map(r => r.bottom));
            return g.getBoundingClientRect().bottom - bottom; }""")
        assert gap < 120, gap
        # token-map cells at the map's own size (big enough to tap), not squeezed to 390 px
        scale = phone.evaluate("() => { const i = document.querySelector('#token-map img');"
                               " return i.getBoundingClientRect().width / i.naturalWidth; }")
        assert scale >= 0.99
    finally:
        phone.close()

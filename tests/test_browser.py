"""One real-browser test per page: Streamlit served on a free port, Debian Chromium driven
by Playwright. Screenshots of every page are kept in test-artifacts/ for people to look at."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROME_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PAGES = {
    "home": ("", "LLM architecture explorer"),
    "compare": ("compare", "Measured time"),
    "gallery": ("gallery", "structure built from its configuration"),
    "encoder": ("encoder", "How each token's representation moves"),
    "decoder": ("decoder", "Next-token distribution"),
    "encoder-decoder": ("encoder-decoder", "Cross-attention"),
    "moe": ("moe", "Route of every token"),
    "experiments": ("experiments?family=decoder", "Loss, unmodified"),
}

if not Path(CHROMIUM).exists():
    if os.environ.get("CI"):
        raise RuntimeError("CI must install Debian's chromium for the browser tests (apt-get install -y chromium)")
    pytest.skip("chromium is not installed (apt-get install -y chromium)", allow_module_level=True)


@pytest.fixture(scope="module")
def server():
    from explorer.ui.served import Server

    app = Server(ARTIFACTS / "streamlit.log")
    try:
        app.wait_healthy()
        yield app
    finally:
        app.stop()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROME_ARGS)
        yield b
        b.close()


def open_page(browser, url: str, marker: str, name: str):
    # A tall viewport: Streamlit scrolls inside its own container, so a "full page"
    # screenshot of a short viewport would miss the figures.
    page = browser.new_page(viewport={"width": 1280, "height": 3200})
    page.goto(url, wait_until="domcontentloaded")
    page.get_by_text(marker).first.wait_for(timeout=240_000)
    if name != "home":
        page.wait_for_selector(".js-plotly-plot", timeout=240_000)
    # then wait for Streamlit to finish running the script
    page.wait_for_function("() => !document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=240_000)
    page.wait_for_timeout(1000)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
    return page


def assert_no_error_elements(page):
    assert page.locator("[data-testid='stException']").count() == 0
    errors = page.locator("[data-testid='stAlertContentError']")
    assert errors.count() == 0, errors.all_inner_texts()


@pytest.mark.parametrize("name", list(PAGES))
def test_page_renders_without_errors(server, browser, name):
    path, marker = PAGES[name]
    page = open_page(browser, f"{server.url}/{path}", marker, name)
    try:
        assert_no_error_elements(page)
        if name != "home":
            assert page.locator(".js-plotly-plot").count() >= 1
    finally:
        page.close()


def _tokens_in_url(page) -> int:
    from urllib.parse import parse_qs, urlparse

    raw = parse_qs(urlparse(page.url).query).get("tokens", [""])[0]
    return len([t for t in raw.split(",") if t])


def _wait_idle(page):
    page.wait_for_timeout(500)
    page.wait_for_function("() => !document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=120_000)
    page.wait_for_timeout(500)


def test_decoder_step_adds_a_token_and_back_removes_it(server, browser):
    page = open_page(browser, f"{server.url}/decoder", "Next-token distribution", "decoder-step")
    try:
        page.wait_for_function("() => window.location.search.includes('tokens=')", timeout=60_000)
        before = _tokens_in_url(page)
        page.get_by_role("button", name="Step ▶").click()
        page.wait_for_function(
            "() => (new URLSearchParams(window.location.search).get('tokens') || '')"
            f".split(',').length === {before + 1}",
            timeout=120_000,
        )
        _wait_idle(page)
        assert _tokens_in_url(page) == before + 1
        page.get_by_role("button", name="◀ Back").click()
        page.wait_for_function(
            f"() => (new URLSearchParams(window.location.search).get('tokens') || '').split(',').length === {before}",
            timeout=120_000,
        )
        _wait_idle(page)
        assert _tokens_in_url(page) == before
        assert_no_error_elements(page)
    finally:
        page.close()


def test_the_card_tables_fit_their_panel_without_scrolling_sideways(server, browser):
    """The replication cards of the MoE default: the numbers (with each verdict) and the papers' words wrap
    inside the page's right panel at 1280 px instead of hiding columns behind a sideways scroll."""
    page = browser.new_page(viewport={"width": 1280, "height": 3200})
    try:
        page.goto(f"{server.url}/experiments?family=moe&tool=Replication+cards", wait_until="domcontentloaded")
        page.get_by_role("button", name="Measure the").first.wait_for(timeout=240_000)
        _wait_idle(page)
        page.get_by_role("button", name="Measure the").first.click()
        page.locator("[data-testid='stTable']").nth(1).wait_for(timeout=240_000)
        _wait_idle(page)
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "experiments-cards.png"), full_page=True)
        tables = page.locator("[data-testid='stTable']").all()
        assert len(tables) == 2
        for table in tables:
            scroll, client = table.evaluate("e => [e.scrollWidth, e.clientWidth]")
            assert scroll <= client, (scroll, client)
        assert page.get_by_text("not here").count() >= 1  # the verdict column is on screen
        assert_no_error_elements(page)
    finally:
        page.close()


def test_shared_link_restores_state_in_a_fresh_browser(server, browser):
    context = browser.new_context(viewport={"width": 1280, "height": 3200})  # no cookies, no session: a fresh browser
    page = context.new_page()
    try:
        page.goto(f"{server.url}/decoder?text=Once%20upon%20a%20time&tokens=11,2158", wait_until="domcontentloaded")
        page.wait_for_selector(".js-plotly-plot", timeout=240_000)
        _wait_idle(page)
        assert page.get_by_role("textbox", name="Prompt").input_value() == "Once upon a time"
        assert _tokens_in_url(page) == 2
        assert_no_error_elements(page)
        page.screenshot(path=str(ARTIFACTS / "decoder-shared-link.png"), full_page=True)
    finally:
        context.close()


def test_markup_is_shown_as_text_never_run(server, browser):
    page = open_page(browser, f"{server.url}/decoder", "Next-token distribution", "decoder-markup")
    dialogs = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    try:
        box = page.get_by_role("textbox", name="Prompt")
        box.fill("<script>alert('x')</script><b>bold</b> <img src=x onerror=alert(2)>")
        box.press("Control+Enter")
        page.get_by_text("<b>bold</b>", exact=False).first.wait_for(timeout=120_000)
        _wait_idle(page)
        assert dialogs == []
        assert page.locator("b:text-is('bold')").count() == 0  # not rendered as HTML
        assert_no_error_elements(page)
    finally:
        page.close()


def test_classroom_mode_and_offline_export(server, browser, tmp_path):
    context = browser.new_context(viewport={"width": 1280, "height": 720}, accept_downloads=True)
    page = context.new_page()
    try:
        page.goto(f"{server.url}/moe", wait_until="domcontentloaded")
        page.wait_for_selector(".js-plotly-plot", timeout=240_000)
        _wait_idle(page)
        page.get_by_text("Classroom mode").click()
        _wait_idle(page)
        page.wait_for_selector(".js-plotly-plot", timeout=120_000)
        page.wait_for_timeout(1500)
        page.screenshot(path=str(ARTIFACTS / "moe-classroom-1280x720.png"))
        # figures now use 20 px text
        sizes = page.locator(".js-plotly-plot .xtick text").evaluate_all(
            "els => els.map(e => parseFloat(e.style.fontSize) || 0)"
        )
        assert sizes and max(sizes) >= 18
        from playwright.sync_api import TimeoutError as PlaywrightTimeout

        button = page.get_by_role("button", name="Download this view as a handout (HTML, works offline)")
        button.scroll_into_view_if_needed()
        _wait_idle(page)
        exported = tmp_path / "view.html"
        for attempt in range(3):  # a click that lands while the page reruns can be lost
            try:
                with page.expect_download(timeout=60_000) as download_info:
                    button.click()
                download_info.value.save_as(exported)
                break
            except PlaywrightTimeout:
                if attempt == 2:
                    raise
                _wait_idle(page)
        offline = browser.new_context(offline=True)
        view = offline.new_page()
        view.goto(exported.as_uri())
        view.wait_for_selector(".js-plotly-plot", timeout=60_000)
        assert view.locator(".js-plotly-plot").count() >= 3
        handout = view.content()
        for part in ("What the model read", "embedded:moe-tiny-austen", "Input", "How to read this", "Figure 1"):
            assert part in handout, part
        offline.close()
        assert_no_error_elements(page)
    finally:
        context.close()


def test_benchmark_client_runs_pages_like_a_browser(server):
    """The websocket client of `python -m benchmarks` gets a page's figures and no error."""
    from explorer.ui.served import run_page

    home = run_page(server.port, "")
    assert home.errors == [] and home.figures == 0
    moe = run_page(server.port, "moe", {"text": "The sea was calm and the wind was low."})
    assert moe.errors == []
    assert moe.figures >= 4 and 0 < moe.figure_bytes < moe.bytes_received < 3_000_000


def test_sampling_top_k_on_a_code_prompt_survives_eight_steps(server, browser):
    """Issue 11's crash: greedy off, top-k 5, seed 7 on 'def fibonacci(n):' broke the page on the second Step."""
    page = open_page(
        browser, f"{server.url}/decoder?text=def%20fibonacci(n)%3A", "Next-token distribution", "decoder-top-k"
    )
    try:
        page.get_by_text("Decoding rules").first.click()
        page.get_by_text("Greedy (always take the most likely token)").click()
        _wait_idle(page)
        for label, value in (("Top-k (0 = off)", "5"), ("Seed", "7")):
            box = page.get_by_label(label)
            box.fill(value)
            box.press("Enter")
            _wait_idle(page)
        for _ in range(8):
            before = _tokens_in_url(page)
            step = page.get_by_role("button", name="Step ▶")
            if step.is_disabled():  # the model ended its answer: nothing more to step
                break
            step.click()
            page.wait_for_function(
                f"() => (new URLSearchParams(window.location.search).get('tokens') || '').split(',').length > {before}",
                timeout=120_000,
            )
            _wait_idle(page)
            assert_no_error_elements(page)
        assert page.get_by_role("button", name="◀ Back").is_visible()
        page.screenshot(path=str(ARTIFACTS / "decoder-top-k-8-steps.png"), full_page=True)
    finally:
        page.close()


def test_decoder_play_animates_token_by_token(server, browser):
    """Play appends its tokens one per run, every figure following: sampled every 50 ms, the link's token
    count passes through intermediate lengths, and the button reads Pause while it plays."""
    page = open_page(browser, f"{server.url}/decoder", "Next-token distribution", "decoder-play")
    try:
        page.wait_for_function("() => window.location.search.includes('tokens=')", timeout=60_000)
        _wait_idle(page)
        before = _tokens_in_url(page)
        page.get_by_role("button", name="Play ▶▶ 10").click()
        seen, paused_label = set(), False
        for _ in range(1200):  # up to 60 s
            seen.add(_tokens_in_url(page))
            paused_label = paused_label or page.get_by_role("button", name="Pause ⏸").count() > 0
            if _tokens_in_url(page) >= before + 10:
                break
            page.wait_for_timeout(50)
        _wait_idle(page)
        assert _tokens_in_url(page) == before + 10
        assert len({n for n in seen if before < n < before + 10}) >= 3, sorted(seen)
        assert paused_label
        assert page.get_by_role("button", name="Play ▶▶ 10").count() == 1
        assert_no_error_elements(page)
    finally:
        page.close()

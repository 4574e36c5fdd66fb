"""The presenter tour in a real browser at 1280 x 720 (issue 21, item 2): Previous / Next are on screen
without scrolling the sidebar, and after every Next the figure the step narrates is on screen, scrolled
there inside Streamlit's own scrolling main area. Screenshots: test-artifacts/tour-<step>.png."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from explorer.ui.presenter import landing, tour

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
WIDTH, HEIGHT = 1280, 720

if not Path(CHROMIUM).exists():
    if os.environ.get("CI"):
        raise RuntimeError("CI must install Debian's chromium for the browser tests (apt-get install -y chromium)")
    pytest.skip("chromium is not installed (apt-get install -y chromium)", allow_module_level=True)

# Wholly on screen; a figure taller than the screen (the decoder's 30 bars are 820 px) starts near the top
# and fills the screen below.
ON_SCREEN = """(selector) => {
  const el = document.querySelector(selector);
  if (!el) return false;
  const r = el.getBoundingClientRect(), h = window.innerHeight;
  if (r.height === 0 || r.left < 0 || r.right > window.innerWidth) return false;
  return r.height <= h ? r.top >= 0 && r.bottom <= h : r.top >= 0 && r.top <= 100 && r.bottom >= h;
}"""
IDLE = "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')"


@pytest.fixture(scope="module")
def server():
    from explorer.ui.served import Server

    app = Server(ARTIFACTS / "streamlit-tour.log")
    try:
        app.wait_healthy()
        yield app
    finally:
        app.stop()


def _controls_on_screen(page) -> None:
    for name in ("◀ Previous", "Next ▶"):
        box = page.get_by_role("button", name=name).bounding_box()
        assert box is not None and 0 <= box["y"] and box["y"] + box["height"] <= HEIGHT, (name, box)


def test_every_next_brings_the_narrated_figure_on_screen(server):
    from playwright.sync_api import sync_playwright

    steps = tour()
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROME_ARGS)
        try:
            page = browser.new_page(viewport={"width": WIDTH, "height": HEIGHT})
            page.goto(server.url, wait_until="domcontentloaded")
            page.get_by_text("LLM architecture explorer").first.wait_for(timeout=240_000)
            page.get_by_text("Presenter tour").first.click()
            page.get_by_text(f"Step 1 of {len(steps)}").wait_for(timeout=60_000)
            _controls_on_screen(page)
            page.screenshot(path=str(ARTIFACTS / "tour-1.png"))
            for n, step in enumerate(steps[1:], start=2):
                page.get_by_role("button", name="Next ▶").click()
                page.get_by_text(f"Step {n} of {len(steps)}").wait_for(timeout=240_000)
                selector = f".st-key-{landing(step)}"
                page.wait_for_selector(selector, timeout=240_000)
                page.wait_for_function(IDLE, timeout=240_000)
                page.wait_for_function(ON_SCREEN, arg=selector, timeout=30_000)
                page.wait_for_timeout(1500)  # and it stays there once the page has settled
                page.screenshot(path=str(ARTIFACTS / f"tour-{n}.png"))
                assert page.evaluate(ON_SCREEN, selector), (step["title"], page.locator(selector).bounding_box())
                _controls_on_screen(page)
                assert page.locator("[data-testid='stException']").count() == 0, step["title"]
        finally:
            browser.close()

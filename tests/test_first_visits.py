"""A class opening a fresh server at once (issue 26): eight browsers open every page at the same
moment on a server process that has loaded nothing yet, five fresh processes in a row. Before the
build lock (explorer/locks.py) two first model builds interleaved transformers' process-global
patches and every later load in that process failed."""

from __future__ import annotations

import time

import pytest
from test_browser import ARTIFACTS, PAGES, assert_no_error_elements, browser  # noqa: F401 (fixture)

from explorer.ui.served import Server

FRESH_PROCESSES = 5


def _drawn(page, name: str, marker: str) -> None:
    page.get_by_text(marker).first.wait_for(timeout=300_000)
    if name != "home":
        page.wait_for_selector(".js-plotly-plot", timeout=300_000)
    page.wait_for_function("() => !document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=300_000)


@pytest.mark.parametrize("attempt", range(FRESH_PROCESSES))
def test_eight_visitors_open_every_page_of_a_fresh_server_at_once(browser, attempt):  # noqa: F811
    app = Server(ARTIFACTS / f"first-visits-{attempt}.log")
    contexts = []
    try:
        app.wait_healthy()
        tabs = []
        for name, (_path, marker) in PAGES.items():  # 8 pages: home, compare, gallery, the four families, experiments
            context = browser.new_context(viewport={"width": 1280, "height": 900})
            contexts.append(context)
            tabs.append((name, marker, context.new_page()))
        started = time.perf_counter()
        for name, _marker, page in tabs:  # each goto returns on the first byte: the scripts start together
            page.goto(f"{app.url}/{PAGES[name][0]}", wait_until="commit")
        for name, marker, page in tabs:
            _drawn(page, name, marker)
            assert_no_error_elements(page)
        print(f"process {attempt}: every page drawn {time.perf_counter() - started:.1f} s after the 8 opened")
        # and the process still loads for the next visitor (the old failure stayed for the process's life)
        late = contexts[0].new_page()
        late.goto(f"{app.url}/moe", wait_until="commit")
        _drawn(late, "moe", PAGES["moe"][1])
        assert_no_error_elements(late)
    finally:
        for context in contexts:
            context.close()
        app.stop()

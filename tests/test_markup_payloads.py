"""No string from a link or a text box is ever rendered as Markdown or HTML (issue 26): every URL
parameter each page declares, and each page's text box, carry link, image and HTML payloads; the
DOM afterwards holds no element they created, and the model-load error box shows the id as text."""

from __future__ import annotations

from urllib.parse import urlencode, urlparse

import pytest
from test_browser import ARTIFACTS, _wait_idle, browser, server  # noqa: F401 (fixtures)

from explorer.ui.navigation import views_by_url

EVIL = "evil.example"
PAYLOAD = (
    f"[Session expired: click](https://{EVIL}/login) ![x](https://{EVIL}/beacon.png) "
    f"<img src=https://{EVIL}/i.png data-injected=1><a href=https://{EVIL}/a data-injected=1>a</a> "
    f"https://{EVIL}/bare :red[red] **bold** $x^2$"
)
MODEL_PAYLOAD = f"[Session expired: click](https://{EVIL}/login) ![x](http://{EVIL}/b.png)"  # a model id box takes 200
INJECTED = (
    f"a[href*='{EVIL}'], img[src*='{EVIL}'], [src*='{EVIL}'], [data-injected], "
    f"iframe[src*='{EVIL}'], link[href*='{EVIL}']"
)
VIEWS = views_by_url()


def _fetched_from_evil(requests: list[str]) -> list[str]:
    return [r for r in requests if (urlparse(r).hostname or "").endswith(EVIL)]


def _watch(page) -> None:
    """Check the DOM every 100 ms while the page runs: a spinner or progress text quoting the input is
    gone by the end."""
    page.evaluate(
        f"""() => {{ window.__injected = []; setInterval(() => {{
            for (const e of document.querySelectorAll({INJECTED!r})) window.__injected.push(e.outerHTML.slice(0, 200));
        }}, 100); }}"""
    )


def _injected(page) -> list[str]:
    now = page.evaluate(f"() => [...document.querySelectorAll({INJECTED!r})].map(e => e.outerHTML.slice(0, 200))")
    return now + page.evaluate("() => window.__injected || []")


def _settle(page) -> None:
    """The page has drawn its title and finished running (the spinner quoting the model id included)."""
    page.wait_for_selector("[data-testid='stMain'] h1", timeout=240_000)
    page.wait_for_function(  # a first visit shows the page's title while its libraries load
        "() => !document.body.innerText.includes('Loading the model libraries')", timeout=240_000
    )
    page.wait_for_timeout(1000)
    _wait_idle(page)
    page.wait_for_timeout(1000)
    _wait_idle(page)


@pytest.mark.parametrize("url", sorted(VIEWS))
def test_every_link_parameter_is_text(server, browser, url):  # noqa: F811
    view = VIEWS[url]
    query = {param: MODEL_PAYLOAD if param == "model" else PAYLOAD for param in view.keys}
    requests = []
    context = browser.new_context(viewport={"width": 1280, "height": 2400})
    page = context.new_page()
    page.on("request", lambda request: requests.append(request.url))
    try:
        page.goto(f"{server.url}/{url}?{urlencode(query)}", wait_until="domcontentloaded")
        _watch(page)
        _settle(page)
        page.screenshot(path=str(ARTIFACTS / f"markup-link-{url}.png"))
        assert _injected(page) == []
        assert _fetched_from_evil(requests) == []  # no beacon fetched
        assert page.locator("[data-testid='stException']").count() == 0
        if "model" in view.keys:  # the refused id is quoted in the error box, literally
            assert page.get_by_text("[Session expired: click](https", exact=False).count() >= 1
    finally:
        context.close()


@pytest.mark.parametrize("url", sorted(u for u, v in VIEWS.items() if v.text_key))
def test_every_text_box_is_text(server, browser, url):  # noqa: F811
    context = browser.new_context(viewport={"width": 1280, "height": 2400})
    page = context.new_page()
    requests = []
    page.on("request", lambda request: requests.append(request.url))
    try:
        page.goto(f"{server.url}/{url}", wait_until="domcontentloaded")
        _settle(page)
        box = page.locator("textarea").first
        _watch(page)
        box.fill(PAYLOAD)
        box.press("Control+Enter")
        _settle(page)
        page.screenshot(path=str(ARTIFACTS / f"markup-text-{url}.png"))
        assert _injected(page) == []
        assert _fetched_from_evil(requests) == []
        assert page.locator("[data-testid='stException']").count() == 0
    finally:
        context.close()

"""Projector-first Classroom mode (issue 21), measured in a real browser at the two projector sizes:
the top of each page's main figure is visible without scrolling, every text a figure draws is at
least 18 px and 4.5:1 against white (WCAG AA), typed text at least 24 px, no label is cut off, and
the mode survives a reload and a shared link (?classroom=1)."""

from __future__ import annotations

import pytest
from test_browser import ARTIFACTS, _wait_idle, assert_no_error_elements, browser, server  # noqa: F401 (fixtures)

SIZES = [(1280, 720), (1920, 1080)]
PAGES = ["encoder", "decoder", "encoder-decoder", "moe", "experiments", "compare", "gallery"]
MEASURE = """() => {
  const lum = c => { const m = c.match(/\\d+(\\.\\d+)?/g).map(Number);
    const f = v => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
    return 0.2126 * f(m[0]) + 0.7152 * f(m[1]) + 0.0722 * f(m[2]); };
  const plot = document.querySelector('.js-plotly-plot');
  // heatmap cell labels sit on their cell's colour, which Plotly contrasts itself; all other text is on white
  const texts = [...document.querySelectorAll('.js-plotly-plot svg text, .js-plotly-plot svg tspan')]
    .filter(t => t.textContent.trim() && t.getBoundingClientRect().width > 0 && !t.closest('.heatmap-label'));
  // Plotly shrinks a bar label that does not fit with a scale() transform on the text: count the drawn size
  const scale = t => {
    const m = (t.getAttribute('transform') || '').match(/scale\\(([\\d.]+)/);
    return m ? parseFloat(m[1]) : 1; };
  const sizes = texts.map(t => parseFloat(getComputedStyle(t).fontSize) * scale(t));
  const contrast = texts.map(t => [t.textContent.slice(0, 30), 1.05 / (lum(getComputedStyle(t).fill) + 0.05)]);
  const cut = [...document.querySelectorAll('[data-testid="stSidebarNavLink"] span, [data-testid="stSidebar"] label p, '
    + 'button p, [data-testid="stWidgetLabel"] p, [data-testid="stMetricLabel"] p')]
    .filter(e => !/^[a-z_]+$/.test(e.textContent.trim()) && e.scrollWidth > e.clientWidth + 1)
    .map(e => e.textContent.slice(0, 40));
  const area = document.querySelector('textarea');
  return {top: plot ? plot.getBoundingClientRect().top : null, smallest: Math.min(...sizes),
          dim: contrast.filter(c => c[1] < 4.5), cut, typed: area ? parseFloat(getComputedStyle(area).fontSize) : null};
}"""


def _open(browser, url: str, width: int, height: int):  # noqa: F811
    context = browser.new_context(viewport={"width": width, "height": height})
    page = context.new_page()
    page.goto(url, wait_until="domcontentloaded")
    page.wait_for_selector(".js-plotly-plot", timeout=240_000)
    _wait_idle(page)
    page.wait_for_timeout(1500)  # figures finish their layout
    return context, page


@pytest.mark.parametrize("width,height", SIZES)
@pytest.mark.parametrize("name", PAGES)
def test_a_projector_sees_the_main_figure_in_classroom_mode(server, browser, name, width, height):  # noqa: F811
    context, page = _open(browser, f"{server.url}/{name}?classroom=1", width, height)  # experiments: sink removal
    try:
        measured = page.evaluate(MEASURE)
        page.screenshot(path=str(ARTIFACTS / f"classroom-{name}-{width}x{height}.png"))
        print(name, width, height, measured)
        assert measured["top"] is not None and measured["top"] < height - 150, measured  # its top and title show
        assert measured["smallest"] >= 18, measured
        assert measured["dim"] == [], measured
        assert measured["cut"] == [], measured
        assert measured["typed"] is None or measured["typed"] >= 24, measured
        assert_no_error_elements(page)
    finally:
        context.close()


def test_classroom_mode_survives_a_reload_and_a_link(server, browser):  # noqa: F811
    context, page = _open(browser, f"{server.url}/decoder", 1280, 720)
    try:
        page.get_by_text("Classroom mode").click()
        page.wait_for_function("() => window.location.search.includes('classroom=1')", timeout=60_000)
        page.reload(wait_until="domcontentloaded")
        page.wait_for_selector(".js-plotly-plot", timeout=240_000)
        _wait_idle(page)
        assert page.get_by_role("switch", name="Classroom mode").is_checked()
        shared = page.url
    finally:
        context.close()
    context, page = _open(browser, shared, 1280, 720)  # a fresh browser on the copied link
    try:
        assert page.get_by_role("switch", name="Classroom mode").is_checked()
        assert page.evaluate(MEASURE)["smallest"] >= 18
    finally:
        context.close()

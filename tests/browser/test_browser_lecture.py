"""In front of a class, in a real browser: every page at a projector's 1024x768 in English and in Chinese with no
metric value cut and no chart titles overlapping; Training's Start/Stop and live curves above the fold at
1280x720; the keys S and X start and stop training, N turns the page; no display formula is cut. Screenshots go to artifacts/screenshots/projector-*.png.
"""
import re

import pytest
from playwright.sync_api import expect

import st_browser as sb

PROJECTOR = {"width": 1024, "height": 768}
SMALL_PROJECTOR = {"width": 1280, "height": 720}

# Overflow of each metric value (and of what is inside it): scrollWidth beyond clientWidth means a cut value.
CUT_METRICS = """() => [...document.querySelectorAll("[data-testid='stMetricValue']")].flatMap(el =>
  [el, ...el.querySelectorAll('*')].filter(e => e.clientWidth > 0 && e.scrollWidth > e.clientWidth + 1)
    .map(e => `${el.innerText.trim()} (${e.scrollWidth} > ${e.clientWidth} px)`))"""

# Display formulas wider than the space they are given (KaTeX scrolls them: the right end is cut). KaTeX's
# struts stick out a pixel or two past the last glyph even where nothing is cut: 4 px of slack.
CLIPPED_FORMULAS = """() => [...document.querySelectorAll('.katex-display')]
  .filter(e => e.clientWidth > 0 && e.scrollWidth > e.clientWidth + 4)
  .map(e => `${e.textContent.slice(0, 40)} (${e.scrollWidth} > ${e.clientWidth} px)`)"""

# Pairs of title boxes that intersect inside one plotly chart: the figure title, axis titles and the text
# annotations used as panel titles and labels.
OVERLAPPING_TITLES = """() => {
  const out = [];
  for (const gd of document.querySelectorAll('.js-plotly-plot')) {
    const boxes = [...gd.querySelectorAll('.gtitle, .xtitle, .ytitle, .x2title, .y2title, .annotation-text')]
      .filter(e => e.textContent.trim()).map(e => [e.textContent.trim(), e.getBoundingClientRect()])
      .filter(([, r]) => r.width > 0 && r.height > 0);
    for (let i = 0; i < boxes.length; i++) for (let j = i + 1; j < boxes.length; j++) {
      const [a, r] = boxes[i], [b, s] = boxes[j];
      if (r.left < s.right - 1 && s.left < r.right - 1 && r.top < s.bottom - 1 && s.top < r.bottom - 1) out.push(`${a} / ${b}`);
    }
  }
  return out;
}"""


@pytest.fixture(scope="module")
def projector(browser):
    context = browser.new_context(viewport=PROJECTOR)
    yield context
    context.close()


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_every_page_is_readable_on_a_projector(projector, app_url, lang):
    """Home, then each page in turn by the key N (one session, as a lecturer walks through the lesson)."""
    tab = projector.new_page()
    tab.js_errors = []
    tab.on("pageerror", lambda err: tab.js_errors.append(str(err)))
    try:
        offset = sb.log_size()
        sb.open_page(tab, app_url, "", {"lang": lang})
        for i, (path, name) in enumerate(sb.PAGES.items()):
            if i:
                tab.locator("body").press("n")  # the next page
                tab.wait_for_url(re.compile(rf"/{path}(\?|$)"), timeout=30_000)
                sb.wait_for_app_run(tab)
            if path:
                expect(tab.locator(sb.PLOTLY).first, f"/{path}: no chart").to_be_visible(timeout=20_000)
            tab.wait_for_timeout(300)  # plotly lays out its annotations after the first paint
            sb.settle_frames(tab)
            sb.SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            tab.screenshot(path=str(sb.SCREENSHOTS / f"projector-{lang}-{name}.png"))
            assert tab.evaluate(CUT_METRICS) == [], f"/{path}?lang={lang}: metric values cut"
            assert tab.evaluate(OVERLAPPING_TITLES) == [], f"/{path}?lang={lang}: chart titles overlap"
            assert tab.evaluate(CLIPPED_FORMULAS) == [], f"/{path}?lang={lang}: formulas cut"
            sb.assert_clean(tab, offset)
    finally:
        tab.close()


def test_training_controls_and_live_curves_are_above_the_fold_at_1280x720(browser, app_url):
    context = browser.new_context(viewport=SMALL_PROJECTOR)
    try:
        tab = context.new_page()
        sb.open_page(tab, app_url, "training")
        chart = tab.locator(sb.PLOTLY).first
        expect(chart).to_be_visible(timeout=20_000)
        tab.screenshot(path=str(sb.SCREENSHOTS / "projector-training-1280x720.png"))
        for name in ("Start", "Stop"):
            box = tab.get_by_role("button", name=re.compile(f"^{name}")).first.bounding_box()
            assert box and box["y"] + box["height"] <= SMALL_PROJECTOR["height"], f"{name} below the fold: {box}"
        box = chart.bounding_box()
        # the curves' plotting area starts under the chart's titles: half the chart in view shows them
        assert box["y"] + box["height"] / 2 <= SMALL_PROJECTOR["height"], f"live curves below the fold: {box}"
    finally:
        context.close()


def test_keys_s_and_x_start_and_stop_training(page, app_url):
    offset = sb.log_size()
    sb.open_page(page, app_url, "training", {"hidden": 16, "batch": 4, "steps": 8, "epochs": 10_000})
    stop = page.get_by_role("button", name=re.compile("^Stop"))
    expect(stop).to_be_disabled(timeout=30_000)
    page.locator("body").press("s")
    expect(stop).to_be_enabled(timeout=20_000)  # a run trains
    page.locator("body").press("x")
    expect(stop).to_be_disabled(timeout=20_000)  # and stopped
    sb.assert_clean(page, offset)

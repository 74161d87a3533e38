"""In front of a class, in a real browser: every page at a projector's 1024x768 in English and in Chinese with no
metric value cut and no chart titles overlapping; Training's Start/Stop and live curves above the fold at
1280x720, idle and while a run trains, in both languages; the keys S and X start and stop training, P and N turn
the page; no display formula is cut. Screenshots go to artifacts/screenshots/projector-*.png.
"""
import re

import pytest
from playwright.sync_api import expect

from tests.browser import st_browser as sb
from dashboard.i18n import t

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
                sb.press_shortcut(tab, "n")  # the next page
                tab.wait_for_url(re.compile(rf"/{path}(\?|$)"), timeout=sb.APP_TIMEOUT_MS)
                sb.wait_for_app_run(tab)
            if path:
                expect(tab.locator(sb.PLOTLY).first, f"/{path}: no chart").to_be_visible()
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


def assert_above_the_fold(tab, lang: str, state: str) -> None:
    """Start, Stop and the live curves in the first screen at 1280x720, the page not scrolled."""
    chart = tab.locator(sb.PLOTLY).first
    expect(chart).to_be_visible()
    sb.settle_frames(tab)
    tab.screenshot(path=str(sb.SCREENSHOTS / f"projector-training-{state}-{lang}-1280x720.png"))
    assert tab.evaluate("() => window.scrollY + (document.querySelector('[data-testid=stMain]')?.scrollTop || 0)") == 0
    for key in ("training.start", "training.stop"):
        box = tab.get_by_role("button", name=re.compile(f"^{t(key, lang)}")).first.bounding_box()
        assert box and box["y"] + box["height"] <= SMALL_PROJECTOR["height"], f"{state}: {key} below the fold: {box}"
    expect(chart).to_be_visible()  # a live redraw may be replacing it: wait until it is drawn again
    box = chart.bounding_box()
    # the curves' plotting area starts under the chart's titles: half the chart in view shows them
    assert box["y"] + box["height"] / 2 <= SMALL_PROJECTOR["height"], f"{state}: live curves below the fold: {box}"


def heading(tab) -> str:
    return tab.locator("h1").first.inner_text(timeout=sb.APP_TIMEOUT_MS)


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_training_controls_and_live_curves_stay_above_the_fold_at_1280x720_and_p_n_turn_pages(browser, app_url,
                                                                                                lang):
    """Idle, then training (key S): the controls and curves in view; then X stops it, and P opens the page
    before and N comes back (each by its URL and its title)."""
    context = browser.new_context(viewport=SMALL_PROJECTOR)
    try:
        tab = context.new_page()
        tab.js_errors = []
        tab.on("pageerror", lambda err: tab.js_errors.append(str(err)))
        offset = sb.log_size()
        sb.open_page(tab, app_url, "training", {"lang": lang, "hidden": 16, "batch": 4, "steps": 8,
                                                "epochs": 10_000})
        sb.SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        assert_above_the_fold(tab, lang, "idle")
        stop = tab.get_by_role("button", name=re.compile(f"^{t('training.stop', lang)}"))
        expect(stop).to_be_disabled()  # nothing trains yet
        sb.press_shortcut(tab, "s")
        expect(stop).to_be_enabled()  # a run trains: its curves are redrawn live
        expect(tab.locator("[data-testid='stProgress']").first).to_be_visible()
        assert_above_the_fold(tab, lang, "running")
        sb.press_shortcut(tab, "x")
        expect(stop).to_be_disabled()  # and stopped
        if lang == "zh":  # the keys that turn pages do not depend on the language: checked once
            sb.assert_clean(tab, offset)
            return
        sb.press_shortcut(tab, "p")  # the page before Training
        tab.wait_for_url(re.compile(r"/identity(\?|$)"), timeout=sb.APP_TIMEOUT_MS)
        sb.wait_for_app_run(tab)
        assert heading(tab).startswith(t("identity.title", lang))
        sb.press_shortcut(tab, "n")  # and back
        tab.wait_for_url(re.compile(r"/training(\?|$)"), timeout=sb.APP_TIMEOUT_MS)
        sb.wait_for_app_run(tab)
        assert heading(tab).startswith(t("training.title", lang))
        sb.assert_clean(tab, offset)
    finally:
        context.close()

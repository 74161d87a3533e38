"""In front of a class, in a real browser: Training's Start/Stop and live curves above the fold at 1280x720, idle
and while a run trains, in both languages; the keys S and X start and stop training, P and N turn the page.
Screenshots go to artifacts/screenshots/projector-*.png. (Every page at 1024x768 in lab and lecture mode, both
languages: test_browser_projector.py.)
"""
import re

import pytest
from playwright.sync_api import expect

from tests.browser import st_browser as sb
from dashboard.i18n import t

SMALL_PROJECTOR = {"width": 1280, "height": 720}


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

"""Metric labels at a projector's 1024x768: none is cut to "…" on Home, Data and the concat identity, in English
and Chinese, in lab and lecture mode (the full sentence of a short label is in its help)."""
import pytest

from tests.browser import st_browser as sb

PROJECTOR = {"width": 1024, "height": 768}

# Each metric label whose text (or a part of it) is wider than its box: scrollWidth beyond clientWidth.
CUT_LABELS = """() => [...document.querySelectorAll("[data-testid='stMetricLabel']")].flatMap(el =>
  [el, ...el.querySelectorAll('*')].filter(e => e.clientWidth > 0 && e.scrollWidth > e.clientWidth + 1)
    .map(e => `${el.innerText.trim()} (${e.scrollWidth} > ${e.clientWidth} px)`))"""


@pytest.fixture(scope="module")
def projector(browser):
    context = browser.new_context(viewport=PROJECTOR)
    yield context
    context.close()


@pytest.mark.parametrize("mode", ["lab", "lecture"])
@pytest.mark.parametrize("lang", ["en", "zh"])
def test_no_metric_label_is_cut_on_a_projector(projector, app_url, lang, mode):
    tab = sb.new_tab(projector)
    try:
        offset = sb.log_size()
        for path, metrics in (("", 1), ("data", 4), ("identity", 2)):
            sb.open_page(tab, app_url, path, {"lang": lang, "mode": mode})
            labels = tab.locator("[data-testid='stMetricLabel']")
            labels.nth(metrics - 1).wait_for(state="visible", timeout=sb.APP_TIMEOUT_MS)
            sb.settle_frames(tab)
            assert labels.count() == metrics, path
            cut = tab.evaluate(CUT_LABELS)
            assert not cut, f"/{path}?lang={lang}&mode={mode}: {cut}"
        sb.assert_clean(tab, offset)
    finally:
        tab.close()

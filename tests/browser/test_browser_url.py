"""The address bar in a real browser: the language stays in it when it is the browser's own (a link copied from it
opens in that language on any browser), and a page turn leaves the last page's own parameters behind."""
import re
from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.sync_api import expect

from tests.browser import st_browser as sb


def query(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


@pytest.mark.parametrize("locale,lang", [("en-US", "en"), ("zh-CN", "zh")])
def test_the_language_stays_in_the_address_and_a_page_turn_drops_the_last_pages_parameters(browser, app_url,
                                                                                           locale, lang):
    context = browser.new_context(viewport=sb.VIEWPORT, locale=locale)  # the browser's language is the link's
    try:
        tab = sb.new_tab(context)
        offset = sb.log_size()
        sb.open_page(tab, app_url, "shapes", {"lang": lang, "shapes_row": 3})
        expect(tab.locator("h1").first).to_contain_text("2 · ", timeout=sb.APP_TIMEOUT_MS)
        assert query(tab.url).get("lang") == lang and query(tab.url).get("shapes_row") == "3", tab.url
        sb.press_shortcut(tab, "P")  # the previous page: Data
        expect(tab).to_have_url(re.compile(r"/data\b"), timeout=sb.APP_TIMEOUT_MS)
        expect(tab.locator("h1").first).to_contain_text("1 · ", timeout=sb.APP_TIMEOUT_MS)
        sb.wait_for_app_run(tab)
        assert query(tab.url).get("lang") == lang and "shapes_row" not in query(tab.url), tab.url
        tab.locator("[data-testid='stSidebarNav'] a[href$='/identity']").first.click()  # the navigation's link
        expect(tab).to_have_url(re.compile(r"/identity\b"), timeout=sb.APP_TIMEOUT_MS)
        expect(tab.locator("h1").first).to_contain_text("4 · ", timeout=sb.APP_TIMEOUT_MS)
        sb.wait_for_app_run(tab)
        expect(tab).to_have_url(re.compile(rf"[?&]lang={lang}\b"), timeout=sb.APP_TIMEOUT_MS)
        assert "shapes_row" not in query(tab.url), tab.url
        sb.assert_clean(tab, offset)
    finally:
        context.close()

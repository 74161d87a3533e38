"""Every page in a real browser: it renders, draws its plotly chart, shows no exception; screenshots."""
import re

import pytest
from playwright.sync_api import expect

import st_browser as sb


def assert_clean(page, log_offset: int) -> None:
    """No exception box, no traceback on the page or in the server log, no uncaught JavaScript error."""
    exceptions = page.locator(sb.EXCEPTION)
    assert exceptions.count() == 0, f"stException on {page.url}: {exceptions.first.inner_text()!r}"
    body = page.inner_text("body")
    assert "Traceback" not in body, f"traceback text on {page.url}"
    assert "Traceback" not in sb.log_since(log_offset), f"server traceback for {page.url}:\n{sb.log_tail()}"
    assert not page.js_errors, f"uncaught JavaScript errors on {page.url}: {page.js_errors}"


@pytest.mark.parametrize("path", list(sb.PAGES), ids=list(sb.PAGES.values()))
def test_page_renders(page, app_url, path):
    offset = sb.log_size()
    sb.open_page(page, app_url, path)
    if path:
        chart = page.locator(sb.PLOTLY).first
        # the plotly chunk loads lazily: the chart may be drawn a moment after the run ends
        expect(chart, f"no plotly chart on /{path}").to_be_visible(timeout=20_000)
        expect(chart.locator(".main-svg").first).to_be_attached()
        sb.settle_frames(page)
    else:
        # Home: a link per lesson page (sidebar navigation or the lesson map)
        for target in (p for p in sb.PAGES if p):
            links = page.locator(f"a[href$='/{target}']")
            assert links.count() > 0, f"Home has no link to /{target}"
    sb.SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(sb.SCREENSHOTS / f"{sb.PAGES[path]}.png"))
    assert_clean(page, offset)


def test_query_params_set_sliders(page, app_url):
    """A copied link reopens the same demo: the sliders take the URL's values, and a change goes back to the URL."""
    wanted = {"batch": 8, "steps": 10, "hidden": 64}
    offset = sb.log_size()
    sb.open_page(page, app_url, "shapes", wanted)
    for key, value in wanted.items():
        slider = sb.sidebar_slider(page, sb.SLIDER_LABELS[key])
        expect(slider, f"no sidebar slider labelled like {sb.SLIDER_LABELS[key].pattern!r}").to_be_visible()
        assert sb.slider_value(slider) == str(value), f"{key} slider holds {sb.slider_value(slider)}, URL says {value}"
        shown = slider.get_by_test_id("stSliderThumbValue").inner_text().strip()
        assert shown == str(value), f"{key} slider shows {shown!r}, URL says {value}"
    assert_clean(page, offset)

    # the other direction: moving a slider rewrites the URL
    thumb = sb.slider_thumb(sb.sidebar_slider(page, sb.SLIDER_LABELS["hidden"]))
    sb.timed_rerun(page, lambda: (thumb.focus(), thumb.press("ArrowRight")))
    new_value = thumb.input_value()
    assert new_value != "64"
    expect(page).to_have_url(re.compile(rf"[?&]hidden={new_value}(&|$)"))

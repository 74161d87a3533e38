"""Two browsers on one server: A starts a run; B opens A's ?run= link and sees it read only, with no Stop
button (X does nothing there either), and A's run trains on; A stops it."""
import re

from playwright.sync_api import expect

from tests.browser import st_browser as sb

# a tiny model with many epochs: the run is still training while B looks at it
SETTINGS = {"hidden": 16, "epochs": 2000, "batch": 4, "steps": 5}
PROGRESS = re.compile(r"Epoch (\d+) of 2000")


def _button(page, name: str):
    return page.get_by_role("button", name=re.compile(rf"^\W*{name}\b", re.I))


def _epoch(page) -> int:
    """The epoch the Training page's progress bar names (-1 before it names one)."""
    bar = page.locator("[data-testid='stProgress']").first
    found = PROGRESS.search(bar.inner_text()) if bar.count() else None
    return int(found.group(1)) if found else -1


def _wait_for_epoch_above(page, epoch: int, what: str) -> int:
    """Wait (on the page's own redraws) until its progress bar names an epoch above ``epoch``; that epoch."""
    bar = "[data-testid='stProgress']"
    page.wait_for_function(  # the page's state, polled in the browser; a TimeoutError names ``what``
        """([bar, epoch]) => { const el = document.querySelector(bar); const m = el && el.innerText.match(/(\\d+)/);
                               return m !== null && Number(m[1]) > epoch; }""",
        arg=[bar, epoch], timeout=sb.APP_TIMEOUT_MS)
    now = _epoch(page)
    assert now > epoch, f"{what}: still at epoch {now}"
    return now


def test_another_browser_sees_the_run_read_only_and_cannot_stop_it(browser, app_url):
    contexts = [browser.new_context(viewport=sb.VIEWPORT) for _ in range(2)]  # two browsers: no shared state
    try:
        a, b = (sb.new_tab(c) for c in contexts)
        offset = sb.log_size()
        sb.open_page(a, app_url, "training", SETTINGS)
        start = _button(a, "start").first
        expect(start).to_be_enabled()
        start.click()
        expect(a).to_have_url(re.compile(r"[?&]run=[A-Za-z0-9_-]{3,40}"))
        run_id = re.search(r"[?&]run=([A-Za-z0-9_-]+)", a.url).group(1)
        expect(_button(a, "stop").first).to_be_enabled()  # A's own run: A has Stop
        seen = _wait_for_epoch_above(a, 0, "A's run did not start")

        sb.open_page(b, app_url, "training", {**SETTINGS, "run": run_id})  # A's link, in another browser
        expect(b.get_by_text("A shared run, read only.", exact=False).first).to_be_visible()
        expect(b.get_by_text(run_id, exact=False).first).to_be_visible()
        expect(_button(b, "train my own copy").first).to_be_visible()
        assert _button(b, "stop").count() == 0, "B is offered Stop for A's run"
        b.locator("body").press("x")  # Stop's key: no Stop button, nothing to press
        sb.wait_for_app_run(b)
        sb.assert_clean(b, offset)

        seen = _wait_for_epoch_above(a, seen, "A's run stopped training after B opened it")
        _wait_for_epoch_above(b, 0, "B does not watch A's run")
        expect(_button(a, "stop").first).to_be_enabled()  # still A's, still running
        _button(a, "stop").first.click()
        expect(_button(a, "stop").first).to_be_disabled()  # the owner stops it
        sb.assert_clean(a, offset)
    finally:
        for context in contexts:
            context.close()

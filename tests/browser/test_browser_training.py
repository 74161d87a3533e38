"""A short training run in the browser: Start, the live curve grows, Stop ends it, Inside uses the model."""
import re
import time

from playwright.sync_api import expect

from tests.browser import st_browser as sb

# a tiny model for many epochs: the run is still going when Stop is pressed (500 epochs of it can end within
# one 2 s redraw, before the curve could be seen to grow twice)
SETTINGS = {"hidden": 16, "epochs": 10_000, "batch": 32, "steps": 35}
SHOWN_EPOCHS = 10  # epochs on the curve before Stop, for a readable screenshot


def _sample(page):
    """(time, plotly points on the page, progress bar value)."""
    return time.perf_counter(), sb.plotly_points(page), sb.progress_value(page)


def _button(page, name: str):
    return page.get_by_role("button", name=re.compile(rf"^\W*{name}\b", re.I)).first


def test_training_curve_grows_and_stops(page, app_url):
    offset = sb.log_size()
    sb.SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    sb.open_page(page, app_url, "training", SETTINGS)
    start, stop = _button(page, "start"), _button(page, "stop")
    expect(start, "no enabled Start button on /training").to_be_enabled()
    start.click()
    t_start = time.perf_counter()

    # the live chart: its points (or the progress bar) must increase at least twice; for a readable
    # screenshot, watch until SHOWN_EPOCHS are done
    samples, growths = [_sample(page)], []
    deadline = t_start + sb.APP_TIMEOUT_MS / 1000
    while time.perf_counter() < deadline:
        page.wait_for_timeout(100)
        samples.append(_sample(page))
        (_, p0, g0), (t1, p1, g1) = samples[-2], samples[-1]
        if p1 > p0 or (g1 is not None and g0 is not None and g1 > g0):
            growths.append(t1)
        if (g1 or 0) >= 100 or (len(growths) >= 3 and (g1 or 0) >= 100 * SHOWN_EPOCHS / SETTINGS["epochs"]):
            break
    sb.assert_clean(page, offset)
    assert len(growths) >= 2, (
        f"the live curve did not grow twice in {time.perf_counter() - t_start:.0f} s; last (s, points, progress) "
        f"samples: {[(round(t - t_start, 1), p, g) for t, p, g in samples][-8:]}")
    gaps = [b - a for a, b in zip(growths, growths[1:])]
    result = sb.TIMINGS["training"] = {
        "settings": SETTINGS, "first_update_s": round(growths[0] - t_start, 2),
        "update_gaps_s": [round(g, 2) for g in gaps],
        "detail": f"first curve update {growths[0] - t_start:.2f} s after Start, then every <= {max(gaps):.2f} s"}

    # Stop: must be clickable while training; once it has taken effect (Stop disabled: nothing trains),
    # nothing may grow any more
    if (samples[-1][2] or 0) < 100:
        expect(stop, "Stop is still disabled while the curve grows (Start/Stop not redrawn after Start)"
               ).to_be_enabled()
        stop.click()
        t_stop = time.perf_counter()
        expect(stop, "Stop stays enabled after it was pressed").to_be_disabled()
        result["stop_latency_s"] = round(time.perf_counter() - t_stop, 2)
        sb.wait_for_app_run(page)
        stopped = _sample(page)
        page.wait_for_timeout(3000)  # longer than the live view's redraw interval: a growing curve would show
        sb.wait_for_app_run(page)
        assert _sample(page)[1:] == stopped[1:], "the curve still grows after Stop took effect"
        result["detail"] += f"; Stop took effect (buttons redrawn) {result['stop_latency_s']:.2f} s after the click"
    else:
        result["detail"] += "; the run finished before Stop"
    sb.assert_clean(page, offset)
    sb.wait_for_app_run(page)  # idle: no element greyed out as stale
    sb.scroll_to(page.locator(sb.PLOTLY).first)
    sb.settle_frames(page)
    page.screenshot(path=str(sb.SCREENSHOTS / "training.png"))

    # the trained model stays in the session: Inside (reached in-app, same session) uses it
    offset = sb.log_size()
    link = page.locator("[data-testid='stSidebarNav'] a[href$='/inside']")
    sb.timed_rerun(page, link.click)
    expect(page).to_have_url(re.compile(r"/inside"))
    sb.assert_clean(page, offset)
    chart = page.locator(sb.PLOTLY).first
    expect(chart, "no plotly chart on /inside after training").to_be_visible()
    assert "UNTRAINED" not in page.inner_text("body"), "Inside shows the untrained model after a training run"
    sb.scroll_to(chart)
    sb.settle_frames(page)
    page.screenshot(path=str(sb.SCREENSHOTS / "inside-trained.png"))

"""A short training run in the browser: Start, the live curve grows, Stop ends it."""
import re
import time

from playwright.sync_api import expect

import st_browser as sb

SETTINGS = {"hidden": 16, "epochs": 20, "batch": 32, "steps": 35, "lr": 1}


def _sample(page):
    return time.perf_counter(), sb.plotly_points(page), sb.progress_value(page)


def test_training_curve_grows_and_stops(page, app_url):
    offset = sb.log_size()
    sb.open_page(page, app_url, "training", SETTINGS)
    page.get_by_role("button", name=re.compile(r"^\W*start\b", re.I)).first.click()
    t_start = time.perf_counter()

    # watch the chart: points (or the progress bar) must increase at least twice
    samples = [_sample(page)]
    growths = []
    deadline = t_start + 60
    while len(growths) < 3 and time.perf_counter() < deadline:
        page.wait_for_timeout(200)
        samples.append(_sample(page))
        (_, p0, g0), (t1, p1, g1) = samples[-2], samples[-1]
        if p1 > p0 or (g1 is not None and g0 is not None and g1 > g0):
            growths.append(t1)
        if g1 is not None and g1 >= 100:
            break
    assert page.locator(sb.EXCEPTION).count() == 0, page.locator(sb.EXCEPTION).first.inner_text()
    assert len(growths) >= 2, (f"the live curve did not grow twice in {deadline - t_start:.0f} s: "
                               f"(s, points, progress) samples {[(round(t - t_start, 1), p, g) for t, p, g in samples][-8:]}")

    # Stop: nothing may grow after it has taken effect
    stop = page.get_by_role("button", name=re.compile(r"^\W*stop\b", re.I)).first
    stop_latency = None
    finished = (samples[-1][2] or 0) >= 100
    if not finished:
        stop.click()
        t_stop = time.perf_counter()
        last = _sample(page)
        while time.perf_counter() < t_stop + 4:
            page.wait_for_timeout(200)
            now = _sample(page)
            if now[1:] != last[1:]:
                stop_latency = now[0] - t_stop
            last = now
        settled = _sample(page)
        page.wait_for_timeout(1500)
        assert _sample(page)[1:] == settled[1:], "the curve still grows 4 s after Stop"
    gaps = [b - a for a, b in zip(growths, growths[1:])]
    sb.TIMINGS["training"] = {
        "settings": SETTINGS, "first_update_s": round(growths[0] - t_start, 2),
        "update_gaps_s": [round(g, 2) for g in gaps], "stop_latency_s": stop_latency and round(stop_latency, 2),
        "detail": (f"first curve update {growths[0] - t_start:.2f} s after Start; updates every "
                   f"{max(gaps):.2f} s at most; "
                   + ("run finished before Stop" if finished else
                      f"last change {stop_latency or 0:.2f} s after Stop"))}
    assert page.locator(sb.EXCEPTION).count() == 0
    assert "Traceback" not in sb.log_since(offset), sb.log_tail()
    assert not page.js_errors, page.js_errors

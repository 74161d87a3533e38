"""Browser fixtures: one `streamlit run` on a free port and one headless Debian Chromium for the session.

Without Chromium or Playwright the suite is skipped locally and FAILS in CI (CI=true): CI must not
silently skip. Timings are measurements: written to artifacts/browser_timings.json and printed at the
end, never asserted.
"""
from __future__ import annotations

import json
import os
import time

import pytest

from tests.browser import st_browser as sb


# The Exercises page's pairs at small sizes (dashboard.exercises.Sizes): a pair trains to its end in seconds, so
# the browser test sees the whole page (curves, "Both runs finished", the answer) without minutes of training.
SERVER_ENV = {"RNN_LAB_EXERCISE_SIZES": "hidden=32,epochs=20"}


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist reads the groups
def pytest_collection_modifyitems(items):
    """With pytest-xdist (-n), every browser test runs in one worker: one server and one Chromium, as without it."""
    for item in items:
        if "tests/browser/" in item.nodeid:
            item.add_marker(pytest.mark.xdist_group("browser"))


def _unavailable(reason: str):
    """Skip outside CI; fail in CI, where a missing browser is a broken setup."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI=true: browser tests must run; .ci/run installs chromium)", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def browser():
    """Headless Debian Chromium driven by Playwright (never `playwright install`)."""
    try:
        from playwright.sync_api import Error, expect, sync_playwright
    except ImportError:
        _unavailable("the Python package playwright is not installed (pip install -r requirements.txt)")
    # expect()'s own default is 5 s: on a busy CI machine a button can take longer than that to be drawn
    expect.set_options(timeout=sb.APP_TIMEOUT_MS)
    executable = sb.chromium_path()
    if executable is None:
        _unavailable(f"Chromium not found at {sb.CHROMIUM} (apt-get install chromium)")
    with sync_playwright() as p:
        try:
            chromium = p.chromium.launch(executable_path=executable, args=sb.CHROMIUM_ARGS)
        except Error as e:
            _unavailable(f"Chromium at {executable} did not start: {e}")
        yield chromium
        chromium.close()


@pytest.fixture(scope="session")
def app_url(browser):
    """Base URL of the dashboard served by `streamlit run dashboard/Home.py`; the server dies with the session.

    Also measures server start -> health ok -> first page rendered in the browser.
    """
    sb.ARTIFACTS.mkdir(exist_ok=True)
    port = sb.free_port()
    base_url = f"http://127.0.0.1:{port}"
    with open(sb.SERVER_LOG, "w") as log:
        t0 = time.perf_counter()
        proc = sb.start_server(port, log, env=SERVER_ENV)
        try:
            sb.wait_healthy(proc, base_url)
            t_health = time.perf_counter() - t0
            context = browser.new_context(viewport=sb.VIEWPORT)  # empty cache: a first visit
            try:
                page = context.new_page()
                watcher = sb.RunWatcher(page)
                sb.open_page(page, base_url, "")
                t_first = time.perf_counter() - t0
            finally:
                context.close()
            runs = {}
            for t, k in watcher.events:
                runs.setdefault(k, t - t0)  # the first of each
            sb.TIMINGS["server_start"] = {
                "health_ok_s": round(t_health, 2),
                "first_run_started_s": round(runs.get("started", float("nan")), 2),
                "first_run_finished_s": round(runs.get("finished:FINISHED_SUCCESSFULLY", float("nan")), 2),
                "first_page_rendered_s": round(t_first, 2), "target_s": 5.0}
            yield base_url
        finally:
            sb.stop_server(proc)


@pytest.fixture(scope="session")
def browser_context(browser):
    """One 1280x800 context for the session: tabs share its HTTP cache, not their Streamlit sessions."""
    context = browser.new_context(viewport=sb.VIEWPORT)
    yield context
    context.close()


@pytest.fixture
def page(browser_context, app_url):
    """A fresh tab (its own Streamlit session) that records uncaught JavaScript errors."""
    tab = sb.new_tab(browser_context)
    yield tab
    tab.close()


def pytest_sessionfinish(session):
    if sb.TIMINGS:
        sb.ARTIFACTS.mkdir(exist_ok=True)
        sb.TIMINGS_FILE.write_text(json.dumps(sb.TIMINGS, indent=2) + "\n")

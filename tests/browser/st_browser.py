"""Helpers for driving the Streamlit dashboard in Debian's Chromium with Playwright (no pytest here).

Waiting follows Streamlit's own e2e_playwright conftest: nothing is looked at before
`[data-testid='stApp'][data-test-script-state='notRunning']`.
"""
from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlencode

from dashboard.pages import PAGES as APP_PAGES

REPO_ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO_ROOT / "artifacts"
SCREENSHOTS = ARTIFACTS / "screenshots"
SERVER_LOG = ARTIFACTS / "browser_server.log"
TIMINGS_FILE = ARTIFACTS / "browser_timings.json"

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-quic",
                 "--no-first-run", "--disable-component-update", "--disable-sync"]
VIEWPORT = {"width": 1280, "height": 800}

# the app's pages: url path -> name used for screenshots and test ids ("" is Home)
PAGES = {path: path or "home" for path in APP_PAGES}
LESSON = {"batch": 32, "steps": 35, "hidden": 512}
# query parameter -> how its sidebar slider's label reads
SLIDER_LABELS = {"batch": re.compile("batch", re.I), "steps": re.compile("step", re.I),
                 "hidden": re.compile("hidden", re.I)}

APP_IDLE = "[data-testid='stApp'][data-test-script-state='notRunning']"
APP_CONNECTED = "[data-testid='stApp'][data-test-connection-state='CONNECTED']"
PLOTLY = "[data-testid='stPlotlyChart'] .js-plotly-plot"
EXCEPTION = "[data-testid='stException']"

# How long the app may take to reach a state (a page drawn, a button enabled, a run's first epoch) on a CI
# machine at load 8, where a script run that takes 1 s on a quiet machine was seen taking 10-20 s. Every wait in
# the browser tests is for a state and ends as soon as it is reached: a long limit costs nothing when all is well.
APP_TIMEOUT_MS = 90_000

# Measurements, not assertions: filled by the tests, written and printed at the session's end.
TIMINGS: dict = {}


def chromium_path() -> str | None:
    """Debian's Chromium, or None where it is not installed."""
    return CHROMIUM if os.path.exists(CHROMIUM) else shutil.which("chromium")


def free_port() -> int:
    """A TCP port on the loopback interface that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(port: int, log, env: dict | None = None) -> subprocess.Popen:
    """`streamlit run dashboard/Home.py` from the repo root, its output going to `log` (``env``: added
    environment variables, e.g. RNN_LAB_RUNS)."""
    cmd = [sys.executable, "-m", "streamlit", "run", "dashboard/Home.py", "--server.port", str(port),
           "--server.address", "127.0.0.1", "--server.headless", "true"]
    return subprocess.Popen(cmd, cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            env={**os.environ, **(env or {})})


def wait_healthy(proc: subprocess.Popen, base_url: str, timeout: float = 60.0) -> None:
    """Poll /_stcore/health until it answers "ok"; raise if the server dies or the time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"streamlit exited with status {proc.returncode}:\n{log_tail()}")
        try:
            with urllib.request.urlopen(f"{base_url}/_stcore/health", timeout=2) as r:
                if r.read().decode().strip() == "ok":
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.05)
    raise RuntimeError(f"/_stcore/health not ok after {timeout:.0f} s:\n{log_tail()}")


def stop_server(proc: subprocess.Popen) -> None:
    """Terminate the server this suite started, then kill it if it lingers."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def log_tail(n: int = 60) -> str:
    """The last lines the server printed (tracebacks go there: the page shows none in classroom mode)."""
    try:
        return "\n".join(SERVER_LOG.read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return "(no server log)"


def log_size() -> int:
    """Current length of the server log, to read only what a test added."""
    try:
        return SERVER_LOG.stat().st_size
    except OSError:
        return 0


def log_since(offset: int) -> str:
    """Server output written after `offset`."""
    try:
        with open(SERVER_LOG, errors="replace") as f:
            f.seek(offset)
            return f.read()
    except OSError:
        return ""


def server_traceback(offset: int) -> str:
    """The server's last traceback written after `offset`, or "" (the page itself shows none in classroom mode)."""
    text = log_since(offset)
    i = text.rfind("Traceback")
    return text[i:] if i >= 0 else ""


def assert_clean(page, log_offset: int) -> None:
    """No exception box, no traceback on the page or in the server log, no uncaught JavaScript error."""
    exceptions = page.locator(EXCEPTION)
    if exceptions.count():
        raise AssertionError(f"stException on {page.url}: {exceptions.first.inner_text()[:300]!r}\n"
                             f"server log:\n{server_traceback(log_offset) or log_tail()}")
    assert "Traceback" not in page.inner_text("body"), f"traceback text on {page.url}"
    tb = server_traceback(log_offset)
    assert not tb, f"server traceback while on {page.url}:\n{tb}"
    assert not page.js_errors, f"uncaught JavaScript errors on {page.url}: {page.js_errors}"


def page_url(base_url: str, path: str, params: dict | None = None) -> str:
    """URL of a dashboard page with query parameters."""
    url = f"{base_url}/{path}"
    return f"{url}?{urlencode(params)}" if params else url


def wait_for_app_run(page, timeout: float = APP_TIMEOUT_MS) -> None:
    """Wait until the app is connected and no script run is in progress."""
    page.wait_for_selector(APP_CONNECTED, state="attached", timeout=timeout)
    page.wait_for_selector(APP_IDLE, state="attached", timeout=timeout)


def settle_frames(page) -> None:
    """Let the browser paint what the last run sent (two animation frames)."""
    page.evaluate("() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")


def press_shortcut(page, key: str, timeout: float = APP_TIMEOUT_MS) -> None:
    """Press a button's keyboard shortcut (st.button(shortcut=...)) as a user does, once the button can take it.

    Streamlit registers a shortcut only once its button is drawn and enabled. On a tab's first page the script
    can have finished, and two frames been painted, before the toolbar's buttons are in the page (seen in 6 of
    8 walks from Home): a key pressed then does nothing. So wait for the enabled button that shows the key,
    then press the key on the page.
    """
    button = page.locator("button:not([disabled])", has=page.locator(f"[aria-label='Shortcut {key.upper()}']"))
    button.first.wait_for(state="visible", timeout=timeout)
    settle_frames(page)  # the shortcut is registered in an effect, run once the button is painted
    page.locator("body").press(key.lower())


def open_page(page, base_url: str, path: str, params: dict | None = None, timeout: float = APP_TIMEOUT_MS) -> float:
    """Navigate to a page and wait for its run to finish; return the seconds it took."""
    t0 = time.perf_counter()
    page.goto(page_url(base_url, path, params), wait_until="domcontentloaded", timeout=timeout)
    wait_for_app_run(page, timeout=timeout)
    settle_frames(page)
    return time.perf_counter() - t0


class RunWatcher:
    """Reads the app's websocket: when a rerun was asked for, started and finished (Python clock).

    The `data-test-script-state` attribute alone can miss a fast rerun (React may paint
    rerunRequested -> running -> notRunning as one update), so reruns are timed from the messages.
    """

    def __init__(self, page):
        self.events: list[tuple[float, str]] = []
        page.on("websocket", self._attach)

    def _attach(self, ws) -> None:
        if ws.url.endswith("/_stcore/stream"):
            ws.on("framesent", self._sent)
            ws.on("framereceived", self._received)

    def _sent(self, payload) -> None:
        from streamlit.proto.BackMsg_pb2 import BackMsg
        if isinstance(payload, bytes) and BackMsg.FromString(payload).WhichOneof("type") == "rerun_script":
            self.events.append((time.perf_counter(), "rerun_requested"))

    def _received(self, payload) -> None:
        from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
        if not isinstance(payload, bytes):
            return
        msg = ForwardMsg.FromString(payload)
        kind = msg.WhichOneof("type")
        if kind == "new_session":
            self.events.append((time.perf_counter(), "started"))
        elif kind == "script_finished":
            status = ForwardMsg.ScriptFinishedStatus.Name(msg.script_finished)
            self.events.append((time.perf_counter(), f"finished:{status}"))

    def finished_run(self, since: int):
        """(requested, started, finished) times of the last complete rerun after event `since`, else None."""
        new = self.events[since:]
        asked = [i for i, (_, k) in enumerate(new) if k == "rerun_requested"]
        if not asked:
            return None
        after = new[asked[-1]:]
        done = [t for t, k in after if k in ("finished:FINISHED_SUCCESSFULLY", "finished:FINISHED_WITH_COMPILE_ERROR")]
        if not done:
            return None
        started = [t for t, k in after if k == "started"]
        return new[asked[0]][0], (started[0] if started else new[asked[-1]][0]), done[-1]


def new_tab(context):
    """A tab (its own Streamlit session) that records uncaught JavaScript errors and watches its script runs."""
    tab = context.new_page()
    tab.js_errors = []
    tab.run_watcher = RunWatcher(tab)
    tab.on("pageerror", lambda err: tab.js_errors.append(str(err)))
    tab.set_default_timeout(APP_TIMEOUT_MS)
    return tab


def timed_rerun(page, action, timeout: float = APP_TIMEOUT_MS / 1000) -> dict:
    """Do `action()` (a widget change), wait for the rerun it causes to finish and be painted.

    Returns seconds: `total`, action to page settled (what a user waits); `run`, the script run alone.
    """
    watcher: RunWatcher = page.run_watcher
    since = len(watcher.events)
    t0 = time.perf_counter()
    action()
    deadline = t0 + timeout
    while (run := watcher.finished_run(since)) is None:
        if time.perf_counter() > deadline:
            raise AssertionError(f"no finished rerun within {timeout:.0f} s after the change on {page.url}; "
                                 f"websocket events (s after change, kind): "
                                 f"{[(round(t - t0, 3), k) for t, k in watcher.events[since:]]}")
        page.wait_for_timeout(10)
    wait_for_app_run(page)
    settle_frames(page)
    total = time.perf_counter() - t0
    return {"total": round(total, 3), "run": round(run[2] - run[1], 3)}


def sidebar_slider(page, label):
    """The sidebar slider whose label matches `label` (a string or a compiled regex), opening the sidebar's
    "Used by other pages" group when the page shown does not use it."""
    slider = page.locator("[data-testid='stSidebar'] [data-testid='stSlider']").filter(has_text=label).first
    if not slider.is_visible():
        group = page.locator("[data-testid='stSidebar'] [data-testid='stExpander'] summary").filter(
            has_text=re.compile("Used by other pages|其他页面")).first
        if group.count():
            group.click()
            slider.wait_for(state="visible")
    return slider


def slider_thumb(slider):
    """A slider's thumb: Streamlit 1.67 draws an `<input type=range>` (role slider) under it."""
    return slider.get_by_role("slider").first


def slider_value(slider) -> str:
    """The value a slider's thumb holds (the range input's value; aria-valuetext says the same)."""
    return slider_thumb(slider).input_value()


def scroll_to(locator, margin: int = 70) -> None:
    """Scroll the element to the top of the view, `margin` px below Streamlit's header (for screenshots)."""
    locator.evaluate("""(el, margin) => {
      el.scrollIntoView({block: 'start'});
      for (let p = el.parentElement; p; p = p.parentElement) {
        const y = getComputedStyle(p).overflowY;
        if ((y === 'auto' || y === 'scroll') && p.scrollHeight > p.clientHeight) { p.scrollTop -= margin; return; }
      }
      window.scrollBy(0, -margin);
    }""", margin)


def plotly_points(page) -> int:
    """Number of data points over all traces of all plotly charts on the page (an array sent as typed bytes,
    {dtype, bdata}, counted by its bytes)."""
    return page.evaluate("""() => {
      const size = {f8: 8, f4: 4, i4: 4, u4: 4, i2: 2, u2: 2, i1: 1, u1: 1, u1c: 1};
      let n = 0;
      for (const gd of document.querySelectorAll('.js-plotly-plot')) {
        for (const tr of (gd.data || [])) {
          const xs = tr.x || tr.y || [];
          n += xs.bdata !== undefined ? atob(xs.bdata).length / (size[xs.dtype] || 8) : (xs.length || 0);
        }
      }
      return n;
    }""")


def progress_value(page) -> float | None:
    """The first progress bar's value (0-100), or None when there is none."""
    bar = page.locator("[data-testid='stProgress'] [role='progressbar']")
    if bar.count() == 0:
        return None
    v = bar.first.get_attribute("aria-valuenow")
    return float(v) if v is not None else None


def timing_lines(t: dict) -> list[str]:
    """The browser timings as the end of the test output shows them."""
    lines = []
    if "server_start" in t:
        s = t["server_start"]
        lines.append(f"server start -> health ok {s['health_ok_s']:.2f} s -> Home's first run "
                     f"{s['first_run_started_s']:.2f}..{s['first_run_finished_s']:.2f} s -> first page rendered "
                     f"{s['first_page_rendered_s']:.2f} s (aim <= 5 s)")
    for name, r in t.get("slider_change", {}).items():
        lines.append(f"{name:>9}: {r['slider']} {r['from']}->{r['to']}: settled {r['total']:.2f} s "
                     f"(script run {r['run']:.2f} s; aim <= 1 s); opened from the navigation in {r['opened']:.2f} s")
    if "training" in t:
        lines.append(f" training: {t['training']['detail']}")
    lines.append(f"written to {TIMINGS_FILE.relative_to(REPO_ROOT)}")
    return lines


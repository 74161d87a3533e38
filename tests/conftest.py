"""Shared fixtures: the Time Machine text is looked for in data/ (in CI its absence is a failure); every test
starts and ends with a server that trains nothing."""
import json
import os
import sys
import tempfile
import time

import pytest
import torch

from rnn_core.corpus import time_machine_status

# The tests use small models; one thread avoids OpenMP spin-waiting when the 2 cores are shared
# (e.g. with the browser tests' server), which made them up to 8x slower.
torch.set_num_threads(1)
# The same for the dashboard's background training, and its runs go to a folder of their own, not runs/.
os.environ["RNN_LAB_TRAIN_THREADS"] = "1"
os.environ.setdefault("RNN_LAB_RUNS", tempfile.mkdtemp(prefix="rnn-lab-runs-"))
STARTED_AT = time.time()  # a timings file older than this run is not this run's


@pytest.fixture(scope="session")
def time_machine():
    """Skip (locally) or fail (CI=true) unless data/timemachine.txt is the lesson's verified file."""
    status = time_machine_status()
    if status != "present":
        message = (f"data/timemachine.txt is {status}: copy the lesson's file there "
                   "(rnn_core downloads it, SHA-1 checked, when the machine is online)")
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return "time_machine"


@pytest.fixture(autouse=True, scope="module")
def restore_torch_threads():
    """The app sets torch's thread count for the process (AppTest runs in it): each module starts with one."""
    yield
    torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def idle_server():
    """The dashboard's runs belong to the process (AppTest runs the app in it): each test starts with a fresh
    registry, so no run or scheduler of an earlier test reaches it, and what it started is stopped afterwards,
    whatever it asserted."""
    runs = sys.modules.get("dashboard.runs")  # not imported: no app has run, nothing to reset
    if runs is not None:
        runs.reset_registry()
    yield
    runs = sys.modules.get("dashboard.runs")
    if runs is not None:
        runs.reset_registry()


def pytest_terminal_summary(terminalreporter):
    """The browser tests' timings, read from the file their process wrote in this run (with pytest-xdist that is
    a worker, not the process that reports)."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        return
    from tests.browser import st_browser as sb

    path = sb.TIMINGS_FILE
    if not path.exists() or path.stat().st_mtime < STARTED_AT:
        return
    terminalreporter.section("browser timings (measured, not asserted)")
    for line in sb.timing_lines(json.loads(path.read_text())):
        terminalreporter.write_line(line)


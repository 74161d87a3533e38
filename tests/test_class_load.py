"""The class-at-once load script in its smallest form: 2 sessions train and move sliders on one real server
(two are enough for one to see the other's settings, model or samples, were they to leak).

Behaviour only (no errors, every page shows its own session's settings, model and samples); the timings
it prints are reported in docs/performance.md, never asserted. It speaks Streamlit's websocket protocol, so it needs
no browser.
"""
import json
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
SESSIONS = 2
SECONDS = 15  # the load window: after the first epoch, each session moves a slider every 1-3 s


def test_two_sessions_at_once_stay_isolated_and_error_free(tmp_path):
    out = tmp_path / "class_load.json"
    proc = subprocess.run([sys.executable, "-m", "benchmarks.class_load", "--sessions", str(SESSIONS),
                           "--seconds", str(SECONDS),
                           "--json", str(out)], cwd=REPO_ROOT, capture_output=True, text=True, timeout=240)
    assert out.exists(), f"no results (exit {proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    result = json.loads(out.read_text())
    report = proc.stdout[-4000:]
    assert result["errors"] == [], report
    assert result["isolation"]["ok"], report
    assert result["isolation"]["checks"] >= SESSIONS * 10, report
    assert result["finished_sessions"] == SESSIONS, report
    for session in result["per_session"]:
        assert session["epochs_trained"] >= 1, f"session {session['index']} never trained:\n{report}"
        assert session["slider_s"], f"session {session['index']} moved no slider:\n{report}"
    assert proc.returncode == 0, report

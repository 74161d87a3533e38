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


# ---------------------------------------------------------------- the isolation check itself

def _client(index: int, n: int = 4):
    from benchmarks import class_load as cl
    plans = cl.make_plans(n)
    plan = plans[index]
    facts = cl.CorpusFacts(set("abcdefghijklmnopqrstuvwxyz ") | {"␣"}, "the time traveller")
    return cl, plan, cl.Client(plan, plans, facts, "ws://unused", cl.SessionRecord(index, plan.params()))


def _settings_line(title: str, p) -> str:
    return (f"**Settings:** {title}, char tokens (|V| = 30), batch {p.batch}, {p.steps} steps, {p.hidden} hidden "
            f"units, lr 1, θ 1, {p.epochs:,} epochs, sequential, seed {p.seed}")


def _markdown(body: str):
    from streamlit.proto.Element_pb2 import Element
    el = Element()
    el.markdown.body = body
    return el


def test_isolation_compares_corpora_by_what_they_are_not_by_their_title_s_language():
    from dashboard.i18n import t
    cl, plan, client = _client(3)  # session 3: chinese_numbers
    assert plan.corpus == "chinese_numbers"
    for lang in cl.LANGS:  # its own corpus, named in either language or by rnn_core: no leak
        for title in (t("corpus.chinese_numbers.title", lang), plan.title):
            client.element(_markdown(_settings_line(title, plan)), 1.0)
            client.check_settings("open")
    assert client.rec.leaks == [] and client.rec.errors == []
    assert client.rec.checks >= 4 * 6


def test_isolation_reports_a_planted_leak_of_another_session_s_corpus():
    from dashboard.i18n import t
    cl, plan, client = _client(3)
    other = next(p for p in client.plans if p.corpus == "toy_english")
    client.element(_markdown(_settings_line(t("corpus.toy_english.title", "zh"), plan)), 1.0)
    client.check_settings("open")
    assert len(client.rec.leaks) == 1, client.rec.leaks
    assert "corpus 'toy_english'" in client.rec.leaks[0]
    assert f"session {other.index}'s" in client.rec.leaks[0]
    # another session's hidden size is a leak too, named with its owner
    client.rec.leaks.clear()
    client.element(_markdown(_settings_line(plan.title, cl.Plan(**{**plan.__dict__, "hidden": other.hidden}))), 2.0)
    client.check_settings("slider")
    assert [leak for leak in client.rec.leaks if "hidden units" in leak and f"session {other.index}'s" in leak]


def test_the_link_to_this_view_is_never_taken_for_a_sample():
    from streamlit.proto.Element_pb2 import Element
    cl, plan, client = _client(0)

    def element(kind: str, text: str):
        el = Element()
        if kind == "heading":
            el.heading.body = text
        elif kind == "caption":
            el.markdown.body = text
        else:
            el.code.code_text = text
        client.element(el, 1.0)

    element("heading", "Samples from “the time”")
    element("caption", "No sample yet.")
    element("code", "http://localhost:8501/training?corpus=counting&hidden=18")  # the next run's toolbar
    assert "sample" not in client.shown
    element("heading", "Samples from “the time”")
    element("code", "the time traveller")
    assert client.shown["sample"][1] == "the time traveller"
    # a planted sample with characters of another corpus is reported
    element("heading", "Samples from “the time”")
    element("code", "二十八，二十九")
    client.check_training_view("training")
    assert [leak for leak in client.rec.leaks if "characters" in leak], client.rec.leaks

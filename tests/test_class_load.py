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

import pytest

from tests.waiting import until

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


# ---------------------------------------------------------------- the live updates' gaps

def _forward(kind: str, **fields):
    from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
    msg = ForwardMsg()
    if kind == "new_session":
        msg.new_session.name = "training"
    elif kind == "progress":
        msg.delta.new_element.progress.text = fields["text"]
    elif kind == "script_finished":
        msg.script_finished = ForwardMsg.ScriptFinishedStatus.Value(fields["status"])
    return msg


def test_a_gap_is_the_timer_s_only_when_a_fragment_s_run_drew_the_progress_bar():
    _cl, _plan, client = _client(0)
    for at, status in ((1.0, "FINISHED_SUCCESSFULLY"), (3.0, "FINISHED_FRAGMENT_RUN_SUCCESSFULLY"),
                       (4.0, "FINISHED_SUCCESSFULLY"), (6.5, "FINISHED_FRAGMENT_RUN_SUCCESSFULLY")):
        client.handle(_forward("new_session"), at - 0.1)
        client.handle(_forward("progress", text="Epoch 3 of 2,000"), at)
        client.handle(_forward("script_finished", status=status), at + 0.05)
    assert client.progress_seen == [1.0, 3.0, 4.0, 6.5]
    assert client.progress_by_timer == [False, True, False, True]


# ---------------------------------------------------------------- the CPU of the server and its processes

def test_the_sampled_tree_counts_worker_processes_spawned_from_a_thread_and_what_ended_keeps_its_cpu(tmp_path):
    """A parent that spawns (multiprocessing 'spawn', from a thread, as the server's pool does) a busy child; the
    child's CPU is counted under "worker process", and still after it has ended."""
    from benchmarks import process_cpu as pc
    code = ("import multiprocessing as mp, threading, time\n"
            "def busy(s):\n    t = time.process_time()\n    while time.process_time() - t < s: pass\n"
            "if __name__ == '__main__':\n"
            "    def start():\n"
            "        p = mp.get_context('spawn').Process(target=busy, args=(1.5,)); p.start(); p.join()\n"
            "    th = threading.Thread(target=start); th.start(); th.join(); time.sleep(30)\n")
    script = tmp_path / "spawner.py"  # a file: 'spawn' imports the child's function from its parent's main module
    script.write_text(code)
    parent = subprocess.Popen([sys.executable, str(script)], cwd=tmp_path)
    sampler = pc.TreeSampler(parent.pid)
    sampler.start()
    try:
        def child_used_and_ended() -> bool:
            cpu, roles = sampler.per_process(), dict(sampler.role)
            worker = [k for k, role in roles.items() if role == "worker process"]
            assert parent.poll() is None, "the spawning process ended early"
            return bool(worker) and cpu[worker[0]] >= 1.0 and not any(
                Path(f"/proc/{pid}").exists() for pid, _ in worker)
        until(child_used_and_ended, 120, what="the spawned child's CPU counted, and the child ended")
        first, last = sampler.samples[0], sampler.sample()
        assert last[3] - first[3] >= 1.0  # the tree's sum kept the ended child's CPU
        by_role = pc.cores_by_role({}, sampler.per_process(), sampler.role, 1.0)
        assert by_role["worker process"]["processes"] == 1 and by_role["worker process"]["cores"] >= 1.0
    finally:
        sampler.stop.set()
        parent.kill()
        parent.wait()


def test_cores_are_taken_over_the_window_asked_for():
    from benchmarks import process_cpu as pc
    # (perf, wall, rss, tree CPU s, machine CPU s): 1 core busy until t=10, then 2 (the machine 2 throughout)
    samples = [(t, 1000.0 + t, 0, t if t <= 10 else 10 + 2 * (t - 10), 2.0 * t) for t in range(21)]
    assert pc.cores(samples, 0, 10) == {"window_s": 10, "cores": 1.0, "machine_cores": 2.0}
    assert pc.cores(samples, 10, 20)["cores"] == 2.0
    assert pc.cores(samples, 1010, 1020, wall=True)["cores"] == 2.0
    assert pc.cores(samples, 5, 5.5) is None  # under a second of samples: no figure


# ---------------------------------------------------------------- the Ray mode, without a cluster

def test_ray_mode_gives_each_node_half_the_sessions_cpus_and_refuses_ray_cpus_without_ray(monkeypatch):
    import contextlib

    from benchmarks import class_load as cl
    from benchmarks import ray_cluster
    asked = {}

    @contextlib.contextmanager
    def fake_cluster(cpus):
        asked["cpus"] = cpus
        yield ray_cluster.Cluster("127.0.0.1:1", Path("/tmp/ray-none"), cpus)

    monkeypatch.setattr(cl.ray_cluster, "local_cluster", fake_cluster)
    monkeypatch.setattr(cl, "_run", lambda sessions, seconds, warm, cluster: {"cluster": cluster})
    assert cl.run(5, 10, ray=True)["cluster"].cpus_per_node == 3 and asked["cpus"] == 3
    assert cl.run(5, 10, ray=True, ray_cpus=1)["cluster"].cpus_per_node == 1
    assert cl.run(5, 10)["cluster"] is None
    cluster = ray_cluster.Cluster("127.0.0.1:6379", Path("/tmp/ray-x"), 3)
    assert cl.server_env(Path("/runs"), cluster) == {"RNN_LAB_RUNS": "/runs", "RNN_LAB_RAY_ADDRESS": "127.0.0.1:6379",
                                                     "RAY_USAGE_STATS_ENABLED": "0"}
    assert cl.server_env(Path("/runs"), None) == {"RNN_LAB_RUNS": "/runs"}
    with pytest.raises(SystemExit):
        cl.main(["--ray-cpus", "2"])


def test_the_ray_lock_held_by_a_calling_flock_is_seen(tmp_path):
    lock = tmp_path / "ray.lock"
    probe = ("import sys; from pathlib import Path; from benchmarks.ray_cluster import held_by_caller; "
             "print(held_by_caller(Path(sys.argv[1])))")
    under = subprocess.run(["flock", str(lock), sys.executable, "-c", probe, str(lock)], cwd=REPO_ROOT,
                           capture_output=True, text=True, timeout=60)
    alone = subprocess.run([sys.executable, "-c", probe, str(lock)], cwd=REPO_ROOT, capture_output=True, text=True,
                           timeout=60)
    assert (under.stdout.strip(), alone.stdout.strip()) == ("True", "False"), (under.stderr, alone.stderr)


# ---------------------------------------------------------------- the live redraw's pace

def test_the_live_redraw_does_not_slow_down_with_other_sessions_runs(monkeypatch):
    from types import SimpleNamespace

    from dashboard import runs, sidebar
    busy = SimpleNamespace(scheduler=SimpleNamespace(active=lambda: [object()] * 32))  # a class's runs
    monkeypatch.setattr(runs, "registry", lambda: busy)
    assert sidebar.refresh_s() == sidebar.LIVE_EVERY_S == 2.0


# ---------------------------------------------------------------- the client's timers and runs, as the frontend's

def _run_msg(kind: str, fragment: str = "", **fields):
    """A ForwardMsg of a full run (no ``fragment``) or of that fragment's run, as its ``metadata.run`` says."""
    from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
    msg = ForwardMsg()
    if fragment:
        msg.metadata.run.fragment_ids.append(fragment)
    if kind == "new_session":
        msg.new_session.name = "training"
    elif kind == "auto_rerun":
        msg.auto_rerun.fragment_id, msg.auto_rerun.interval = fields["id"], fields["interval"]
    elif kind == "script_finished":
        msg.script_finished = ForwardMsg.ScriptFinishedStatus.Value(fields["status"])
    return msg


def test_the_client_keeps_fragment_timers_as_the_frontend_does():
    import asyncio

    async def main():
        _cl, _plan, client = _client(0)
        client.handle(_run_msg("new_session"), 1.0)  # a full run registers two timers
        client.handle(_run_msg("auto_rerun", id="live", interval=2.0), 1.1)
        client.handle(_run_msg("auto_rerun", id="details", interval=6.0), 1.1)
        live = client.timers["live"][0]
        client.handle(_run_msg("new_session", "live"), 3.0)  # the live fragment's own run: the timers go on
        client.handle(_run_msg("auto_rerun", "live", id="live", interval=2.0), 3.1)
        assert client.timers["live"][0] is live and not live.cancelled()  # same interval: not restarted
        client.handle(_run_msg("auto_rerun", "live", id="live", interval=4.0), 3.2)
        assert client.timers["live"][1] == 4.0 and client.timers["live"][0] is not live  # another interval: anew
        await asyncio.sleep(0)
        assert live.cancelled()
        # a full run, also one the app's st.rerun() asked for while the client's last request was a fragment's
        client.handle(_run_msg("new_session"), 5.0)
        assert client.timers == {}
    asyncio.run(main())


def test_a_full_run_whose_end_never_came_is_an_error():
    _cl, _plan, client = _client(0)
    done = "FINISHED_SUCCESSFULLY"
    client.handle(_run_msg("new_session"), 1.0)
    client.handle(_run_msg("script_finished", status=done), 2.0)
    client.handle(_run_msg("new_session", "live"), 3.0)  # after the full run's end: as it should be
    client.handle(_run_msg("script_finished", "live", status="FINISHED_FRAGMENT_RUN_SUCCESSFULLY"), 3.1)
    client.handle(_run_msg("new_session"), 4.0)
    client.handle(_run_msg("new_session"), 4.5)  # a newer full run replaced it (a slider moved again): no loss
    assert client.rec.lost_full_runs == 0 and client.rec.errors == []
    client.handle(_run_msg("new_session", "live"), 6.0)  # a fragment's run before the full run's end
    assert client.rec.lost_full_runs == 1
    assert client.rec.errors == ["a full run's end never came: a fragment's run started 1.5 s after it, before its end"]
    assert [kind for _t, _s, kind in client.finished_log] == ["full", "fragment"]


def test_after_stop_a_run_that_had_finished_already_counts_as_ended():
    _cl, _plan, client = _client(0)
    for text, ended in (("Epoch 12 of 2,000 — training in the background", False),
                        ("Epoch 12 of 2,000 — stopped", True), ("Epoch 2,000 of 2,000 — finished", True)):
        client.shown["progress"] = (2.0, text)
        assert client.run_ended_after(1.0) is ended, text
    assert not client.run_ended_after(3.0)  # shown before the wait began


def test_fairness_measures_a_run_s_share_of_turns_only_across_the_window(tmp_path):
    """A run whose epochs ended across the window has its share of turns measured (busy over wall time); a run whose
    epochs all ended within one turn (a class of many runs) has none, rather than a share of 100%."""
    from benchmarks.class_load import fairness, share_text

    def write(run_id, records, wall_s):
        (tmp_path / run_id).mkdir()
        meta = {"created": 0.0, "wall_s": wall_s, "tokens_per_epoch": 100, "settings": {"hidden": 16},
                "records": [{"wall_s": w, "busy_s": b} for w, b in records]}
        (tmp_path / run_id / "run.json").write_text(json.dumps(meta))

    write("steady", [(1.0 * i, 0.1 * i) for i in range(1, 21)], 20.0)  # an epoch a second, 10% of it its turn
    write("burst", [(9.0, 0.5), (9.05, 0.55), (9.1, 0.6)], 20.0)  # three epochs in one turn
    fair = fairness(tmp_path)
    shares = {r["epochs"]: r["training_share"] for r in fair["per_run"]}
    assert shares[3] is None and shares[20] == pytest.approx(0.1)
    assert fair["shares_measured"] == 1 and fair["training_share_max"] == pytest.approx(0.1)
    assert "1 of 2 runs measured" in share_text(fair)

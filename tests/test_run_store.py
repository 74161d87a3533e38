"""The run store (rnn_core.runs.RunStore): one writer per run directory (a lock with its pid, broken when its
process is gone), a size cap that removes only finished runs nobody holds, a reused id that starts clean,
a folder that cannot be used said in one sentence, run.json read back with every field checked, and the
RNN_LAB_* environment variables parsed in one place (rnn_core.environment)."""
import json
import os
import subprocess
import sys
import time

import pytest

import rnn_core
from rnn_core import environment
from rnn_core.checkpoint import CheckpointError
from rnn_core.errors import UserError
from rnn_core.runs import (HOST, LOCK, DEFAULT_MAX_BYTES, Run, RunLockedError, RunRegistry, RunSettings, RunStore,
                           RunStoreError, Scheduler)
from tests.waiting import until

TINY = RunSettings(corpus="counting", batch=8, steps=10, hidden=8, epochs=5, engine="fast", device="cpu",
                   prefix="one")
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def counting():
    return rnn_core.tokenize_corpus(rnn_core.builtin_corpus("counting", seed=0, n_chars=3000), "char")


def make_run(tc, store, run_id=None, **changes):
    return Run.create(RunSettings(**{**TINY.__dict__, **changes}), tc, store=store, run_id=run_id)


def train(run):
    """Train to the end in this thread."""
    run.resume()
    while run.advance(1.0):
        pass
    return run



def files(folder):
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def one_sentence(exc: BaseException) -> str:
    text = str(exc)
    assert "\n" not in text and text.endswith(".") and "Traceback" not in text, text
    return text


def dead_pid() -> int:
    """The pid of a process that has ended (and was reaped)."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def write_lock(folder, **holder):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / LOCK).write_text(json.dumps({"host": HOST, "token": "t0", "started": None, **holder}))


# ---------------------------------------------------------------- pruning

def test_two_runs_training_with_a_tiny_cap_remove_nothing_of_each_other(counting, tmp_path):
    # two servers (two stores) on one folder, a cap of one byte: every checkpoint write prunes
    a = make_run(counting, RunStore(tmp_path, reference_root=None, max_bytes=1), epochs=12, seed=1)
    b = make_run(counting, RunStore(tmp_path, reference_root=None, max_bytes=1), epochs=12, seed=2)
    scheduler = Scheduler(chunk_s=0.01, threads=1)
    scheduler.start(a)
    scheduler.start(b)
    until(lambda: not a.running and not b.running, 120)
    scheduler.close()
    for run in (a, b):
        assert run.view().status == "done"
        assert files(tmp_path / run.id) == [LOCK, *(f"ckpt-{e:06d}.pt" for e in (1, 2, 5, 10, 12)), "run.json"]
        back = RunStore(tmp_path, reference_root=None).read(run.id)
        assert back.checkpoints == [1, 2, 5, 10, 12] and back.checkpoint(12)["W_hh"].shape == (8, 8)


def test_a_run_open_in_the_registry_is_kept_and_removed_once_nobody_holds_it(counting, tmp_path):
    store = RunStore(tmp_path, reference_root=None)
    registry = RunRegistry(store, Scheduler(threads=1), max_in_memory=1)
    opened = registry.add(train(make_run(counting, store)))
    opened.close()  # finished: its lock is given up, but the registry still holds it (open in a session)
    store.max_bytes = 1
    assert store.prune() == [] and (tmp_path / opened.id / "run.json").exists()
    registry.add(train(make_run(counting, store, seed=1)))  # the first one leaves the registry's memory
    assert opened.id not in registry.held_ids()
    assert store.prune() == [opened.id] and not (tmp_path / opened.id).exists()


def test_finished_runs_nobody_holds_are_removed_oldest_first_and_a_live_lock_is_never_removed(counting, tmp_path):
    store = RunStore(tmp_path, reference_root=None)
    runs = [train(make_run(counting, store, seed=i)) for i in range(4)]
    for run in runs[1:]:
        run.close()
    # runs[0] keeps its lock (still written by this process); ages: runs[0] oldest, then 3, 1, 2
    for run, age in zip(runs, (400, 200, 100, 300)):
        t = time.time() - age
        os.utime(tmp_path / run.id, (t, t))
    size = sum(f.stat().st_size for f in (tmp_path / runs[1].id).iterdir())
    store.max_bytes = int(size * 2.5)  # room for two
    assert store.prune() == [runs[3].id, runs[1].id]
    runs_left = lambda: [f for f in files(tmp_path) if f != "pace.json"]  # noqa: E731  (pace.json: the ETA's)
    assert sorted(runs_left()) == sorted([runs[0].id, runs[2].id])
    store.max_bytes = 1
    assert store.prune() == [runs[2].id] and runs_left() == [runs[0].id]


def test_prune_removes_only_the_stores_own_files(counting, tmp_path):
    store = RunStore(tmp_path, reference_root=None)
    run = train(make_run(counting, store))
    run.close()
    (tmp_path / run.id / "notes.txt").write_text("someone else's")
    (tmp_path / "not a run").mkdir()
    store.max_bytes = 1
    assert store.prune() == [run.id]
    assert files(tmp_path / run.id) == ["notes.txt"] and (tmp_path / "not a run").is_dir()


# ---------------------------------------------------------------- one writer

def test_a_second_writer_of_a_run_id_is_refused_in_one_sentence(counting, tmp_path):
    first = make_run(counting, RunStore(tmp_path, reference_root=None), run_id="shared-id")
    with pytest.raises(RunLockedError) as caught:
        make_run(counting, RunStore(tmp_path, reference_root=None), run_id="shared-id", hidden=16)
    text = one_sentence(caught.value)
    assert "shared-id" in text and f"pid {os.getpid()}" in text
    assert isinstance(caught.value, UserError) and caught.value.key == "run_locked"
    assert caught.value.values == {"run": "shared-id", "pid": os.getpid(), "host": HOST}
    train(first)  # the refused writer changed nothing: the run is the first one's
    back = RunStore(tmp_path, reference_root=None).read("shared-id")
    assert back.settings.hidden == 8 and back.checkpoint(5)["W_hh"].shape == (8, 8)
    first.close()
    assert not (tmp_path / "shared-id" / LOCK).exists()
    second = make_run(counting, RunStore(tmp_path, reference_root=None), run_id="shared-id", hidden=16)
    assert second.locked


def test_a_lock_held_by_another_live_process_refuses_and_is_broken_once_that_process_is_gone(counting, tmp_path):
    code = ("import sys; from rnn_core.runs import RunStore; RunStore(sys.argv[1], reference_root=None)"
            ".claim('other-proc'); print('ready', flush=True); sys.stdin.read()")
    child = subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], cwd=REPO, stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "ready"
        store = RunStore(tmp_path, reference_root=None, max_bytes=1)
        assert store.locked("other-proc")
        with pytest.raises(RunLockedError, match=f"Run other-proc is being written by another process "
                                                 f"\\(pid {child.pid} on "):
            make_run(counting, store, run_id="other-proc")
        assert store.prune() == []  # training elsewhere: never removed
    finally:
        child.kill()
        child.wait()
    run = make_run(counting, RunStore(tmp_path, reference_root=None), run_id="other-proc")  # stale: broken
    assert run.locked and json.loads((tmp_path / "other-proc" / LOCK).read_text())["pid"] == os.getpid()


@pytest.mark.parametrize("holder, stale", [
    ({"pid": "dead"}, True),  # a dead process's pid (filled in below)
    ({"pid": "self"}, True),  # this process's pid, but not a lock it holds: left by a run it dropped
    ({"pid": 1, "host": "another-machine"}, False),  # another machine cannot be asked: taken to be running
    ({"pid": -5}, True),
])
def test_a_stale_lock_is_broken_and_a_live_or_unknown_one_is_kept(counting, tmp_path, holder, stale):
    pid = {"dead": dead_pid(), "self": os.getpid()}.get(holder["pid"], holder["pid"])
    write_lock(tmp_path / "locked-run", **{**holder, "pid": pid})
    store = RunStore(tmp_path, reference_root=None)
    if stale:
        assert make_run(counting, store, run_id="locked-run").locked
    else:
        with pytest.raises(RunLockedError, match="another-machine"):
            make_run(counting, store, run_id="locked-run")


def test_a_lock_file_being_written_is_respected_and_an_old_empty_one_is_broken(counting, tmp_path):
    folder = tmp_path / "empty-lock"
    folder.mkdir()
    (folder / LOCK).write_text("")
    store = RunStore(tmp_path, reference_root=None)
    with pytest.raises(RunLockedError):
        make_run(counting, store, run_id="empty-lock")
    old = time.time() - 3600
    os.utime(folder / LOCK, (old, old))
    assert make_run(counting, store, run_id="empty-lock").locked


def test_a_closed_run_takes_its_lock_back_to_train_again(counting, tmp_path):
    store = RunStore(tmp_path, reference_root=None)
    run = make_run(counting, store, epochs=3)
    run.close()
    assert not (tmp_path / run.id / LOCK).exists() and not run.locked
    train(run)
    assert run.locked and store.locked(run.id)


# ---------------------------------------------------------------- a reused id

def test_a_reused_run_id_never_leaves_old_checkpoints_beside_the_new_run(counting, tmp_path):
    store = RunStore(tmp_path, reference_root=None)
    old = train(make_run(counting, store, run_id="reused-id", epochs=12, hidden=16))
    old.close()
    (tmp_path / "reused-id" / ".run.json.abc.tmp").write_bytes(b"half a file")
    (tmp_path / "reused-id" / "notes.txt").write_text("not the store's")
    new = make_run(counting, store, run_id="reused-id", epochs=2)
    assert files(tmp_path / "reused-id") == [LOCK, "notes.txt"]  # cleared before the new run writes
    train(new)
    assert files(tmp_path / "reused-id") == [LOCK, "ckpt-000001.pt", "ckpt-000002.pt", "notes.txt", "run.json"]
    back = store.read("reused-id")
    assert back.settings.hidden == 8 and back.checkpoints == [1, 2]
    with pytest.raises(CheckpointError, match="no checkpoint at epoch 12"):
        back.checkpoint(12)


# ---------------------------------------------------------------- the folder

def unusable_roots(tmp_path):
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    return {"a file": (a_file, "runs_root_not_folder"), "/proc/x": ("/proc/rnn-lab-x", "runs_root_unusable"),
            "a folder under a file": (a_file / "runs", "runs_root_unusable")}


@pytest.mark.parametrize("case", ["a file", "/proc/x", "a folder under a file"])
def test_a_runs_folder_that_cannot_be_used_is_said_in_one_sentence_when_first_written(counting, tmp_path, case):
    root, key = unusable_roots(tmp_path)[case]
    store = RunStore(root, reference_root=None)  # making the store never raises
    assert store.load("anything") is None and store.prune() == []
    for attempt in (store.check, lambda: make_run(counting, store)):
        with pytest.raises(RunStoreError) as caught:
            attempt()
        assert caught.value.key == key and str(root) in one_sentence(caught.value)
        assert isinstance(caught.value, UserError) and caught.value.values["path"] == str(root)


def test_a_folder_without_write_permission_is_refused(counting, tmp_path):
    if os.geteuid() == 0:
        pytest.skip("root writes into a folder whatever its mode")
    root = tmp_path / "read-only"
    root.mkdir()
    root.chmod(0o555)
    try:
        with pytest.raises(RunStoreError, match="cannot be written") as caught:
            make_run(counting, RunStore(root, reference_root=None))
        assert caught.value.key == "runs_root_unusable"
    finally:
        root.chmod(0o755)


# ---------------------------------------------------------------- run.json read back

@pytest.fixture
def saved(counting, tmp_path):
    """A finished run's folder and its run.json as plain data."""
    store = RunStore(tmp_path, reference_root=None)
    run = train(make_run(counting, store, run_id="saved-run"))
    run.close()
    return store, json.loads((tmp_path / "saved-run" / "run.json").read_text())


DAMAGED = {
    "settings.batch abc": (lambda m: m["settings"].update(batch="abc"), "batch must be a whole number"),
    "settings.epochs -3": (lambda m: m["settings"].update(epochs=-3), "epochs must be a whole number from 1"),
    "settings.lr text": (lambda m: m["settings"].update(lr="1"), "lr must be a finite number above 0"),
    "settings.clip negative": (lambda m: m["settings"].update(clip=-1), "clip must be a finite number above 0"),
    "settings.activation": (lambda m: m["settings"].update(activation="evil"), "activation must be one of tanh, relu"),
    "settings.detach": (lambda m: m["settings"].update(detach="yes"), "detach must be true or false"),
    "settings.predict": (lambda m: m["settings"].update(predict="x:1"), "predict must be one of greedy"),
    "settings a list": (lambda m: m.update(settings=[1]), "settings is damaged"),
    "status": (lambda m: m.update(status=5), "status must be one of new"),
    "a record's epoch": (lambda m: m["records"][2].update(epoch="abc"), "records[2] is damaged"),
    "a record's loss": (lambda m: m["records"][0].update(loss="abc"), "records[0].loss is damaged"),
    "records a dict": (lambda m: m.update(records={}), "records is damaged"),
    "checkpoints": (lambda m: m.update(checkpoints=["a"]), "checkpoints must be a whole number"),
    "vocab": (lambda m: m["vocab"].update(idx_to_token=[1, 2]), "vocab is damaged"),
    "probe": (lambda m: m.update(probe=[[[999]], [[0]]]), "probe is damaged"),
    "wall_s": (lambda m: m.update(wall_s="abc"), "wall_s must be a finite number of at least 0"),
    "extra": (lambda m: m.update(extra=[1]), "extra is damaged"),
}


@pytest.mark.parametrize("case", list(DAMAGED))
def test_a_damaged_run_json_is_refused_in_one_sentence_naming_the_field(saved, case):
    store, meta = saved
    change, expected = DAMAGED[case]
    change(meta)
    (store.root / "saved-run" / "run.json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError) as caught:
        store.read("saved-run")
    assert expected in one_sentence(caught.value) and "saved-run/run.json" in str(caught.value)
    assert store.load("saved-run") is None
    assert RunRegistry(store, Scheduler(threads=1)).get("saved-run") is None


@pytest.mark.parametrize("content", [b"{not json", b"[1, 2]", b"\xff\xfe", b"null"])
def test_a_run_json_that_is_not_a_run_is_refused(saved, content):
    store, _ = saved
    (store.root / "saved-run" / "run.json").write_bytes(content)
    with pytest.raises(CheckpointError) as caught:
        store.read("saved-run")
    assert "saved-run/run.json" in one_sentence(caught.value)


def test_a_missing_or_badly_named_run_is_one_sentence(saved):
    store, _ = saved
    for run_id, key in (("no-such-run", "run_missing"), ("../../etc", "run_missing")):
        with pytest.raises(CheckpointError) as caught:
            store.read(run_id)
        assert caught.value.key == key and run_id in one_sentence(caught.value)


def test_a_run_json_read_back_is_the_run_and_its_directory_names_it(saved):
    store, meta = saved
    meta["id"] = "another-id"  # a copied folder: the folder's name is the run
    (store.root / "saved-run" / "run.json").write_text(json.dumps(meta))
    run = store.read("saved-run")
    assert run.id == "saved-run" and run.epoch == 5 and run.checkpoint(5)["W_hh"].shape == (8, 8)


# ---------------------------------------------------------------- the environment

@pytest.mark.parametrize("value", ["abc", "-5", "0", "inf", "nan", ""])
def test_a_bad_runs_cap_uses_the_default_and_says_so(value):
    env = environment.read({"RNN_LAB_RUNS_MAX_MB": value})
    assert env.runs_max_bytes == DEFAULT_MAX_BYTES
    if value:  # unset or empty is the default, said by nobody
        (problem,) = env.problems
        assert problem.key == "env_runs_max_mb" and f"RNN_LAB_RUNS_MAX_MB={value}" in problem and "1024 MB" in problem
    else:
        assert env.problems == ()


def test_good_values_are_used():
    env = environment.read({"RNN_LAB_RUNS_MAX_MB": " 1.5 ", "RNN_LAB_TRAIN_THREADS": "2", "RNN_LAB_RUNS": "/tmp/r",
                            "RNN_LAB_NO_EXT": "1", "RNN_LAB_EXERCISE_SIZES": "hidden=32, epochs=20"})
    assert env.problems == ()
    assert env.runs_max_bytes == int(1.5 * 2 ** 20) and env.train_threads == 2 and str(env.runs) == "/tmp/r"
    assert env.no_ext and env.exercise_sizes == (("hidden", 32), ("epochs", 20))
    assert environment.read({}) == environment.Environment()


@pytest.mark.parametrize("name, value, key", [
    ("RNN_LAB_TRAIN_THREADS", "abc", "env_train_threads"), ("RNN_LAB_TRAIN_THREADS", "0", "env_train_threads"),
    ("RNN_LAB_TRAIN_THREADS", "99999", "env_train_threads"), ("RNN_LAB_NO_EXT", "yes", "env_no_ext"),
    ("RNN_LAB_EXERCISE_SIZES", "hidden=1.5", "env_exercise_sizes"),
    ("RNN_LAB_EXERCISE_SIZES", "evil=3", "env_exercise_sizes"),
    ("RNN_LAB_EXERCISE_SIZES", "hidden=100000000", "env_exercise_sizes"),
])
def test_each_bad_variable_is_named_in_one_sentence_and_its_default_used(name, value, key):
    env = environment.read({name: value})
    (problem,) = env.problems
    assert problem.key == key and f"{name}={value}" in problem and "\n" not in problem
    assert (env.train_threads, env.no_ext, env.exercise_sizes) == (None, False, ())


def test_a_bad_environment_makes_no_store_or_scheduler_fail(monkeypatch, tmp_path):
    monkeypatch.setenv("RNN_LAB_RUNS_MAX_MB", "abc")
    monkeypatch.setenv("RNN_LAB_TRAIN_THREADS", "abc")
    monkeypatch.setenv("RNN_LAB_RUNS", str(tmp_path / "runs"))
    store = RunStore(reference_root=None)
    assert store.max_bytes == DEFAULT_MAX_BYTES and store.root == tmp_path / "runs"
    scheduler = Scheduler(threads=None)
    assert scheduler.threads >= 1
    scheduler.close()


def test_the_start_problems_include_a_runs_folder_and_a_data_folder_that_cannot_be_used(tmp_path):
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    found = environment.problems({"RNN_LAB_RUNS": "/proc/rnn-lab-x", "RNN_LAB_DATA": str(a_file),
                                  "RNN_LAB_RUNS_MAX_MB": "abc"})
    assert [p.key for p in found] == ["env_runs_max_mb", "runs_root_unusable", "env_data_folder"]
    assert "/proc/rnn-lab-x" in found[1] and str(a_file) in found[2]
    assert environment.problems({"RNN_LAB_RUNS": str(tmp_path / "fine")}) == []


def test_the_dashboard_says_each_environment_problem_in_one_line_at_start(monkeypatch):
    from tests.test_dashboard_pages import FILES, open_app

    monkeypatch.setenv("RNN_LAB_RUNS_MAX_MB", "abc")
    monkeypatch.setenv("RNN_LAB_RUNS", "/proc/rnn-lab-x")
    at = open_app("home")
    assert not at.exception, [e.value for e in at.exception]
    said = [w.value for w in at.warning if "RNN_LAB_RUNS" in w.value]
    assert len(said) == 2 and "RNN_LAB_RUNS_MAX_MB=abc" in said[0] and "/proc/rnn-lab-x" in said[1]
    at.switch_page(FILES["data"]).run()  # said once: not again on the next page
    assert not at.exception and not [w for w in at.warning if "RNN_LAB_RUNS" in w.value]
    zh = open_app("home", lang="zh")
    assert any(w.value.startswith("RNN_LAB_RUNS_MAX_MB=abc 不是正的兆字节数") for w in zh.warning)
    assert any(w.value.startswith("无法写入训练目录 /proc/rnn-lab-x") for w in zh.warning)


def test_the_environment_problems_are_said_after_a_bad_link_value_made_the_first_page_run_again(monkeypatch):
    from streamlit.testing.v1 import AppTest

    from tests.test_dashboard_pages import APP, FILES

    monkeypatch.setenv("RNN_LAB_RUNS_MAX_MB", "abc")
    at = AppTest.from_file(APP, default_timeout=60)
    at.query_params["batch"] = "7.9"  # replaced in the URL by the value used, and the page runs again
    at.switch_page(FILES["data"]).run()  # a session whose first page is Data
    assert not at.exception, [e.value for e in at.exception]
    warnings = [w.value for w in at.warning]
    assert any("batch=7.9" in w for w in warnings), warnings
    assert len([w for w in warnings if "RNN_LAB_RUNS_MAX_MB=abc" in w]) == 1, warnings

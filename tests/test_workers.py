"""Runs trained in worker processes (rnn_core.workers): the server's copy of a run reads as a local run does, the
worker writes run.json and the checkpoints into the store, Stop keeps the epoch (also when asked for through the
store's control file, as another process or machine asks), runs spread over the workers, the server's limit,
divergence, a worker that dies, and which scheduler the environment picks."""
import json
import os
import signal
import threading

import pytest
import torch

import rnn_core
from rnn_core import environment, run_control
from rnn_core.runs import STOP, RunLimitError, RunRegistry, RunSettings, RunStore, Scheduler, checkpoint_epochs
from rnn_core.scheduler import make_scheduler
from rnn_core.workers import RemoteRun, WorkerPool, default_workers
from tests.waiting import until

SMALL = RunSettings(corpus="counting", batch=8, steps=10, hidden=16, epochs=20, engine="fast", device="cpu",
                    prefix="one")
LONG = 100_000  # epochs (the most a run may have): a run that trains until it is stopped


@pytest.fixture(scope="module")
def counting():
    return rnn_core.tokenize_corpus(rnn_core.builtin_corpus("counting", seed=0, n_chars=3000), "char")


@pytest.fixture(scope="module")
def pool(tmp_path_factory):
    """Two worker processes (started once for the module) over a store of their own."""
    store = RunStore(tmp_path_factory.mktemp("runs"), reference_root=None)
    pool = WorkerPool(store, workers=2, threads=1)
    assert pool.workers == []  # no process until a run starts (a server's pool starts them at once: eager)
    yield pool
    for run in pool.active():
        pool.stop(run)
    pool.close()



def make_run(pool, tc, **changes):
    return pool.create(RunSettings(**{**SMALL.__dict__, **changes}), tc, device="cpu")


def test_a_run_trains_in_a_worker_process_writing_run_json_and_checkpoints(pool, counting):
    run = make_run(pool, counting)
    assert isinstance(run, RemoteRun) and run.host.process.pid != os.getpid()
    assert run.view().status == "new" and run.view().trainable and run.latest()[0] == 0
    pool.start(run)
    view = run.wait(120)
    assert view.status == "done" and view.epoch == 20
    assert [r["epoch"] for r in view.records] == list(range(1, 21))
    assert view.checkpoints == tuple(checkpoint_epochs(20))
    assert run.latest()[0] == 20
    # the worker wrote the store: run.json as the view says, a checkpoint file per checkpoint epoch
    meta = json.loads((pool.store.root / run.id / "run.json").read_text())
    assert meta["status"] == "done" and [r["loss"] for r in meta["records"]] == [r["loss"] for r in view.records]
    files = sorted(p.name for p in (pool.store.root / run.id).glob("ckpt-*.pt"))
    assert files == [f"ckpt-{e:06d}.pt" for e in checkpoint_epochs(20)]
    assert torch.equal(run.checkpoint(20)["W_hh"], pool.store.read(run.id).checkpoint(20)["W_hh"])
    assert torch.equal(run.checkpoint(5)["W_xh"], pool.store.read_checkpoint(run.id, 5)[0]["W_xh"])
    # its trainer's net here is a model of the newest parameters (a copy: the worker holds the real trainer)
    from rnn_core.model import formula_params
    assert all(torch.equal(v, run.latest()[1][k]) for k, v in formula_params(run.trainer.net).items())


def test_stop_keeps_the_epoch_and_continue_goes_on_from_it(pool, counting):
    run = make_run(pool, counting, epochs=LONG, hidden=32)
    pool.start(run)
    until(lambda: run.view().epoch >= 3, 90, what="waited 90 s for: third epoch")
    pool.stop(run)
    stopped = run.view()
    assert stopped.status == "stopped" and not run.running
    assert stopped.epoch in stopped.checkpoints  # the epoch it stopped at is kept, as a file in the store
    assert (pool.store.root / run.id / f"ckpt-{stopped.epoch:06d}.pt").exists()
    on_disk = pool.store.read(run.id).view()
    assert on_disk.status == "stopped" and on_disk.epoch == stopped.epoch
    assert run not in pool.active() and not (pool.store.root / run.id / STOP).exists()  # the stop was answered
    pool.stop(run)  # a stop of a stopped run: answered at once, nothing changes
    assert run.view().records == stopped.records and not (pool.store.root / run.id / STOP).exists()
    clock = make_run(pool, counting, epochs=LONG, seed=1)  # the test's clock: another run's epochs
    pool.start(clock)
    until(lambda: clock.view().epoch >= 3, 90, what="waited 90 s for: three epochs of another run")
    pool.stop(clock)
    # the worker's own copy of the run (the server mirrors only runs that train): it stayed stopped
    on_worker = pool.call(run.host, "snapshot", run.id)
    assert on_worker["status"] == "stopped" and len(on_worker["records"]) == stopped.epoch
    assert run.view().epoch == stopped.epoch
    run.resume()
    until(lambda: run.view().epoch >= stopped.epoch + 2, 90, what="waited 90 s for: two more epochs after Continue")
    assert run.view().records[: stopped.epoch] == stopped.records
    pool.stop(run)
    assert run.view().status == "stopped"


def test_a_stop_asked_for_through_the_store_s_control_file_stops_the_run(pool, counting):
    run = make_run(pool, counting, epochs=LONG)
    pool.start(run)
    until(lambda: run.view().epoch >= 2, 90, what="waited 90 s for: second epoch")
    run_control.request_stop(RunStore(pool.store.root, reference_root=None), run.id)  # as another process would
    until(lambda: run.view().status == "stopped", 90, what="waited 90 s for: stop through the control file")
    # answered: the file is gone (the worker's watcher removes it after the stop, which the mirror may show first)
    until(lambda: not (pool.store.root / run.id / STOP).exists(), 90, what="waited 90 s for: the control file removed")
    view = run.view()
    until(lambda: pool.store.read(run.id).view().epoch == view.epoch, 90,
          what="waited 90 s for: run.json of the stopped epoch")
    assert view.epoch in view.checkpoints


def test_runs_go_to_the_least_loaded_worker_and_each_makes_progress(pool, counting):
    # b is made once a trains: a new run goes to the worker with the fewest runs training (the module's earlier
    # tests left runs held, not training, on either worker)
    a = make_run(pool, counting, epochs=LONG, seed=0)
    pool.start(a)
    b = make_run(pool, counting, epochs=LONG, seed=1)
    pool.start(b)
    try:
        assert a.host is not b.host and a.host.process.pid != b.host.process.pid
        until(lambda: a.view().epoch >= 2 and b.view().epoch >= 2, 90, what="waited 90 s for: both runs training")
        assert set(pool.active()) == {a, b}
    finally:
        pool.stop(a)
        pool.stop(b)
    assert pool.active() == []


def test_runs_made_at_once_spread_over_the_workers(pool, counting, monkeypatch):
    # a class presses Start at once: four creates, none answered before all four have chosen their worker
    ready = threading.Barrier(4, timeout=90)
    call = pool.call

    def call_after_all_chose(host, method, *args):
        if method == "create":
            ready.wait()
        return call(host, method, *args)

    monkeypatch.setattr(pool, "call", call_after_all_chose)
    runs = []
    threads = [threading.Thread(target=lambda i=i: runs.append(make_run(pool, counting, seed=i))) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert len(runs) == 4
    assert sorted(sum(r.host is w for r in runs) for w in pool.workers) == [2, 2]
    assert all(w.placing == 0 for w in pool.workers) and all(r.id in r.host.runs for r in runs)


def test_the_server_s_limit_on_runs_training_at_once(tmp_path, counting, monkeypatch):
    monkeypatch.setenv(environment.MAX_RUNS, "1")
    pool = WorkerPool(RunStore(tmp_path, reference_root=None), workers=1, threads=1)
    try:
        assert pool.max_active == 1
        a, b = (make_run(pool, counting, epochs=LONG, seed=i) for i in range(2))
        pool.start(a)
        with pytest.raises(RunLimitError) as refused:
            pool.start(b)
        assert refused.value.key == "server_limit" and not b.running
        pool.stop(a)
        pool.start(b)  # room again
        assert b.running
        pool.stop(b)
    finally:
        pool.close()


def test_a_diverged_run_is_said_as_such_keeping_its_last_good_model(pool, counting):
    run = make_run(pool, counting, hidden=64, lr=1e4, clip=None, epochs=30)
    pool.start(run)
    view = run.wait(120)
    assert view.status == "diverged" and "Lower the learning rate" in view.error
    epoch, params = run.latest()
    assert epoch == view.good_epoch and all(torch.isfinite(p).all() for p in params.values())
    assert pool.store.read(run.id).view().status == "diverged"


def test_a_worker_that_dies_fails_its_runs_and_the_server_goes_on(tmp_path, counting):
    pool = WorkerPool(RunStore(tmp_path, reference_root=None), workers=1, threads=1)
    try:
        run = make_run(pool, counting, epochs=LONG)
        pool.start(run)
        until(lambda: run.view().epoch >= 1, 90, what="waited 90 s for: first epoch")
        os.kill(run.host.process.pid, signal.SIGKILL)
        until(lambda: run.view().status == "failed", 90, what="waited 90 s for: the run to be marked failed")
        assert "ended" in run.view().error and pool.active() == []
    finally:
        pool.close()


def test_a_registry_over_the_pool_keeps_its_runs_and_lets_go_of_evicted_ones(tmp_path, counting):
    store = RunStore(tmp_path, reference_root=None)
    pool = WorkerPool(store, workers=1, threads=1)
    registry = RunRegistry(store, pool, max_in_memory=1)
    try:
        first = registry.create(RunSettings(**{**SMALL.__dict__, "epochs": 3}), counting, device="cpu")
        assert isinstance(first, RemoteRun)  # the registry asks its scheduler: made in the worker
        pool.start(first)
        first.wait(120)
        second = registry.create(RunSettings(**{**SMALL.__dict__, "epochs": 3, "seed": 1}), counting, device="cpu")
        assert first.id not in registry._runs  # evicted: its lock given up in the worker
        assert not store.locked(first.id) and store.locked(second.id)
        back = registry.get(first.id)
        assert back.view().epoch == 3 and not back.view().trainable  # read back from the store
    finally:
        pool.close()


def test_the_environment_picks_the_scheduler(tmp_path):
    store = RunStore(tmp_path, reference_root=None)
    assert type(make_scheduler(store, {"RNN_LAB_WORKERS": "0"})) is Scheduler
    pool = make_scheduler(store, {"RNN_LAB_WORKERS": "2"})
    try:
        assert isinstance(pool, WorkerPool) and pool.n == 2
        until(lambda: len(pool.workers) == 2, 90, what="waited 90 s for: a server's two workers started before any run")
    finally:
        pool.close()
    auto = make_scheduler(store, {})
    assert (type(auto) is Scheduler) == (default_workers() == 0)
    if isinstance(auto, WorkerPool):
        auto.close()
    assert default_workers(2) == 0 and default_workers(4) == 0 and default_workers(8) == 2
    assert default_workers(64) == 16
    env = environment.read({"RNN_LAB_WORKERS": "many"})
    assert env.workers is None and env.problems[0].key == "env_workers"
    assert environment.read({"RNN_LAB_WORKERS": "auto"}).workers is None
    assert environment.read({"RNN_LAB_WORKERS": "3"}).workers == 3


def test_the_server_s_cap_on_runs_is_one_setting_for_every_scheduler(tmp_path, monkeypatch):
    assert environment.read({}).max_runs == environment.DEFAULT_MAX_RUNS == 128
    assert environment.read({"RNN_LAB_MAX_RUNS": "60"}).max_runs == 60
    for bad in ("0", "10001", "lots", "-5", "2.5"):
        env = environment.read({"RNN_LAB_MAX_RUNS": bad})
        assert env.max_runs == 128 and [p.key for p in env.problems] == ["env_max_runs"]
        assert f"RNN_LAB_MAX_RUNS={bad} is not a whole number from 1 to 10000" in str(env.problems[0])
    store = RunStore(tmp_path, reference_root=None)
    monkeypatch.delenv(environment.MAX_RUNS, raising=False)
    assert Scheduler().max_active == 128
    monkeypatch.setenv(environment.MAX_RUNS, "7")
    pool = WorkerPool(store, workers=1)  # no process starts before a run does
    try:
        assert Scheduler().max_active == pool.max_active == 7
    finally:
        pool.close()


@pytest.mark.skipif(not hasattr(os, "getpriority"), reason="per-thread niceness (Linux)")
def test_a_workers_training_thread_gives_way_to_the_pages(tmp_path, counting):
    """A worker's host trains at niceness NICE (the server's pages and the host's answers go first); the thread
    that answers the server, and a host at niceness 0, keep the normal priority."""
    from rnn_core.workers import NICE
    for nice in (NICE, 0):
        host = run_control.Host(tmp_path / str(nice), threads=1, nice=nice)
        try:
            run_id = f"nice-{nice}"
            host.create(RunSettings(**{**SMALL.__dict__, "epochs": LONG}), counting, run_id, "cpu", None, None, None)
            host.start(run_id)
            until(lambda: host.scheduler._thread is not None and host.runs[run_id].epoch >= 1)
            base = os.getpriority(os.PRIO_PROCESS, 0)  # this thread: the one that answers the server
            assert os.getpriority(os.PRIO_PROCESS, host.scheduler._thread.native_id) == base + nice
        finally:
            host.close()

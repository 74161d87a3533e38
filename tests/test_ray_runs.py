"""Runs as jobs on a Ray cluster (rnn_core.ray_runs): a local cluster of two nodes on this machine (a head and a
second node, one CPU each), two short runs trained there into the shared run store, stopped through the store's
control file, continued, and read back through the dashboard's registry as a page reads them.

Needs ray (requirements-cluster.txt): skipped without it, except under CI=true, where that is a failure."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

try:
    import ray
except ImportError:  # pragma: no cover - depends on the machine
    ray = None
    if os.environ.get("CI") == "true":
        pytest.fail("ray is not installed: .ci/run installs requirements-cluster.txt", pytrace=False)
    pytest.skip("ray is not installed (pip install -r requirements-cluster.txt)", allow_module_level=True)

from benchmarks.ray_cluster import local_cluster
import rnn_core
from rnn_core.runs import RunRegistry, RunSettings, RunStore
from rnn_core.scheduler import make_scheduler
from rnn_core.workers import RemoteRun
from tests.waiting import until

pytestmark = pytest.mark.xdist_group("ray")  # one cluster on the machine at a time

SMALL = RunSettings(corpus="counting", batch=4, steps=8, hidden=12, epochs=100_000, engine="fast", device="cpu",
                    prefix="one")


@pytest.fixture(scope="module")
def cluster():
    """A head node and a second node, one CPU each (benchmarks.ray_cluster, under the machine's Ray lock); both
    stopped afterwards, whatever happened."""
    with local_cluster(cpus=1) as c:
        try:
            yield c.address
        finally:
            if ray.is_initialized():
                ray.shutdown()


def test_two_runs_train_on_two_ray_nodes_stop_continue_and_read_from_the_dashboard(cluster, tmp_path):
    from dashboard import runs as dashboard_runs

    store = RunStore(tmp_path, reference_root=None)
    registry = dashboard_runs.reset_registry(RunRegistry(store, make_scheduler(store, ray_address=cluster)))
    try:
        until(lambda: len(ray.nodes()) == 2 and all(n["Alive"] for n in ray.nodes()), 60,
              what="waited 60 s for: two live nodes")
        tc = rnn_core.tokenize_corpus(rnn_core.builtin_corpus("counting", seed=0, n_chars=400), "char")
        assert registry.scheduler.max_active == 128  # RNN_LAB_MAX_RUNS's default, as on one machine
        made = []
        for seed in (0, 1):  # the registry asks its scheduler: each run made by an actor of its own
            run = registry.create(RunSettings(**{**SMALL.__dict__, "seed": seed}), tc, device="cpu")
            registry.scheduler.start(run)
            made.append(run)
        a, b = made
        assert all(isinstance(r, RemoteRun) for r in made)
        # one CPU per node and one per run: the runs train on the two nodes, at the same time
        nodes = {ray.get(r.host.node.remote()) for r in made}
        assert len(nodes) == 2
        until(lambda: a.view().epoch >= 2 and b.view().epoch >= 2, 90, what="waited 90 s for: two epochs of each run")
        assert {r.id for r in registry.scheduler.active()} == {a.id, b.id}

        # stop through the store's control file: the actor keeps the epoch and writes run.json
        registry.scheduler.stop(a)
        stopped = dashboard_runs.get(a.id).view()
        assert stopped.status == "stopped" and stopped.epoch in stopped.checkpoints
        on_disk = store.read(a.id).view()
        assert on_disk.status == "stopped" and on_disk.epoch == stopped.epoch
        assert b.view().status == "running"

        # continue: on from the kept epoch
        registry.scheduler.start(a)
        until(lambda: a.view().epoch >= stopped.epoch + 2, 90, what="waited 90 s for: two more epochs after continuing")
        assert a.view().records[: stopped.epoch] == stopped.records
        for run in made:
            registry.scheduler.stop(run)
        for run in made:  # as a page reads them: the registry's run, its view, a checkpoint from the store
            view = dashboard_runs.get(run.id).view()
            assert view.status == "stopped" and view.epoch >= 2
            assert run.checkpoint(view.epoch)["W_hh"].shape == (12, 12)
            assert store.read(run.id).view().records == view.records
    finally:
        dashboard_runs.reset_registry()


def test_the_cli_trains_a_run_as_a_ray_job_into_its_run_dir(cluster, tmp_path):
    proc = subprocess.run([sys.executable, "-m", "rnn_core.train", "--ray", cluster, "--run-dir", str(tmp_path),
                           "--run-id", "on-ray", "--corpus", "counting", "--max-tokens", "300", "--batch-size", "4",
                           "--num-steps", "8", "--hidden", "8", "--epochs", "3", "--device", "cpu", "--quiet"],
                          cwd=Path(__file__).resolve().parent.parent, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr[-2000:]
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert summary["epochs"] == 3 and summary["run"] == "on-ray" and summary["checkpoints"] == [1, 2, 3]
    view = RunStore(tmp_path, reference_root=None).read("on-ray").view()
    assert view.status == "done" and view.epoch == 3


def test_the_cli_refuses_ray_without_a_shared_run_dir():
    proc = subprocess.run([sys.executable, "-m", "rnn_core.train", "--ray", "127.0.0.1:1", "--epochs", "1",
                           "--corpus", "counting", "--hidden", "8"], cwd=Path(__file__).resolve().parent.parent,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "--ray needs --run-dir" in proc.stderr

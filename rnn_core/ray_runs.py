"""Runs as jobs on a Ray cluster (``RNN_LAB_RAY_ADDRESS`` or ``python -m rnn_core.train --ray ADDRESS``).

Each run is one Ray actor (one CPU of the cluster, wherever Ray places it) hosting a
:class:`~rnn_core.run_control.Host`: the run trains there and writes its run.json and checkpoints into the run
store, which is therefore a volume every node mounts at the same path (``RNN_LAB_RUNS``). The server mirrors the
run as it mirrors a worker process's (:class:`~rnn_core.workers.RemoteRun`: snapshots every 0.25 s), reads its
checkpoints from the store, and stops it through the store's control file: any server replica, or any other
process that mounts the store, stops a run the same way. Ray is optional (requirements-cluster.txt).
"""
from __future__ import annotations

import logging
from pathlib import Path

import ray

from .run_control import Host
from .runs import RunStore, RunStoreError
from .workers import CALL_TIMEOUT_S, RemoteScheduler

log = logging.getLogger("rnn_lab.ray_runs")

PACKAGE = Path(__file__).resolve().parent  # shipped to the cluster's workers with each job (runtime_env)


class HostActor:
    """A Host in a Ray actor: one run, its own torch threads (the actor's CPUs)."""

    def __init__(self, root: str, threads: int):
        self.host = Host(root, None, threads=threads, max_bytes=1 << 62)  # the server prunes the store

    def call(self, method: str, *args):
        return getattr(self.host, method)(*args)

    def node(self) -> str:
        """The id of the Ray node this run trains on."""
        return ray.get_runtime_context().get_node_id()


class RayScheduler(RemoteScheduler):
    """Every run a Ray actor of ``cpus`` CPUs on the cluster at ``address`` (``auto``: the one this machine is in)."""

    def __init__(self, store: RunStore, address: str, max_active: int | None = None, cpus: int = 1):
        if not ray.is_initialized():
            ray.init(address=address, runtime_env={"py_modules": [str(PACKAGE)]}, log_to_driver=False,
                     configure_logging=False)
        self.cpus = cpus
        self._actor = ray.remote(num_cpus=cpus, max_concurrency=4)(HostActor)
        self._hosts: dict[str, object] = {}  # run id -> its actor
        super().__init__(store, max_active)

    def host_for_new_run(self):
        return self._actor.remote(str(self.store.root.resolve()), self.cpus)

    def placed(self, host, run_id: str | None) -> None:
        if run_id is not None:
            self._hosts[run_id] = host

    def call(self, host, method: str, *args):
        try:
            return ray.get(host.call.remote(method, *args), timeout=CALL_TIMEOUT_S)
        except ray.exceptions.RayTaskError as exc:  # raised in the actor: the error itself (a UserError says why)
            raise (exc.cause if isinstance(exc.cause, Exception) else RuntimeError(str(exc))) from None
        except (ray.exceptions.RayActorError, ray.exceptions.GetTimeoutError) as exc:
            raise RunStoreError(f"A training worker process failed ({type(exc).__name__}).", "worker_failed",
                                why=type(exc).__name__) from exc

    def _forget(self, run_id: str) -> None:
        actor = self._hosts.pop(run_id, None)
        if actor is not None:
            try:
                ray.get(actor.call.remote("forget", run_id), timeout=30)
            except Exception:  # noqa: BLE001  the actor is ended below all the same
                pass
            ray.kill(actor)

    def close(self, timeout_s: float = 10.0) -> None:
        super().close()
        for run_id in list(self._hosts):
            self._forget(run_id)

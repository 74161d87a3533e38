"""Which scheduler trains a server's runs: a Ray cluster, worker processes, or a thread of the server itself.

======================================= ================================================================
set                                     runs train
======================================= ================================================================
``RNN_LAB_RAY_ADDRESS=host:port``       each run a job (an actor) on that Ray cluster (rnn_core.ray_runs)
``RNN_LAB_WORKERS=N`` (1 to 256)        in N worker processes on this machine (rnn_core.workers)
``RNN_LAB_WORKERS=0``                   on one thread of the server's process (rnn_core.runs.Scheduler)
neither (``auto``)                      ``rnn_core.workers.default_workers()``: the thread on a machine of
                                        fewer than 8 cores, else one worker process per 4 cores
======================================= ================================================================

Why: docs/performance.md ("Where runs train"): on 2 cores a worker process trained no faster than the
server's thread and a second one halves each run's cores; with more cores, processes keep the server's
interpreter free for the pages and let runs use the cores in parallel.
"""
from __future__ import annotations

from collections.abc import Mapping

from . import environment
from .runs import RunStore, Scheduler


def make_scheduler(store: RunStore, environ: Mapping[str, str] | None = None, ray_address: str | None = None):
    """The scheduler for ``store``'s runs as the environment (or ``ray_address``) says (see the table above)."""
    env = environment.read(environ)
    address = ray_address or env.ray_address
    if address:
        from .ray_runs import RayScheduler  # local: ray is an optional dependency (requirements-cluster.txt)
        return RayScheduler(store, address)
    from .workers import WorkerPool, default_workers
    workers = env.workers if env.workers is not None else default_workers()
    return WorkerPool(store, workers, eager=True) if workers else Scheduler()

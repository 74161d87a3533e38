"""Runs trained in worker processes: the server only starts, stops and reads them.

:class:`WorkerPool` has the :class:`~rnn_core.runs.Scheduler`'s interface (``create``, ``start``, ``stop``,
``active``, ``close``, ``max_active``) and keeps ``n`` worker processes (started with 'spawn': torch's threads do not
survive a fork), each a :class:`~rnn_core.run_control.Host` with its own Scheduler and its own torch threads
(the machine's cores shared out). A new run goes to the least-loaded worker and stays there.

A run made with ``pool.create(settings, tc, ...)`` (as ``RunRegistry.create`` and the CLI make their runs:
each asks its scheduler) is a :class:`RemoteRun`: a :class:`~rnn_core.runs.Run` whose trainer lives in the
worker. Its records, status and newest parameters are mirrored from the worker (a thread polls each worker's
snapshots every :data:`POLL_S`), so ``view()``, ``latest()`` and ``checkpoint()`` read as before and a page never
waits on training. The worker writes run.json and the checkpoints into the same store; Stop is asked for through
the store's control file only (:mod:`rnn_core.run_control`: the one way, from any process or machine) and
returns once the worker has stopped the run, its epoch kept.

The same mirror serves a Ray cluster (``rnn_core.ray_runs``): there a host is one actor per run.
"""
from __future__ import annotations

import logging
import multiprocessing as mp
import os
import threading
import time
import weakref

import numpy as np
import torch

from . import environment, fast
from .engines import make_model
from .run_control import Host, request_stop, tensors
from .runs import Run, RunLimitError, RunStore, RunStoreError, new_run_id

log = logging.getLogger("rnn_lab.workers")

POLL_S = 0.25  # the server's copy of a running run is this old at most (plus the transfer)
CALL_TIMEOUT_S = 120.0  # a worker's answer (a new run builds its model; a stop waits for its chunk)
NICE = 10  # the workers' training threads' niceness: the server's page runs go first (Linux: per thread)
CORES_PER_WORKER = 4  # auto: one worker per this many cores, so each run's matmuls still get several threads


def default_workers(cores: int | None = None) -> int:
    """Worker processes for this machine (RNN_LAB_WORKERS=auto): 0 (train in the server's process) below 2 *
    CORES_PER_WORKER cores, else one per CORES_PER_WORKER cores. On 2 cores one worker process measured no faster
    than the server's own thread (docs/performance.md), and a second halves each run's cores."""
    cores = cores or os.cpu_count() or 1
    return 0 if cores < 2 * CORES_PER_WORKER else cores // CORES_PER_WORKER


class RemoteTrainer:
    """Stands in for a trainer that lives in another process: what ``Run.view`` reads of it, and ``net``, a model
    here holding the run's newest parameters (a copy: the run trains on elsewhere)."""

    epoch_fraction = 0.0

    def __init__(self, run: "RemoteRun"):
        self._run = weakref.ref(run)
        self._net = None  # (epoch, model)

    @property
    def net(self):
        run = self._run()
        epoch, params = run.latest()
        if self._net is None or self._net[0] != epoch:
            net = make_model(run.settings.engine, len(run.vocab), run.settings.hidden, "cpu",
                             **run.settings.switches())
            net.load_formula_params(params)
            self._net = (epoch, net)
        return self._net[1]


class RemoteRun(Run):
    """A run trained elsewhere (a worker process, a Ray actor), mirrored here; same reading interface as Run."""

    def __init__(self, run_id, settings, vocab, *, scheduler: "RemoteScheduler", host, store, tokens_per_epoch,
                 device, probe, latest):
        super().__init__(run_id, settings, vocab, trainer=None, store=store,
                         tokens_per_epoch=tokens_per_epoch, device=device, probe=probe)
        self.remote, self.host = scheduler, host
        self.trainer = RemoteTrainer(self)
        self._latest = latest
        self._mirror_wall = (0.0, None)  # (wall_s at the snapshot, monotonic time of the snapshot if running)
        # when the server lets go of this object, the host lets go of the run (its trainer and its lock)
        weakref.finalize(self, scheduler._let_go, run_id)

    @property
    def wall_s(self) -> float:
        wall, at = self._mirror_wall
        return wall + (time.monotonic() - at if at is not None else 0.0)

    def apply(self, snap: dict) -> None:
        """Take a host's snapshot (records from ``snap['from']`` on)."""
        with self._lock:
            del self.records[snap["from"]:]
            self.records.extend(snap["records"])
            self.status, self.error = snap["status"], snap["error"]
            self.checkpoints, self.good_epoch, self.device = snap["checkpoints"], snap["good_epoch"], snap["device"]
            self.trainer.epoch_fraction = snap["fraction"]
            self._mirror_wall = (snap["wall_s"], time.monotonic() if snap["status"] == "running" else None)
            if snap["latest"] is not None:
                self._latest = (snap["latest"][0], tensors(snap["latest"][1]))
            self._changed.notify_all()

    def known(self) -> tuple[int, int]:
        with self._lock:
            return len(self.records), self._latest[0] if self._latest else -1

    # ------------------------------------------------------------ control: to the host

    def resume(self) -> None:
        self.remote.start(self)

    def request_stop(self) -> None:
        request_stop(self.store, self.id)

    def move_to_cpu(self) -> None:
        self.apply(self.remote.call(self.host, "move_to_cpu", self.id))

    def close(self) -> None:
        if self.trainer is not None:
            self.remote.call(self.host, "close_run", self.id)

    @property
    def locked(self) -> bool:
        return self.trainer is not None

    def settle(self) -> None:  # the host keeps the epoch and writes run.json
        pass

    def save_meta(self) -> None:  # the host writes run.json: one writer per run
        pass

    def _take_lock(self, clear: bool) -> None:
        pass


class RemoteScheduler:
    """The Scheduler's interface over hosts in other processes; subclasses say where a new run goes."""

    def __init__(self, store: RunStore, max_active: int | None = None):
        self.store = store
        self.max_active = max_active or environment.read().max_runs  # runs training at once (RNN_LAB_MAX_RUNS)
        self._runs: dict[str, weakref.ref] = {}  # run id -> RemoteRun (while the server holds it)
        self._lock = threading.Lock()
        self._closed = False
        self._gone: list[str] = []  # runs the server let go of: the host forgets them
        self._pump_thread = threading.Thread(target=self._pump, name="rnn-lab-mirror", daemon=True)
        self._pump_thread.start()

    # ------------------------------------------------------------ where runs go (subclasses)

    def host_for_new_run(self):
        raise NotImplementedError

    def call(self, host, method: str, *args):
        raise NotImplementedError

    def placed(self, host, run_id: str | None) -> None:
        """``host``'s create returned the run ``run_id``, or failed (None): a subclass that keeps its hosts' runs
        counts it here."""

    # ------------------------------------------------------------ the Scheduler's interface

    def create(self, settings, tc, *, store=None, run_id=None, device=None, init_params=None, heldout=None,
               heldout_text=None) -> RemoteRun:
        """Run.create's work, done by a host; the run mirrored here. ``store`` is this scheduler's own (the hosts
        write there) or None."""
        if store is not None and store is not self.store:
            raise ValueError("A remote scheduler makes runs of its own store only.")
        run_id = run_id or new_run_id()
        host = self.host_for_new_run()
        params = None if init_params is None else {k: v.detach().cpu().numpy() for k, v in init_params.items()}
        dev = str(device) if isinstance(device, torch.device) else device
        try:
            info = self.call(host, "create", settings, tc, run_id, dev, params, heldout, heldout_text)
        except BaseException:
            self.placed(host, None)
            raise
        self.placed(host, run_id)
        probe = None if info["probe"] is None else tuple(torch.from_numpy(np.array(a)) for a in info["probe"])
        run = RemoteRun(run_id, info["settings"], tc.vocab, scheduler=self, host=host, store=self.store,
                        tokens_per_epoch=info["tokens_per_epoch"], device=info["device"], probe=probe,
                        latest=(0, tensors(info["latest"])))
        with self._lock:
            self._runs[run_id] = weakref.ref(run)
        return run

    def active(self) -> list[Run]:
        return [r for r in self._held() if r.running]

    def start(self, run: Run) -> None:
        if not isinstance(run, RemoteRun):
            raise RuntimeError("This run was read back from disk: it can be looked at, not trained.")
        if not run.running and len(self.active()) >= self.max_active:
            raise RunLimitError(f"{self.max_active} runs are training on this server already: "
                                "stop one or wait for one to finish.", "server_limit", n=self.max_active)
        run.apply(self.call(run.host, "start", run.id))

    def stop(self, run: Run, timeout_s: float = 5.0) -> None:
        """Stop through the store's control file; returns once the host has stopped the run (its epoch kept) or
        after ``timeout_s``."""
        if not isinstance(run, RemoteRun):
            return
        request_stop(self.store, run.id)
        run.apply(self.call(run.host, "stopped", run.id, timeout_s))  # waits for the host to answer the file

    def close(self, timeout_s: float = 10.0) -> None:
        self._closed = True

    # ------------------------------------------------------------ the mirror

    def _held(self) -> list[RemoteRun]:
        with self._lock:
            runs = [ref() for ref in self._runs.values()]
        return [r for r in runs if r is not None and r.trainer is not None]

    def _let_go(self, run_id: str) -> None:
        with self._lock:
            self._gone.append(run_id)

    def _pump(self) -> None:
        prune_at = time.monotonic() + 10.0
        while not self._closed:
            time.sleep(POLL_S)
            try:
                self._poll()
                if time.monotonic() > prune_at:  # hosts never prune: they cannot see what the server holds
                    prune_at = time.monotonic() + 10.0
                    self.store.prune()
            except Exception:  # noqa: BLE001  the mirror outlives one failed poll
                if not self._closed:
                    log.exception("mirroring runs")

    def _poll(self) -> None:
        with self._lock:
            gone, self._gone = self._gone, []
            for run_id in gone:
                self._runs.pop(run_id, None)
        by_host: dict[int, list[RemoteRun]] = {}  # one call per host for all its running runs
        for run in self._held():
            if run.running:
                by_host.setdefault(id(run.host), []).append(run)
        for runs in by_host.values():
            try:
                snaps = self.call(runs[0].host, "snapshots", {r.id: r.known() for r in runs})
            except (OSError, EOFError) as exc:
                for run in runs:
                    self._lost(run, exc)
                continue
            for run in runs:
                if run.id in snaps:
                    run.apply(snaps[run.id])
                else:  # the host no longer has it (a Ray actor that was restarted)
                    self._lost(run, KeyError(run.id))
        for run_id in gone:
            self._forget(run_id)

    def _forget(self, run_id: str) -> None:
        """The host lets go of a run the server let go of (subclasses know which host holds it)."""

    def _lost(self, run: RemoteRun, exc: Exception) -> None:
        """The host went away: the run is failed, its files as the host left them."""
        with run._lock:
            run.status, run.error = "failed", f"The process that trained this run ended ({exc})."
            run._mirror_wall = (run.wall_s, None)
            run.trainer = None
            run._changed.notify_all()


# ---------------------------------------------------------------- worker processes on this machine

def _worker_main(conn, root: str, reference_root: str | None, threads: int, max_bytes: int) -> None:
    """A worker process: a Host answering its pipe until told to close."""
    os.environ.setdefault("OMP_NUM_THREADS", str(threads))
    host = Host(root, reference_root, threads=threads, max_bytes=max_bytes, nice=NICE)
    fast.kernels()  # the C++ kernels load in the background meanwhile: a run may start on the Python path
    while True:
        try:
            method, args = conn.recv()
        except (EOFError, OSError):  # the server is gone
            break
        if method == "exit":
            break
        try:
            reply = ("ok", getattr(host, method)(*args))
        except Exception as exc:  # noqa: BLE001  every failure goes back to the caller, said as it is
            reply = ("error", exc)
        try:
            try:
                conn.send(reply)
            except (OSError, EOFError):
                raise
            except Exception as exc:  # noqa: BLE001  an answer that does not pickle
                conn.send(("error", RuntimeError(f"{type(exc).__name__}: {exc}")))
        except (OSError, EOFError):  # the server is gone (killed): stop the runs, keeping their epochs
            break
    host.close()


class Worker:
    """One worker process and its pipe (one request at a time)."""

    def __init__(self, ctx, store: RunStore, threads: int, index: int):
        self.conn, child = ctx.Pipe()
        ref = str(store.reference_root) if store.reference_root else None
        self.process = ctx.Process(target=_worker_main, name=f"rnn-lab-worker-{index}", daemon=True,
                                   args=(child, str(store.root), ref, threads, 1 << 62))
        self.process.start()
        child.close()
        self.lock = threading.Lock()
        self.runs: set[str] = set()  # runs placed here
        self.placing = 0  # runs chosen to go here whose create has not returned yet (the pool's _placing lock)

    def call(self, method: str, *args, timeout_s: float = CALL_TIMEOUT_S):
        with self.lock:
            if not self.process.is_alive():
                raise EOFError(f"worker process {self.process.pid} ended (exit code {self.process.exitcode})")
            self.conn.send((method, args))
            if not self.conn.poll(timeout_s):
                raise TimeoutError(f"worker process {self.process.pid} did not answer {method} in {timeout_s:.0f} s")
            kind, value = self.conn.recv()
        if kind == "error":
            raise value
        return value

    def close(self, timeout_s: float = 10.0) -> None:
        try:
            with self.lock:
                self.conn.send(("exit", ()))
        except (OSError, ValueError):
            pass
        # a worker that never had a run has nothing to keep: it is not waited for (it may still be importing torch)
        self.process.join(timeout_s if self.runs else 1.0)
        if self.process.is_alive():
            self.process.terminate()
            self.process.join(2.0)


class WorkerPool(RemoteScheduler):
    """``workers`` processes on this machine, each training its runs with up to ``threads`` torch threads
    (default: RNN_LAB_TRAIN_THREADS, else every core up to 8, each run's count chosen by timing)."""

    def __init__(self, store: RunStore, workers: int | None = None, threads: int | None = None,
                 max_active: int | None = None, start_method: str = "spawn", eager: bool = False):
        n = workers or max(1, default_workers())
        env_threads = environment.read().train_threads
        # each worker's Scheduler times its runs' turns with 1 thread and with up to every core (at most 8) and
        # keeps the faster, as the server's own does: a fixed share of cores per worker (1 of 2 here) trained
        # 3-6x slower than 2 threads under load (docs/performance.md)
        self.threads = threads or env_threads or max(1, min(8, os.cpu_count() or 1))
        self.n, self._ctx = n, mp.get_context(start_method)
        self.workers: list[Worker] = []  # started with the first run, or at once in the background (``eager``)
        self._starting = threading.Lock()
        self._placing = threading.Lock()  # a choice of worker and its count (``Worker.placing``) at once
        super().__init__(store, max_active)
        if eager:  # a server: its workers are ready (torch imported, kernels loaded) by the time Start is pressed
            threading.Thread(target=self._start_workers, name="rnn-lab-start-workers", daemon=True).start()

    def _start_workers(self) -> None:
        with self._starting:
            if not self.workers and not self._closed:
                self.workers = [Worker(self._ctx, self.store, self.threads, i) for i in range(self.n)]

    def wait_ready(self) -> None:
        """Start the workers if need be and wait until each has loaded the C++ kernels (or found it cannot)."""
        self._start_workers()
        for w in self.workers:
            w.call("kernels_ready")

    def host_for_new_run(self) -> Worker:
        """The worker with the fewest runs training (then the fewest held), the runs being placed counted: a class
        presses Start at once, and runs chosen before any create returned all went to the first worker."""
        if self._closed:
            raise RuntimeError("This worker pool is closed.")
        self._start_workers()
        loads = {}
        for run in self.active():
            loads[id(run.host)] = loads.get(id(run.host), 0) + 1
        with self._placing:
            worker = min(self.workers, key=lambda w: (loads.get(id(w), 0) + w.placing, len(w.runs) + w.placing))
            worker.placing += 1  # until its create returns (``placed``)
        return worker

    def placed(self, host: Worker, run_id: str | None) -> None:
        with self._placing:
            host.placing -= 1
            if run_id is not None:  # counted in host.runs from now on
                host.runs.add(run_id)

    def call(self, host: Worker, method: str, *args):
        try:
            return host.call(method, *args)
        except (EOFError, BrokenPipeError, TimeoutError) as exc:
            raise RunStoreError(f"A training worker process failed ({exc}).", "worker_failed", why=str(exc)) from exc

    def _forget(self, run_id: str) -> None:
        for w in self.workers:
            if run_id in w.runs:
                w.runs.discard(run_id)
                try:
                    w.call("forget", run_id)
                except (EOFError, OSError, TimeoutError, KeyError):
                    pass

    def close(self, timeout_s: float = 10.0) -> None:
        super().close()
        with self._starting:  # after a start in progress: its workers are closed too
            for w in self.workers:
                w.close(timeout_s)

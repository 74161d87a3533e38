"""Control of runs that train in another process: a stop asked for through the store, and the host that trains.

- A **control file** per run in the store (``<root>/<id>/stop``): any process that can write the store (the
  server, a CLI, a job on another machine of a Ray cluster) asks for a stop by writing it; the process that
  trains the run sees it within :data:`WATCH_EVERY_S`, stops the run as ``Scheduler.stop`` does (the chunk in
  progress is the last, the epoch is kept as a checkpoint) and removes the file. It is the only way a stop is
  asked for: the server's Stop writes it too, then waits for the host to answer it (:meth:`Host.stopped`).
- :class:`Host`: what a worker process (``rnn_core.workers``) or a Ray actor (``rnn_core.ray_runs``) runs: an
  ordinary :class:`~rnn_core.runs.Scheduler` training the runs given to it, in its own process with its own
  torch threads, and the plain-data snapshots that the server mirrors (``RemoteRun``). Its methods take and
  return plain data only (settings, token lists, numpy arrays), so they cross a pipe or Ray unchanged.
"""
from __future__ import annotations

import logging
import os
import threading
import time
from pathlib import Path

import numpy as np
import torch

from .runs import STOP, Run, RunStore, Scheduler

log = logging.getLogger("rnn_lab.run_control")

WATCH_EVERY_S = 0.2  # a control file is seen within this (Stop answers within a chunk after that)
LATEST_EVERY_S = 1.0  # a running run's newest parameters travel to the server at most this often


def request_stop(store: RunStore, run_id: str) -> None:
    """Ask whichever process trains ``run_id`` to stop it (a file in its run directory)."""
    folder = store.root / run_id
    folder.mkdir(parents=True, exist_ok=True)
    (folder / STOP).write_bytes(b"")


def stop_requested(store: RunStore, run_id: str) -> bool:
    return (store.root / run_id / STOP).exists()


def clear_stop(store: RunStore, run_id: str) -> None:
    (store.root / run_id / STOP).unlink(missing_ok=True)


def _arrays(params: dict[str, torch.Tensor]) -> dict[str, np.ndarray]:
    return {k: v.numpy() for k, v in params.items()}


def tensors(arrays: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    return {k: torch.from_numpy(np.array(v, copy=True)) for k, v in arrays.items()}


class NiceScheduler(Scheduler):
    """A Scheduler whose training thread runs at niceness ``nice`` (Linux: per thread): the commands this
    process answers (create, start, stop, snapshots) and the server's page runs go before training.

    Not Linux's idle class (SCHED_IDLE): it made a class's pages on 2 workers a little quicker, but beside two
    busy programs its runs got almost no CPU and the worker tests timed out, where at niceness 10 they passed in
    20 s (docs/performance.md, "A class at once")."""

    nice = 0

    def _loop(self) -> None:
        if self.nice:
            try:
                os.nice(self.nice)
            except (OSError, AttributeError):
                pass
        super()._loop()


class Host:
    """Trains the runs given to it on its own :class:`Scheduler`; every answer is plain data.

    ``root`` is the run store the runs write (a shared volume when the host is on another machine);
    ``threads``: torch threads of each turn at most (the host's share of the machine's cores).
    """

    def __init__(self, root: str | Path, reference_root: str | Path | None = None, threads: int | None = None,
                 max_bytes: int | None = None, nice: int = 0):
        self.store = RunStore(root, reference_root=reference_root, max_bytes=max_bytes)
        if threads:
            torch.set_num_threads(threads)
        self.scheduler = NiceScheduler(max_active=1 << 20, max_threads=threads)
        self.scheduler.nice = nice
        self.runs: dict[str, Run] = {}
        self._latest_sent: dict[str, float] = {}
        self._lock = threading.Lock()
        self._closed = False
        self._look = threading.Event()  # set: the watcher reads the control files now, not at its next round
        self._answered = threading.Condition()  # notified after each round of the watcher
        threading.Thread(target=self._watch, name="rnn-lab-control", daemon=True).start()

    # ------------------------------------------------------------ commands

    def create(self, settings, tc, run_id: str, device, init_params, heldout, heldout_text) -> dict:
        """A new run (its directory's lock taken here: RunLockedError while another writer holds it); what the
        server needs to mirror it."""
        run = self.scheduler.create(settings, tc, store=self.store, run_id=run_id, device=device,
                                    init_params=None if init_params is None else tensors(init_params),
                                    heldout=heldout, heldout_text=heldout_text)
        with self._lock:
            self.runs[run.id] = run
        probe = None if run.probe is None else tuple(t.numpy() for t in run.probe)
        return {"settings": run.settings, "tokens_per_epoch": run.tokens_per_epoch, "device": run.device,
                "probe": probe, "latest": _arrays(run.latest()[1])}

    def start(self, run_id: str) -> dict:
        run = self._run(run_id)
        clear_stop(self.store, run_id)  # a stop asked for before this start is not this start's
        self.scheduler.start(run)
        return self.snapshot(run_id)

    def stopped(self, run_id: str, timeout_s: float = 5.0) -> dict:
        """Wait until the stop asked for in the run's control file is done (its chunk ended, its epoch kept as a
        checkpoint: the file is gone) or ``timeout_s`` passes; its snapshot after."""
        self._run(run_id)
        self._look.set()
        with self._answered:
            self._answered.wait_for(lambda: not stop_requested(self.store, run_id), timeout_s)
        return self.snapshot(run_id)

    def move_to_cpu(self, run_id: str) -> dict:
        self._run(run_id).move_to_cpu()
        return self.snapshot(run_id)

    def close_run(self, run_id: str) -> None:
        """Give up the run directory's lock (the trainer stays: a resume takes the lock back)."""
        run = self.runs.get(run_id)
        if run is not None and not run.running:
            run.close()

    def forget(self, run_id: str) -> None:
        """The server let go of the run: stop it if it trains, give up its lock and its trainer."""
        run = self.runs.get(run_id)
        if run is None:
            return
        if run.running:
            self.scheduler.stop(run)
        run.close()
        with self._lock:
            self.runs.pop(run_id, None)
            self._latest_sent.pop(run_id, None)

    def kernels_ready(self) -> bool:
        """Wait for the fast engine's C++ kernels to be loaded here; whether they are in use."""
        from . import fast
        return fast.kernels(block=True) is not None

    def close(self) -> None:
        self._closed = True
        for run in self.scheduler.active():
            self.scheduler.stop(run)
        self.scheduler.close()
        for run in list(self.runs.values()):
            run.close()

    # ------------------------------------------------------------ what the server mirrors

    def snapshot(self, run_id: str, known_records: int = 0, known_epoch: int = -1) -> dict:
        """The run's state: its records from ``known_records`` on, and its newest parameters when their epoch is
        not ``known_epoch`` (while it trains, at most every LATEST_EVERY_S)."""
        run = self._run(run_id)
        view = run.view()
        latest = run.latest()
        send = latest is not None and latest[0] != known_epoch and (
            not view.running or time.monotonic() - self._latest_sent.get(run_id, 0.0) >= LATEST_EVERY_S)
        if send:
            self._latest_sent[run_id] = time.monotonic()
        return {"status": view.status, "error": view.error, "records": list(view.records[known_records:]),
                "from": known_records, "fraction": view.epoch_fraction, "wall_s": view.wall_s,
                "checkpoints": list(view.checkpoints), "good_epoch": view.good_epoch, "device": view.device,
                "latest": (latest[0], _arrays(latest[1])) if send else None}

    def snapshots(self, known: dict[str, tuple[int, int]]) -> dict[str, dict]:
        """:meth:`snapshot` of each run named, with what the server already has of it."""
        return {run_id: self.snapshot(run_id, *k) for run_id, k in known.items() if run_id in self.runs}

    def _run(self, run_id: str) -> Run:
        run = self.runs.get(run_id)
        if run is None:
            raise KeyError(f"Run {run_id} is not trained by this process.")
        return run

    def _watch(self) -> None:
        """Answer every control file of a run held here: stop the run if it trains, then remove the file."""
        while not self._closed:
            self._look.wait(WATCH_EVERY_S)
            self._look.clear()
            with self._lock:
                runs = list(self.runs.values())
            for run in runs:
                try:
                    if stop_requested(self.store, run.id):
                        if run in self.scheduler.active():
                            self.scheduler.stop(run)
                        clear_stop(self.store, run.id)
                except Exception:  # noqa: BLE001  the watcher outlives a run that could not be stopped
                    log.exception("stopping run %s", run.id)
            with self._answered:
                self._answered.notify_all()

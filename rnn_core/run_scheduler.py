"""Training runs in the background: :class:`Scheduler` (one worker thread trains the active runs in turn, a chunk
each) and :class:`RunRegistry` (the runs a server holds in memory, the rest read back from the store).
"""
from __future__ import annotations

import atexit
import collections
import logging
import os
import threading
import time
from dataclasses import dataclass, field

import torch

from . import environment
from .errors import UserError
from .run import Run
from .run_lock import RUN_ID
from .run_store import RunStore

log = logging.getLogger("rnn_lab.runs")


class RunLimitError(UserError, RuntimeError):
    """Too many runs are training at once."""


class Scheduler:
    """Trains the active runs on one worker thread, a chunk of ``chunk_s`` seconds each in turn.

    Threads: a run may use up to every core (at most 8) for torch's intra-op threads, so a run alone gets
    the whole machine. But a per-step matmul split over threads waits at a barrier
    for the slowest, and when another program (the browser drawing the page, another server) holds a
    core, that costs far more than it gains: measured on 2 cores under load, 2 threads trained 5-40x
    slower than 1. So each run's turns are timed with 1 thread and with all of them, and the faster
    wins; the other is tried again every ``explore_every`` turns, as the load changes.
    """

    def __init__(self, chunk_s: float = 0.1, threads: int | None = None, max_active: int | None = None,
                 explore_every: int = 25, solo_chunk_s: float = 0.5, max_threads: int | None = None):
        env = environment.read()
        self.chunk_s, self.explore_every = chunk_s, explore_every
        self.max_active = max_active or env.max_runs  # runs training at once (RNN_LAB_MAX_RUNS)
        # A run alone trains in longer turns (less bookkeeping per minibatch); Stop still waits at most this.
        self.solo_chunk_s = max(chunk_s, solo_chunk_s)
        self._threads_now: int | None = None
        # torch's thread count is per thread: the worker's choice does not change the pages' threads.
        # ``threads`` (or RNN_LAB_TRAIN_THREADS) fixes the count; else it is chosen per run, from 1 to
        # ``max_threads`` (default: every core, at most 8).
        fixed = threads or (env.train_threads if not max_threads else None)
        self.threads = fixed or max_threads or min(8, os.cpu_count() or 1)
        self._choices = [fixed] if fixed else sorted({1, self.threads})
        self._rates: dict[str, dict[int, float]] = {}  # run id -> threads -> minibatches/s (moving average)
        self._turns = 0
        self._queue: collections.deque[Run] = collections.deque()
        self._current: Run | None = None
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._closed = False
        atexit.register(self.close)

    def create(self, settings, tc, **kwargs) -> Run:
        """A new run to train here: :meth:`Run.create` (its keyword arguments), in this process."""
        return Run.create(settings, tc, **kwargs)

    def active(self) -> list[Run]:
        """The runs training now (queued or in their turn)."""
        with self._cond:
            return [r for r in [self._current, *self._queue] if r is not None]

    def start(self, run: Run) -> None:
        """Train ``run`` (again) from where it is."""
        with self._cond:
            if run in self._queue or run is self._current:
                run.resume()
                return
            if len(self.active()) >= self.max_active:
                raise RunLimitError(f"{self.max_active} runs are training on this server already: "
                                    "stop one or wait for one to finish.", "server_limit", n=self.max_active)
            run.resume()
            self._queue.append(run)
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="rnn-lab-scheduler", daemon=True)
                self._thread.start()
            self._cond.notify_all()

    def stop(self, run: Run, timeout_s: float = 5.0) -> None:
        """Stop ``run``: returns once its chunk in progress has ended, with its last epoch kept as a checkpoint."""
        run.request_stop()
        with self._cond:
            self._cond.wait_for(lambda: self._current is not run, timeout=timeout_s)
            if run in self._queue:
                self._queue.remove(run)
        run.settle()

    def threads_for(self, run: Run, turn: int) -> int:
        """The thread count for ``run`` in the scheduler's ``turn``-th turn: an untimed choice first, then
        the fastest, with the others tried again every ``explore_every`` turns."""
        rates = self._rates.setdefault(run.id, {})
        untimed = [k for k in self._choices if k not in rates]
        if untimed:
            return untimed[0]
        best = max(rates, key=rates.get)
        if len(self._choices) > 1 and turn % self.explore_every == 0:
            return next(k for k in self._choices if k != best)
        return best

    def record_rate(self, run_id: str, threads: int, rate: float) -> None:
        """Fold one turn's minibatches per second with ``threads`` threads into the run's moving average."""
        rates = self._rates.setdefault(run_id, {})
        rates[threads] = rate if threads not in rates else 0.7 * rates[threads] + 0.3 * rate

    def _timed_turn(self, run: Run, budget_s: float) -> bool:
        threads = self.threads_for(run, self._turns)
        if threads != self._threads_now:
            torch.set_num_threads(threads)
            self._threads_now = threads
        before, start = run.trainer.batches_done if run.trainer else 0, time.perf_counter()
        more = run.advance(budget_s)
        elapsed = time.perf_counter() - start
        if run.trainer is not None and elapsed > 0:
            self.record_rate(run.id, threads, (run.trainer.batches_done - before) / elapsed)
        self._turns += 1
        if not more:
            self._rates.pop(run.id, None)
        return more

    def _loop(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._queue or self._closed)
                if self._closed:
                    return
                run = self._current = self._queue.popleft()
                budget = self.chunk_s if self._queue else self.solo_chunk_s
            try:
                self._timed_turn(run, budget)
            except UserError as exc:  # e.g. the store's folder could no longer be written: said as it is
                log.warning("run %s stopped: %s", run.id, exc)
                run.fail(str(exc))
            except Exception as exc:  # noqa: BLE001  a bug in one run must not stop the others
                log.exception("run %s failed", run.id)
                run.fail(f"Training stopped on an internal error: {exc}")
            with self._cond:
                self._current = None
                # queued again while running: more to train, or stopped during this turn and started again before
                # it ended (start() left it to this loop, as it was current; the turn itself ended on the stop)
                if run.running:
                    self._queue.append(run)
                self._cond.notify_all()

    def close(self, timeout_s: float = 10.0) -> None:
        """Stop the worker after its chunk in progress (the runs keep their state)."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout_s)  # a thread killed inside a torch kernel at exit aborts the process


# ---------------------------------------------------------------- the registry

@dataclass
class RunRegistry:
    """The runs of one server: active ones and the last few used in memory, the rest read from the store."""

    store: RunStore
    scheduler: Scheduler = field(default_factory=Scheduler)
    max_in_memory: int = 32
    _runs: collections.OrderedDict = field(default_factory=collections.OrderedDict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self):
        self.store.add_holder(self.held_ids)  # the store never prunes a run held here

    def held_ids(self) -> set[str]:
        """The runs this server holds: every one in memory (open in a session, or recently used) and every one
        training."""
        with self._lock:
            ids = set(self._runs)
        return ids | {r.id for r in self.scheduler.active()}

    def create(self, settings, tc, **kwargs) -> Run:
        """A new run of this store, made where the scheduler trains its runs (``Scheduler.create``: this process,
        a worker process or a Ray actor), held in memory."""
        return self.add(self.scheduler.create(settings, tc, store=self.store, **kwargs))

    def add(self, run: Run) -> Run:
        """Hold ``run`` in memory (and write its metadata)."""
        with self._lock:
            self._runs[run.id] = run
            self._runs.move_to_end(run.id)
            self._evict(keep=run.id)  # a new run is not training yet: it must not be the one dropped
        run.save_meta()
        return run

    def start(self, run: Run) -> None:
        """Start ``run`` on the scheduler. A new run refused by the server's cap (RunLimitError) is let go of: a run
        made here and not started yet is never evicted, so it would stay in memory for good."""
        try:
            self.scheduler.start(run)
        except RunLimitError:
            if run.status == "new":
                self.drop(run)
            raise

    def drop(self, run: Run) -> None:
        """Let go of ``run`` (a run made but refused a start): out of memory, its directory's lock given up; its
        files stay."""
        with self._lock:
            if self._runs.get(run.id) is run:
                del self._runs[run.id]
        run.close()

    def get(self, run_id: str) -> Run | None:
        """The run with this id: from memory, else read back from the store; None if there is none."""
        if not isinstance(run_id, str) or not RUN_ID.match(run_id):
            return None
        with self._lock:
            run = self._runs.get(run_id)
            if run is not None:
                self._runs.move_to_end(run_id)
                return run
        # a training run is the scheduler's own object, never a copy read from disk
        run = next((r for r in self.scheduler.active() if r.id == run_id), None) or self.store.load(run_id)
        if run is not None:
            with self._lock:
                run = self._runs.setdefault(run_id, run)
                self._evict()
        return run

    def references(self) -> list[Run]:
        """The shipped reference runs."""
        return [r for r in (self.get(i) for i in self.store.reference_ids()) if r is not None]

    def _evict(self, keep: str | None = None) -> None:
        """Keep at most ``max_in_memory`` runs besides those training: drop the least recently used (their files
        stay, their locks are given up). Never dropped: ``keep``, and runs made here but not started yet (Start
        makes a run, then starts it, and another session's page in between must not close it).

        Training runs do not count: with a class of 60 training, a cap that counted them dropped every other run
        at once, and the reference run, which every Training page lists, was read back from disk (500 epochs'
        records checked) in every script run: 13% of the server's time."""
        active = set(map(id, self.scheduler.active()))
        idle = [run_id for run_id, run in self._runs.items() if id(run) not in active]  # least recently used first
        over = len(idle) - self.max_in_memory
        for run_id in idle:
            if over <= 0:
                break
            run = self._runs[run_id]
            about_to_start = run.status == "new" and run.trainer is not None  # not a copy read from disk
            if run_id != keep and not about_to_start:
                self._runs.pop(run_id).close()
                over -= 1


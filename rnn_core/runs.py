"""Training runs as background jobs: a run, the store that keeps it on disk, and a scheduler that trains it.

- :class:`Run`: one training run: its settings, one record per epoch, checkpoints at log-spaced epochs
  (1, 2, 5, 10, 20, 50, ... and the last). Its trainer advances in time-budgeted chunks
  (``Trainer.train_for``); readers take a :class:`RunView`, one consistent snapshot of it.
- :class:`RunStore`: one directory per run (``run.json`` + ``ckpt-000500.pt``), every file written
  atomically (temporary file + rename, safe on a shared volume), the oldest runs removed first past a
  size cap. Read-only reference runs (shipped in ``data/reference/``) are listed beside them.
- :class:`Scheduler`: one worker thread trains the active runs in turn, a chunk each (round robin), so the
  runs on a server share the CPU equally and a run alone gets the whole machine. Stop is answered
  within a chunk.
- :class:`RunRegistry`: the runs a server holds in memory (the active ones and the last few used),
  the rest read back from the store when asked for.

No Streamlit here: the dashboard, the CLI (``python -m rnn_core.train``) and tests use the same classes.
"""
from __future__ import annotations

import atexit
import collections
import json
import logging
import math
import os
import re
import secrets
import shutil
import threading
import time
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

import pandas as pd
import torch

from .checkpoint import checkpoint_payload, payload_bytes, read_checkpoint, write_atomic
from .data import SeqDataLoader, TokenizedCorpus, make_loader
from .engines import engine_for, make_model
from .errors import UserError
from .model import device_label, formula_params, resolve_device
from .training import MAX_LOSS, DivergenceError, EpochRecord, Trainer, evaluate, parse_predict
from .variants import heldout_batch, heldout_tokens
from .vocab import Vocab

log = logging.getLogger("rnn_lab.runs")

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_ROOT = REPO_ROOT / "runs"  # git-ignored; RNN_LAB_RUNS moves it (e.g. onto a shared volume)
REFERENCE_ROOT = REPO_ROOT / "data" / "reference"  # shipped, read-only
DEFAULT_MAX_BYTES = 1 << 30  # RNN_LAB_RUNS_MAX_MB changes it
RUN_ID = re.compile(r"^[A-Za-z0-9_-]{3,40}$")
META = "run.json"
SAMPLE_EVERY = 10  # the lesson prints a sample every 10 epochs
META_EVERY_S = 5.0  # between checkpoints, run.json is rewritten at most this often
STATUSES = ("new", "running", "stopped", "done", "diverged", "out_of_memory", "failed")


def checkpoint_epochs(target: int) -> list[int]:
    """The epochs a run keeps: 1, 2, 5, 10, 20, 50, ... up to ``target``, and ``target`` itself."""
    epochs, scale = set(), 1
    while scale <= target:
        epochs.update(m * scale for m in (1, 2, 5) if m * scale <= target)
        scale *= 10
    return sorted(epochs | {target})


@dataclass(frozen=True)
class RunSettings:
    """What a run was started with: plain data, saved with it (the tokens come with the run itself)."""

    corpus: str = "time_machine"  # where the text came from, for people (a name, a built-in, a file name)
    token: str = "char"
    batch: int = 32  # batch_size
    steps: int = 35  # num_steps
    hidden: int = 512  # num_hiddens
    lr: float = 1.0
    epochs: int = 500
    clip: float | None = 1.0  # gradient clipping threshold theta; None: no clipping
    partition: str = "sequential"  # sequential | random
    engine: str = "fast"
    device: str = "auto"
    seed: int = 0
    prefix: str = "time traveller"  # samples are generated from it
    # The lesson's exercises (rnn_core.variants); the defaults are the lesson's model, so a run.json or a
    # checkpoint written before these fields existed reads back as what it was.
    activation: str = "tanh"  # tanh | relu
    input: str = "onehot"  # onehot | embedding (learnable E, lesson engine)
    embed: int = 0  # the embedding's size; 0: the vocabulary's (as one-hot)
    detach: bool = True  # False: sequential partitioning keeps the graph across an epoch's minibatches
    predict: str = "greedy"  # how samples are generated: greedy | sample:T | sharpen:alpha
    heldout: str = ""  # a text scored every epoch, never trained on: "" | rest | builtin:NAME | upload:NAME

    def switches(self) -> dict:
        """make_model's keyword arguments for the model these settings describe."""
        return {"activation": self.activation, "input": self.input, "embed": self.embed, "detach": self.detach}

    @classmethod
    def from_dict(cls, d: dict) -> "RunSettings":
        """Settings from saved plain data (unknown keys are ignored, missing ones take the lesson's values)."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})

    def differences(self, other: "RunSettings") -> dict[str, tuple]:
        """{name: (this, other)} for every setting that differs."""
        return {f.name: (getattr(self, f.name), getattr(other, f.name)) for f in fields(self)
                if getattr(self, f.name) != getattr(other, f.name)}


@dataclass(frozen=True)
class RunView:
    """One consistent snapshot of a run: every number a page shows comes from the same moment."""

    id: str
    settings: RunSettings
    status: str
    error: str | None
    records: tuple[dict, ...]  # EpochRecord fields + wall_s (wall-clock seconds running at its end) + busy_s
    # (seconds of the scheduler's turns it had by then: training and its bookkeeping, not waiting) + threads
    # (torch threads of the turn that ended the epoch)
    epoch_fraction: float  # of the epoch in progress
    wall_s: float  # wall-clock seconds spent running (waiting for other runs' turns included)
    tokens_per_epoch: int
    checkpoints: tuple[int, ...]
    good_epoch: int  # the last epoch not blown up: the model a diverged run keeps
    device: str
    trainable: bool  # held in memory with its trainer (else read back from disk: it can be looked at only)
    vocab_size: int
    origin: str = "trained"  # trained | uploaded | reference

    @property
    def epoch(self) -> int:
        return len(self.records)

    @property
    def target(self) -> int:
        return self.settings.epochs

    @property
    def last(self) -> dict | None:
        return self.records[-1] if self.records else None

    @property
    def running(self) -> bool:
        return self.status == "running"

    @property
    def progress(self) -> float:
        """Fraction of the run done, counting the epoch in progress."""
        done = self.epoch + (self.epoch_fraction if self.running else 0.0)
        return min(1.0, done / self.target) if self.target else 1.0

    @property
    def tokens_per_s(self) -> float:
        """Wall-clock throughput: tokens trained over the wall time spent running."""
        return self.epoch * self.tokens_per_epoch / self.wall_s if self.wall_s > 0 else 0.0

    def seconds_per_epoch(self, window: int | None = None) -> float | None:
        """Wall-clock seconds per epoch over the last ``window`` epochs (default: the last quarter of the run so
        far, at least 20: long enough to average out a busy moment, short enough to follow a lasting change
        such as another run starting); None before the first epoch."""
        if not self.records:
            return None
        k = min(window or max(20, len(self.records) // 4), len(self.records) - 1)
        if k == 0:
            return self.records[-1]["wall_s"]
        return (self.records[-1]["wall_s"] - self.records[-1 - k]["wall_s"]) / k

    @property
    def eta_s(self) -> float | None:
        """Wall-clock seconds to the last epoch at the recent pace (None when not running or unknown)."""
        per_epoch = self.seconds_per_epoch()
        if not self.running or per_epoch is None:
            return None
        return max(0.0, self.target - self.epoch - self.epoch_fraction) * per_epoch

    def frame(self) -> pd.DataFrame:
        """The records as a DataFrame, one row per epoch."""
        columns = [*EpochRecord.__dataclass_fields__, "wall_s", "busy_s", "threads"]
        return pd.DataFrame(list(self.records), columns=columns)


class Run:
    """A training run. Thread-safe: one thread advances it, any thread reads :meth:`view`."""

    def __init__(self, run_id: str, settings: RunSettings, vocab: Vocab, *, trainer: Trainer | None = None,
                 store: RunStore | None = None, origin: str = "trained",
                 records: list[dict] | None = None, checkpoints: list[int] | None = None, status: str = "new",
                 error: str | None = None, wall_s: float = 0.0, good_epoch: int = 0, tokens_per_epoch: int = 0,
                 created: float | None = None, device: str = "CPU", extra: dict | None = None,
                 probe: tuple[torch.Tensor, torch.Tensor] | None = None):
        if not RUN_ID.match(run_id):
            raise ValueError(f"Bad run id {run_id!r}.")
        self.id, self.settings, self.vocab, self.trainer, self.store = run_id, settings, vocab, trainer, store
        self.origin = origin
        self.records: list[dict] = list(records or [])
        self.checkpoints: list[int] = list(checkpoints or [])
        self.status, self.error, self.good_epoch = status, error, good_epoch
        self.tokens_per_epoch, self.device = tokens_per_epoch, device
        self.created = created if created is not None else time.time()
        self.extra = dict(extra or {})  # e.g. the reference run's evaluated perplexity
        # (X, Y), each (batch, steps): the run's first minibatch, kept so that what its checkpoints do with the
        # same input (gradient flow through time, rnn_core.gradflow.probe_summary) can be compared across epochs
        self.probe = probe
        self.heldout_loader: SeqDataLoader | None = None  # scored every epoch when there is a held-out text
        self._wall_before, self._running_since = wall_s, None
        self._busy_s, self._turn_start = 0.0, None  # time in the scheduler's turns
        self._lock = threading.RLock()  # guards the fields above
        self._busy = threading.Lock()  # held while a chunk trains
        self._memory_checkpoints: dict[int, dict] = {}  # without a store: epoch -> payload
        self._latest: tuple[int, dict[str, torch.Tensor]] | None = None  # (epoch, CPU copy of the parameters)
        self._meta_written = 0.0
        self._schedule = set(checkpoint_epochs(settings.epochs))

    # ------------------------------------------------------------ creation

    @classmethod
    def create(cls, settings: RunSettings, tc: TokenizedCorpus, *, store: RunStore | None = None,
               run_id: str | None = None, device=None, init_params: dict | None = None,
               heldout: list[int] | None = None, heldout_text: str | bytes | None = None) -> "Run":
        """A fresh run for these settings on this tokenized corpus (a checkpoint's parameters to start from).

        A switch its engine lacks makes it train on the lesson engine (its settings then say so). The held-out
        text is ``heldout`` (token indices of ``tc.vocab``) or else the one ``settings.heldout`` names
        (``heldout_text``: an uploaded file's content); ValueError when that cannot be had.
        """
        device = resolve_device(device if device is not None else settings.device)
        parse_predict(settings.predict)
        engine = engine_for(settings.engine, settings.activation, settings.input, settings.detach)
        if engine != settings.engine:
            settings = replace(settings, engine=engine)
        if heldout is None:
            heldout = heldout_tokens(settings.heldout, tc, settings.token, settings.seed, heldout_text)
        loader = make_loader(tc, settings.batch, settings.steps, settings.partition == "random", seed=settings.seed)
        net = make_model(engine, len(tc.vocab), settings.hidden, device, seed=settings.seed, **settings.switches())
        if init_params is not None:
            net.load_formula_params(init_params)
        trainer = Trainer(net, loader, tc.vocab, lr=settings.lr, theta=settings.clip, sample_every=SAMPLE_EVERY,
                          prefix=settings.prefix, num_preds=50, detach=settings.detach, predict=settings.predict,
                          sample_seed=settings.seed)
        probe = next(iter(make_loader(tc, settings.batch, settings.steps, settings.partition == "random",
                                      seed=settings.seed)))  # a loader of its own: the trainer's is untouched
        run = cls(run_id or new_run_id(), settings, tc.vocab, trainer=trainer, store=store,
                  tokens_per_epoch=len(loader) * settings.batch * settings.steps, device=device_label(device),
                  probe=probe)
        run._latest = (0, _cpu_copy(formula_params(net)))
        if heldout:
            batch, steps = heldout_batch(len(heldout), settings.batch, settings.steps)
            run.heldout_loader = SeqDataLoader(heldout, batch, steps, False, settings.seed)
        return run

    @classmethod
    def from_checkpoint(cls, params: dict, vocab: Vocab, config: dict, *, store: RunStore | None = None,
                        name: str = "upload") -> "Run":
        """A finished run holding one checkpoint (an uploaded or CLI-saved file): to look at, not to train."""
        settings = RunSettings.from_dict({**config, "hidden": int(params["W_hh"].shape[0])})
        epoch = int(config.get("epoch") or 0)
        settings = replace(settings, epochs=max(epoch, 1), corpus=str(config.get("corpus", name)))
        run = cls(new_run_id(), settings, vocab, store=store, origin="uploaded", status="done",
                  extra={"file": name, "epoch": epoch, "perplexity": config.get("perplexity")})
        run._latest = (epoch, _cpu_copy(params))
        run._save_checkpoint(epoch)
        run.save_meta()
        return run

    # ------------------------------------------------------------ reading

    def view(self) -> RunView:
        """A snapshot: records, status and timings from one moment."""
        with self._lock:
            fraction = self.trainer.epoch_fraction if self.trainer is not None and self.status == "running" else 0.0
            return RunView(self.id, self.settings, self.status, self.error, tuple(self.records), fraction,
                           self.wall_s, self.tokens_per_epoch, tuple(self.checkpoints), self.good_epoch,
                           self.device, self.trainer is not None, len(self.vocab), self.origin)

    @property
    def wall_s(self) -> float:
        with self._lock:
            since = self._running_since
            return self._wall_before + (time.monotonic() - since if since is not None else 0.0)

    @property
    def epoch(self) -> int:
        return len(self.records)

    @property
    def running(self) -> bool:
        return self.status == "running"

    def latest(self) -> tuple[int, dict[str, torch.Tensor]] | None:
        """(epoch, parameters) of the newest model (CPU copies, never changed afterwards)."""
        with self._lock:
            return self._latest

    def checkpoint(self, epoch: int) -> dict[str, torch.Tensor]:
        """The parameters saved at ``epoch`` (one of :attr:`checkpoints`)."""
        latest = self.latest()
        if latest is not None and latest[0] == epoch:
            return latest[1]
        if epoch in self._memory_checkpoints:
            return self._memory_checkpoints[epoch]["params"]
        if self.store is None:
            raise KeyError(f"Run {self.id} has no checkpoint at epoch {epoch}.")
        return self.store.read_checkpoint(self.id, epoch)[0]

    def checkpoint_bytes(self, epoch: int) -> bytes:
        """The checkpoint at ``epoch`` as a file's bytes (``python -m rnn_core.train --load`` reads it)."""
        return payload_bytes(checkpoint_payload(self.checkpoint(epoch), self.vocab, self._config(epoch)))

    def _config(self, epoch: int) -> dict:
        record = self.records[epoch - 1] if 0 < epoch <= len(self.records) else {}
        perplexity = record.get("perplexity", self.extra.get("perplexity") if epoch == self.extra.get("epoch") else None)
        return {**asdict(self.settings), "epoch": epoch, "perplexity": perplexity, "run": self.id}

    # ------------------------------------------------------------ control (any thread)

    def resume(self) -> None:
        """Mark running (the scheduler then trains it)."""
        if self.trainer is None:
            raise RuntimeError("This run was read back from disk: it can be looked at, not trained.")
        with self._lock:
            if self.status != "running":
                self.status, self.error = "running", None
                self._running_since = time.monotonic()

    def request_stop(self) -> None:
        """Mark stopped: the chunk in progress is the last (the scheduler waits for it)."""
        with self._lock:
            if self.status == "running":
                self._end("stopped")

    def _end(self, status: str, error: str | None = None) -> None:
        """Leave the running state (call with the lock held)."""
        if self._running_since is not None:
            self._wall_before += time.monotonic() - self._running_since
            self._running_since = None
        self.status, self.error = status, error

    def move_to_cpu(self) -> None:
        """After a GPU out-of-memory: the same parameters and engine on the CPU, stopped (resume goes on there)."""
        with self._busy, self._lock:
            params = _cpu_copy(formula_params(self.trainer.net))
            net = make_model(self.settings.engine, len(self.vocab), self.settings.hidden, "cpu",
                             **self.settings.switches())
            net.load_formula_params(params)
            self.trainer.net = net
            self.trainer.discard_pass()
            self.device = device_label(net.device)
            self.status, self.error = "stopped", None

    # ------------------------------------------------------------ training (the scheduler's thread)

    def advance(self, budget_s: float) -> bool:
        """Train for about ``budget_s`` seconds (at least one minibatch); True while there is more to do."""
        if self.trainer is None or self.status != "running":
            return False
        with self._busy:
            start = self._turn_start = time.perf_counter()
            try:
                while self.status == "running" and self.trainer.epoch < self.settings.epochs:
                    left = budget_s - (time.perf_counter() - start)
                    if left <= 0:
                        break
                    record = self.trainer.train_for(left)
                    if record is not None:
                        self._on_epoch(record)
            except DivergenceError as exc:
                self._finish("diverged", str(exc))
            except torch.OutOfMemoryError:
                if torch.cuda.is_available():
                    torch.cuda.empty_cache()
                self._finish("out_of_memory", f"{self.device} ran out of memory at these settings. The model so "
                                              "far is kept; lower the batch size, steps or hidden size, or continue "
                                              "on the CPU.")
            else:
                if self.status == "running" and self.trainer.epoch >= self.settings.epochs:
                    self._finish("done")
            finally:
                self._busy_s += time.perf_counter() - start
                self._turn_start = None
            return self.status == "running"

    def _on_epoch(self, record: EpochRecord) -> None:
        if self.heldout_loader is not None:
            record.heldout_perplexity = math.exp(min(evaluate(self.trainer.net, self.heldout_loader), MAX_LOSS))
        params = _cpu_copy(formula_params(self.trainer.net))
        with self._lock:
            busy = self._busy_s + (time.perf_counter() - self._turn_start if self._turn_start else 0.0)
            self.records.append({**asdict(record), "wall_s": self.wall_s, "busy_s": busy,
                                 "threads": torch.get_num_threads()})
            self._latest = (record.epoch, params)
            self.good_epoch = self.trainer.good_epoch
        if record.epoch in self._schedule and record.epoch == self.good_epoch:
            self._save_checkpoint(record.epoch)
            self.save_meta()
        elif time.monotonic() - self._meta_written > META_EVERY_S:
            self.save_meta()

    def _finish(self, status: str, error: str | None = None) -> None:
        """End the run: keep the last good model as a checkpoint and write the metadata."""
        good = self.trainer.good_epoch if self.trainer is not None else self.epoch
        with self._lock:
            self._end(status, error)
            self.good_epoch = good
            if self.trainer is not None:  # a diverged run's trainer was reset to the last good parameters
                self._latest = (good, _cpu_copy(formula_params(self.trainer.net)))
        if good and good not in self.checkpoints:
            self._save_checkpoint(good)
        self.save_meta()

    def settle(self) -> None:
        """After a stop: keep the current epoch as a checkpoint (so it can be downloaded) and write metadata."""
        latest = self.latest()
        if latest is not None and latest[0] and latest[0] not in self.checkpoints:
            self._save_checkpoint(latest[0])
        self.save_meta()

    def _save_checkpoint(self, epoch: int) -> None:
        payload = checkpoint_payload(self.checkpoint(epoch), self.vocab, self._config(epoch))
        if self.store is not None:
            self.store.save_checkpoint(self.id, epoch, payload)
        else:
            self._memory_checkpoints[epoch] = payload
        with self._lock:
            if epoch not in self.checkpoints:
                self.checkpoints.append(epoch)
                self.checkpoints.sort()

    def save_meta(self) -> None:
        """Write run.json (no-op without a store)."""
        self._meta_written = time.monotonic()
        if self.store is not None:
            self.store.save_meta(self)

    def meta(self) -> dict:
        """The run as plain data (run.json)."""
        with self._lock:
            return {"id": self.id, "origin": self.origin, "created": self.created,
                    "settings": asdict(self.settings), "status": self.status, "error": self.error,
                    "wall_s": self.wall_s, "good_epoch": self.good_epoch, "tokens_per_epoch": self.tokens_per_epoch,
                    "device": self.device, "checkpoints": list(self.checkpoints), "extra": self.extra,
                    "vocab": self.vocab.to_dict(), "records": list(self.records),
                    "probe": None if self.probe is None else [t.tolist() for t in self.probe]}

    @classmethod
    def from_meta(cls, meta: dict, store: RunStore | None = None) -> "Run":
        """A run read back from run.json: its records and checkpoints, without a trainer."""
        status = meta["status"] if meta["status"] != "running" else "stopped"  # its server is gone
        return cls(meta["id"], RunSettings.from_dict(meta["settings"]), Vocab.from_dict(meta["vocab"]),
                   store=store, origin=meta.get("origin", "trained"),
                   records=meta["records"], checkpoints=meta["checkpoints"], status=status, error=meta.get("error"),
                   wall_s=meta.get("wall_s", 0.0), good_epoch=meta.get("good_epoch", 0),
                   tokens_per_epoch=meta.get("tokens_per_epoch", 0), created=meta.get("created"),
                   device=meta.get("device", "CPU"), extra=meta.get("extra"),
                   probe=None if meta.get("probe") is None else tuple(torch.tensor(t) for t in meta["probe"]))

    def wait(self, timeout_s: float = 60.0, poll_s: float = 0.05) -> RunView:
        """Block until the run is no longer running (or the timeout passes); its view."""
        deadline = time.monotonic() + timeout_s
        while self.running and time.monotonic() < deadline:
            time.sleep(poll_s)
        return self.view()


def _cpu_copy(params: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu", torch.float32, copy=True) for k, v in params.items()}


def new_run_id() -> str:
    """12 URL-safe random characters: a run's address, not guessable from another's."""
    return secrets.token_urlsafe(9)


# ---------------------------------------------------------------- the store

class RunStore:
    """Run directories under ``root`` (written) and ``reference_root`` (read only)."""

    def __init__(self, root: str | Path | None = None, reference_root: str | Path | None = REFERENCE_ROOT,
                 max_bytes: int | None = None):
        env_mb = os.environ.get("RNN_LAB_RUNS_MAX_MB")
        self.root = Path(root or os.environ.get("RNN_LAB_RUNS") or DEFAULT_ROOT)
        self.reference_root = Path(reference_root) if reference_root else None
        self.max_bytes = max_bytes if max_bytes is not None else (int(env_mb) << 20 if env_mb else DEFAULT_MAX_BYTES)
        self._lock = threading.Lock()

    def _dir(self, run_id: str) -> Path:
        if not RUN_ID.match(run_id):
            raise KeyError(f"Bad run id {run_id!r}.")
        ref = self.reference_root / run_id if self.reference_root else None
        return ref if ref is not None and (ref / META).exists() else self.root / run_id

    def save_meta(self, run: Run) -> None:
        write_atomic(self.root / run.id / META, json.dumps(run.meta()).encode())

    def save_checkpoint(self, run_id: str, epoch: int, payload: dict) -> None:
        write_atomic(self.root / run_id / f"ckpt-{epoch:06d}.pt", payload_bytes(payload))
        self.prune(keep={run_id})

    def read_checkpoint(self, run_id: str, epoch: int):
        return read_checkpoint(self._dir(run_id) / f"ckpt-{epoch:06d}.pt")

    def load(self, run_id: str) -> Run | None:
        """The run with this id read back from disk, or None."""
        try:
            path = self._dir(run_id) / META
            return Run.from_meta(json.loads(path.read_text()), self)
        except (KeyError, OSError, ValueError):
            return None

    def reference_ids(self) -> list[str]:
        """The shipped reference runs' ids."""
        if self.reference_root is None or not self.reference_root.is_dir():
            return []
        return sorted(p.name for p in self.reference_root.iterdir() if (p / META).exists())

    def prune(self, keep: set[str] = frozenset()) -> list[str]:
        """Remove the oldest runs (not those in ``keep``) until the store is under its size cap."""
        with self._lock:
            if not self.root.is_dir():
                return []
            runs = []
            for d in self.root.iterdir():
                if d.is_dir() and RUN_ID.match(d.name):
                    size = sum(f.stat().st_size for f in d.iterdir() if f.is_file())
                    runs.append((d.stat().st_mtime, d.name, size))
            total = sum(size for _, _, size in runs)
            removed = []
            for _, name, size in sorted(runs):
                if total <= self.max_bytes:
                    break
                if name in keep:
                    continue
                shutil.rmtree(self.root / name, ignore_errors=True)
                total -= size
                removed.append(name)
            return removed


# ---------------------------------------------------------------- the scheduler

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

    def __init__(self, chunk_s: float = 0.1, threads: int | None = None, max_active: int = 32,
                 explore_every: int = 25, solo_chunk_s: float = 0.5, max_threads: int | None = None):
        env = os.environ.get("RNN_LAB_TRAIN_THREADS")
        self.chunk_s, self.max_active, self.explore_every = chunk_s, max_active, explore_every
        # A run alone trains in longer turns (less bookkeeping per minibatch); Stop still waits at most this.
        self.solo_chunk_s = max(chunk_s, solo_chunk_s)
        self._threads_now: int | None = None
        # torch's thread count is per thread: the worker's choice does not change the pages' threads.
        # ``threads`` (or RNN_LAB_TRAIN_THREADS) fixes the count; else it is chosen per run, from 1 to
        # ``max_threads`` (default: every core, at most 8).
        fixed = threads or (int(env) if env and not max_threads else None)
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
                more = self._timed_turn(run, budget)
            except Exception as exc:  # noqa: BLE001  a bug in one run must not stop the others
                log.exception("run %s failed", run.id)
                with run._lock:
                    run._end("failed", f"Training stopped on an internal error: {exc}")
                more = False
            with self._cond:
                self._current = None
                if more and run.running:
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

    def add(self, run: Run) -> Run:
        """Hold ``run`` in memory (and write its metadata)."""
        with self._lock:
            self._runs[run.id] = run
            self._runs.move_to_end(run.id)
            self._evict()
        run.save_meta()
        return run

    def get(self, run_id: str) -> Run | None:
        """The run with this id: from memory, else read back from the store; None if there is none."""
        if not isinstance(run_id, str) or not RUN_ID.match(run_id):
            return None
        with self._lock:
            run = self._runs.get(run_id)
            if run is not None:
                self._runs.move_to_end(run_id)
                return run
        run = self.store.load(run_id)
        if run is not None:
            with self._lock:
                run = self._runs.setdefault(run_id, run)
                self._evict()
        return run

    def references(self) -> list[Run]:
        """The shipped reference runs."""
        return [r for r in (self.get(i) for i in self.store.reference_ids()) if r is not None]

    def _evict(self) -> None:
        """Drop the least recently used runs that are not training (their files stay)."""
        active = set(map(id, self.scheduler.active()))
        for run_id in list(self._runs):
            if len(self._runs) <= self.max_in_memory:
                break
            if id(self._runs[run_id]) not in active:
                del self._runs[run_id]


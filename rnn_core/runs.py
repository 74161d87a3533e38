"""Training runs as background jobs: a run, the store that keeps it on disk, and a scheduler that trains it.

- :class:`Run`: one training run: its settings, one record per epoch, checkpoints at log-spaced epochs
  (1, 2, 5, 10, 20, 50, ... and the last). Its trainer advances in time-budgeted chunks
  (``Trainer.train_for``); readers take a :class:`RunView`, one consistent snapshot of it.
- :class:`RunStore`: one directory per run (``run.json`` + ``ckpt-000500.pt``), every file written
  atomically (temporary file + rename, safe on a shared volume). One process writes a run: it holds the
  run's ``.lock`` (its pid and host) while the run is in its memory, and a lock whose process is gone is
  broken. Past a size cap the oldest finished runs nobody holds are removed first; a run that trains or is
  open is never removed. Everything read back is checked (a damaged file is a :class:`CheckpointError`).
  Read-only reference runs (shipped in ``data/reference/``) are listed beside them.
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
import socket
import tempfile
import threading
import time
import weakref
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

import pandas as pd
import torch

from . import environment, pace, settings_schema
from .checkpoint import (CheckpointError, check_at_least, check_bool, check_choice, check_config, check_int,
                         check_positive, check_text, check_vocab, checkpoint_payload, damaged, payload_bytes,
                         read_checkpoint, write_atomic)
from .data import SeqDataLoader, TokenizedCorpus, make_loader
from .engines import ENGINES, engine_for, make_model
from .errors import UserError
from .guards import LIMITS
from .model import device_label, formula_params, resolve_device
from .training import (MAX_LOSS, DivergenceError, EpochRecord, Trainer, evaluate, json_safe, parse_predict,
                       records_from_json)
from .variants import heldout_batch, heldout_tokens
from .vocab import Vocab

log = logging.getLogger("rnn_lab.runs")

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_ROOT = REPO_ROOT / "runs"  # git-ignored; RNN_LAB_RUNS moves it (e.g. onto a shared volume)
REFERENCE_ROOT = REPO_ROOT / "data" / "reference"  # shipped, read-only
DEFAULT_MAX_BYTES = environment.DEFAULT_RUNS_MAX_MB << 20  # RNN_LAB_RUNS_MAX_MB changes it
RUN_ID = re.compile(r"^[A-Za-z0-9_-]{3,40}$")
META = "run.json"
LOCK = ".lock"  # {"pid", "host", "token", "started"} of the process writing the run
STOP = "stop"  # present: a stop was asked for, by any process on any machine (rnn_core.run_control)
CHECKPOINT = re.compile(r"^ckpt-(\d{6,})\.pt$")
SAMPLE_EVERY = 10  # the lesson prints a sample every 10 epochs
META_EVERY_S = 5.0  # between checkpoints, run.json is rewritten at most this often
STATUSES = ("new", "running", "stopped", "done", "diverged", "out_of_memory", "failed")
ORIGINS = ("trained", "uploaded", "reference")
MAX_EPOCHS = LIMITS["num_epochs"][1]
SEEDS = (-(1 << 63), (1 << 64) - 1)  # what torch.manual_seed takes
MAX_EMBED = 1_000_000


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
    def from_dict(cls, d: dict, source: str = "settings") -> "RunSettings":
        """Settings from saved plain data (unknown keys are ignored, missing ones take the lesson's values), each
        checked for its type and range: CheckpointError naming ``source`` (the file) and the field otherwise."""
        if not isinstance(d, dict):
            raise damaged(source, "settings")
        return cls(**{k: _check_setting(source, k, v) for k, v in d.items() if k in SETTING_NAMES})

    def differences(self, other: "RunSettings") -> dict[str, tuple]:
        """{name: (this, other)} for every setting that differs."""
        return {f.name: (getattr(self, f.name), getattr(other, f.name)) for f in fields(self)
                if getattr(self, f.name) != getattr(other, f.name)}


SETTING_NAMES = frozenset(f.name for f in fields(RunSettings))
PREDICTIONS = ("greedy", "sample:T", "sharpen:alpha")
# The choices a saved setting is checked against (the engines in ENGINES' order: the message lists them)
SAVED_CHOICES = {"engine": tuple(ENGINES),
                 **{name: settings_schema.choices(name) for name in ("token", "partition", "activation", "input")}}


def _check_setting(source: str, name: str, value):
    """One saved setting as RunSettings holds it (CheckpointError when its type or range is wrong)."""
    if name in ("batch", "steps", "hidden"):
        lo, hi = LIMITS[{"batch": "batch_size", "steps": "num_steps", "hidden": "num_hiddens"}[name]]
        return check_int(source, name, value, lo, hi)
    if name == "epochs":
        return check_int(source, name, value, 1, MAX_EPOCHS)
    if name == "seed":
        return check_int(source, name, value, *SEEDS)
    if name == "embed":
        return check_int(source, name, value, 0, MAX_EMBED)
    if name == "lr":
        return check_positive(source, name, value)
    if name == "clip":
        return None if value is None else check_positive(source, name, value)
    if name == "detach":
        return check_bool(source, name, value)
    choices = SAVED_CHOICES.get(name)
    if choices is not None:
        return check_choice(source, name, value, choices)
    value = check_text(source, name, value)
    if name == "predict":
        try:
            parse_predict(value)
        except ValueError:
            check_choice(source, name, value, PREDICTIONS)  # raises: a spec outside those forms
    return value


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
    # An uploaded checkpoint has no records: the epoch and perplexity its file gives (None: not uploaded)
    file_epoch: int | None = None
    file_perplexity: float | None = None

    @property
    def epoch(self) -> int:
        """The epochs trained: one per record, or the uploaded checkpoint's epoch."""
        return len(self.records) or self.file_epoch or 0

    @property
    def perplexity(self) -> float | None:
        """The perplexity at :attr:`epoch`: the last record's, or the uploaded checkpoint's (None: unknown)."""
        return self.perplexity_at(self.epoch)

    def record(self, epoch: int) -> dict | None:
        """The record of ``epoch`` (1-based), or None when there is none (an uploaded run has no records)."""
        return self.records[epoch - 1] if isinstance(epoch, int) and 0 < epoch <= len(self.records) else None

    def perplexity_at(self, epoch: int) -> float | None:
        """The perplexity at ``epoch``: its record's, or the uploaded checkpoint's at its epoch; None if unknown."""
        record = self.record(epoch)
        if record is not None:
            return record["perplexity"]
        return self.file_perplexity if epoch == self.file_epoch else None

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
        return len(self.records) * self.tokens_per_epoch / self.wall_s if self.wall_s > 0 else 0.0

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
        """Wall-clock seconds to the last epoch (None when not running or unknown): rnn_core/pace.py."""
        return pace.view_eta_s(self)  # the run's own pace blended with earlier runs' for its settings

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
        self._unlock: weakref.finalize | None = None  # gives up the run directory's lock (see RunStore.claim)

    # ------------------------------------------------------------ creation

    @classmethod
    def create(cls, settings: RunSettings, tc: TokenizedCorpus, *, store: RunStore | None = None,
               run_id: str | None = None, device=None, init_params: dict | None = None,
               heldout: list[int] | None = None, heldout_text: str | bytes | None = None) -> "Run":
        """A fresh run for these settings on this tokenized corpus (a checkpoint's parameters to start from).

        A switch its engine lacks makes it train on the lesson engine (its settings then say so). The held-out
        text is ``heldout`` (token indices of ``tc.vocab``) or else the one ``settings.heldout`` names
        (``heldout_text``: an uploaded file's content); ValueError when that cannot be had. With a store, the
        run takes its directory's lock (RunLockedError while another writer holds it; RunStoreError when the
        store's folder cannot be written) and what an earlier run of the same id left there is removed.
        """
        placement = getattr(store, "placement", None)  # a worker pool or a Ray cluster trains the store's runs
        if placement is not None and cls is Run:
            return placement.create(settings, tc, store=store, run_id=run_id, device=device, init_params=init_params,
                                    heldout=heldout, heldout_text=heldout_text)
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
        run._take_lock(clear=True)  # last: a run refused above leaves the directory as it was
        run._latest = (0, _cpu_copy(formula_params(net)))
        if heldout:
            batch, steps = heldout_batch(len(heldout), settings.batch, settings.steps)
            run.heldout_loader = SeqDataLoader(heldout, batch, steps, False, settings.seed)
        return run

    @classmethod
    def from_checkpoint(cls, params: dict, vocab: Vocab, config: dict, *, store: RunStore | None = None,
                        name: str = "upload") -> "Run":
        """A finished run holding one checkpoint (an uploaded or CLI-saved file): to look at, not to train.

        Its view gives the file's epoch and perplexity (``RunView.epoch``, ``RunView.perplexity``); its settings'
        ``epochs`` are the ones the file says it was trained for (else its epoch). A config of the wrong types or
        ranges is a CheckpointError naming the field."""
        config = check_config(name, config)
        settings = RunSettings.from_dict({**config, "hidden": int(params["W_hh"].shape[0])}, name)
        epoch = config.get("epoch", 0)
        settings = replace(settings, epochs=max(settings.epochs if "epochs" in config else 1, epoch, 1),
                           corpus=config.get("corpus", name))
        run = cls(new_run_id(), settings, vocab, store=store, origin="uploaded", status="done",
                  extra={"file": name, "epoch": epoch, "perplexity": config.get("perplexity")})
        run._take_lock(clear=True)
        run._latest = (epoch, _cpu_copy(params))
        run._save_checkpoint(epoch)
        run.save_meta()
        return run

    # ------------------------------------------------------------ reading

    def view(self) -> RunView:
        """A snapshot: records, status and timings from one moment."""
        with self._lock:
            fraction = self.trainer.epoch_fraction if self.trainer is not None and self.status == "running" else 0.0
            uploaded = self.origin == "uploaded"
            return RunView(self.id, self.settings, self.status, self.error, tuple(self.records), fraction,
                           self.wall_s, self.tokens_per_epoch, tuple(self.checkpoints), self.good_epoch,
                           self.device, self.trainer is not None, len(self.vocab), self.origin,
                           self.extra.get("epoch", 0) if uploaded else None,
                           self.extra.get("perplexity") if uploaded else None)

    @property
    def wall_s(self) -> float:
        with self._lock:
            since = self._running_since
            return self._wall_before + (time.monotonic() - since if since is not None else 0.0)

    @property
    def epoch(self) -> int:
        """The epochs trained: one per record, or an uploaded checkpoint's epoch."""
        return len(self.records) or (self.extra.get("epoch", 0) if self.origin == "uploaded" else 0)

    @property
    def running(self) -> bool:
        return self.status == "running"

    def latest(self) -> tuple[int, dict[str, torch.Tensor]] | None:
        """(epoch, parameters) of the newest model (CPU copies, never changed afterwards)."""
        with self._lock:
            return self._latest

    def checkpoint(self, epoch: int) -> dict[str, torch.Tensor]:
        """The parameters saved at ``epoch`` (one of :attr:`checkpoints`); CheckpointError, in one sentence, when
        there is no such checkpoint (never kept, or its file removed) or its file is not this run's model."""
        latest = self.latest()
        if latest is not None and latest[0] == epoch:
            return latest[1]
        if epoch in self._memory_checkpoints:
            return self._memory_checkpoints[epoch]["params"]
        if self.store is None or not isinstance(epoch, int) or isinstance(epoch, bool):
            raise CheckpointError(f"Run {self.id} has no checkpoint at epoch {epoch}.", "checkpoint_no_epoch",
                                  run=self.id, epoch=epoch)
        params = self.store.read_checkpoint(self.id, epoch)[0]
        hidden, V = params["W_hh"].shape[0], params["W_hq"].shape[1]
        if hidden != self.settings.hidden or V != len(self.vocab):
            raise CheckpointError(f"Run {self.id}'s checkpoint at epoch {epoch} holds another model ({hidden} hidden "
                                  f"units, {V} tokens), not this run's.", "checkpoint_other_model", run=self.id,
                                  epoch=epoch, hidden=hidden, V=V)
        return params

    def checkpoint_bytes(self, epoch: int) -> bytes:
        """The checkpoint at ``epoch`` as a file's bytes (``python -m rnn_core.train --load`` reads it)."""
        return payload_bytes(checkpoint_payload(self.checkpoint(epoch), self.vocab, self._config(epoch)))

    def _config(self, epoch: int) -> dict:
        record = self.records[epoch - 1] if 0 < epoch <= len(self.records) else {}
        perplexity = record.get("perplexity", self.extra.get("perplexity") if epoch == self.extra.get("epoch") else None)
        return {**asdict(self.settings), "epoch": epoch, "perplexity": perplexity, "run": self.id}

    # ------------------------------------------------------------ control (any thread)

    def resume(self) -> None:
        """Mark running (the scheduler then trains it); a closed run takes its lock back first (RunLockedError
        when another writer took it meanwhile)."""
        if self.trainer is None:
            raise RuntimeError("This run was read back from disk: it can be looked at, not trained.")
        if self._unlock is None:
            self._take_lock(clear=False)
        with self._lock:
            if self.status != "running":
                self.status, self.error = "running", None
                self._running_since = time.monotonic()

    def request_stop(self) -> None:
        """Mark stopped: the chunk in progress is the last (the scheduler waits for it)."""
        with self._lock:
            if self.status == "running":
                self._end("stopped")

    def _take_lock(self, clear: bool) -> None:
        """Hold the run directory's lock while this object lives (or until :meth:`close`); ``clear``: remove what
        an earlier run of this id left there. No-op without a store."""
        if self.store is None or self._unlock is not None:
            return
        lock = self.store.claim(self.id, clear=clear)
        self._unlock = weakref.finalize(self, _release, lock.path, lock.token)

    def close(self) -> None:
        """Give up the run directory's lock (its files stay); :meth:`resume` takes it back."""
        if self._unlock is not None:
            self._unlock()
            self._unlock = None

    @property
    def locked(self) -> bool:
        """True while this run holds its directory's lock."""
        return self._unlock is not None and self._unlock.alive

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
                if exc.record is not None:  # the epoch that ended the run (the one that blew up, as far as it went)
                    with self._lock:
                        self.records.append({**asdict(exc.record), "wall_s": self.wall_s, "busy_s": self._busy_s,
                                             "threads": torch.get_num_threads()})
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
            if self.records and self.records[-1].get("diverged"):  # continued after a blow-up: trained again
                self.records.pop()
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
                    "vocab": self.vocab.to_dict(),
                    "records": [json_safe(r) if r.get("diverged") else r for r in self.records],
                    "probe": None if self.probe is None else [t.tolist() for t in self.probe]}

    @classmethod
    def from_meta(cls, meta: dict, store: RunStore | None = None, *, run_id: str | None = None,
                  source: str = META) -> "Run":
        """A run read back from run.json: its records and checkpoints, without a trainer. Every field is checked
        for its type and range: CheckpointError naming ``source`` and the field otherwise. ``run_id`` (the
        directory it was read from) wins over the id the file states."""
        if not isinstance(meta, dict):
            raise damaged(source, META)
        run_id = run_id or meta.get("id")
        if not isinstance(run_id, str) or not RUN_ID.match(run_id):
            raise damaged(source, "id")
        settings = RunSettings.from_dict(meta.get("settings"), source)
        vocab = check_vocab(source, meta.get("vocab"))
        status = check_choice(source, "status", meta.get("status"), STATUSES)
        extra = meta.get("extra") or {}
        if not isinstance(extra, dict):
            raise damaged(source, "extra")
        origin = check_choice(source, "origin", meta.get("origin", "trained"), ORIGINS)
        if origin == "uploaded":
            extra = {**extra, "epoch": check_int(source, "extra.epoch", extra.get("epoch", 0), 0, MAX_EPOCHS)}
            if extra.get("perplexity") is not None:
                extra["perplexity"] = check_at_least(source, "extra.perplexity", extra["perplexity"], 1.0)
        error = meta.get("error")
        created = meta.get("created")
        return cls(run_id, settings, vocab, store=store, origin=origin,
                   records=_check_records(source, records_from_json(meta.get("records", []))),
                   checkpoints=_check_checkpoints(source, meta.get("checkpoints", [])),
                   status=status if status != "running" else "stopped",  # its server is gone
                   error=None if error is None else check_text(source, "error", error),
                   wall_s=check_at_least(source, "wall_s", meta.get("wall_s", 0.0), 0.0),
                   good_epoch=check_int(source, "good_epoch", meta.get("good_epoch", 0), 0, MAX_EPOCHS),
                   tokens_per_epoch=check_int(source, "tokens_per_epoch", meta.get("tokens_per_epoch", 0), 0, 1 << 62),
                   created=None if created is None else check_at_least(source, "created", created, 0.0),
                   device=check_text(source, "device", meta.get("device", "CPU")), extra=extra,
                   probe=_check_probe(source, meta.get("probe"), len(vocab)))

    def wait(self, timeout_s: float = 60.0, poll_s: float = 0.05) -> RunView:
        """Block until the run is no longer running (or the timeout passes); its view."""
        deadline = time.monotonic() + timeout_s
        while self.running and time.monotonic() < deadline:
            time.sleep(poll_s)
        return self.view()


RECORD_NUMBERS = ("loss", "perplexity", "tokens_per_s", "grad_norm", "clip_fraction", "seconds", "wall_s")
RECORD_OPTIONAL_NUMBERS = ("busy_s", "threads", "heldout_perplexity")


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _check_records(source: str, records) -> list[dict]:
    """run.json's records: one dict per epoch from 1 on, its figures numbers and its sample text or null."""
    if not isinstance(records, list):
        raise damaged(source, "records")
    for i, r in enumerate(records):
        if not (isinstance(r, dict) and type(r.get("epoch")) is int and r["epoch"] == i + 1):
            raise damaged(source, f"records[{i}]")
        for k in RECORD_NUMBERS:
            if not _number(r.get(k)):
                raise damaged(source, f"records[{i}].{k}")
        for k in RECORD_OPTIONAL_NUMBERS:
            if r.get(k) is not None and not _number(r[k]):
                raise damaged(source, f"records[{i}].{k}")
        if r.get("sample") is not None and not isinstance(r["sample"], str):
            raise damaged(source, f"records[{i}].sample")
    return [dict(r) for r in records]


def _check_checkpoints(source: str, epochs) -> list[int]:
    """run.json's checkpoint epochs: distinct whole numbers, in order."""
    if not isinstance(epochs, list):
        raise damaged(source, "checkpoints")
    checked = [check_int(source, "checkpoints", e, 0, MAX_EPOCHS) for e in epochs]
    return sorted(set(checked))


def _check_probe(source: str, probe, vocab_size: int) -> tuple[torch.Tensor, torch.Tensor] | None:
    """run.json's probe minibatch: null, or [X, Y] of the same (batch, steps) shape holding token indices."""
    if probe is None:
        return None

    def rows_ok(m) -> bool:  # a non-empty (batch, steps) table of token indices
        return (isinstance(m, list) and bool(m) and all(isinstance(row, list) and row and len(row) == len(m[0])
                                                        for row in m)
                and all(type(x) is int and 0 <= x < vocab_size for row in m for x in row))

    if not (isinstance(probe, list) and len(probe) == 2 and all(rows_ok(m) for m in probe)
            and len(probe[0]) == len(probe[1]) and len(probe[0][0]) == len(probe[1][0])):
        raise damaged(source, "probe")
    return tuple(torch.tensor(m) for m in probe)


def _cpu_copy(params: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu", torch.float32, copy=True) for k, v in params.items()}


def new_run_id() -> str:
    """12 URL-safe random characters: a run's address, not guessable from another's."""
    return secrets.token_urlsafe(9)


# ---------------------------------------------------------------- the store

class RunStoreError(UserError, OSError):
    """The run store's folder cannot be used (a file, a path that cannot be made, no right to write)."""


class RunLockedError(UserError, RuntimeError):
    """Another live process writes the run with this id."""


HOST = socket.gethostname()
LOCK_GRACE_S = 30.0  # a lock file without readable content is one being written, for this long
_HELD: set[str] = set()  # tokens of the run locks this process holds


@dataclass(frozen=True)
class RunLock:
    """A run directory's lock held by this process (give it up with :func:`_release`)."""

    path: Path
    token: str


def _release(path: Path, token: str) -> None:
    """Remove the lock file if it is still this token's (a lock broken and taken by another stays theirs)."""
    _HELD.discard(token)
    holder = _read_lock(path)
    if holder is not None and holder.get("token") == token:
        try:
            path.unlink()
        except OSError:
            pass  # a folder removed meanwhile, or one this process can no longer write


def _read_lock(path: Path) -> dict | None:
    """The lock file's content, or None when it is missing, empty or not a lock's."""
    try:
        holder = json.loads(path.read_bytes())
    except (OSError, ValueError, RecursionError):
        return None
    return holder if isinstance(holder, dict) else None


def _process_start(pid: int) -> str | None:
    """When process ``pid`` started (Linux: clock ticks after boot), so that a reused pid is not taken for the
    process that wrote a lock; None where that cannot be read."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def _age_s(path: Path) -> float:
    try:
        return time.time() - path.stat().st_mtime
    except OSError:
        return math.inf


def _alive(holder: dict | None, path: Path) -> bool:
    """Whether the lock at ``path`` (content ``holder``) belongs to a process that is still running."""
    if holder is None:  # being written (fresh), or left damaged (old)
        return _age_s(path) < LOCK_GRACE_S
    pid = holder.get("pid")
    if type(pid) is not int or pid <= 0:
        return False
    if holder.get("host") != HOST:
        return True  # another machine's process: it cannot be asked, so it is taken to be running
    if pid == os.getpid():
        return holder.get("token") in _HELD
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # it exists, as another user
    started = _process_start(pid)
    return not (started and holder.get("started") and started != holder.get("started"))


def _ours(name: str) -> bool:
    """A file the store writes in a run directory (only these are ever removed)."""
    return (name in (META, LOCK, LOCK + ".break", STOP) or CHECKPOINT.match(name) is not None
            or (name.startswith(".") and name.endswith(".tmp")))


class RunStore:
    """Run directories under ``root`` (written) and ``reference_root`` (read only).

    ``root`` defaults to RNN_LAB_RUNS (else runs/ in the repository) and ``max_bytes`` to RNN_LAB_RUNS_MAX_MB; a
    bad value there is replaced by the default (``rnn_core.environment`` names it). Making a store never
    raises: a folder that cannot be written is a RunStoreError when the store first writes (or on
    :meth:`check`). Every failure a user can cause is a UserError: RunStoreError, RunLockedError (another
    process writes that run) or CheckpointError (a damaged or missing file).
    """

    def __init__(self, root: str | Path | None = None, reference_root: str | Path | None = REFERENCE_ROOT,
                 max_bytes: int | None = None):
        env = environment.read()
        self.root = Path(root) if root else env.runs or DEFAULT_ROOT
        self.reference_root = Path(reference_root) if reference_root else None
        self.max_bytes = max_bytes if max_bytes is not None else env.runs_max_bytes
        self._lock = threading.Lock()
        self._holders: list[Callable[[], Callable[[], Iterable[str]] | None]] = []
        self.placement = None  # where Run.create trains its runs: None here, else rnn_core.workers' RemoteScheduler
        pace.PACES.read(self.root)  # the paces runs left here (pace.json): the ETA's prior, re-read when it changes

    # ------------------------------------------------------------ the folder and the locks

    def check(self) -> Path:
        """The runs folder, made if missing and tried with a file written and removed; RunStoreError, in one
        sentence naming the folder and why, when it cannot be used."""
        root = self.root
        if root.exists() and not root.is_dir():
            raise RunStoreError(f"The runs folder {root} is a file, not a folder: set RNN_LAB_RUNS (or --run-dir) to "
                                "a folder.", "runs_root_not_folder", path=str(root))
        try:
            root.mkdir(parents=True, exist_ok=True)
            fd, probe = tempfile.mkstemp(prefix=".probe-", suffix=".tmp", dir=root)
            os.close(fd)
            os.unlink(probe)
        except OSError as exc:
            raise RunStoreError(f"The runs folder {root} cannot be written ({exc.strerror or exc}): set RNN_LAB_RUNS "
                                "(or --run-dir) to a folder this process can write.", "runs_root_unusable",
                                path=str(root), why=str(exc.strerror or exc)) from None
        return root

    def _unusable(self, exc: OSError) -> RunStoreError:
        return RunStoreError(f"The runs folder {self.root} cannot be written ({exc.strerror or exc}): set RNN_LAB_RUNS "
                             "(or --run-dir) to a folder this process can write.", "runs_root_unusable",
                             path=str(self.root), why=str(exc.strerror or exc))

    def claim(self, run_id: str, clear: bool = True) -> RunLock:
        """Take the lock of run ``run_id``'s directory for this process: RunLockedError, naming the process
        that holds it, while a live one does (a lock whose process is gone is broken). ``clear``: then remove
        the run.json and checkpoints an earlier run of this id left, so none is mixed with the new run's."""
        if not RUN_ID.match(run_id):
            raise ValueError(f"Bad run id {run_id!r}.")
        self.check()
        folder = self.root / run_id
        try:
            folder.mkdir(exist_ok=True)
        except OSError as exc:
            raise self._unusable(exc) from None
        lock = self._acquire(folder / LOCK, run_id)
        if clear:
            try:
                for f in folder.iterdir():
                    if _ours(f.name) and f.name not in (LOCK, LOCK + ".break"):
                        f.unlink(missing_ok=True)
            except OSError as exc:
                _release(lock.path, lock.token)
                raise self._unusable(exc) from None
        return lock

    def _acquire(self, path: Path, run_id: str) -> RunLock:
        mine = {"pid": os.getpid(), "host": HOST, "token": secrets.token_hex(8),
                "started": _process_start(os.getpid()), "time": time.time()}
        holder = None
        for _ in range(50):
            try:
                fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                holder = _read_lock(path)
                if _alive(holder, path):
                    break
                self._break(path, holder)
                continue
            except OSError as exc:
                raise self._unusable(exc) from None
            with os.fdopen(fd, "w") as f:
                json.dump(mine, f)
            _HELD.add(mine["token"])
            return RunLock(path, mine["token"])
        pid = holder.get("pid", "?") if holder else "?"
        host = holder.get("host", "?") if holder else "?"
        raise RunLockedError(f"Run {run_id} is being written by another process (pid {pid} on {host}): wait for it "
                             "to end or use another run id.", "run_locked", run=run_id, pid=pid, host=host)

    @staticmethod
    def _break(path: Path, holder: dict | None) -> None:
        """Remove a stale lock, unless another process took the lock meanwhile (the check and the removal
        happen under a second lock file, so two breakers cannot remove a fresh lock between them)."""
        breaker = path.with_name(LOCK + ".break")
        try:
            os.close(os.open(breaker, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
        except FileExistsError:
            if _age_s(breaker) > LOCK_GRACE_S:  # left by a breaker that died
                breaker.unlink(missing_ok=True)
            time.sleep(0.01)
            return
        try:
            current = _read_lock(path)
            if current == holder and not _alive(current, path):
                path.unlink(missing_ok=True)
        finally:
            breaker.unlink(missing_ok=True)

    def locked(self, run_id: str) -> bool:
        """True while a live process holds run ``run_id``'s lock."""
        path = self.root / run_id / LOCK
        return path.exists() and _alive(_read_lock(path), path)

    def add_holder(self, held: Callable[[], Iterable[str]]) -> None:
        """Runs that :meth:`prune` never removes: ``held()`` names them (a RunRegistry gives its runs in memory,
        training or open). A bound method is held weakly: a registry that is gone holds nothing."""
        ref = weakref.WeakMethod(held) if hasattr(held, "__self__") else (lambda: held)
        self._holders.append(ref)

    def held_ids(self) -> set[str]:
        """The ids every holder names."""
        ids: set[str] = set()
        for ref in list(self._holders):
            held = ref()
            if held is None:
                self._holders.remove(ref)
            else:
                ids.update(held())
        return ids

    # ------------------------------------------------------------ writing and reading

    def save_meta(self, run: Run) -> None:
        try:
            write_atomic(self.root / run.id / META, json.dumps(run.meta()).encode())
        except OSError as exc:
            raise self._unusable(exc) from None
        pace.observe(self.root, run.view())  # its pace, the prior of later runs with its settings (rnn_core/pace.py)

    def save_checkpoint(self, run_id: str, epoch: int, payload: dict) -> None:
        try:
            write_atomic(self.root / run_id / f"ckpt-{epoch:06d}.pt", payload_bytes(payload))
        except OSError as exc:
            raise self._unusable(exc) from None
        self.prune(keep={run_id})

    def read_checkpoint(self, run_id: str, epoch: int):
        """(params, vocab, config) of run ``run_id``'s checkpoint at ``epoch``; CheckpointError when there is none
        (never kept, or removed) or its file is damaged."""
        name = f"ckpt-{epoch:06d}.pt"
        path = self._dir(run_id) / name
        if not path.is_file():
            raise CheckpointError(f"Run {run_id} has no checkpoint at epoch {epoch}.", "checkpoint_no_epoch",
                                  run=run_id, epoch=epoch)
        return read_checkpoint(path, f"{run_id}/{name}")

    def read(self, run_id: str) -> Run:
        """The run with this id read back from disk, every field checked; CheckpointError, in one sentence, when
        there is no such run or its run.json is damaged."""
        if not isinstance(run_id, str) or not RUN_ID.match(run_id):
            raise CheckpointError(f"There is no run {shown_id(run_id)}.", "run_missing", run=shown_id(run_id))
        source = f"{run_id}/{META}"
        try:
            text = (self._dir(run_id) / META).read_bytes()
        except FileNotFoundError:
            raise CheckpointError(f"There is no run {run_id}.", "run_missing", run=run_id) from None
        except OSError:
            raise CheckpointError(f"{source} cannot be read.", "run_unreadable", source=source) from None
        try:
            meta = json.loads(text)
        except (ValueError, RecursionError):
            raise CheckpointError(f"{source} cannot be read.", "run_unreadable", source=source) from None
        return Run.from_meta(meta, self, run_id=run_id, source=source)

    def load(self, run_id: str) -> Run | None:
        """The run with this id read back from disk, or None (no such run, or a damaged one: :meth:`read` says
        which)."""
        try:
            return self.read(run_id)
        except CheckpointError:
            return None

    def _dir(self, run_id: str) -> Path:
        if not RUN_ID.match(run_id):
            raise KeyError(f"Bad run id {run_id!r}.")
        ref = self.reference_root / run_id if self.reference_root else None
        return ref if ref is not None and (ref / META).exists() else self.root / run_id

    def reference_ids(self) -> list[str]:
        """The shipped reference runs' ids."""
        if self.reference_root is None or not self.reference_root.is_dir():
            return []
        return sorted(p.name for p in self.reference_root.iterdir() if (p / META).exists())

    # ------------------------------------------------------------ the size cap

    def prune(self, keep: Iterable[str] = frozenset()) -> list[str]:
        """Remove the least recently written runs until the store is under its size cap, but never one in
        ``keep``, one a holder names (open or training in this process) or one whose lock a live process holds
        (training elsewhere): only finished runs nobody holds. Only the store's own files are removed."""
        with self._lock:
            if not self.root.is_dir():
                return []
            held = set(keep) | self.held_ids()
            runs = []
            for d in self.root.iterdir():
                if not (RUN_ID.match(d.name) and d.is_dir()):
                    continue
                try:
                    files = [f for f in d.iterdir() if _ours(f.name)]
                    size = sum(f.stat().st_size for f in files)
                    runs.append((d.stat().st_mtime, d.name, size))
                except OSError:
                    continue  # removed meanwhile
            total = sum(size for _, _, size in runs)
            removed = []
            for _, name, size in sorted(runs):
                if total <= self.max_bytes:
                    break
                if name not in held and size and self._remove(name):
                    total -= size
                    removed.append(name)
            return removed

    def _remove(self, run_id: str) -> bool:
        """Remove a run's files, holding its lock meanwhile (so no writer starts in it); False when it is locked."""
        folder = self.root / run_id
        try:
            lock = self._acquire(folder / LOCK, run_id)
        except (RunLockedError, RunStoreError):
            return False
        try:
            for f in folder.iterdir():
                if _ours(f.name) and f.name != LOCK:
                    f.unlink(missing_ok=True)
        except OSError:
            pass
        finally:
            _release(lock.path, lock.token)
        try:
            folder.rmdir()  # only when nothing else is in it
        except OSError:
            pass
        return True


def shown_id(run_id) -> str:
    """A run id as a message quotes it (cut, in case it is not one)."""
    text = str(run_id)
    return text if len(text) <= 40 else text[:37] + "..."


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
        env = environment.read().train_threads
        self.chunk_s, self.max_active, self.explore_every = chunk_s, max_active, explore_every
        # A run alone trains in longer turns (less bookkeeping per minibatch); Stop still waits at most this.
        self.solo_chunk_s = max(chunk_s, solo_chunk_s)
        self._threads_now: int | None = None
        # torch's thread count is per thread: the worker's choice does not change the pages' threads.
        # ``threads`` (or RNN_LAB_TRAIN_THREADS) fixes the count; else it is chosen per run, from 1 to
        # ``max_threads`` (default: every core, at most 8).
        fixed = threads or (env if not max_threads else None)
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
            except UserError as exc:  # e.g. the store's folder could no longer be written: said as it is
                log.warning("run %s stopped: %s", run.id, exc)
                with run._lock:
                    run._end("failed", str(exc))
                more = False
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

    def __post_init__(self):
        self.store.add_holder(self.held_ids)  # the store never prunes a run held here

    def held_ids(self) -> set[str]:
        """The runs this server holds: every one in memory (open in a session, or recently used) and every one
        training."""
        with self._lock:
            ids = set(self._runs)
        return ids | {r.id for r in self.scheduler.active()}

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
        """Drop the least recently used runs that are not training (their files stay, their locks are given up)."""
        active = set(map(id, self.scheduler.active()))
        for run_id in list(self._runs):
            if len(self._runs) <= self.max_in_memory:
                break
            if id(self._runs[run_id]) not in active:
                self._runs.pop(run_id).close()


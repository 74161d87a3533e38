"""One training run (:class:`Run`): its settings, one record per epoch, checkpoints at log-spaced epochs
(1, 2, 5, 10, 20, 50, ... and the last). Its trainer advances in time-budgeted chunks (``Trainer.train_for``);
readers take a :class:`~rnn_core.run_settings.RunView`, one consistent snapshot of it.
"""
from __future__ import annotations

import math
import secrets
import threading
import time
import weakref
from dataclasses import asdict, replace
from typing import TYPE_CHECKING

import torch

from . import pace
from .checkpoint import (CheckpointError, check_at_least, check_choice, check_config, check_int, check_text,
                         check_vocab, checkpoint_payload, damaged, payload_bytes)
from .data import SeqDataLoader, TokenizedCorpus, make_loader
from .engines import engine_for, make_model
from .model import device_label, formula_params, resolve_device
from .run_lock import META, RUN_ID, release
from .run_settings import MAX_EPOCHS, ORIGINS, STATUSES, RunSettings, RunView, checkpoint_epochs
from .training import (MAX_LOSS, DivergenceError, EpochRecord, Trainer, evaluate, json_safe, parse_predict,
                       records_from_json)
from .variants import heldout_batch, heldout_tokens
from .vocab import Vocab

if TYPE_CHECKING:
    from .run_store import RunStore

SAMPLE_EVERY = 10  # the lesson prints a sample every 10 epochs
META_EVERY_S = 5.0  # between checkpoints, run.json is rewritten at most this often


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
        self._changed = threading.Condition(self._lock)  # notified when an epoch ends and when the run stops
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
        run = cls(run_id or new_run_id(), settings, tc.vocab, trainer=trainer, store=store,
                  tokens_per_epoch=len(loader) * settings.batch * settings.steps, device=device_label(device),
                  probe=first_minibatch(loader))
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
        uploaded = self.extra.get("perplexity") if epoch == self.extra.get("epoch") else None
        perplexity = record.get("perplexity", uploaded)
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

    def fail(self, error: str) -> None:
        """Mark failed with ``error`` (a turn that raised: the scheduler trains it no more)."""
        with self._lock:
            self._end("failed", error)

    def _take_lock(self, clear: bool) -> None:
        """Hold the run directory's lock while this object lives (or until :meth:`close`); ``clear``: remove what
        an earlier run of this id left there. No-op without a store."""
        if self.store is None or self._unlock is not None:
            return
        lock = self.store.claim(self.id, clear=clear)
        self._unlock = weakref.finalize(self, release, lock.path, lock.token)

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
        self._changed.notify_all()

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
                        self.records.append(self._row(exc.record))
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
            if self.records and self.records[-1].get("diverged"):  # continued after a blow-up: trained again
                self.records.pop()
            self.records.append(self._row(record))
            self._latest = (record.epoch, params)
            self.good_epoch = self.trainer.good_epoch
            self._changed.notify_all()
        if record.epoch in self._schedule and record.epoch == self.good_epoch:
            self._save_checkpoint(record.epoch)
            self.save_meta()
        elif time.monotonic() - self._meta_written > META_EVERY_S:
            self.save_meta()

    def _row(self, record: EpochRecord) -> dict:
        """An epoch's record as run.json keeps it: with the run's wall and busy time so far (the turn in progress
        included) and the threads it trained on."""
        busy = self._busy_s + (time.perf_counter() - self._turn_start if self._turn_start else 0.0)
        return {**asdict(record), "wall_s": self.wall_s, "busy_s": busy, "threads": torch.get_num_threads()}

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
        self._keep_pace()

    def settle(self) -> None:
        """After a stop: keep the current epoch as a checkpoint (so it can be downloaded) and write metadata."""
        latest = self.latest()
        if latest is not None and latest[0] and latest[0] not in self.checkpoints:
            self._save_checkpoint(latest[0])
        self.save_meta()
        self._keep_pace()

    def _keep_pace(self) -> None:
        """Once the run ends or stops: its pace, the ETA's prior for later runs with its settings (pace.json in
        its store; a run of no store keeps it in memory)."""
        pace.observe(self.store.root if self.store is not None else None, self.view())

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

    def wait(self, timeout_s: float = 60.0, past_epoch: int | None = None) -> RunView:
        """Block until the run is no longer running, or (given ``past_epoch``) has trained more epochs than that,
        or the timeout passes; its view."""
        with self._changed:
            self._changed.wait_for(lambda: not self.running or past_epoch is not None and self.epoch > past_epoch,
                                   timeout_s)
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


def first_minibatch(loader: SeqDataLoader) -> tuple[torch.Tensor, torch.Tensor]:
    """(X, Y), each (batch, steps): the minibatch ``loader``'s next epoch starts with. Its random state is put back
    as it was, so that epoch draws the same positions again."""
    state = loader.rng.getstate()
    try:
        return next(iter(loader))
    finally:
        loader.rng.setstate(state)


def _cpu_copy(params: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu", torch.float32, copy=True) for k, v in params.items()}


def new_run_id() -> str:
    """12 URL-safe random characters: a run's address, not guessable from another's."""
    return secrets.token_urlsafe(9)



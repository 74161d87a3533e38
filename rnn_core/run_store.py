"""The run store (:class:`RunStore`): one directory per run (``run.json`` + ``ckpt-000500.pt``), every file
written atomically (temporary file + rename, safe on a shared volume). One process writes a run: it holds the
run's ``.lock`` (rnn_core.run_lock) while the run is in its memory. Past a size cap the oldest finished runs
nobody holds are removed first; a run that trains or is open is never removed. Everything read back is checked
(a damaged file is a :class:`CheckpointError`). Read-only reference runs (``data/reference/``) are listed beside them.
"""
from __future__ import annotations

import json
import os
import secrets
import tempfile
import threading
import time
import weakref
from collections.abc import Callable, Iterable
from pathlib import Path

from . import environment, pace
from .checkpoint import CheckpointError, payload_bytes, read_checkpoint, write_atomic
from .run import Run
from .run_lock import (CHECKPOINT, DEFAULT_ROOT, HOST, LOCK, LOCK_GRACE_S, META, REFERENCE_ROOT, RUN_ID, STOP, RunLock,
                       RunLockedError, RunStoreError, age_s, alive, hold, process_start, read_lock, release)


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
                release(lock.path, lock.token)
                raise self._unusable(exc) from None
        return lock

    def _acquire(self, path: Path, run_id: str) -> RunLock:
        mine = {"pid": os.getpid(), "host": HOST, "token": secrets.token_hex(8),
                "started": process_start(os.getpid()), "time": time.time()}
        holder = None
        for _ in range(50):
            try:
                fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                holder = read_lock(path)
                if alive(holder, path):
                    break
                self._break(path, holder)
                continue
            except OSError as exc:
                raise self._unusable(exc) from None
            with os.fdopen(fd, "w") as f:
                json.dump(mine, f)
            hold(mine["token"])
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
            if age_s(breaker) > LOCK_GRACE_S:  # left by a breaker that died
                breaker.unlink(missing_ok=True)
            time.sleep(0.01)
            return
        try:
            current = read_lock(path)
            if current == holder and not alive(current, path):
                path.unlink(missing_ok=True)
        finally:
            breaker.unlink(missing_ok=True)

    def locked(self, run_id: str) -> bool:
        """True while a live process holds run ``run_id``'s lock."""
        path = self.root / run_id / LOCK
        return path.exists() and alive(read_lock(path), path)

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
            release(lock.path, lock.token)
        try:
            folder.rmdir()  # only when nothing else is in it
        except OSError:
            pass
        return True


def shown_id(run_id) -> str:
    """A run id as a message quotes it (cut, in case it is not one)."""
    text = str(run_id)
    return text if len(text) <= 40 else text[:37] + "..."


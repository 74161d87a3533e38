"""A run directory's names and its one-writer lock: the lock file holds the pid, host and start time of the
process that writes the run, and a lock whose process is gone is taken to be stale (rnn_core.run_store breaks it).
"""
from __future__ import annotations

import json
import math
import os
import re
import socket
import time
from dataclasses import dataclass
from pathlib import Path

from . import environment
from .errors import UserError

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_ROOT = REPO_ROOT / "runs"  # git-ignored; RNN_LAB_RUNS moves it (e.g. onto a shared volume)
REFERENCE_ROOT = REPO_ROOT / "data" / "reference"  # shipped, read-only
DEFAULT_MAX_BYTES = environment.DEFAULT_RUNS_MAX_MB << 20  # RNN_LAB_RUNS_MAX_MB changes it
RUN_ID = re.compile(r"^[A-Za-z0-9_-]{3,40}$")
META = "run.json"
LOCK = ".lock"  # {"pid", "host", "token", "started"} of the process writing the run
STOP = "stop"  # present: a stop was asked for, by any process on any machine (rnn_core.run_control)
CHECKPOINT = re.compile(r"^ckpt-(\d{6,})\.pt$")


class RunStoreError(UserError, OSError):
    """The run store's folder cannot be used (a file, a path that cannot be made, no right to write)."""


class RunLockedError(UserError, RuntimeError):
    """Another live process writes the run with this id."""


HOST = socket.gethostname()
LOCK_GRACE_S = 30.0  # a lock file without readable content is one being written, for this long
_HELD: set[str] = set()  # tokens of the run locks this process holds


@dataclass(frozen=True)
class RunLock:
    """A run directory's lock held by this process (give it up with :func:`release`)."""

    path: Path
    token: str


def hold(token: str) -> None:
    """Count the lock with this token as held by this process (its file is written)."""
    _HELD.add(token)


def release(path: Path, token: str) -> None:
    """Remove the lock file if it is still this token's (a lock broken and taken by another stays theirs)."""
    _HELD.discard(token)
    holder = read_lock(path)
    if holder is not None and holder.get("token") == token:
        try:
            path.unlink()
        except OSError:
            pass  # a folder removed meanwhile, or one this process can no longer write


def read_lock(path: Path) -> dict | None:
    """The lock file's content, or None when it is missing, empty or not a lock's."""
    try:
        holder = json.loads(path.read_bytes())
    except (OSError, ValueError, RecursionError):
        return None
    return holder if isinstance(holder, dict) else None


def process_start(pid: int) -> str | None:
    """When process ``pid`` started (Linux: clock ticks after boot), so that a reused pid is not taken for the
    process that wrote a lock; None where that cannot be read."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def age_s(path: Path) -> float:
    try:
        return time.time() - path.stat().st_mtime
    except OSError:
        return math.inf


def alive(holder: dict | None, path: Path) -> bool:
    """Whether the lock at ``path`` (content ``holder``) belongs to a process that is still running."""
    if holder is None:  # being written (fresh), or left damaged (old)
        return age_s(path) < LOCK_GRACE_S
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
    started = process_start(pid)
    return not (started and holder.get("started") and started != holder.get("started"))


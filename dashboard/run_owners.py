"""Who controls a run: a run is stopped, continued or restarted only by the session that started or uploaded it,
or by whoever gives its owner key.

The key is a random secret kept in that session's state; the server keeps only its SHA-256 beside the run's id,
and no URL or link ever carries it. Anyone else who opens ``?run=<id>`` sees the run read only.
"""
from __future__ import annotations

import hashlib
import hmac
import secrets
import threading

import streamlit as st

from rnn_core.errors import UserError
from rnn_core.runs import Run

# run id -> SHA-256 of its owner key (hex), for the process's life; the keys themselves live only in sessions
_owner_hashes: dict[str, str] = {}
_lock = threading.Lock()


class NotOwnerError(UserError, PermissionError):
    """A command on a run this session does not control."""


def forget_all() -> None:
    """No run has an owner any more (the server's runs were replaced)."""
    with _lock:
        _owner_hashes.clear()


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def _keys() -> dict[str, str]:
    """This session's owner keys: run id -> key (session state only: never a URL, never a link)."""
    return st.session_state.setdefault("_owner_keys", {})


def session_ids() -> list[str]:
    """The ids of the runs this session started, uploaded or took control of by key, oldest first."""
    return st.session_state.setdefault("run_ids", [])


def _list(run: Run) -> None:
    if run.id not in session_ids():
        session_ids().append(run.id)


def adopt(run: Run) -> None:
    """Make this session the owner of a run it just created, and list it among the session's runs."""
    key = secrets.token_urlsafe(24)
    with _lock:
        _owner_hashes[run.id] = _digest(key)
    _keys()[run.id] = key
    _list(run)


def _key_matches(run_id: str, key: str | None) -> bool:
    with _lock:
        expected = _owner_hashes.get(run_id)
    return bool(key) and expected is not None and hmac.compare_digest(_digest(key), expected)


def owns(run: Run | None) -> bool:
    """True when this session may control ``run``: it started or uploaded it, or gave its owner key."""
    return run is not None and _key_matches(run.id, _keys().get(run.id))


def controlled_elsewhere(run: Run | None) -> bool:
    """True when another session holds ``run``'s owner key (this session may watch it, not control it)."""
    if run is None:
        return False
    with _lock:
        owned = run.id in _owner_hashes
    return owned and not owns(run)


def take_control(run: Run) -> bool:
    """Make this session the owner of a run that no session controls (a shared exercise arm it starts); True
    when this session controls it afterwards."""
    if not controlled_elsewhere(run) and not owns(run):
        adopt(run)
    return owns(run)


def is_shared(run: Run | None) -> bool:
    """True for another session's run, opened by its address: it can be watched, not controlled."""
    return run is not None and run.origin != "reference" and not owns(run)


def owner_key(run: Run | None) -> str | None:
    """The key that gives control of ``run`` to another tab or after a reload (None unless this session owns it)."""
    return _keys().get(run.id) if owns(run) else None


def claim(run: Run, key: str) -> bool:
    """Control of ``run`` for this session when ``key`` is its owner key; False (nothing changes) otherwise."""
    key = (key or "").strip()
    if not _key_matches(run.id, key):
        return False
    _keys()[run.id] = key
    _list(run)
    return True


def require_owner(run: Run) -> None:
    """NotOwnerError unless this session controls ``run``."""
    if not owns(run):
        raise NotOwnerError(f"Run {run.id} belongs to another session: it can be watched here, not controlled.",
                            "not_owner", id=run.id)

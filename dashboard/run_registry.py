"""The server's runs: one registry (a run store and the scheduler that trains its runs) for the process, and
reading a run from it, where a bad id or a damaged run.json is said in one sentence instead of raised.

Training happens in ``rnn_core.runs.Scheduler``'s workers, outside every script run: a page only reads a run's
:class:`~rnn_core.runs.RunView` and sends commands, so it never blocks or pauses a run.
"""
from __future__ import annotations

import threading

from rnn_core.errors import UserError
from rnn_core.runs import RUN_ID, Run, RunRegistry, RunStore
from rnn_core.scheduler import make_scheduler

from . import i18n, run_owners
from .i18n import t

RUN_ERRORS = (UserError,)  # what a command may refuse with: said in one sentence, in the page's language
# What reading a damaged run.json or checkpoint can raise besides a UserError (a file of wrong types)
DAMAGE = (OSError, ValueError, TypeError, KeyError, IndexError, AttributeError, RuntimeError)

# The server's runs live as long as the process: a module global, not st.cache_resource, which "Clear caches"
# would empty while runs still train.
_registry: RunRegistry | None = None
_registry_lock = threading.Lock()


def registry() -> RunRegistry:
    """The server's runs: one store, one scheduler (created with the first session)."""
    global _registry
    with _registry_lock:
        if _registry is None:
            store = RunStore()  # RNN_LAB_WORKERS / RNN_LAB_RAY_ADDRESS: where its runs train (rnn_core.scheduler)
            _registry = RunRegistry(store, make_scheduler(store))
        return _registry


def reset_registry(new: RunRegistry | None = None) -> RunRegistry:
    """Stop every run the server trains, close its scheduler, and make ``new`` the server's runs (a fresh
    registry when None); the registry in use. A test starts from a clean server this way."""
    global _registry
    with _registry_lock:
        old, _registry = _registry, new
        run_owners.forget_all()
    if old is not None:
        for run in old.scheduler.active():
            old.scheduler.stop(run)
        old.scheduler.close()
    return registry()


def read(run_id: str) -> tuple[Run | None, str]:
    """(the run, "") or (None, why: "bad" for an id of the wrong form, "missing", or a sentence on the damage)."""
    if not isinstance(run_id, str) or not RUN_ID.match(run_id):
        return None, "bad"
    try:
        run = registry().get(run_id)
        if run is not None:
            view = run.view()  # a run.json of wrong types fails here or in these reads, not in a page
            _ = (view.epoch, view.target, view.progress, view.last, tuple(view.checkpoints))
    except UserError as exc:
        return None, i18n.error_text(exc)
    except DAMAGE:
        return None, t("runs.damaged")
    return (run, "") if run is not None else (None, _why_not_here(run_id))


def _why_not_here(run_id: str) -> str:
    """"missing" when the store has no run of this id, else why its run.json cannot be read (in one sentence)."""
    try:
        registry().store.read(run_id)
    except UserError as exc:
        return "missing" if exc.key == "run_missing" else i18n.error_text(exc)
    except DAMAGE:
        return t("runs.damaged")
    return "missing"


def get(run_id: str | None) -> Run | None:
    """The run with this id if it exists and can be read, else None."""
    return read(run_id)[0] if run_id else None


def references() -> list[Run]:
    """The shipped reference runs that can be read."""
    try:
        ids = registry().store.reference_ids()
    except DAMAGE:
        return []
    return [r for r in map(get, ids) if r is not None]


def session_runs() -> list[Run]:
    """The runs this session started or uploaded (or took control of by key), newest last."""
    return [r for r in map(get, run_owners.session_ids()) if r is not None and run_owners.owns(r)]

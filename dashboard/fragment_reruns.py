"""A fragment's timed rerun never drops the full run just before it (installed once per server by Home.py).

Streamlit 1.67 (``streamlit/runtime/app_session.py``, ``AppSession.request_rerun``): a session's ScriptRunner
stops as soon as its run ends, after handing the run's messages (its elements, its ``script_finished``) to the
server's event loop. A fragment's rerun request that the event loop handles before those messages finds the runner
stopped; the session then starts a new runner for the fragment and ignores every message of the old one still
queued ("Ignoring event from non-current ScriptRunner"). The browser never gets the full run it asked for (a
slider's move, Stop): the page keeps the run before, while its live fragment goes on redrawing, until the next full
run. A ``run_every`` fragment's timer sends such requests every 2 s in every browser, whatever else runs
(``setInterval`` in the frontend's App.handleAutoRerun); the server's event loop lags most when it is busiest, so a
class on one server loses a full run now and then (benchmarks/class_load.py, docs/performance.md).

Here such a request waits one turn of the event loop. The stopped runner queued all its run's messages before it
stopped, so they go out first; the request then starts the new runner as before (or goes to a newer one).
"""
from __future__ import annotations

import functools

from streamlit.runtime.app_session import AppSession
from streamlit.runtime.scriptrunner_utils.script_requests import ScriptRequestType

_ORIGINAL = "_rnn_lab_request_rerun"  # the class attribute that keeps Streamlit's own method once installed


def runner_stopped(session) -> bool:
    """True when ``session``'s current ScriptRunner has ended its run and takes no more requests (its requests'
    state is STOP) while the session still holds it: its last messages may still wait on the event loop."""
    requests = getattr(getattr(session, "_scriptrunner", None), "_requests", None)
    return getattr(requests, "_state", None) is ScriptRequestType.STOP


def waits(session, client_state) -> bool:
    """Whether this rerun request waits one turn of the event loop: a fragment's rerun (a timer's or a widget's in
    a fragment) while the session's runner has stopped. A full run's request never waits: it replaces the runner
    on purpose (runner.fastReruns), and its own run redraws the whole page."""
    return bool(client_state is not None and client_state.fragment_id and runner_stopped(session)
                and getattr(session, "_event_loop", None) is not None)


def install(cls=AppSession) -> None:
    """Wrap ``cls.request_rerun`` (once; later calls do nothing)."""
    if _ORIGINAL in cls.__dict__:
        return
    original = cls.request_rerun

    def later(self, client_state) -> None:
        try:
            original(self, client_state)
        except Exception as exc:  # noqa: BLE001  what handle_backmsg does with a request's error, as before
            self.handle_backmsg_exception(exc)

    @functools.wraps(original)
    def request_rerun(self, client_state=None) -> None:
        if waits(self, client_state):
            try:  # call_soon_threadsafe is what the runner queued its messages with: this request goes after them
                self._event_loop.call_soon_threadsafe(later, self, client_state)
                return
            except RuntimeError:  # the event loop is closed (the server stops): as Streamlit does it
                pass
        original(self, client_state)

    setattr(cls, _ORIGINAL, original)
    cls.request_rerun = request_rerun


def installed(cls=AppSession) -> bool:
    return _ORIGINAL in cls.__dict__

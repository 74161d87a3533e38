"""dashboard/fragment_reruns.py: a fragment's rerun request that finds the session's script runner stopped waits until
the stopped runner's messages (the full run just before it: its elements, its script_finished) have been handled.

Without it Streamlit starts a new runner at once and ignores the old one's queued messages: under a class on one
server (benchmarks/class_load.py) a slider's move or Stop then never showed its full run.
"""
import asyncio
import inspect
from types import SimpleNamespace

import pytest
from streamlit.proto.ClientState_pb2 import ClientState
from streamlit.runtime.app_session import AppSession
from streamlit.runtime.scriptrunner.script_runner import ScriptRunner
from streamlit.runtime.scriptrunner_utils.script_requests import RerunData, ScriptRequests

from dashboard import fragment_reruns as fr


def _requests(state: str) -> ScriptRequests:
    """A real ScriptRequests in the state a runner's requests are in: running its run, or stopped after it."""
    requests = ScriptRequests()
    requests.request_rerun(RerunData())  # the runner's first request ...
    assert requests.on_scriptrunner_ready().rerun_data is not None  # ... taken: the run goes on
    if state == "stopped":
        requests.on_scriptrunner_ready()  # the run ended with nothing more asked: the runner stops
    return requests


def _state(fragment_id: str = "") -> ClientState:
    cs = ClientState()
    cs.fragment_id = fragment_id
    return cs


class FakeSession:
    """Streamlit's AppSession as the patch reads it: its runner, its event loop and request_rerun. What happens is
    written to ``log`` in order: the stopped runner's messages and the requests as the session handles them."""

    def __init__(self, loop, runner_state: str):
        self._event_loop = loop
        self._scriptrunner = SimpleNamespace(_requests=_requests(runner_state))
        self.log: list[str] = []
        self.errors: list[Exception] = []

    def request_rerun(self, client_state=None):
        if client_state is not None and client_state.fragment_id == "broken":
            raise ValueError("a request that fails")
        self.log.append("fragment rerun" if client_state and client_state.fragment_id else "full rerun")

    def handle_backmsg_exception(self, exc):
        self.errors.append(exc)


@pytest.fixture
def patched():
    class Session(FakeSession):
        pass
    fr.install(Session)
    return Session


def run_async(coro):
    """asyncio.run, also in a test process whose browser tests left an event loop marked as running in this thread
    (the sync Playwright API): the mark is put aside for the call and put back after."""
    running = asyncio._get_running_loop()
    asyncio._set_running_loop(None)
    try:
        return asyncio.run(coro)
    finally:
        asyncio._set_running_loop(running)


def _race(session_cls, runner_state: str, client_state) -> list[str]:
    """The runner's last messages are on the event loop (queued as Streamlit queues them, call_soon_threadsafe)
    when the request comes: what the session handles, in order."""
    async def main():
        loop = asyncio.get_running_loop()
        session = session_cls(loop, runner_state)
        for name in ("the full run's elements", "script_finished"):
            loop.call_soon_threadsafe(session.log.append, name)
        session.request_rerun(client_state)
        for _ in range(3):
            await asyncio.sleep(0)  # a few turns of the event loop
        return session
    return run_async(main())


def test_a_fragment_rerun_after_a_stopped_runner_goes_after_its_last_messages(patched):
    session = _race(patched, "stopped", _state("live"))
    assert session.log == ["the full run's elements", "script_finished", "fragment rerun"]
    # Streamlit's own method, unpatched, takes it first: the new runner makes the old one's messages ignored
    assert _race(FakeSession, "stopped", _state("live")).log[0] == "fragment rerun"


def test_other_requests_are_handled_at_once(patched):
    # a full run's request replaces the runner on purpose (fastReruns): it redraws the whole page
    assert _race(patched, "stopped", _state("")).log[0] == "full rerun"
    # a runner that still runs takes the fragment's request into its queue, after its run
    assert _race(patched, "running", _state("live")).log[0] == "fragment rerun"
    assert _race(patched, "stopped", None).log[0] == "full rerun"


def test_a_request_that_fails_later_is_handled_as_streamlit_handles_it(patched):
    session = _race(patched, "stopped", _state("broken"))
    assert [str(e) for e in session.errors] == ["a request that fails"]


def test_install_wraps_once():
    class Session(FakeSession):
        pass
    fr.install(Session)
    wrapped = Session.request_rerun
    fr.install(Session)
    assert Session.request_rerun is wrapped and fr.installed(Session)


def test_what_the_patch_reads_is_there_in_this_streamlit():
    # the names the patch reads are Streamlit's private ones: a Streamlit that renames them fails here, not silently
    assert "self._scriptrunner" in inspect.getsource(AppSession.__init__)
    assert "self._event_loop = asyncio.get_running_loop()" in inspect.getsource(AppSession.__init__)
    assert "self._requests = ScriptRequests()" in inspect.getsource(ScriptRunner.__init__)
    assert "self._event_loop.call_soon_threadsafe" in inspect.getsource(AppSession._call_soon_on_event_loop)
    assert list(inspect.signature(AppSession.request_rerun).parameters) == ["self", "client_state"]
    assert fr.runner_stopped(SimpleNamespace(_scriptrunner=SimpleNamespace(_requests=_requests("stopped"))))
    assert not fr.runner_stopped(SimpleNamespace(_scriptrunner=SimpleNamespace(_requests=_requests("running"))))
    assert not fr.runner_stopped(SimpleNamespace(_scriptrunner=None))


def test_the_server_installs_it_at_start(monkeypatch):
    import importlib.util
    from pathlib import Path

    import threading

    monkeypatch.setattr(AppSession, "request_rerun", AppSession.request_rerun)  # restored after the test
    monkeypatch.setattr(threading.Thread, "start", lambda self: None)  # not the warm-up's imports: not tested here
    spec = importlib.util.spec_from_file_location(
        "rnn_lab_home_under_test", Path(__file__).resolve().parent.parent / "dashboard" / "Home.py")
    home = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(home)

    async def start():
        async with home.warm_up(None):
            return fr.installed(AppSession)
    try:
        assert run_async(start())
    finally:
        if fr.installed(AppSession):
            delattr(AppSession, fr._ORIGINAL)

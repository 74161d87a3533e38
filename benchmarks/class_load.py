"""A class at once: N sessions train and move sliders on one dashboard server at the same time.

``python -m benchmarks.class_load --sessions 20 --seconds 60``

Starts ``streamlit run dashboard/Home.py`` on a free 127.0.0.1 port (with the browser tests' helpers in
``tests/browser/st_browser.py``) and opens N sessions at once. Each session is a websocket client speaking
Streamlit's own protocol (``BackMsg`` / ``ForwardMsg`` on ``/_stcore/stream``), doing what a browser tab
does: the URL's query string and page, the widget values, button triggers, and the timer that re-runs a
``run_every`` fragment (live training). No browser: 20 Chromium renderers drawing live charts on 2 cores
measured mostly themselves (with 2 tabs a Playwright call already took 0.3 s); the real browser's costs
are measured by ``tests/browser`` and in README.

Every session gets its own corpus, seed, hidden size and epoch count. It opens
``/training?corpus=..&hidden=..&seed=..&epochs=..``, presses Start and, while its model trains, moves the
Batch size / Time steps slider one notch every 1-3 s until the load window ends; then it presses Stop and
goes to Inside the RNN in the same session.

Reported (table on stdout, JSON in ``artifacts/class_load.json``):

- errors: exceptions, error boxes or "Traceback" sent to a page, waits that time out (with the script runs that
  ended meanwhile, full or fragment), lost websocket connections, script runs that end in error, tracebacks in
  the server's log, models that never trained, and full runs whose end never came (a fragment's run started
  before it: the server dropped the full run's last messages, see dashboard/fragment_reruns.py);
- script runs that ended early for a newer run, full and fragment runs apart: a fragment run's end mostly reads
  "early" because the server's send queue marks a run's unsent end so when the next run starts
  (streamlit/runtime/forward_msg_queue.py), not because anything stopped it;
- isolation: what each page shows is that session's own: the Settings line (corpus, batch, steps, hidden,
  epochs, seed), the progress bar's epoch target, the sample's prefix and characters (checked against its
  own seeded corpus), the sidebar's session model, and Inside's trained-model banner (corpus, hidden
  units, epochs). A value that belongs to another session is named as a leak from that session;
- the server's peak resident memory and its CPU: the Streamlit process and every process under it (worker
  processes, their resource tracker) and, with ``--ray``, the Ray cluster's processes, from /proc every 0.2 s
  (benchmarks/process_cpu.py); the cores busy over the class (after the warm-up) and over the window in which
  all runs trained, the whole machine's beside them (other programs too), and each kind of process's share;
- latency under load, from the client's message to the server's answer (no rendering): page open ->
  first run done; Start -> first epoch on the progress bar; slider move -> the run showing the new value
  done; Inside after training -> its run done; gaps between live training updates (a progress bar
  received from any run, fragment or full: both redraw the curves; a slider's full run restarts the live
  fragment's timer) and, of those, the gaps that ended in the timer's own redraw.

``--ray``: the runs train on a local Ray cluster of two nodes on this machine (benchmarks/ray_cluster.py; the
server gets ``RNN_LAB_RAY_ADDRESS`` and its run store in ``RNN_LAB_RUNS``), started before the server and
stopped after it. Every run is an actor of one logical CPU, so each node gets ``--ray-cpus`` of them (default:
half the sessions). Run it under ``flock /tmp/ray.lock``: ``ray stop --force`` ends every Ray process of the
machine.
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import json
import os
import random
import re
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from urllib.parse import urlencode

import websockets  # a dependency of streamlit
from streamlit.proto.Alert_pb2 import Alert
from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.Common_pb2 import DoubleArray
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from streamlit.proto.WidgetStates_pb2 import WidgetState

import rnn_core
from dashboard.i18n import t
from rnn_core import corpus as rc_corpus
from benchmarks import process_cpu as pc
from benchmarks import ray_cluster
from tests.browser import st_browser as sb  # the browser tests' server start, health wait and stop

REPO_ROOT = Path(__file__).resolve().parents[1]

ARTIFACTS = REPO_ROOT / "artifacts"
SERVER_LOG = ARTIFACTS / "class_load_server.log"
CORPORA = list(rc_corpus.BUILTIN_CORPORA)  # generated per seed: every session gets its own text
HIDDEN0, EPOCHS0, SEED0 = 16, 2000, 1000  # session i: hidden 16+i, 2000+i epochs, seed 1000+i
OPEN_TIMEOUT_S = 60.0  # a page's first run, or Start's first epoch: the whole class opens and presses Start at once
WAIT_TIMEOUT_S = 30.0  # any other wait: longer is a frozen page
SHARE_MIN_SPAN = 0.5  # a run's share of turns is measured when its epochs' ends span this much of the window
FINAL_GRACE_S = 45.0  # after the load window: Stop, Inside, checks; then everything left is cancelled

SETTINGS_RE = re.compile(r"(?P<whose>Settings|This run):\s*(?P<title>.+?), (?P<token>\w+) tokens "
                         r"\(\|V\| = (?P<V>\d+)\), "
                         r"batch (?P<batch>\d+), (?P<steps>\d+) steps?, (?P<hidden>\d+) hidden units?.*?"
                         r"(?P<epochs>[\d,]+) epochs?.*?seed (?P<seed>\d+)", re.S)  # 1 step, 1 epoch
PROGRESS_RE = re.compile(r"Epoch (?P<epoch>[\d,]+) of (?P<target>[\d,]+)")
# "... batch size 31 (this run: 32) ...": the setting named as the Training page names it (English)
DIFFERS_RE = {k: re.compile(rf"{re.escape(t(f'setting.{k}', 'en'))} (\d+) \(this run: (\d+)\)")
              for k in ("batch", "steps")}
SIDEBAR_MODEL_RE = re.compile(r"Trained model of this session: (?P<epoch>[\d,]+)/(?P<target>[\d,]+) epochs?")
BANNER_RE = re.compile(r"Trained model of this session: (?P<epoch>[\d,]+) epochs? on (?P<title>.+?), "
                       r"(?P<hidden>\d+) hidden units?")
LANGS = ("en", "zh")


def corpus_titles() -> dict[str, str]:
    """Every title a page may give a built-in corpus (the catalogues' in each language, rnn_core's own) -> its
    key: pages name a corpus in the page's language, so a title is compared by the corpus it names."""
    titles = {}
    for key, (title, *_rest) in rc_corpus.BUILTIN_CORPORA.items():
        titles[title] = key
        for lang in LANGS:
            titles[t(f"corpus.{key}.title", lang)] = key
    return titles


CORPUS_TITLES = corpus_titles()


def corpus_of(title: str) -> str:
    """The key of the built-in corpus a shown title names; the title itself when it names none (a leak of
    something that is no built-in corpus is then reported as the text shown)."""
    return CORPUS_TITLES.get(title.strip(), title)


def _int(text: str) -> int:
    return int(text.replace(",", ""))


@dataclass
class Plan:
    """What one session asks for: all of it distinct from every other session."""

    index: int
    corpus: str
    hidden: int
    seed: int
    epochs: int
    batch: int = 32
    steps: int = 35

    @property
    def title(self) -> str:
        return rc_corpus.BUILTIN_CORPORA[self.corpus][0]

    def params(self) -> dict:
        return {"corpus": self.corpus, "hidden": self.hidden, "seed": self.seed, "epochs": self.epochs,
                "batch": self.batch, "steps": self.steps}


def make_plans(n: int) -> list[Plan]:
    return [Plan(i, CORPORA[i % len(CORPORA)], HIDDEN0 + i, SEED0 + i, EPOCHS0 + i) for i in range(n)]


@dataclass
class CorpusFacts:
    """What a session's own corpus allows a page to show: its characters and its text."""

    chars: set
    text: str


def corpus_facts(plan: Plan) -> CorpusFacts:
    """The characters and opening text of the session's seeded corpus, as the dashboard tokenizes it."""
    tc = rnn_core.tokenize_corpus(rc_corpus.builtin_corpus(plan.corpus, seed=plan.seed), "char", 10_000)
    chars = {t for t in tc.vocab.idx_to_token if len(t) == 1}
    return CorpusFacts(chars | {"␣"}, "".join(tc.vocab.to_tokens(tc.corpus[:400])))


@dataclass
class SessionRecord:
    """What happened in one session."""

    index: int
    plan: dict
    errors: list = field(default_factory=list)
    leaks: list = field(default_factory=list)  # isolation violations
    checks: int = 0  # isolation checks made
    open_s: float | None = None
    start_to_first_epoch_s: float | None = None
    slider_s: list = field(default_factory=list)
    inside_s: float | None = None
    update_gaps_s: list = field(default_factory=list)
    timer_gaps_s: list = field(default_factory=list)  # the gaps that ended in a fragment's timed redraw
    fragment_run_s: list = field(default_factory=list)  # a live update's run, start to end
    epochs_trained: int = 0
    finished: bool = False
    runs: dict = field(default_factory=dict)  # script_finished status -> count
    early: dict = field(default_factory=lambda: {"full": 0, "fragment": 0})  # runs that ended early, by kind
    lost_full_runs: int = 0  # full runs whose end never came: a fragment's run started before it
    received_mib: float = 0.0


class Client:
    """One student's browser tab, reduced to what the server sees: Streamlit's websocket protocol.

    Like the frontend it sends ``rerun_script`` with the URL's query string, the page, the widget values
    the student set and one-shot button triggers; it re-runs a fragment every ``run_every`` seconds after
    an ``auto_rerun`` message (as the browser's timer does) until the next full run; it keeps the URL's
    query string as the server rewrites it (widgets bound to query parameters).

    The timers as Streamlit 1.67's frontend keeps them (App.handleAutoRerun, handleNewSession): a timer sends
    its fragment's rerun every interval whatever else runs, also while a full run is on its way; an
    ``auto_rerun`` for a fragment whose timer has that interval leaves the timer as it is; a run whose
    ``metadata.run`` lists no fragments (a full run, whoever asked for it) ends every timer.
    """

    def __init__(self, plan: Plan, plans: list[Plan], facts: CorpusFacts, ws_url: str, rec: SessionRecord):
        self.plan, self.plans, self.facts, self.ws_url, self.rec = plan, plans, facts, ws_url, rec
        self.batch, self.steps = plan.batch, plan.steps  # what the sliders hold now
        self.rng = random.Random(plan.seed)
        self.ws = None
        self.query = urlencode(plan.params())
        self.page_name, self.page_hash = "training", ""
        self.pages: dict[str, str] = {}  # url path -> page_script_hash
        self.widget_ids: dict[str, str] = {}  # widget key -> widget id
        self.widgets: dict = {}  # widget id -> WidgetState the student set
        self.timers: dict[str, tuple[asyncio.Task, float]] = {}  # fragment id -> its auto-rerun timer, interval
        self.updated = asyncio.Event()
        self.full_done: list[float] = []  # full script runs finished successfully
        self.fragment_done: list[float] = []
        self.finished_log: list[tuple[float, str, str]] = []  # every script_finished: (time, status, full/fragment)
        self.progress_seen: list[float] = []  # when a progress bar arrived (full or fragment run)
        self.progress_by_timer: list[bool] = []  # ... and whether a fragment's run drew it (its timer's redraw)
        self.run_progress0 = 0  # len(progress_seen) when the script run now going started
        self.stop_sent: int | None = None  # len(progress_seen) when Stop was pressed
        self.run_started = 0.0
        self.full_open: float | None = None  # when the full run now going started (its end not received yet)
        self.first_update = None  # fragment runs done before Start's first epoch was shown
        self.shown: dict[str, tuple[float, str]] = {}  # what the page shows: name -> (time received, text)
        self.sample_next = False  # the next code block is the sample under the Samples heading
        self.closed = False

    # ------------------------------------------------------------ the protocol

    async def send_rerun(self, fragment_id: str = "", triggers: tuple = ()) -> None:
        msg = BackMsg()
        cs = msg.rerun_script
        cs.query_string = self.query
        if self.page_hash:
            cs.page_script_hash = self.page_hash
        else:
            cs.page_name = self.page_name
        cs.widget_states.widgets.extend([*self.widgets.values(), *triggers])
        if fragment_id:
            cs.fragment_id, cs.is_auto_rerun = fragment_id, True
        await self.ws.send(msg.SerializeToString())

    async def auto_rerun(self, fragment_id: str, interval: float) -> None:
        """The browser's timer for a fragment with run_every."""
        while True:
            await asyncio.sleep(interval)
            await self.send_rerun(fragment_id)

    def stop_timers(self, fragment_ids=None) -> None:
        for fid in list(self.timers if fragment_ids is None else fragment_ids):
            timer = self.timers.pop(fid, None)
            if timer is not None:
                timer[0].cancel()

    async def reader(self) -> None:
        try:
            async for payload in self.ws:
                if isinstance(payload, bytes):
                    self.rec.received_mib += len(payload) / 2**20
                    self.handle(ForwardMsg.FromString(payload), time.perf_counter())
                    self.updated.set()
        except websockets.ConnectionClosed:
            pass
        finally:
            self.closed = True
            self.stop_timers()
            self.updated.set()

    def handle(self, msg, now: float) -> None:
        kind = msg.WhichOneof("type")
        if kind == "new_session":
            self.run_started, self.run_progress0 = now, len(self.progress_seen)
            if msg.metadata.run.fragment_ids and self.full_open is not None:
                # a fragment's run waits for the full run before it to end (Streamlit queues it behind), and a newer
                # full run replaces it; a fragment's run first means the server dropped the full run's last messages
                self.rec.lost_full_runs += 1
                self.rec.errors.append(f"a full run's end never came: a fragment's run started "
                                       f"{now - self.full_open:.1f} s after it, before its end")
                self.full_open = None
            if not msg.metadata.run.fragment_ids:
                self.full_open = now
                # a full run (its run identity lists no fragments, whoever asked for it: the student, or the app's
                # st.rerun() in a fragment's run): it registers its fragments' timers anew
                self.stop_timers()
        elif kind == "navigation":
            self.pages = {p.url_pathname: p.page_script_hash for p in msg.navigation.app_pages}
            self.page_hash = msg.navigation.page_script_hash  # the page this run showed
        elif kind == "page_info_changed":
            self.query = msg.page_info_changed.query_string
        elif kind == "auto_rerun":
            a = msg.auto_rerun
            if a.fragment_id in self.timers and self.timers[a.fragment_id][1] == a.interval:
                return  # the timer goes on as it was (not restarted)
            self.stop_timers([a.fragment_id])
            self.timers[a.fragment_id] = (asyncio.create_task(self.auto_rerun(a.fragment_id, a.interval)), a.interval)
        elif kind == "stop_auto_rerun":
            self.stop_timers(list(msg.stop_auto_rerun.fragment_ids))
        elif kind == "script_finished":
            status = ForwardMsg.ScriptFinishedStatus.Name(msg.script_finished)
            run_kind = "fragment" if msg.metadata.run.fragment_ids else "full"
            self.finished_log.append((now, status, run_kind))
            self.rec.runs[status] = self.rec.runs.get(status, 0) + 1
            if run_kind == "full":
                self.full_open = None
            if status == "FINISHED_EARLY_FOR_RERUN":
                self.rec.early[run_kind] += 1
            if status == "FINISHED_SUCCESSFULLY":
                self.full_done.append(now)
            elif status == "FINISHED_FRAGMENT_RUN_SUCCESSFULLY":
                self.fragment_done.append(now)
                # a fragment's elements carry its id in full runs too: the run's end says what kind it was
                for i in range(self.run_progress0, len(self.progress_by_timer)):
                    self.progress_by_timer[i] = True
                self.rec.fragment_run_s.append(round(now - self.run_started, 3))
            elif status == "FINISHED_WITH_COMPILE_ERROR":
                self.rec.errors.append("a script run ended with a compile error")
        elif kind == "delta" and msg.delta.WhichOneof("type") == "new_element":
            self.element(msg.delta.new_element, now)

    def element(self, el, now: float) -> None:
        """Keep what the checks read; record exceptions and error boxes."""
        kind = el.WhichOneof("type")
        if self.sample_next and kind != "code":
            # the sample is the element right under its heading; anything else there (the caption "no sample
            # yet") means there is none in this run, and a later code block (the toolbar's "link to this view"
            # in the next full run, an error, the owner key) is no sample
            self.sample_next = False
        widget = getattr(el, kind, None)
        wid = getattr(widget, "id", "")
        if isinstance(wid, str) and wid.startswith("$$ID-"):
            self.widget_ids[wid.rsplit("-", 1)[1]] = wid
        if kind == "exception":
            self.rec.errors.append(f"exception on the page: {el.exception.type}: {el.exception.message[:200]}")
        elif kind == "alert":
            body = el.alert.body
            if el.alert.format == Alert.ERROR:
                self.rec.errors.append(f"error box on the page: {body[:200]}")
            if "model of this session" in body:
                self.shown["banner"] = (now, body)
            elif body.startswith("The settings differ from this run"):
                self.shown["differs"] = (now, body)
        elif kind == "markdown":
            body = el.markdown.body
            if "Traceback" in body:
                self.rec.errors.append(f"traceback text on the page: {body[:200]}")
            if body.startswith(("**Settings:**", "**This run:**")):
                self.shown["settings"] = (now, body.replace("**", ""))
            elif SIDEBAR_MODEL_RE.search(body):
                self.shown["sidebar_model"] = (now, body.replace("**", ""))
        elif kind == "progress":
            self.shown["progress"] = (now, el.progress.text)
            self.progress_seen.append(now)
            self.progress_by_timer.append(False)  # until its run ends as a fragment's run
        elif kind == "heading" and "Samples from" in el.heading.body:
            self.shown["samples_heading"] = (now, el.heading.body)
            self.sample_next = True
        elif kind == "code" and el.code.language != "python" and self.sample_next:
            # the sample is the code block right under its heading; other code blocks (an error, the owner key
            # in its popover) are not samples
            self.shown["sample"] = (now, el.code.code_text)
            self.sample_next = False

    async def until(self, condition, what: str, timeout_s: float = WAIT_TIMEOUT_S) -> None:
        """Wait for `condition()` (checked after every message), or raise TimeoutError naming `what`."""
        deadline = time.perf_counter() + timeout_s
        while not condition():
            if self.closed:
                raise ConnectionError(f"the websocket closed while waiting for {what}")
            left = deadline - time.perf_counter()
            if left <= 0:
                banner = self.shown.get("banner")
                raise TimeoutError(f"no {what} within {timeout_s:.0f} s (progress bar: "
                                   f"{self.shown.get('progress', (0, '-'))[1]!r}"
                                   + (f"; last notice: {banner[1][:160]!r})" if banner else ")"))
            self.updated.clear()
            try:
                await asyncio.wait_for(self.updated.wait(), timeout=min(left, 1.0))
            except asyncio.TimeoutError:
                pass

    def finished_since(self, t0: float) -> str:
        """The script runs that ended after ``t0``: seconds after it, full or fragment run, how it ended."""
        after = [f"{t - t0:.1f}s {kind} {status.removeprefix('FINISHED_')}" for t, status, kind in self.finished_log
                 if t > t0]
        return ", ".join(after) or "none"

    def run_ended_after(self, t0: float) -> bool:
        """The progress bar shown after ``t0`` says the run trains no more: stopped, or finished (a small model on
        a quiet server can train all its epochs before the load window ends)."""
        shown = self.shown_after("progress", t0) or ""
        return any(t(f"status.{status}", "en") in shown for status in ("stopped", "done"))

    def full_run_after(self, t0: float) -> bool:
        return bool(self.full_done) and self.full_done[-1] > t0

    def shown_after(self, name: str, t0: float) -> str | None:
        t, text = self.shown.get(name, (0.0, None))
        return text if t > t0 else None

    # ------------------------------------------------------------ checking what the page shows

    def owner_of(self, key: str, value) -> str:
        """Which other session a shown value belongs to (for naming a leak), if any."""
        others = [p.index for p in self.plans if p.index != self.plan.index and getattr(p, key) == value]
        return f" (session {others[0]}'s)" if others else ""

    def expect(self, where: str, what: str, shown, own, key: str | None = None) -> None:
        self.rec.checks += 1
        if shown != own:
            self.rec.leaks.append(f"{where}: {what} {shown!r}, not its own {own!r}"
                                  + (self.owner_of(key, shown) if key else ""))

    def settings_match(self) -> re.Match | None:
        return SETTINGS_RE.search(self.shown.get("settings", (0, ""))[1])

    def check_settings(self, where: str) -> None:
        m = self.settings_match()
        if m is None:
            self.rec.errors.append(f"{where}: no Settings line on the Training page")
            return
        p = self.plan
        self.expect(where, "corpus", corpus_of(m["title"]), p.corpus, "corpus")
        self.expect(where, "hidden units", int(m["hidden"]), p.hidden, "hidden")
        self.expect(where, "seed", int(m["seed"]), p.seed, "seed")
        self.expect(where, "epochs", _int(m["epochs"]), p.epochs, "epochs")
        # a run's line keeps the settings it was started with (the plan's); the sidebar's line follows the sliders
        run_line = m["whose"] == "This run"
        self.expect(where, "batch", int(m["batch"]), p.batch if run_line else self.batch)
        self.expect(where, "steps", int(m["steps"]), p.steps if run_line else self.steps)

    def check_training_view(self, where: str) -> None:
        """Progress bar, sidebar's session model and the sample: the session's own run."""
        m = PROGRESS_RE.search(self.shown.get("progress", (0, ""))[1])
        if m is None:
            self.rec.errors.append(f"{where}: no progress bar text")
        else:
            self.expect(where, "progress target", _int(m["target"]), self.plan.epochs, "epochs")
            self.rec.epochs_trained = max(self.rec.epochs_trained, _int(m["epoch"]))
        m = SIDEBAR_MODEL_RE.search(self.shown.get("sidebar_model", (0, ""))[1])
        if m is not None:
            self.expect(where, "sidebar's session model", _int(m["target"]), self.plan.epochs, "epochs")
        heading = self.shown.get("samples_heading", (0, None))[1]
        if heading is not None:
            prefix = heading.split("Samples from", 1)[1].strip().strip("“”\"")
            self.rec.checks += 1
            if prefix not in self.facts.text:
                self.rec.leaks.append(f"{where}: sample prefix {prefix!r} is not from its own corpus")
        sample = self.shown.get("sample", (0, None))[1]
        if sample:
            foreign = set(sample) - self.facts.chars - {"\n"}
            self.rec.checks += 1
            if foreign:
                self.rec.leaks.append(f"{where}: sample {sample[:60]!r} has characters "
                                      f"{''.join(sorted(foreign))!r} its corpus does not have")

    # ------------------------------------------------------------ the session

    def trigger(self, key: str) -> WidgetState:
        if key not in self.widget_ids:
            raise LookupError(f"no widget with key {key!r} on the page")
        return WidgetState(id=self.widget_ids[key], trigger_value=True)

    async def move_slider(self) -> None:
        """Move Batch size or Time steps one notch; time it until the page's run with the new value is done."""
        which = self.rng.choice(["batch", "steps"])
        current = getattr(self, which)
        delta = -1 if current > 2 and self.rng.random() < 0.5 else 1
        setattr(self, which, current + delta)
        if which not in self.widget_ids:
            raise LookupError(f"no {which} slider on the page")
        wid = self.widget_ids[which]
        self.widgets[wid] = WidgetState(id=wid, double_array_value=DoubleArray(data=[current + delta]))
        want = (self.batch, self.steps)
        t0 = time.perf_counter()
        await self.send_rerun()

        def settled() -> bool:
            """A full run after the move shows the new slider values: in the note that the sidebar differs
            from the run (no note: the sidebar equals the run's values again)."""
            if not (self.full_run_after(t0) and self.shown["settings"][0] > t0 and self.settings_match()):
                return False
            note = self.shown_after("differs", t0) or ""
            shown = []
            for key in ("batch", "steps"):
                m = DIFFERS_RE[key].search(note)
                shown.append(int(m[1]) if m else getattr(self.plan, key))
            return tuple(shown) == want
        try:
            await self.until(settled, f"finished run showing {which} {current}->{current + delta}")
        except TimeoutError as exc:  # say what the server did instead
            raise TimeoutError(f"{exc}; runs finished since the move: {self.finished_since(t0)}") from None
        self.rec.slider_s.append(round(time.perf_counter() - t0, 3))

    async def run(self, load_end: float) -> None:
        p = self.plan
        reader = None
        try:
            t0 = time.perf_counter()
            self.ws = await websockets.connect(self.ws_url, subprotocols=["streamlit"], max_size=None,
                                               open_timeout=OPEN_TIMEOUT_S, ping_interval=None)
            reader = asyncio.create_task(self.reader())
            await self.send_rerun()
            await self.until(lambda: self.full_run_after(t0), "first run of /training", OPEN_TIMEOUT_S)
            self.rec.open_s = round(time.perf_counter() - t0, 3)
            self.check_settings("open")

            t0 = time.perf_counter()
            await self.send_rerun(triggers=(self.trigger("start_training"),))

            def trained() -> bool:
                m = PROGRESS_RE.search(self.shown_after("progress", t0) or "")
                return m is not None and _int(m["epoch"]) >= 1
            # on Ray each run starts a new actor process (torch imported anew), the whole class at once
            await self.until(trained, "epoch on the progress bar after Start", OPEN_TIMEOUT_S)
            self.rec.start_to_first_epoch_s = round(time.perf_counter() - t0, 3)
            self.first_update = len(self.progress_seen)

            # every session moves a slider at least once, even when opening and Start took the whole window (a
            # busy machine): a session that moved none would have checked nothing of what a slider changes
            while (time.perf_counter() < load_end or not self.rec.slider_s) and not self.closed:
                await asyncio.sleep(min(self.rng.uniform(1.0, 3.0), max(0.0, load_end - time.perf_counter())))
                if time.perf_counter() >= load_end and self.rec.slider_s:
                    break
                await self.move_slider()
                self.check_settings("slider")
                self.check_training_view("training")

            t0 = time.perf_counter()
            self.stop_sent = len(self.progress_seen)
            await self.send_rerun(triggers=(self.trigger("stop_training"),))
            try:
                await self.until(lambda: self.full_run_after(t0) and self.run_ended_after(t0),
                                 "finished run after Stop")
            except TimeoutError as exc:  # say what the server did instead
                raise TimeoutError(f"{exc}; runs finished since Stop: {self.finished_since(t0)}") from None
            self.check_settings("stopped")
            self.check_training_view("stopped")
            if self.rec.epochs_trained < 1:
                self.rec.errors.append("the model never trained (0 epochs)")

            if "inside" not in self.pages:
                raise LookupError("no Inside page in the navigation")
            t0 = time.perf_counter()
            self.page_hash = self.pages["inside"]
            await self.send_rerun()
            await self.until(lambda: self.full_run_after(t0) and self.shown_after("banner", t0) is not None,
                             "Inside page with the trained-model banner")
            self.rec.inside_s = round(time.perf_counter() - t0, 3)
            m = BANNER_RE.search(self.shown["banner"][1])
            if m is None:
                self.rec.errors.append(f"inside: not the trained-model banner: {self.shown['banner'][1][:120]!r}")
            else:
                self.expect("inside", "model's corpus", corpus_of(m["title"]), p.corpus, "corpus")
                self.expect("inside", "model's hidden units", int(m["hidden"]), p.hidden, "hidden")
                self.rec.checks += 1
                if _int(m["epoch"]) < self.rec.epochs_trained:
                    self.rec.leaks.append(f"inside: model of {m['epoch']} epochs, fewer than the "
                                          f"{self.rec.epochs_trained} this session trained")
            self.rec.finished = True
        except asyncio.CancelledError:
            self.rec.errors.append("did not finish before the time limit")
            raise
        except Exception as exc:  # a timeout or a lost connection: a failed load, recorded, never hidden
            self.rec.errors.append(f"{type(exc).__name__}: {str(exc).strip().splitlines()[0][:1500]}")
        finally:
            if self.first_update is not None:  # live updates while training, also when a wait timed out
                # any run that redraws the progress bar is an update the student sees (fragment or full)
                seen = self.progress_seen[self.first_update:self.stop_sent]
                self.rec.update_gaps_s = [round(b - a, 3) for a, b in zip(seen, seen[1:])]
                timed = self.progress_by_timer[self.first_update:self.stop_sent]
                self.rec.timer_gaps_s = [g for g, by_timer in zip(self.rec.update_gaps_s, timed[1:]) if by_timer]
            self.stop_timers()
            if self.ws is not None:
                await self.ws.close()
            if reader is not None:
                reader.cancel()


# ---------------------------------------------------------------- the server's log

def log_problems(text: str) -> list[str]:
    """Tracebacks and uncaught-exception lines in the server log."""
    problems = []
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("Traceback"):
            end = next((j for j in range(i + 1, len(lines)) if lines[j] and not lines[j].startswith(" ")), i)
            problems.append("server traceback: " + " | ".join(lines[max(end - 1, i):end + 1])[:400])
        elif "Uncaught app exception" in line:
            problems.append("server: " + line.strip()[:300])
    return problems


# ---------------------------------------------------------------- the run

def stats(values: list[float]) -> dict:
    """n, min, median, p95 (nearest rank), max of a list of seconds."""
    if not values:
        return {"n": 0, "min": None, "median": None, "p95": None, "max": None}
    s = sorted(values)
    return {"n": len(s), "min": round(s[0], 3), "median": round(statistics.median(s), 3),
            "p95": round(s[min(len(s) - 1, max(0, round(0.95 * len(s)) - 1))], 3), "max": round(s[-1], 3)}


async def drive(ws_url: str, plans: list[Plan], seconds: float) -> list[SessionRecord]:
    """All sessions at once; bounded by the load window plus FINAL_GRACE_S (and the first run's timeout)."""
    facts = {p.index: corpus_facts(p) for p in plans}
    records = [SessionRecord(p.index, asdict(p)) for p in plans]
    load_end = time.perf_counter() + seconds
    tasks = [asyncio.create_task(Client(p, plans, facts[p.index], ws_url, r).run(load_end))
             for p, r in zip(plans, records)]
    _, pending = await asyncio.wait(tasks, timeout=seconds + FINAL_GRACE_S)
    for task in pending:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return records


async def warm_server(ws_url: str, plan: Plan) -> float:
    """One session opens /training and waits for its first run (a lecturer's tab before the class): the
    server's first imports are done before the class connects. Its seconds; nothing else of it is kept."""
    client = Client(plan, [plan], corpus_facts(plan), ws_url, SessionRecord(plan.index, asdict(plan)))
    t0 = time.perf_counter()
    client.ws = await websockets.connect(ws_url, subprotocols=["streamlit"], max_size=None,
                                         open_timeout=OPEN_TIMEOUT_S, ping_interval=None)
    reader = asyncio.create_task(client.reader())
    try:
        await client.send_rerun()
        await client.until(lambda: client.full_run_after(t0), "warm-up run of /training", OPEN_TIMEOUT_S)
    finally:
        await client.ws.close()
        reader.cancel()
    return time.perf_counter() - t0


def run(sessions: int, seconds: float, warm: bool = False, ray: bool = False, ray_cpus: int | None = None) -> dict:
    """Start the server, drive the class, stop the server; everything measured in one dict. ``warm``: one
    session opens /training first (not counted), so the class does not meet the server's first imports. ``ray``:
    the runs train on a local Ray cluster of two nodes (benchmarks.ray_cluster), ``ray_cpus`` logical CPUs each
    (default: half the sessions, rounded up: every run is an actor of one CPU)."""
    with contextlib.ExitStack() as stack:
        cluster = None
        if ray:
            ray_cpus = ray_cpus or max(1, math.ceil(sessions / 2))
            cluster = stack.enter_context(ray_cluster.local_cluster(cpus=ray_cpus))
        return _run(sessions, seconds, warm, cluster)


def server_env(runs_dir: Path, cluster: ray_cluster.Cluster | None) -> dict:
    """The server's added environment: its run store and, on Ray, the cluster's address (the store is on this
    machine, so both nodes and the server see it at one path)."""
    env = {"RNN_LAB_RUNS": str(runs_dir)}
    if cluster is not None:
        env.update(RNN_LAB_RAY_ADDRESS=cluster.address, RAY_USAGE_STATS_ENABLED="0")
    return env


def _run(sessions: int, seconds: float, warm: bool, cluster: ray_cluster.Cluster | None) -> dict:
    ARTIFACTS.mkdir(exist_ok=True)
    plans = make_plans(sessions)
    port = sb.free_port()
    base_url = f"http://127.0.0.1:{port}"
    t_start = time.perf_counter()
    runs_dir = Path(tempfile.mkdtemp(prefix="rnn-lab-class-runs-"))  # the server's run store, read for fairness
    with open(SERVER_LOG, "w") as log:
        proc = sb.start_server(port, log, env=server_env(runs_dir, cluster))
        # the server's tree (its worker processes are its children) and the Ray cluster's processes (the actors
        # are their raylets' children)
        sampler = pc.TreeSampler(proc.pid, cluster.pids() if cluster is not None else [])
        sampler.start()
        try:
            try:
                sb.wait_healthy(proc, base_url)
            except RuntimeError as exc:
                raise RuntimeError(f"{str(exc).splitlines()[0]}\n{SERVER_LOG.read_text()[-3000:]}") from None
            t_healthy = time.perf_counter()
            ws_url = f"ws://127.0.0.1:{port}/_stcore/stream"
            warm_s = asyncio.run(warm_server(ws_url, make_plans(sessions + 1)[-1])) if warm else None
            t_class, _, rss_idle, _, _ = sampler.sample()  # the class's window starts here, after the warm-up
            cpu0 = sampler.per_process()
            records = asyncio.run(drive(ws_url, plans, seconds))
            t_end = sampler.sample()[0]
            cpu1 = sampler.per_process()
            server_alive = proc.poll() is None
        finally:
            sampler.stop.set()
            sampler.join(timeout=2)
            sb.stop_server(proc)
    server_errors = log_problems(SERVER_LOG.read_text(errors="replace"))
    if not server_alive:
        server_errors.append(f"the server exited with status {proc.returncode} during the run")
    peak = max((row[2] for row in sampler.samples), default=0)
    runs = fairness(runs_dir)
    shutil.rmtree(runs_dir, ignore_errors=True)
    all_training = runs.pop("window_wall", None)
    all_slider = [s for r in records for s in r.slider_s]
    gaps = [g for r in records for g in r.update_gaps_s]
    errors = [f"session {r.index}: {e}" for r in records for e in r.errors] + server_errors
    leaks = [f"session {r.index}: {e}" for r in records for e in r.leaks]
    return {
        "sessions": sessions, "load_window_s": seconds, "cpus": os.cpu_count(),
        "workers": os.environ.get("RNN_LAB_WORKERS", "auto"), "warm_up_s": None if warm_s is None else round(warm_s, 2),
        "trains_on": "ray" if cluster is not None else "server",
        "ray": None if cluster is None else {"nodes": cluster.nodes, "logical_cpus_per_node": cluster.cpus_per_node},
        "load_average": os.getloadavg(),
        "wall_s": round(time.perf_counter() - t_start, 1),
        "server": {"health_ok_s": round(t_healthy - t_start, 2), "rss_idle_mib": round(rss_idle / 2**20, 1),
                   "rss_peak_mib": round(peak / 2**20, 1),
                   "rss_peak_per_session_mib": round((peak - rss_idle) / 2**20 / sessions, 1),
                   "log": str(SERVER_LOG.relative_to(REPO_ROOT))},
        # CPU of the server's process tree (the Streamlit process, its worker processes and their resource
        # tracker) and, on Ray, of the cluster's processes (actors, raylets, GCS, agents): over the class (from
        # its first connection, after the warm-up, to its last session's end) and over the window in which all
        # runs trained; "machine_cores" is the whole machine's busy CPU (other programs too) in the same window
        "cpu": {"counted": "server tree" + (" + Ray cluster" if cluster is not None else ""),
                "class": pc.cores(sampler.samples, t_class, t_end),
                "all_training": pc.cores(sampler.samples, *all_training, wall=True) if all_training else None,
                "by_process": pc.cores_by_role(cpu0, cpu1, sampler.role, t_end - t_class)},
        "errors": errors,
        "isolation": {"ok": not leaks, "checks": sum(r.checks for r in records), "leaks": leaks},
        "finished_sessions": sum(r.finished for r in records),
        "latency_s": {
            "open_training_page": stats([r.open_s for r in records if r.open_s is not None]),
            "start_to_first_epoch": stats([r.start_to_first_epoch_s for r in records
                                           if r.start_to_first_epoch_s is not None]),
            "slider_to_settled": stats(all_slider),
            "inside_after_training": stats([r.inside_s for r in records if r.inside_s is not None]),
            "live_update_gap": stats(gaps),
            "live_update_gap_timer": stats([g for r in records for g in r.timer_gaps_s]),
            "live_update_run": stats([d for r in records for d in r.fragment_run_s]),
        },
        "epochs_trained": stats([float(r.epochs_trained) for r in records]),
        "fairness": runs,
        "slider_moves": len(all_slider),
        "runs_cut_short": "{} full and {} fragment runs of {}".format(
            sum(r.early["full"] for r in records), sum(r.early["fragment"] for r in records),
            sum(sum(r.runs.values()) for r in records)),
        "lost_full_runs": sum(r.lost_full_runs for r in records),
        "received_mib_per_session": stats([r.received_mib for r in records]),
        "script_runs": {k: sum(r.runs.get(k, 0) for r in records)
                        for k in sorted({k for r in records for k in r.runs})},
        "per_session": [asdict(r) for r in records],
    }


def fairness(runs_dir: Path) -> dict:
    """How evenly the server's scheduler shared the CPU, from the runs' run.json files: over the window in
    which every run was training, each run's tokens/s and the share of that time that was its turn (its
    own training and bookkeeping); the slowest against the fastest (model sizes differ between sessions,
    so the shares compare best)."""
    runs = []
    for meta_path in runs_dir.glob("*/run.json"):
        meta = json.loads(meta_path.read_text())
        if meta["records"] and meta["wall_s"] > 0:
            runs.append((meta["created"], meta))
    if len(runs) < 2:
        return {"runs": len(runs)}
    lo = max(created for created, _ in runs)
    hi = min(created + meta["wall_s"] for created, meta in runs)
    if hi - lo < 1.0:
        return {"runs": len(runs), "window_s": round(hi - lo, 2)}
    per_run = []
    for created, meta in runs:
        inside = [r for r in meta["records"] if lo <= created + r["wall_s"] <= hi]
        # the scheduler's turns it had in the window (training and its per-epoch bookkeeping)
        busy = inside[-1]["busy_s"] - inside[0]["busy_s"] if len(inside) > 1 else 0.0
        span = inside[-1]["wall_s"] - inside[0]["wall_s"] if len(inside) > 1 else 0.0
        # a share needs epochs that ended across most of the window: epochs that all ended within one turn (a
        # class of many runs, each with a turn every few seconds) would give 100%, or nothing at all
        share = busy / span if span >= SHARE_MIN_SPAN * (hi - lo) else None
        per_run.append({"hidden": meta["settings"]["hidden"], "epochs": len(inside),
                        "tokens_per_s": len(inside) * meta["tokens_per_epoch"] / (hi - lo),
                        "training_share": share})
    rates = [r["tokens_per_s"] for r in per_run]
    shares = [r["training_share"] for r in per_run if r["training_share"] is not None]
    return {"runs": len(per_run), "window_s": round(hi - lo, 1), "window_wall": (lo, hi),
            "tokens_per_s_min": round(min(rates)), "tokens_per_s_max": round(max(rates)),
            "slowest_over_fastest": round(min(rates) / max(rates), 3) if max(rates) else None,
            "shares_measured": len(shares),
            "training_share_min": round(min(shares), 4) if shares else None,
            "training_share_max": round(max(shares), 4) if shares else None,
            "share_ratio": round(min(shares) / max(shares), 3) if shares and max(shares) else None,
            "per_run": per_run}


def share_text(fair: dict) -> str:
    """The fairness row's share of the time that was each run's turn, over the runs it could be measured for."""
    if not fair["shares_measured"]:
        return "share of the time that was its turn: no run's epochs spanned the window"
    return (f"share of the time that was its turn {fair['training_share_min']:.1%}-{fair['training_share_max']:.1%} "
            f"(ratio {fair['share_ratio']:.2f}; {fair['shares_measured']} of {fair['runs']} runs measured)")


def cpu_lines(cpu: dict) -> list[str]:
    """The CPU rows of the table: the class's window, the all-training window, each kind of process."""
    def cell(w):
        return "–" if w is None else (f"{w['cores']:.2f} cores ({w['window_s']:.0f} s; the whole machine "
                                      f"{w['machine_cores']:.2f})")
    parts = ", ".join(f"{role} {v['cores']:.2f}" + (f" ({v['processes']})" if v["processes"] > 1 else "")
                      for role, v in cpu["by_process"].items() if v["cores"] >= 0.005)
    return [f"| CPU, {cpu['counted']}: the class | {cell(cpu['class'])} |",
            f"| CPU, {cpu['counted']}: all runs training | {cell(cpu['all_training'])} |",
            f"| CPU by process, the class (cores) | {parts or '–'} |"]


def report(result: dict) -> str:
    """The table printed at the end."""
    s, lat = result["server"], result["latency_s"]
    ep = result["epochs_trained"]
    fair = result["fairness"]
    lines = [
        f"A class at once: {result['sessions']} sessions, {result['load_window_s']:g} s of training and "
        f"slider moves, {result['cpus']} CPU cores ({result['wall_s']:.0f} s in all)",
        (f"runs on a local Ray cluster: {result['ray']['nodes']} nodes, {result['ray']['logical_cpus_per_node']} "
         f"logical CPUs each; " if result.get("ray") else f"RNN_LAB_WORKERS={result['workers']}, ")
        + "load average at the end "
        f"{' / '.join(f'{x:.1f}' for x in result['load_average'])}",
        "",
        "| measured | value |", "| --- | --- |",
        f"| errors | {len(result['errors'])} |",
        f"| isolation ({result['isolation']['checks']} checks) | "
        f"{'ok' if result['isolation']['ok'] else str(len(result['isolation']['leaks'])) + ' leaks'} |",
        f"| sessions finished | {result['finished_sessions']} of {result['sessions']} |",
        f"| RSS, {result['cpu']['counted']}: idle -> peak | {s['rss_idle_mib']:.0f} -> {s['rss_peak_mib']:.0f} MiB "
        f"({s['rss_peak_per_session_mib']:.1f} MiB per session) |",
        *cpu_lines(result["cpu"]),
        f"| epochs trained per session | min {ep['min']:.0f}, median {ep['median']:.0f}, max {ep['max']:.0f} |",
        *([f"| fairness ({fair['runs']} runs, {fair['window_s']:.0f} s all training) | tokens/s slowest / fastest "
           f"{fair['slowest_over_fastest']:.2f} "
           f"({fair['tokens_per_s_min']:,} / {fair['tokens_per_s_max']:,}; sizes differ); " + share_text(fair) + " |"]
          if "per_run" in fair else []),
        f"| slider moves | {result['slider_moves']} |",
        f"| script runs ended early for a newer run | {result['runs_cut_short']} |",
        f"| full runs whose end never came (a fragment's run started first) | {result['lost_full_runs']} |",
        "", "| latency under load (s) | n | median | p95 | max |", "| --- | --- | --- | --- | --- |",
    ]
    names = {"open_training_page": "open /training (first run done)",
             "start_to_first_epoch": "Start -> first epoch shown",
             "slider_to_settled": "slider move -> page shows it", "inside_after_training": "Inside after training",
             "live_update_gap": "gap between live updates",
             "live_update_gap_timer": "gap before a live update of the fragment's timer",
             "live_update_run": "one live update's run (start to end)"}
    for key, name in names.items():
        r = lat[key]
        cells = " | ".join("–" if r[k] is None else f"{r[k]:.2f}" for k in ("median", "p95", "max"))
        lines.append(f"| {name} | {r['n']} | {cells} |")
    for title, items in (("errors", result["errors"]), ("isolation leaks", result["isolation"]["leaks"])):
        if items:
            lines += ["", f"{title}:", *[f"  {e}" for e in items[:30]]]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sessions", type=int, default=20, help="browser sessions at once (default 20)")
    ap.add_argument("--seconds", type=float, default=60.0, help="load window: training and slider moves (s)")
    ap.add_argument("--json", type=Path, default=ARTIFACTS / "class_load.json", help="where the results go")
    ap.add_argument("--warm", action="store_true", help="one session opens /training before the class (not counted)")
    ap.add_argument("--ray", action="store_true", help="runs train on a local Ray cluster of two nodes (run it "
                    "under `flock /tmp/ray.lock`: stopping it stops every Ray process of the machine)")
    ap.add_argument("--ray-cpus", type=int, default=None, help="logical CPUs per Ray node (default: half the "
                    "sessions, rounded up: each run is an actor of one CPU)")
    args = ap.parse_args(argv)
    if args.ray_cpus is not None and not args.ray:
        ap.error("--ray-cpus needs --ray")
    if args.ray_cpus is not None and not 1 <= args.ray_cpus <= 64:
        ap.error("--ray-cpus must be 1..64")
    if not 1 <= args.sessions <= 60 or not 1 <= args.seconds <= 600:
        ap.error("--sessions must be 1..60 and --seconds 1..600")
    result = run(args.sessions, args.seconds, args.warm, args.ray, args.ray_cpus)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n")
    print(report(result))
    print(f"\nwritten to {args.json}")
    return 1 if result["errors"] or not result["isolation"]["ok"] else 0


if __name__ == "__main__":
    sys.exit(main())

"""Run control for the pages: the server's runs, this session's runs, who may control a run, Start / Stop /
Continue / Restart, checkpoint upload, and the model a page shows (a run, the reference run or an untrained one).

Training itself happens in ``rnn_core.runs.Scheduler``'s worker thread, outside every script run: a page
only reads a run's :class:`~rnn_core.runs.RunView` and sends commands, so it never blocks or pauses a run.

Ownership: a run is controlled (Stop, Continue, Restart, Continue on the CPU) only by the session that started
or uploaded it, or by whoever gives its owner key. The key is a random secret kept in that session's state; the
server keeps only its SHA-256 beside the run's id, and no URL or link ever carries it. Anyone else who opens
``?run=<id>`` sees the run read only, and may train a copy of their own with the same settings.

A bad, missing or damaged ``?run=``, ``?epoch=`` or ``?model=`` is named in a warning with what is shown
instead; a damaged run or checkpoint is said in one sentence (``i18n.error_text``) and the page falls back.
"""
from __future__ import annotations

import hashlib
import hmac
import math
import secrets
import threading
from dataclasses import dataclass, replace

import streamlit as st
import torch

import rnn_core
from rnn_core.checkpoint import CheckpointError, model_switches, read_checkpoint
from rnn_core.corpus import BUILTIN_CORPORA, CLEANINGS
from rnn_core.errors import UserError
from rnn_core.runs import RUN_ID, Run, RunLimitError, RunRegistry, RunSettings, RunStore, RunView, Scheduler

from . import compute, corpora, formatting, i18n, layout, settings
from .i18n import t
from .corpora import CorpusInfo
from .settings import CORPUS_TITLES, Settings

MAX_RUNNING_PER_SESSION = 3  # a session's runs training at once; the server's cap is Scheduler.max_active
RUN_ERRORS = (UserError,)  # what a command may refuse with: said in one sentence, in the page's language
# What reading a damaged run.json or checkpoint can raise besides a UserError (a file of wrong types)
DAMAGE = (OSError, ValueError, TypeError, KeyError, IndexError, AttributeError, RuntimeError)


class NotOwnerError(UserError, PermissionError):
    """A command on a run this session does not control."""


# The server's runs live as long as the process: a module global, not st.cache_resource, which "Clear caches"
# would empty while runs still train.
_registry: RunRegistry | None = None
_registry_lock = threading.Lock()
# run id -> SHA-256 of its owner key (hex); the keys themselves live only in their sessions' state
_owner_hashes: dict[str, str] = {}


def registry() -> RunRegistry:
    """The server's runs: one store, one scheduler (created with the first session)."""
    global _registry
    with _registry_lock:
        if _registry is None:
            store = RunStore()  # RNN_LAB_WORKERS / RNN_LAB_RAY_ADDRESS: where its runs train (rnn_core.scheduler)
            from rnn_core.scheduler import make_scheduler
            _registry = RunRegistry(store, make_scheduler(store))
        return _registry


def reset_registry(new: RunRegistry | None = None) -> RunRegistry:
    """Stop every run the server trains, close its scheduler, and make ``new`` the server's runs (a fresh
    registry when None); the registry in use. A test starts from a clean server this way."""
    global _registry
    with _registry_lock:
        old, _registry = _registry, new
        _owner_hashes.clear()
    if old is not None:
        for run in old.scheduler.active():
            old.scheduler.stop(run)
        old.scheduler.close()
    return registry()


def run_settings(s: Settings, info: CorpusInfo) -> RunSettings:
    """The sidebar's settings as a run keeps them (the corpus by its key, as the CLI and the reference run do)."""
    return RunSettings(corpus=info.used, token=s.token, batch=s.batch, steps=s.steps, hidden=s.hidden, lr=s.lr,
                       epochs=s.epochs, clip=s.clip, partition=s.partition, engine=s.engine, device=s.device,
                       seed=s.seed, prefix=corpora.default_prefix(info))


# ---------------------------------------------------------------- ownership

def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def _keys() -> dict[str, str]:
    """This session's owner keys: run id -> key (session state only: never a URL, never a link)."""
    return st.session_state.setdefault("_owner_keys", {})


def _grant(run: Run) -> None:
    """Make this session the owner of a run it just created."""
    key = secrets.token_urlsafe(24)
    with _registry_lock:
        _owner_hashes[run.id] = _digest(key)
    _keys()[run.id] = key


def _key_matches(run_id: str, key: str | None) -> bool:
    with _registry_lock:
        expected = _owner_hashes.get(run_id)
    return bool(key) and expected is not None and hmac.compare_digest(_digest(key), expected)


def owns(run: Run | None) -> bool:
    """True when this session may control ``run``: it started or uploaded it, or gave its owner key."""
    return run is not None and _key_matches(run.id, _keys().get(run.id))


def controlled_elsewhere(run: Run | None) -> bool:
    """True when another session holds ``run``'s owner key (this session may watch it, not control it)."""
    if run is None:
        return False
    with _registry_lock:
        owned = run.id in _owner_hashes
    return owned and not owns(run)


def take_control(run: Run) -> bool:
    """Make this session the owner of a run that no session controls (a shared exercise arm it starts); True
    when this session controls it afterwards."""
    if not controlled_elsewhere(run) and not owns(run):
        _grant(run)
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
    if run.id not in _ids():
        _ids().append(run.id)
    return True


def _require_owner(run: Run) -> None:
    if not owns(run):
        raise NotOwnerError(f"Run {run.id} belongs to another session: it can be watched here, not controlled.",
                            "not_owner", id=run.id)


# ---------------------------------------------------------------- reading runs (a damaged one is said, not raised)

def _read(run_id: str) -> tuple[Run | None, str]:
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
    return _read(run_id)[0] if run_id else None


def references() -> list[Run]:
    """The shipped reference runs that can be read."""
    try:
        ids = registry().store.reference_ids()
    except DAMAGE:
        return []
    return [r for r in map(get, ids) if r is not None]


# ---------------------------------------------------------------- this session's runs

def _ids() -> list[str]:
    return st.session_state.setdefault("run_ids", [])


def session_runs() -> list[Run]:
    """The runs this session started or uploaded (or took control of by key), newest last."""
    return [r for r in map(get, _ids()) if r is not None and owns(r)]


def _own(run: Run) -> None:
    """A run this session just created: owned by it, listed, and shown."""
    _grant(run)
    if run.id not in _ids():
        _ids().append(run.id)
    show(run)


def show(run: Run) -> None:
    """Show ``run`` on the pages (and name it in the URL, so a reload reopens it)."""
    st.session_state["run_id"] = run.id
    st.query_params["run"] = run.id


def _url_text(raw: str, longest: int = 60) -> str:
    """A URL's value as a warning quotes it, in a code span: cut to ``longest`` characters, without backticks or
    line breaks (a crafted link's Markdown, links or formulas show as the text they are)."""
    raw = raw if len(raw) <= longest else raw[:longest] + "…"
    return raw.replace("`", "'").replace("\n", " ")


def _warnings() -> dict:
    """URL values the run code could not use: key -> (the warning, what must change for it to go)."""
    return st.session_state.setdefault("_run_url_warnings", {})


def current() -> Run | None:
    """The run this session shows: the one the URL names (if it can be read), else the last one shown (a run
    the URL names but that cannot be read is said in a warning, with the run shown instead)."""
    url_id = st.query_params.get("run")
    notes = _warnings()
    if url_id and url_id != st.session_state.get("run_id"):
        run, why = _read(url_id)
        if run is not None:
            st.session_state["run_id"] = run.id
        else:
            fallback = get(st.session_state.get("run_id"))
            if fallback is None:
                fallback = next(iter(references()), None)
            shown = (t("url.shown_none") if fallback is None else t("url.shown_reference", id=fallback.id)
                     if fallback.origin == "reference" else t("url.shown_run", id=fallback.id))
            key = {"bad": "url.run_bad", "missing": "url.run_missing"}.get(why, "url.run_damaged")
            said = t(key, value=_url_text(url_id), shown=shown, why=why)
            notes["run"] = (said, fallback.id if fallback else None)
            if fallback is not None:
                st.session_state["run_id"] = fallback.id
            else:
                st.session_state.pop("run_id", None)
                st.query_params.pop("run", None)
    run = get(st.session_state.get("run_id"))
    if run is not None and st.query_params.get("run") != run.id:
        st.query_params["run"] = run.id
    if "run" in notes and (run.id if run is not None else None) != notes["run"][1]:
        del notes["run"]  # another run is shown now
    return run


def current_view() -> RunView | None:
    """A snapshot of the run shown, or None."""
    run = current()
    return run.view() if run is not None else None


def url_warnings(keys=("run",)) -> None:
    """The URL values named in ``keys`` that could not be used, each in a warning with what is used instead
    (drawn as the sidebar draws a bad setting's)."""
    notes = _warnings()
    for key in keys:
        if key in notes:
            st.warning(notes[key][0], icon=":material/link_off:")


def whose(run: Run) -> str:
    """Whose run it is, in the page's language: this session's, a shared one (read only), or the reference."""
    if run.origin == "reference":
        return t("runs.who_reference")
    return t("runs.who_session") if owns(run) else t("runs.who_shared")


def file_figures(run: Run | RunView) -> tuple[int, float | None] | None:
    """(epoch, perplexity or None) of a run loaded from a checkpoint file, whose training records are not in the
    file; None for any other run."""
    view = run.view() if isinstance(run, Run) else run
    if view.origin != "uploaded" or view.records:
        return None
    return view.file_epoch or 0, view.file_perplexity


def figures(run: Run | RunView) -> tuple[int, dict | None]:
    """(epochs trained, the last record or a record of a checkpoint file's perplexity) as a page says them."""
    view = run.view() if isinstance(run, Run) else run
    from_file = file_figures(run)
    if from_file is None:
        return view.epoch, view.last
    epoch, ppl = from_file
    return epoch, {"epoch": epoch, "perplexity": ppl} if ppl is not None else None


# ---------------------------------------------------------------- commands

def check(s: Settings, info: CorpusInfo, device: torch.device) -> rnn_core.guards.Estimate:
    """The guard's verdict on these settings (SettingsError / CorpusError when they cannot run)."""
    loader = corpora.make_loader(info, s)  # raises CorpusError when the corpus is too short
    return rnn_core.check_settings(len(info.vocab), s.batch, s.steps, s.hidden,
                                   len(loader) * s.batch * s.steps, s.epochs, s.lr, s.clip, device)


def _room_for_one_more() -> None:
    running = [r for r in session_runs() if r.running]
    if len(running) >= MAX_RUNNING_PER_SESSION:
        raise RunLimitError(t("runs.limit", n=len(running)))


def start_new(s: Settings, info: CorpusInfo, device: torch.device) -> Run:
    """A new run of this session for these settings, training in the background from now on."""
    check(s, info, device)
    return _launch(run_settings(s, info), info, device)


def _launch(rs: RunSettings, info: CorpusInfo, device) -> Run:
    _room_for_one_more()
    reg = registry()
    run = Run.create(rs, info.tc, store=reg.store, device=device)
    reg.scheduler.start(run)
    reg.add(run)
    _own(run)
    return run


def resume(run: Run) -> None:
    """Train this session's ``run`` on from where it is (NotOwnerError for another session's)."""
    _require_owner(run)
    registry().scheduler.start(run)


def stop(run: Run) -> None:
    """Stop this session's ``run`` within a chunk; it keeps its model (and its current epoch as a checkpoint).
    NotOwnerError, and the run trains on, for another session's run."""
    _require_owner(run)
    registry().scheduler.stop(run)


def press_stop() -> None:
    """The Stop button: stops the run shown when this session controls it (else the refusal is said)."""
    run = current()
    if run is None:
        return
    try:
        stop(run)
    except RUN_ERRORS as exc:
        st.session_state["_refused"] = exc


# ---------------------------------------------------------------- the Training page's Start, Stop, Continue

def press_start(s: Settings, info: CorpusInfo, device: torch.device) -> None:
    """Start: a new run; after Stop with the same settings, the offer to continue or restart instead; nothing
    while the same run trains. Beside another session's run, always a new run of this session."""
    run = current()
    view = run.view() if run is not None and owns(run) else None
    same = view is not None and view.settings == run_settings(s, info)
    if same and view.status == "stopped" and view.trainable and view.epoch < view.target:
        st.session_state["offer_resume"] = True
    elif not (same and view.running):
        _start_keeping_the_error(s, info, device)


def offers_resume(view: RunView | None) -> bool:
    """True while the continue-or-restart choice that Start offered after Stop waits for an answer."""
    return (bool(st.session_state.get("offer_resume")) and view is not None and view.status == "stopped"
            and owns(get(view.id)))


def choose_after_stop(choice: str, s: Settings, info: CorpusInfo, device: torch.device) -> None:
    """The answer to that offer: "continue" the stopped run, or "restart" with a new one."""
    st.session_state.pop("offer_resume", None)
    if choice == "continue":
        run = current()
        try:
            if run is not None:
                resume(run)
        except RUN_ERRORS as exc:
            st.session_state["_refused"] = exc
    else:
        _start_keeping_the_error(s, info, device)


def _start_keeping_the_error(s: Settings, info: CorpusInfo, device: torch.device) -> None:
    # a button callback cannot draw: the error is kept and said by the page, in its language
    try:
        start_new(s, info, device)
    except RUN_ERRORS as exc:
        st.session_state["_refused"] = exc


def take_error() -> Exception | None:
    """Why the last Start, copy, Stop or checkpoint upload did not happen (said once), or None."""
    return st.session_state.pop("_refused", None)


def receive_upload(file_id: str, name: str, payload: bytes) -> bool:
    """A checkpoint file from the uploader, taken once per file: True when it was new (a run, or an error kept
    for ``take_error``)."""
    if st.session_state.get("_uploaded_id") == file_id:
        return False
    st.session_state["_uploaded_id"] = file_id
    try:
        upload(name, payload)
    except RUN_ERRORS as exc:
        st.session_state["_refused"] = exc
    return True


def continue_on_cpu(run: Run) -> None:
    """After running out of GPU memory: the run's model and optimiser state to the CPU, and on it goes."""
    _require_owner(run)
    run.move_to_cpu()
    resume(run)


def upload(name: str, payload: bytes) -> Run:
    """A checkpoint file as a new run of this session (CheckpointError, and nothing changes, when it is not one).
    It never replaces a run: another session's run stays as it is."""
    params, vocab, config = read_checkpoint(payload, name)
    reg = registry()
    try:
        run = Run.from_checkpoint(params, vocab, config, store=reg.store, name=name)
    except UserError:
        raise
    except DAMAGE:  # a config of wrong types that the reader let through
        raise CheckpointError(f"{name} has a damaged configuration.", "checkpoint_config", name=name) from None
    reg.add(run)
    _own(run)
    return run


# ---------------------------------------------------------------- a copy of someone else's run

def corpus_key(name: str) -> str:
    """A run's corpus as a corpus choice's key (an older run keeps its English title); the name itself when it
    is no key (an uploaded text's file name)."""
    if name in CORPUS_TITLES:
        return name
    return next((k for k, v in CORPUS_TITLES.items() if v == name), name)


def copy_corpus(run: Run, ctx) -> CorpusInfo:
    """The corpus ``run`` trained on, tokenized the same way: the sidebar's upload when the run's text was an
    upload (CorpusError when this session has none with the run's vocabulary)."""
    rs, tokens = run.settings, run.vocab.idx_to_token
    key = corpus_key(rs.corpus)
    if key not in BUILTIN_CORPORA and key != "time_machine":
        if ctx.info.used == "upload" and ctx.info.vocab.idx_to_token == tokens:
            return ctx.info
        raise rnn_core.CorpusError(
            f"Run {run.id} trained on an uploaded text ({rs.corpus}) that this session does not have: upload it "
            "in the sidebar, then train your own copy.", "copy_needs_upload", id=run.id, corpus=rs.corpus)
    found = None
    # a run does not keep its cleaning: the one whose vocabulary is the run's
    for clean in dict.fromkeys([ctx.settings.clean, *CLEANINGS]):
        s = Settings(corpus=key, token=rs.token, clean=clean, batch=rs.batch, steps=rs.steps, seed=rs.seed)
        info = corpora.corpus_info(s)
        if info.used != key:
            break  # the corpus cannot be had here (the fallback is in use): no cleaning changes that
        if info.vocab.idx_to_token == tokens:
            return info
        found = found or info
    if found is None:
        raise rnn_core.CorpusError(f"The corpus of run {run.id} ({rs.corpus}) cannot be loaded on this server.",
                                   "copy_no_corpus", id=run.id, corpus=corpora.corpus_title(rs.corpus))
    return found


def train_copy(run: Run, ctx) -> Run:
    """A new run of this session with ``run``'s settings (its corpus by key), trained from scratch."""
    info = copy_corpus(run, ctx)
    rs = replace(run.settings, corpus=info.used, epochs=max(1, run.settings.epochs))
    device = compute.resolve_device(replace(ctx.settings, device=rs.device))[0]
    loader = rnn_core.make_loader(info.tc, rs.batch, rs.steps, rs.partition == "random", seed=rs.seed)
    rnn_core.check_settings(len(info.vocab), rs.batch, rs.steps, rs.hidden, len(loader) * rs.batch * rs.steps,
                            rs.epochs, rs.lr, rs.clip, device)
    return _launch(rs, info, device)


def press_train_copy(ctx) -> None:
    """The "Train my own copy" button: a copy of the run shown (a refusal is kept for the page to say)."""
    run = current()
    if run is None:
        return
    try:
        train_copy(run, ctx)
    except RUN_ERRORS as exc:
        st.session_state["_refused"] = exc


# ---------------------------------------------------------------- the model a page shows

# options (also their ?model= values in the URL, which holds an option as shown); captions: runs.model.<option>
MODEL_CHOICES = ("session", "reference", "untrained")


@dataclass
class ShownModel:
    """The model the Inside and Generate pages use."""

    net: object
    info: CorpusInfo  # a corpus in the model's vocabulary where one is at hand, for default texts
    vocab: rnn_core.Vocab
    label: str
    key: tuple  # identifies the parameters (for caches of what the model computes)
    trained: bool
    run: Run | None = None  # the run whose checkpoint it is (None: untrained)


def earlier_checkpoints(model: ShownModel) -> list[tuple[int, object, tuple]]:
    """(epoch, model, key) of each checkpoint of the shown model's run up to the one shown, that can be read."""
    if model.run is None:
        return []
    run, shown = model.run, model.key[-1]
    out = []
    for e in sorted({*(e for e in run.view().checkpoints if e <= shown), shown}):  # shown: maybe the newest
        try:
            params = run.checkpoint(e) if e != shown else None
            net = model.net if e == shown else _net_at(run.id, e, params, run.settings.activation)
        except (UserError, *DAMAGE):
            continue  # a checkpoint that cannot be read is left out of the list (the scrubber says why)
        out.append((e, net, ("run", run.id, e)))
    return out


@st.cache_resource(max_entries=16, show_spinner=False)
def _net_at(run_id: str, epoch: int, _params: dict, activation: str = "tanh"):
    """A CPU scratch model holding a run's parameters at one epoch (never changed afterwards); its activation and
    embedding (an E among the parameters) as the run trained them."""
    V, h = _params["W_hq"].shape[1], _params["W_hh"].shape[0]
    net = rnn_core.make_model("lesson", V, h, "cpu",
                              **model_switches(_params, {"activation": activation}))
    net.load_formula_params(_params)
    return net


def _info_for(vocab: rnn_core.Vocab, ctx) -> CorpusInfo:
    """The sidebar's corpus if it speaks the model's vocabulary, else the lesson's (for the reference run)."""
    if ctx.info.vocab.idx_to_token == vocab.idx_to_token:
        return ctx.info
    try:
        info = corpora.corpus_info(settings.LESSON)
    except rnn_core.CorpusError:
        return ctx.info
    return info if info.vocab.idx_to_token == vocab.idx_to_token else ctx.info


def _epoch_from_url(epochs: list[int]) -> None:
    """Check the URL's epoch before the scrubber is drawn: a value that is not one of ``epochs`` is named in a
    warning with the nearest one (the last for a value that is no number), and that epoch replaces it in the
    URL, so the scrubber, bound to ``?epoch=``, starts there and a copied link reopens what is shown. The page
    runs again for it (Streamlit seeds a bound widget from the URL it was opened with)."""
    raw = st.query_params.get("epoch")
    notes = _warnings()
    if raw is None or not epochs:
        return
    try:
        wanted = int(raw)
    except ValueError:
        wanted = None
    if wanted in epochs:
        if notes.get("epoch", (None, None))[1] != wanted:
            notes.pop("epoch", None)  # a good link, not the epoch a bad one was replaced by
        return
    used = epochs[-1] if wanted is None else min(epochs, key=lambda e: (abs(e - wanted), -e))
    notes["epoch"] = (t("url.epoch", value=_url_text(raw), used=used), used)
    if "epoch" not in st.session_state and layout.url_replace("epoch", used, epochs[-1]):
        st.rerun()


def _model_from_url(default: str, name) -> None:
    """Name a ``?model=`` value that is no model choice, with the model used instead."""
    raw = st.query_params.get("model")
    if raw is not None and raw not in MODEL_CHOICES and st.session_state.get("model") not in MODEL_CHOICES:
        _warnings()["model"] = (t("url.bad", param="model", value=_url_text(raw), used=name(default)), default)


def _readable(run: Run, epoch: int, epochs: list[int]) -> tuple[int | None, dict | None, str]:
    """(epoch, parameters, "") of the checkpoint at ``epoch``; else of the nearest one that can be read, with why
    the first one tried could not; (None, None, why) when none can."""
    latest = run.latest()
    why = ""
    for e in sorted(epochs, key=lambda e: (abs(e - epoch), -e)):
        try:
            params = latest[1] if latest and latest[0] == e else run.checkpoint(e)
            _net_at(run.id, e, params, run.settings.activation)  # parameters of wrong shapes fail here
            return e, params, why
        except UserError as exc:
            why = why or i18n.error_text(exc)
        except DAMAGE:
            why = why or t("runs.damaged")
    return None, None, why


def _untrained(ctx) -> ShownModel:
    s = ctx.settings
    net = compute.untrained_model(ctx.info.key, len(ctx.info.vocab), s.hidden, s.seed)
    label = t("runs.untrained", seed=s.seed, hidden=s.hidden)
    return ShownModel(net, ctx.info, ctx.info.vocab, label, ("untrained", ctx.info.key, s.hidden, s.seed), False)


def pick_model(ctx) -> ShownModel:
    """The model choice (bound to ``?model=``) and the checkpoint scrubber (``?epoch=``); the model chosen.

    A bad ``?model=`` or ``?epoch=`` is named in a warning with what is used; a checkpoint that cannot be read
    is said in one sentence and the nearest one that can is shown (else the reference run, else none)."""
    mine = current()
    refs = references()
    # a run of this session or another's; the reference run shown on Training is the "reference" choice here
    has_mine = mine is not None and mine.origin != "reference" and (mine.epoch > 0 or bool(mine.checkpoints))
    shared = is_shared(mine)
    default = "session" if has_mine else "reference" if refs else "untrained"
    names = {"session": t("choice.model.shared") if shared else t("choice.model.session")}
    captions = {"session": t("runs.model.shared") if shared else t("runs.model.session")}

    def name(c: str) -> str:
        return names.get(c) or t(f"choice.model.{c}")

    _model_from_url(default, name)
    warnings = st.container()  # filled last: the URL's model and epoch are known once the widgets are drawn
    c1, c2 = st.columns([2, 3], gap="large")
    choice = layout.url_choice(c1, "radio", t("runs.model"), list(MODEL_CHOICES), "model", default, name,
                               captions=[captions.get(c) or t(f"runs.model.{c}") for c in MODEL_CHOICES],
                               horizontal=True, help=t("runs.model_help"))
    notes = _warnings()
    if "model" in notes and choice != notes["model"][1]:
        del notes["model"]  # another model was chosen
    with warnings:
        url_box = st.container()
        model = _chosen_model(ctx, choice, mine if has_mine else None, refs, c1, c2)
    if not model.trained:
        notes.pop("epoch", None)  # an untrained model has no checkpoints: no epoch is shown
    with url_box:
        url_warnings(("model", "epoch"))
    return model


def _chosen_model(ctx, choice: str, mine: Run | None, refs: list[Run], c1, c2) -> ShownModel:
    """The model for ``choice``: the run shown, the reference run or an untrained one, at the scrubber's epoch."""
    run = mine if choice == "session" else refs[0] if choice == "reference" and refs else None
    if choice != "untrained" and run is None:
        c1.caption(t("runs.no_session_run") if choice == "session" else t("runs.no_reference"))
    if run is None:
        return _untrained(ctx)
    view = run.view()
    latest = run.latest()
    epochs = sorted(set(view.checkpoints) | ({latest[0]} if latest and latest[0] else set()))
    if not epochs:
        return _untrained(ctx)
    epoch = scrubber(view, epochs, c2)
    shown, params, why = _readable(run, epoch, epochs)
    if shown is None:  # no checkpoint of this run can be read: the reference run, else an untrained model
        st.error(t("runs.no_checkpoint", id=run.id, why=why), icon=":material/error:")
        run = next((r for r in refs if r is not run), None)
        if run is None:
            return _untrained(ctx)
        view = run.view()
        shown, params, _ = _readable(run, max(view.checkpoints, default=0), list(view.checkpoints))
        if shown is None:
            return _untrained(ctx)
    elif shown != epoch:
        st.warning(t("runs.checkpoint_fallback", epoch=epoch, used=shown, why=why), icon=":material/error:")
    net = _net_at(run.id, shown, params, view.settings.activation)
    return ShownModel(net, _info_for(run.vocab, ctx), run.vocab, _label(run, view, shown), ("run", run.id, shown),
                      True, run)


# ---------------------------------------------------------------- the scrubber and playback through training

PLAY = "epoch_play"  # session state: True while the checkpoints play, one a frame
PLAY_EVERY_S = 1.5  # a frame's time on screen; building one takes less once its checkpoint was shown (cached)


def scrubber(view: RunView, epochs: list[int], box) -> int:
    """The checkpoint scrubber (bound to ``?epoch=``), its Play / Pause button and the run's perplexity curve
    with the epoch shown marked, drawn in ``box``; the epoch chosen.

    While playing, every run of the page shows the next checkpoint, and a timer runs the page once a frame;
    after the last checkpoint it pauses. Pause keeps the epoch shown, in the scrubber and in the URL."""
    notes = _warnings()
    _epoch_from_url(epochs)
    if st.session_state.get("epoch") is not None and st.session_state["epoch"] not in epochs:
        # another run's checkpoint (the model choice changed): the nearest of this one's
        st.session_state["epoch"] = min(epochs, key=lambda e: (abs(e - st.session_state["epoch"]), -e))
    playing = _advance(epochs)
    with box:
        if len(epochs) > 1:
            c_scrub, c_play = st.columns([8, 1], vertical_alignment="bottom")
            epoch = c_scrub.select_slider(t("runs.checkpoint"), epochs, value=epochs[-1], key="epoch",
                                          bind="query-params", help=t("runs.checkpoint_help"))
            c_play.button("", icon=":material/pause:" if playing else ":material/play_arrow:",
                          key="epoch_play_button", on_click=_press_play, args=(tuple(epochs),),
                          help=t("runs.pause" if playing else "runs.play_help"))
        else:
            epoch = epochs[0]
            st.caption(t("runs.one_checkpoint", epoch=epoch))
        _perplexity_curve(view, epoch, epochs)
    if "epoch" in notes and epoch != notes["epoch"][1]:
        del notes["epoch"]  # the scrubber was moved
    if playing:
        st.session_state["_play_full_run"] = True
        _timer()
    return epoch


def _press_play(epochs: tuple[int, ...]) -> None:
    """Play or Pause: Play on the last checkpoint starts again from the first."""
    playing = not st.session_state.get(PLAY, False)
    st.session_state[PLAY] = playing
    if playing:
        st.session_state["_play_pressed"] = True  # the run that follows shows the frame it starts from
        if st.session_state.get("epoch", epochs[-1]) == epochs[-1]:
            st.session_state["epoch"] = epochs[0]


def _advance(epochs: list[int]) -> bool:
    """Move the scrubber to the next checkpoint when playing (before it is drawn); whether it still plays."""
    if not st.session_state.get(PLAY):
        return False
    if len(epochs) < 2:  # another model, with one checkpoint: nothing to play
        st.session_state[PLAY] = False
        return False
    if st.session_state.pop("_play_pressed", False):
        return True
    now = st.session_state.get("epoch", epochs[-1])
    later = [e for e in epochs if e > now]
    if later:
        st.session_state["epoch"] = later[0]
    if len(later) <= 1:  # the last checkpoint is shown: pause there
        st.session_state[PLAY] = False
        return False
    return True


@st.fragment(run_every=PLAY_EVERY_S)
def _timer() -> None:
    # Drawn only while playing. With the page it does nothing; run alone by its timer it runs the page, which
    # shows the next checkpoint (a fragment cannot move the scrubber, drawn outside it).
    if not st.session_state.pop("_play_full_run", False):
        st.rerun(scope="app")


def _perplexity_curve(view: RunView, epoch: int, epochs: list[int]) -> None:
    """The run's perplexity by epoch with the epoch shown marked; a checkpoint file has no curve: said."""
    if file_figures(view) is not None or not view.records:
        st.caption(t("runs.no_curve"))
        return
    from . import training_charts  # plotly loads with the first chart, not with Home

    layout.cached_chart(training_charts.perplexity_marker, (view.id, len(view.records), epoch, tuple(epochs)),
                        view.frame(), epoch, list(epochs), key="epoch_curve")


def _label(run: Run, view: RunView, epoch: int) -> str:
    """Which model a page shows: whose run, its epoch, corpus, size and perplexity."""
    ppl = view.perplexity_at(epoch)  # its record's, or an uploaded checkpoint's own
    ok = isinstance(ppl, (int, float)) and not isinstance(ppl, bool) and math.isfinite(ppl)
    ppl_text = t("runs.ppl_part", ppl=formatting.fmt_ppl(ppl)) if ok else ""
    training = t("runs.snapshot") if view.running else ""
    return t("runs.trained", who=whose(run), epoch=epoch, corpus=corpora.corpus_title(view.settings.corpus),
             hidden=view.settings.hidden, ppl=ppl_text, training=training)


def model_banner(model: ShownModel) -> None:
    """Say clearly which model a page is showing."""
    if model.trained:
        st.success(model.label, icon=":material/model_training:")
    else:
        st.warning(model.label, icon=":material/warning:")

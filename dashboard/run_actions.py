"""What a session does with runs: Start, Stop, Continue, Restart, Continue on the CPU, a checkpoint upload, and a
copy of another session's run. A command on a run is refused (``run_owners.NotOwnerError``) unless this session
controls it; a button callback cannot draw, so a refusal is kept for the page to say (``take_error``).
"""
from __future__ import annotations

from dataclasses import replace

import streamlit as st
import torch

import rnn_core
from rnn_core.checkpoint import CheckpointError, read_checkpoint
from rnn_core.corpus import BUILTIN_CORPORA, CLEANINGS
from rnn_core.data import tokens_per_epoch
from rnn_core.errors import UserError
from rnn_core.runs import Run, RunLimitError, RunSettings, RunView

from . import compute, corpora
from .corpora import CorpusInfo
from .i18n import t
from .run_owners import adopt, owns, require_owner
from .run_registry import DAMAGE, RUN_ERRORS, get, registry, session_runs
from .run_shown import current, run_settings, show
from .settings import CORPUS_TITLES, Settings

MAX_RUNNING_PER_SESSION = 3  # a session's runs training at once; the server's cap is RNN_LAB_MAX_RUNS


def _own(run: Run) -> None:
    """A run this session just created: owned by it, listed, and shown."""
    adopt(run)
    show(run)


def _kept_refusal(command, *args) -> None:
    """A button's ``command(*args)``; why it was refused is kept for the page to say once (``take_error``), as a
    button callback cannot draw."""
    try:
        command(*args)
    except RUN_ERRORS as exc:
        st.session_state["_refused"] = exc


def take_error() -> Exception | None:
    """Why the last Start, copy, Stop or checkpoint upload did not happen (said once), or None."""
    return st.session_state.pop("_refused", None)


def check(s: Settings, info: CorpusInfo, device: torch.device) -> rnn_core.guards.Estimate:
    """The guard's verdict on these settings (SettingsError / CorpusError when they cannot run)."""
    return _check(run_settings(s, info), info, device)


def _check(rs: RunSettings, info: CorpusInfo, device) -> rnn_core.guards.Estimate:
    """:func:`check` of a run's settings (CorpusError when the corpus is too short for one minibatch)."""
    tokens = tokens_per_epoch(len(info.tc.corpus), rs.batch, rs.steps, rs.partition == "random")
    return rnn_core.check_settings(len(info.vocab), rs.batch, rs.steps, rs.hidden, tokens, rs.epochs, rs.lr, rs.clip,
                                   device)


def _room_for_one_more() -> None:
    running = [r for r in session_runs() if r.running]
    if len(running) >= MAX_RUNNING_PER_SESSION:
        raise RunLimitError(t("runs.limit", n=len(running)))


def start_new(s: Settings, info: CorpusInfo, device: torch.device) -> Run:
    """A new run of this session for these settings, training in the background from now on."""
    rs = run_settings(s, info)
    _check(rs, info, device)
    return _launch(rs, info, device)


def _launch(rs: RunSettings, info: CorpusInfo, device) -> Run:
    _room_for_one_more()
    reg = registry()
    run = reg.create(rs, info.tc, device=device)  # where the server's runs train: this process, a worker, Ray
    reg.start(run)
    _own(run)
    return run


def resume(run: Run) -> None:
    """Train this session's ``run`` on from where it is (NotOwnerError for another session's)."""
    require_owner(run)
    registry().scheduler.start(run)


def stop(run: Run) -> None:
    """Stop this session's ``run`` within a chunk; it keeps its model (and its current epoch as a checkpoint).
    NotOwnerError, and the run trains on, for another session's run."""
    require_owner(run)
    registry().scheduler.stop(run)


def press_stop() -> None:
    """The Stop button: stops the run shown when this session controls it (else the refusal is said)."""
    run = current()
    if run is not None:
        _kept_refusal(stop, run)


def press_start(s: Settings, info: CorpusInfo, device: torch.device) -> None:
    """Start: a new run; after Stop with the same settings, the offer to continue or restart instead; nothing
    while the same run trains. Beside another session's run, always a new run of this session."""
    run = current()
    view = run.view() if run is not None and owns(run) else None
    same = view is not None and view.settings == run_settings(s, info)
    if same and view.status == "stopped" and view.trainable and view.epoch < view.target:
        st.session_state["offer_resume"] = True
    elif not (same and view.running):
        _kept_refusal(start_new, s, info, device)


def offers_resume(view: RunView | None) -> bool:
    """True while the continue-or-restart choice that Start offered after Stop waits for an answer."""
    return (bool(st.session_state.get("offer_resume")) and view is not None and view.status == "stopped"
            and owns(get(view.id)))


def choose_after_stop(choice: str, s: Settings, info: CorpusInfo, device: torch.device) -> None:
    """The answer to that offer: "continue" the stopped run, or "restart" with a new one."""
    st.session_state.pop("offer_resume", None)
    if choice == "continue":
        run = current()
        if run is not None:
            _kept_refusal(resume, run)
    else:
        _kept_refusal(start_new, s, info, device)


def receive_upload(file_id: str, name: str, payload: bytes) -> bool:
    """A checkpoint file from the uploader, taken once per file: True when it was new (a run, or an error kept
    for ``take_error``)."""
    if st.session_state.get("_uploaded_id") == file_id:
        return False
    st.session_state["_uploaded_id"] = file_id
    _kept_refusal(upload, name, payload)
    return True


def continue_on_cpu(run: Run) -> None:
    """After running out of GPU memory: the run's model and optimiser state to the CPU, and on it goes."""
    require_owner(run)
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


def corpus_key(name: str) -> str:
    """A run's corpus as a corpus choice's key (an exercise pair's run keeps its English title); the name itself
    when it is no key (an uploaded text's file name)."""
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
    _check(rs, info, device)
    return _launch(rs, info, device)


def press_train_copy(ctx) -> None:
    """The "Train my own copy" button: a copy of the run shown (a refusal is kept for the page to say)."""
    run = current()
    if run is not None:
        _kept_refusal(train_copy, run, ctx)

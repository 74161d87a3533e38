"""Run control for the pages: the server's runs, this session's runs, Start / Stop / Continue / Restart,
checkpoint upload, and the model a page shows (this session's run, the reference run or an untrained one).

Training itself happens in ``rnn_core.runs.Scheduler``'s worker thread, outside every script run: a page
only reads a run's :class:`~rnn_core.runs.RunView` and sends commands, so it never blocks or pauses a run.
A session lists the runs it started or uploaded and the one its URL names (``?run=<id>``), plus the
shipped reference runs; never another session's.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass

import streamlit as st
import torch

import rnn_core
from rnn_core.checkpoint import CheckpointError, model_switches, read_checkpoint
from rnn_core.runs import Run, RunLimitError, RunRegistry, RunSettings, RunStore, RunView, Scheduler

from . import compute, corpora, formatting, layout, settings
from .i18n import t
from .corpora import CorpusInfo
from .settings import Settings

MAX_RUNNING_PER_SESSION = 3  # a session's runs training at once; the server's cap is Scheduler.max_active
RUN_ERRORS = (*settings.USER_ERRORS, RunLimitError, CheckpointError)


# The server's runs live as long as the process: a module global, not st.cache_resource, which "Clear caches"
# would empty while runs still train.
_registry: RunRegistry | None = None
_registry_lock = threading.Lock()


def registry() -> RunRegistry:
    """The server's runs: one store, one scheduler (created with the first session)."""
    global _registry
    with _registry_lock:
        if _registry is None:
            _registry = RunRegistry(RunStore(), Scheduler())
        return _registry


def reset_registry(new: RunRegistry | None = None) -> RunRegistry:
    """Stop every run the server trains, close its scheduler, and make ``new`` the server's runs (a fresh
    registry when None); the registry in use. A test starts from a clean server this way."""
    global _registry
    with _registry_lock:
        old, _registry = _registry, new
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


# ---------------------------------------------------------------- this session's runs

def _ids() -> list[str]:
    return st.session_state.setdefault("run_ids", [])


def session_runs() -> list[Run]:
    """The runs this session started, uploaded or opened by URL, newest last."""
    runs = [registry().get(i) for i in _ids()]
    return [r for r in runs if r is not None]


def adopt(run: Run) -> None:
    """Make ``run`` this session's current run (and the URL's, so a reload reopens it)."""
    if run.id not in _ids():
        _ids().append(run.id)
    st.session_state["run_id"] = run.id
    st.query_params["run"] = run.id


def current() -> Run | None:
    """This session's current run: the one the URL names (if it exists), else the last one it used."""
    url_id = st.query_params.get("run")
    if url_id and url_id != st.session_state.get("run_id"):
        run = registry().get(url_id)
        if run is not None:
            if run.id not in _ids():
                _ids().append(run.id)
            st.session_state["run_id"] = run.id
    run_id = st.session_state.get("run_id")
    run = registry().get(run_id) if run_id else None
    if run is not None and st.query_params.get("run") != run.id:
        st.query_params["run"] = run.id
    return run


def current_view() -> RunView | None:
    run = current()
    return run.view() if run is not None else None


# ---------------------------------------------------------------- commands

def check(s: Settings, info: CorpusInfo, device: torch.device) -> rnn_core.guards.Estimate:
    """The guard's verdict on these settings (SettingsError / CorpusError when they cannot run)."""
    loader = corpora.make_loader(info, s)  # raises CorpusError when the corpus is too short
    return rnn_core.check_settings(len(info.vocab), s.batch, s.steps, s.hidden,
                                   len(loader) * s.batch * s.steps, s.epochs, s.lr, s.clip, device)


def start_new(s: Settings, info: CorpusInfo, device: torch.device) -> Run:
    """A new run for these settings, training in the background from now on."""
    check(s, info, device)
    running = [r for r in session_runs() if r.running]
    if len(running) >= MAX_RUNNING_PER_SESSION:
        raise RunLimitError(t("runs.limit", n=len(running)))
    reg = registry()
    run = Run.create(run_settings(s, info), info.tc, store=reg.store, device=device)
    reg.scheduler.start(run)
    reg.add(run)
    adopt(run)
    return run


def resume(run: Run) -> None:
    registry().scheduler.start(run)


def stop(run: Run) -> None:
    """Stop within a chunk; the run keeps its model (and its current epoch as a checkpoint)."""
    registry().scheduler.stop(run)


# ---------------------------------------------------------------- the Training page's Start, Stop, Continue

def press_start(s: Settings, info: CorpusInfo, device: torch.device) -> None:
    """Start: a new run; after Stop with the same settings, the offer to continue or restart instead; nothing
    while the same run trains."""
    view = current_view()
    same = view is not None and view.settings == run_settings(s, info)
    if same and view.status == "stopped" and view.trainable and view.epoch < view.target:
        st.session_state["offer_resume"] = True
    elif not (same and view.running):
        _start_keeping_the_error(s, info, device)


def offers_resume(view: RunView | None) -> bool:
    """True while the continue-or-restart choice that Start offered after Stop waits for an answer."""
    return bool(st.session_state.get("offer_resume")) and view is not None and view.status == "stopped"


def choose_after_stop(choice: str, s: Settings, info: CorpusInfo, device: torch.device) -> None:
    """The answer to that offer: "continue" the stopped run, or "restart" with a new one."""
    st.session_state.pop("offer_resume", None)
    if choice == "continue":
        resume(current())
    else:
        _start_keeping_the_error(s, info, device)


def _start_keeping_the_error(s: Settings, info: CorpusInfo, device: torch.device) -> None:
    # a button callback cannot draw: the error is kept and said by the page, in its language
    try:
        start_new(s, info, device)
    except RUN_ERRORS as exc:
        st.session_state["_refused"] = exc


def take_error() -> Exception | None:
    """Why the last Start or checkpoint upload gave no run (said once), or None."""
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
    run.move_to_cpu()
    resume(run)


def upload(name: str, payload: bytes) -> Run:
    """A checkpoint file as a run of this session (CheckpointError, and nothing changes, when it is not one)."""
    params, vocab, config = read_checkpoint(payload, name)
    reg = registry()
    run = reg.add(Run.from_checkpoint(params, vocab, config, store=reg.store, name=name))
    adopt(run)
    return run


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


def pick_model(ctx) -> ShownModel:
    """The model choice (bound to ``?model=``) and the checkpoint scrubber (``?epoch=``); the model chosen."""
    reg = registry()
    mine = current()
    references = reg.references()
    has_mine = mine is not None and (mine.epoch > 0 or mine.checkpoints)
    default = "session" if has_mine else "reference" if references else "untrained"
    c1, c2 = st.columns([2, 3], gap="large")
    choice = layout.url_choice(c1, "radio", t("runs.model"), list(MODEL_CHOICES), "model", default,
                               lambda c: t(f"choice.model.{c}"), captions=[t(f"runs.model.{c}") for c in MODEL_CHOICES],
                               horizontal=True, help=t("runs.model_help"))
    run = mine if choice == "session" and has_mine else references[0] if choice == "reference" and references else None
    if choice != "untrained" and run is None:
        c1.caption(t("runs.no_session_run") if choice == "session" else t("runs.no_reference"))
    if run is None:
        s = ctx.settings
        net = compute.untrained_model(ctx.info.key, len(ctx.info.vocab), s.hidden, s.seed)
        label = t("runs.untrained", seed=s.seed, hidden=s.hidden)
        return ShownModel(net, ctx.info, ctx.info.vocab, label, ("untrained", ctx.info.key, s.hidden, s.seed), False)

    view = run.view()
    latest = run.latest()
    epochs = sorted(set(view.checkpoints) | ({latest[0]} if latest and latest[0] else set()))
    with c2:
        if len(epochs) > 1:
            epoch = st.select_slider(t("runs.checkpoint"), epochs, value=epochs[-1], key="epoch",
                                     bind="query-params", help=t("runs.checkpoint_help"))
        else:
            epoch = epochs[0]
            st.caption(t("runs.one_checkpoint", epoch=epoch))
    params = latest[1] if latest and latest[0] == epoch else run.checkpoint(epoch)
    net = _net_at(run.id, epoch, params, view.settings.activation)
    record = view.records[epoch - 1] if 0 < epoch <= view.epoch else None
    ppl = record["perplexity"] if record else run.extra.get("perplexity")
    ppl_text = t("runs.ppl_part", ppl=formatting.fmt_ppl(ppl)) if ppl is not None else ""
    who = t("runs.who_reference") if run.origin == "reference" else t("runs.who_session")
    training = t("runs.snapshot") if view.running else ""
    label = t("runs.trained", who=who, epoch=epoch, corpus=corpora.corpus_title(view.settings.corpus),
              hidden=view.settings.hidden, ppl=ppl_text, training=training)
    return ShownModel(net, _info_for(run.vocab, ctx), run.vocab, label, ("run", run.id, epoch), True)


def model_banner(model: ShownModel) -> None:
    """Say clearly which model a page is showing."""
    if model.trained:
        st.success(model.label, icon=":material/model_training:")
    else:
        st.warning(model.label, icon=":material/warning:")

"""The model the Inside, Generate and unrolled pages show: the run shown, the reference run or an untrained one
(``?model=``), at a checkpoint chosen with the scrubber (``?epoch=``). A bad ``?model=`` or ``?epoch=`` is named
in a warning with what is used; a checkpoint that cannot be read is said and the nearest one that can is shown.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import streamlit as st

import rnn_core
from rnn_core.checkpoint import model_switches
from rnn_core.errors import UserError
from rnn_core.runs import Run, RunView

from . import compute, corpora, formatting, i18n, layout, settings
from .corpora import CorpusInfo
from .i18n import t
from .playback import scrubber
from .run_owners import is_shared
from .run_registry import DAMAGE, references
from .run_shown import current, url_notes, url_text, url_warnings, whose

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
            net = model.net if e == shown else net_at(run.id, e, params, run.settings.activation)
        except (UserError, *DAMAGE):
            continue  # a checkpoint that cannot be read is left out of the list (the scrubber says why)
        out.append((e, net, ("run", run.id, e)))
    return out


@st.cache_resource(max_entries=16, show_spinner=False)
def net_at(run_id: str, epoch: int, _params: dict, activation: str = "tanh"):
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




def _model_from_url(default: str, name) -> None:
    """Name a ``?model=`` value that is no model choice, with the model used instead."""
    raw = st.query_params.get("model")
    if raw is not None and raw not in MODEL_CHOICES and st.session_state.get("model") not in MODEL_CHOICES:
        url_notes()["model"] = (t("url.bad", param="model", value=url_text(raw), used=name(default)), default)


def _readable(run: Run, epoch: int, epochs: list[int]) -> tuple[int | None, dict | None, str]:
    """(epoch, parameters, "") of the checkpoint at ``epoch``; else of the nearest one that can be read, with why
    the first one tried could not; (None, None, why) when none can."""
    latest = run.latest()
    why = ""
    for e in sorted(epochs, key=lambda e: (abs(e - epoch), -e)):
        try:
            params = latest[1] if latest and latest[0] == e else run.checkpoint(e)
            net_at(run.id, e, params, run.settings.activation)  # parameters of wrong shapes fail here
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
    notes = url_notes()
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
    net = net_at(run.id, shown, params, view.settings.activation)
    return ShownModel(net, _info_for(run.vocab, ctx), run.vocab, _label(run, view, shown), ("run", run.id, shown),
                      True, run)



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

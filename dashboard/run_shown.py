"""The run a session shows: named by ``?run=`` and kept in session state across page turns, said with whose it
is and its figures. A ``?run=`` that is bad, missing or damaged is named in a warning with the run shown instead.
"""
from __future__ import annotations

import streamlit as st

from rnn_core.runs import Run, RunSettings, RunView

from . import corpora
from .corpora import CorpusInfo
from .i18n import t
from .run_owners import owns
from .run_registry import get, read, references
from .settings import Settings


def run_settings(s: Settings, info: CorpusInfo) -> RunSettings:
    """The sidebar's settings as a run keeps them (the corpus by its key, as the CLI and the reference run do)."""
    return RunSettings(corpus=info.used, token=s.token, batch=s.batch, steps=s.steps, hidden=s.hidden, lr=s.lr,
                       epochs=s.epochs, clip=s.clip, partition=s.partition, engine=s.engine, device=s.device,
                       seed=s.seed, prefix=corpora.default_prefix(info))


def show(run: Run) -> None:
    """Show ``run`` on the pages (and name it in the URL, so a reload reopens it)."""
    st.session_state["run_id"] = run.id
    st.query_params["run"] = run.id


def url_text(raw: str, longest: int = 60) -> str:
    """A URL's value as a warning quotes it, in a code span: cut to ``longest`` characters, without backticks or
    line breaks (a crafted link's Markdown, links or formulas show as the text they are)."""
    raw = raw if len(raw) <= longest else raw[:longest] + "…"
    return raw.replace("`", "'").replace("\n", " ")


def url_notes() -> dict:
    """URL values the run code could not use: key -> (the warning, what must change for it to go)."""
    return st.session_state.setdefault("_run_url_warnings", {})


def url_warnings(keys=("run",)) -> None:
    """The URL values named in ``keys`` that could not be used, each in a warning with what is used instead
    (drawn as the sidebar draws a bad setting's)."""
    notes = url_notes()
    for key in keys:
        if key in notes:
            st.warning(notes[key][0], icon=":material/link_off:")


def current() -> Run | None:
    """The run this session shows: the one a new ``?run=`` names (if it can be read), else the last one shown;
    the URL names the run shown, so a copied link reopens it."""
    url_id = st.query_params.get("run")
    if url_id and url_id != st.session_state.get("run_id"):
        run = _open_link(url_id)
    else:
        run = get(st.session_state.get("run_id"))
    if run is not None:
        st.session_state["run_id"] = run.id
        if st.query_params.get("run") != run.id:
            st.query_params["run"] = run.id
    notes = url_notes()
    if "run" in notes and (run.id if run is not None else None) != notes["run"][1]:
        del notes["run"]  # another run is shown now
    return run


def _open_link(url_id: str) -> Run | None:
    """The run ``?run=`` names; when it cannot be read, a warning naming it and the run shown instead (the last
    one shown, else the reference run, else none: then the URL's and the session's run are dropped)."""
    run, why = read(url_id)
    if run is not None:
        return run
    fallback = get(st.session_state.get("run_id"))
    if fallback is None:
        fallback = next(iter(references()), None)
    shown = (t("url.shown_none") if fallback is None else t("url.shown_reference", id=fallback.id)
             if fallback.origin == "reference" else t("url.shown_run", id=fallback.id))
    key = {"bad": "url.run_bad", "missing": "url.run_missing"}.get(why, "url.run_damaged")
    url_notes()["run"] = (t(key, value=url_text(url_id), shown=shown, why=why), fallback.id if fallback else None)
    if fallback is None:
        st.session_state.pop("run_id", None)
        st.query_params.pop("run", None)
    return fallback


def current_view() -> RunView | None:
    """A snapshot of the run shown, or None."""
    run = current()
    return run.view() if run is not None else None


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
    from_file = file_figures(view)
    if from_file is None:
        return view.epoch, view.last
    epoch, ppl = from_file
    return epoch, {"epoch": epoch, "perplexity": ppl} if ppl is not None else None

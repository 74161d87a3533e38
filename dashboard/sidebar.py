"""The settings sidebar (or, in lecture mode, the settings inline above the page), bound to the URL.

Every widget is keyed by its URL query parameter and bound with ``bind="query-params"``, so a copied link
reopens the same demo. A bad URL value is named in a warning. The result is a ``Context``: settings, corpus,
device.
"""
from __future__ import annotations

from dataclasses import dataclass

import streamlit as st
import torch

from rnn_core.corpus import BUILTIN_CORPORA, MAX_CORPUS_BYTES
from rnn_core.settings_schema import by_url, widget_args

from . import i18n, runs
from .compute import describe_device, resolve_device
from .corpora import CorpusInfo, corpus_info, corpus_title, upload_cap_mb, upload_encoding_caption
from .formatting import fmt_ppl
from .i18n import t
from .layout import UNSET, choice_text, url_box, url_choice, url_note, url_replace, url_warning
from .pages import language
from .settings import (
    CHOICE_KEYS,
    CLIP_CHOICES,
    CORPUS_CHOICES,
    LESSON,
    OPTION_CAPTIONS,
    PAGE_URL_KEYS,
    SIDEBAR_KEYS,
    URL_SPECS,
    USES,
    Settings,
    parse_clip,
    url_shown,
    url_value,
)


@dataclass
class Context:
    """What the sidebar decided for this run: settings, corpus, device."""

    settings: Settings
    info: CorpusInfo
    device: torch.device
    device_error: str | None


def url_checks(*keys: str) -> None:
    """Say which URL values are out of range or unknown, and what is used instead, and make the widgets use that.

    Read before the widgets: Streamlit drops a bad bound value silently, or reads ``?batch=7.9`` as 7, so a bad
    value is replaced in the URL by the value used and the page runs again before its widget is drawn. The
    warning stays until the setting is changed.
    """
    again = False
    for key in keys:
        raw = st.query_params.get(key)
        if raw is None or key in st.session_state:  # a drawn widget keeps its value and writes it to the URL
            continue
        good, used = url_value(key, raw)
        if good:
            continue
        if key == "lang":
            used = locale_language()
        if url_note(key, raw, used) and key not in CHOICE_KEYS:  # the named choices read the URL themselves
            again |= url_replace(key, used, URL_SPECS[key][2])
    if again:
        st.rerun()
    for key in keys:
        url_warning(key, lambda used, key=key: url_used_text(key, used), st.session_state.get(key, UNSET))


def url_used_text(key: str, value) -> str:
    """A setting's value as its widget shows it, for a warning: a choice by its identifier and its name."""
    names = {"corpus": corpus_title, "lang": i18n.LANGS.get}.get(key)
    if names is None and (key in OPTION_CAPTIONS or key == "mode"):
        names = choice_name(key)
    return choice_text(value, names(value)) if names is not None else url_shown(key, value)


def reset_to_lesson() -> None:
    """Callback: the lesson's settings (32, 35, 512, lr 1, theta 1, 500 epochs, sequential)."""
    for key in ("batch", "steps", "hidden", "lr", "epochs", "partition", "token", "clean"):
        st.session_state[key] = getattr(LESSON, key)
    st.session_state["clip"] = f"{LESSON.clip:g}"


def options(key: str) -> list[str]:
    """A choice widget's options (rnn_core.settings_schema's, in its order) for the setting at URL ``key``."""
    return list(by_url(key).metadata["choices"])


def help_text(key: str) -> str:
    """The help of the widget for the setting at URL ``key`` (its message id in rnn_core.settings_schema)."""
    return t(by_url(key).metadata["help"])


def choice_name(key: str):
    """How a choice's options read in the run's language (their identifiers stay in the URL)."""
    return lambda option: t(f"choice.{key}.{option}")


def locale_language() -> str:
    """The language the browser's locale asks for: the language control's default."""
    return i18n.from_locale(getattr(st.context, "locale", None))


def captions(key: str) -> list[str]:
    """A radio's captions in the run's language (its options stay the identifiers the URL holds)."""
    return [t(f"option.{key}.{option}") for option in OPTION_CAPTIONS[key]]


CONTEXT_KEY = "lab_context"  # session state: this run's Context, set by sidebar() before the page runs


def sidebar(live_run: bool = True, page: str | None = None, lecture: bool = False) -> None:
    """Draw the settings sidebar (each widget bound to its URL parameter) and resolve corpus and device; the page
    reads what it decided with :func:`context`.

    ``live_run``: show this session's run with a live progress bar (the Training page draws its own).
    ``page``: the url_path of the page shown; settings it does not use go under "Used by other pages".
    ``lecture``: the settings go inline above the page instead (the ones it uses in their own expander).
    """
    bound = dict(bind="query-params")
    language()  # this run's language, when a page file runs on its own
    url_checks(*SIDEBAR_KEYS, *PAGE_URL_KEYS.get(page, ()))
    url_box()  # the page's own link warnings (a row, a hidden unit) go here, under these
    uses = USES.get(page, USES["training"]) if page is not None else USES["training"]
    unused = set(USES["training"]) - set(uses)
    if lecture:
        left, right = st.columns(2) if unused else (st.container(), None)
        here = left.expander(t("lecture.settings"), icon=":material/tune:")
        others = right.expander(t("sidebar.other_pages")) if unused else None
        run_box = st.container()
        url_choice(here, "selectbox", t("sidebar.language"), list(i18n.LANGS), "lang", locale_language(),
                   i18n.LANGS.get)
    else:
        url_choice(st.sidebar, "selectbox", t("sidebar.language"), list(i18n.LANGS), "lang", locale_language(),
                   i18n.LANGS.get)
        run_box = st.sidebar.container()  # this session's run, on top: seen on every page without scrolling
        st.sidebar.header(t("sidebar.settings"))
        here = st.sidebar.container()
        others = st.sidebar.expander(t("sidebar.other_pages")) if unused else None
    panel = others or here  # where the buttons and notes that belong to no one setting go

    def where(key: str):
        return here if key in uses or others is None else others

    sb = where("corpus")
    corpus = url_choice(sb, "selectbox", t("sidebar.corpus"), CORPUS_CHOICES, "corpus", LESSON.corpus, corpus_title,
                        help=help_text("corpus"))
    upload = None
    if corpus == "upload":
        cap_mb = MAX_CORPUS_BYTES // 2**20  # the widget's own cap: rnn_core's, whatever config.toml says
        f = sb.file_uploader(t("sidebar.upload", mb=cap_mb), type=["txt", "md", "csv"], key="upload_file",
                             max_upload_size=cap_mb)
        if f is not None:
            upload = (f.file_id, f.name, f.getvalue())
    elif corpus in BUILTIN_CORPORA:
        sb.caption(t(f"corpus.{corpus}.about"))
    corpus_status = sb.container()  # filled once the corpus is resolved (it needs the token type and seed)
    token = url_choice(where("token"), "radio", t("sidebar.token"), options("token"), "token", LESSON.token,
                       choice_name("token"), horizontal=True, captions=captions("token"))
    clean = url_choice(where("clean"), "radio", t("sidebar.clean"), options("clean"), "clean", LESSON.clean,
                       choice_name("clean"), horizontal=True, captions=captions("clean"), help=help_text("clean"))

    batch = where("batch").slider(t("sidebar.batch"), **widget_args("batch"), key="batch", **bound,
                                  help=help_text("batch"))
    steps = where("steps").slider(t("sidebar.steps"), **widget_args("steps"), key="steps", **bound,
                                  help=help_text("steps"))
    hidden = where("hidden").slider(t("sidebar.hidden"), **widget_args("hidden"), key="hidden", **bound,
                                    help=help_text("hidden"))
    partition = url_choice(where("partition"), "radio", t("sidebar.partition"), options("partition"), "partition",
                           LESSON.partition, choice_name("partition"), horizontal=True, captions=captions("partition"),
                           help=help_text("partition"))

    lr = where("lr").number_input(t("sidebar.lr"), **widget_args("lr"), key="lr", **bound)
    epochs = where("epochs").number_input(t("sidebar.epochs"), **widget_args("epochs"), key="epochs", **bound)
    clip_text = where("clip").selectbox(t("sidebar.clip"), CLIP_CHOICES, index=CLIP_CHOICES.index(URL_SPECS["clip"][2]),
                                        key="clip", accept_new_options=True, **bound, help=help_text("clip"))
    clip, clip_error = parse_clip(clip_text)
    if clip_error:
        where("clip").warning(clip_error)
    engines = options("engine")
    engine = where("engine").selectbox(t("sidebar.engine"), engines, index=0, key="engine", **bound,
                                       help=help_text("engine"))
    device_choice = url_choice(where("device"), "radio", t("sidebar.device"), options("device"), "device",
                               LESSON.device, choice_name("device"), horizontal=True, captions=captions("device"))
    device_status = where("device").container()
    seed = where("seed").number_input(t("sidebar.seed"), **widget_args("seed"), key="seed", **bound)
    panel.button(t("sidebar.reset"), on_click=reset_to_lesson, width="stretch", help=t("sidebar.reset_help"))
    panel.caption(t("sidebar.url_note"))

    settings = Settings(corpus=corpus, token=token, clean=clean, batch=int(batch), steps=int(steps),
                        hidden=int(hidden), lr=float(lr), epochs=int(epochs), clip=clip, partition=partition,
                        device=device_choice, seed=int(seed), engine=engine,
                        upload_id=upload[0] if upload else None)
    info = corpus_info(settings, upload, st.session_state.get("last_good_corpus"))
    if info.error is None and info.used == info.requested:
        st.session_state["last_good_corpus"] = info  # what a refused upload leaves in use
    device, device_error = resolve_device(settings)
    with corpus_status:
        if info.error:
            st.error(info.error, icon=":material/error:")
        if info.fallback_reason:
            st.warning(fallback_message(info))
        for warning in info.warnings:
            st.warning(i18n.error_text(warning))  # rnn_core's English sentence, said in the page's language
        if caption := upload_encoding_caption(info):
            st.caption(caption)
    if device_error:
        device_status.error(t("sidebar.device_error", error=device_error, device=describe_device(device)))
    if not lecture:
        _sidebar_summary(info, device)
    view = runs.current_view()
    with run_box:
        runs.url_warnings()  # a ?run= that names no readable run, and the run shown instead
        if view is not None and live_run:
            st.fragment(run_status, run_every=refresh_s() if view.running else None)()
    st.session_state[CONTEXT_KEY] = Context(settings, info, device, device_error)


def fallback_message(info: CorpusInfo) -> str:
    """Why the corpus in use is not the one asked for, and which one is in use now."""
    used = corpus_title(info.used)
    if info.requested == "upload":
        return t("sidebar.upload_refused" if info.error else "sidebar.upload_missing", used=used,
                 mb=upload_cap_mb())
    return t("sidebar.fallback", used=used, requested=corpus_title(info.requested), reason=info.fallback_reason)


def corpus_note(info: CorpusInfo) -> str:
    """Where the corpus in use came from, in the run's language."""
    if info.used == "time_machine":
        return t("corpus.time_machine.note_" + ("found" if info.note.startswith("found") else "downloaded"))
    if info.used in BUILTIN_CORPORA:
        seed = info.tc.source.note.rsplit("(seed ", 1)[-1].rstrip(")")
        return t("corpus.builtin_note", about=t(f"corpus.{info.used}.about"), seed=seed)
    return t("corpus.upload_note", name=info.tc.source.name)


def _sidebar_summary(info: CorpusInfo, device: torch.device) -> None:
    """Below the settings: what is actually in use."""
    sb = st.sidebar
    sb.divider()
    sb.caption(t("sidebar.summary", corpus=corpus_title(info.used), note=corpus_note(info),
                 tokens=f"{len(info.tc.corpus):,}", vocab=len(info.vocab), device=describe_device(device)))


def status_words(status: str) -> str:
    """A run's status in words, in the run's language."""
    return t(f"status.{status}")


def run_status() -> None:
    """The run shown in one line, saying whose it is, and a progress bar (a fragment: redrawn while it trains)."""
    run = runs.current()
    if run is None:
        return
    view = run.view()
    epoch, last = runs.figures(run)  # an uploaded checkpoint's own epoch and perplexity
    ppl = t("run.ppl_part", ppl=fmt_ppl(last["perplexity"])) if last and last.get("perplexity") is not None else ""
    st.caption(t("run.status_line", who=runs.whose(run), epoch=epoch, target=view.target, ppl=ppl,
                 status=status_words(view.status)))
    st.progress(1.0 if runs.file_figures(run) else view.progress)
    if st.session_state.get("_run_was_running") and not view.running:
        st.session_state["_run_was_running"] = False
        st.rerun()  # the run ended: a full run turns the timer off and updates every view
    st.session_state["_run_was_running"] = view.running


LIVE_EVERY_S = 2.0  # each redraw of the live curves costs the browser ~0.25 s of CPU: on a laptop that trains


def refresh_s() -> float:
    """Seconds between live redraws of the runs a page shows: 2 s, however many runs train on the server (a
    browser draws only its own page, so other sessions' runs cost it nothing; the server's cost of a class's
    redraws is in docs/performance.md, "A class at once")."""
    return LIVE_EVERY_S


def context() -> Context:
    """This run's settings, corpus and device, as the sidebar drawn by Home.py decided them."""
    if CONTEXT_KEY not in st.session_state:  # only when a page file is run on its own
        sidebar()
    return st.session_state[CONTEXT_KEY]

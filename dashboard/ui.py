"""The frame every page shares: navigation, the sidebar bound to the URL, page headers, errors.

Every sidebar widget is keyed by its URL query parameter and bound with ``bind="query-params"``, so a
copied link reopens the same demo: ``/shapes?batch=8&steps=10&hidden=64``.
"""
from __future__ import annotations

from dataclasses import dataclass

import streamlit as st
import torch

from rnn_core.corpus import BUILTIN_CORPORA, CLEANINGS, MAX_CORPUS_BYTES

from . import i18n, lab, runs
from .i18n import t
from .lab import LESSON, CorpusInfo, Settings
from .runs import model_banner, pick_model as session_model  # noqa: F401  (the pages' names for them)

# url_path -> (file, icon); titles and help texts are the catalogue's nav.<page>.title / nav.<page>.help
PAGES = {
    "": ("views/home.py", ":material/home:"),
    "data": ("views/data.py", ":material/dataset:"),
    "shapes": ("views/shapes.py", ":material/view_in_ar:"),
    "identity": ("views/identity.py", ":material/join:"),
    "training": ("views/training.py", ":material/model_training:"),
    "inside": ("views/inside.py", ":material/biotech:"),
    "generate": ("views/generate.py", ":material/edit_note:"),
    "exercises": ("views/exercises.py", ":material/science:"),
}


def page_title(path: str) -> str:
    """A page's title in the run's language ('' is Home)."""
    return t(f"nav.{path or 'home'}.title")


def page_help(path: str) -> str:
    """A page's one-line description in the run's language."""
    return t(f"nav.{path or 'home'}.help")


def language() -> str:
    """This run's language: the sidebar's choice, else ?lang=, else the browser's locale (st.context.locale).

    Read before the navigation and the sidebar are drawn, so every word of the run is in one language.
    """
    chosen = st.session_state.get("lang") or st.query_params.get("lang")
    if chosen not in i18n.LANGS:
        chosen = i18n.from_locale(getattr(st.context, "locale", None))
    st.session_state[i18n.SESSION_KEY] = chosen
    return chosen

STYLE = """
<style>
/* a projector's 720 px: less empty space above the page (Streamlit's header bar needs ~3.5rem) */
[data-testid="stMainBlockContainer"] { padding-top: 3.5rem; }
/* lecture hall: larger body text, metrics and tables */
[data-testid="stMainBlockContainer"] p, [data-testid="stMainBlockContainer"] li { font-size: 1.15rem; }
[data-testid="stMainBlockContainer"] [data-testid="stMetricValue"] p { font-size: inherit; }
/* a value wider than its column wraps instead of ending in "…" (a projector's 1024 px) */
[data-testid="stMetricValue"], [data-testid="stMetricValue"] * { white-space: normal !important;
  overflow-wrap: anywhere; text-overflow: clip !important; }
/* a page link as long as its line wraps (Home's lesson map) instead of being cut at the column's edge */
[data-testid="stPageLink"] *, [data-testid="stPageLink-NavLink"] { white-space: normal !important;
  overflow: visible !important; text-overflow: clip !important; height: auto !important; }
/* 1.2em: the widest formula fits the 560 px a 1024 px projector leaves beside the sidebar */
[data-testid="stMarkdownContainer"] .katex { font-size: 1.2em; }
[data-testid="stMainBlockContainer"] [data-testid="stCode"] code { font-size: 1.05rem; }
</style>
"""


def pages() -> list:
    """One st.Page per file in dashboard/views/, Home first and default."""
    return [st.Page(file, title=page_title(path), icon=icon, help=page_help(path), url_path=path or None,
                    default=path == "")
            for path, (file, icon) in PAGES.items()]


@dataclass
class Context:
    """What the sidebar decided for this run: settings, corpus, device."""

    settings: Settings
    info: CorpusInfo
    device: torch.device
    device_error: str | None


# Keyboard shortcuts (st.button(shortcut=...)); Streamlit keeps R (rerun) and C (clear cache) for itself.
KEYS = {"start": "S", "stop": "X", "previous": "P", "next": "N"}

CLIP_CHOICES = ["off", "0.01", "0.1", "0.5", "1", "2", "5", "10", "100", "1000"]


def parse_clip(text: str | None) -> tuple[float | None, str | None]:
    """The clipping threshold θ from the sidebar's text: (θ or None for off, a warning when it was unusable)."""
    text = (text or "1").strip().lower()
    if text == "off":
        return None, None
    try:
        theta = float(text)
    except ValueError:
        theta = -1.0
    if not (0 < theta < float("inf")):
        return LESSON.clip, t("sidebar.clip_bad", value=repr(text), theta=f"{LESSON.clip:g}")
    return theta, None


# Every URL parameter a widget is bound to that can hold a bad value: (kind, allowed, default shown).
# kind "int"/"float": allowed is (low, high); "choice": allowed is the options.
URL_SPECS = {
    "batch": ("int", (1, 128), LESSON.batch), "steps": ("int", (1, 100), LESSON.steps),
    "hidden": ("int", (1, 1024), LESSON.hidden), "lr": ("float", (0.001, 100.0), LESSON.lr),
    "epochs": ("int", (1, 10_000), LESSON.epochs), "seed": ("int", (0, 2**31 - 1), LESSON.seed),
    "corpus": ("choice", tuple(lab.CORPUS_CHOICES), LESSON.corpus), "token": ("choice", ("char", "word"), "char"),
    "clean": ("choice", CLEANINGS, "lesson"), "partition": ("choice", ("sequential", "random"), "sequential"),
    "device": ("choice", ("auto", "cpu", "cuda"), "auto"), "engine": ("choice", tuple(lab.engine_names()), LESSON.engine),
    "lang": ("choice", tuple(i18n.LANGS), None), "mode": ("choice", ("lecture", "lab"), "lab"),
    "identity_n": ("int", (1, 12), 3), "identity_d": ("int", (1, 12), 1), "identity_h": ("int", (1, 12), 4),
    "generate_length": ("int", (10, 500), 50), "generate_temperature": ("float", (0.1, 3.0), 1.0),
    "generate_seed": ("int", (0, 2**31 - 1), LESSON.seed),
}
SIDEBAR_KEYS = ("lang", "mode", "corpus", "token", "clean", "batch", "steps", "hidden", "partition", "lr", "epochs",
                "device", "engine", "seed")


def url_problem(key: str, raw: str) -> bool:
    """True when `raw` is not a value the widget bound to ``?key=`` accepts (Streamlit would drop it silently)."""
    kind, allowed, _ = URL_SPECS[key]
    if kind == "choice":
        return raw not in allowed
    try:
        value = float(raw)
    except ValueError:
        return True
    if kind == "int" and value != int(value):
        return True
    return not allowed[0] <= value <= allowed[1]


def url_checks(*keys: str) -> None:
    """Say which URL values are out of range or unknown, and what is used instead (read before the widgets:
    Streamlit drops a bad bound value silently). The warning stays until the setting is changed."""
    notes = st.session_state.setdefault("_url_warnings", {})
    for key in keys:
        raw = st.query_params.get(key)
        if raw is not None and url_problem(key, raw):
            default = URL_SPECS[key][2]
            notes[key] = (raw, default)
        elif key in notes and (raw is not None or st.session_state.get(key, notes[key][1]) != notes[key][1]):
            del notes[key]  # the URL holds a good value again, or the widget was moved
    for key in keys:
        if key in notes:
            raw, default = notes[key]
            used = (i18n.LANGS[language()] if key == "lang" else
                    f"{default:g}" if isinstance(default, float) else default)
            st.warning(t("url.bad", param=key, value=raw, used=used), icon=":material/link_off:")


def reset_to_lesson() -> None:
    """Callback: the lesson's settings (32, 35, 512, lr 1, theta 1, 500 epochs, sequential)."""
    for key in ("batch", "steps", "hidden", "lr", "epochs", "partition", "token", "clean"):
        st.session_state[key] = getattr(LESSON, key)
    st.session_state["clip"] = f"{LESSON.clip:g}"


OPTION_CAPTIONS = {"token": ("char", "word"), "clean": CLEANINGS, "partition": ("sequential", "random"),
                   "device": ("auto", "cpu", "cuda")}


def captions(key: str) -> list[str]:
    """A radio's captions in the run's language (its options stay the identifiers the URL holds)."""
    return [t(f"option.{key}.{option}") for option in OPTION_CAPTIONS[key]]


def corpus_title(name: str) -> str:
    """A corpus's name in the run's language."""
    return t(f"corpus.{name}.title") if name in lab.CORPUS_CHOICES else name


# The sidebar settings each page's views depend on (url_path -> setting keys); the others are drawn under
# "Used by other pages", so a slider that would change nothing here is not offered as if it did.
CORPUS_KEYS = ("corpus", "token", "clean")
USES = {
    "": (*CORPUS_KEYS, "device"),
    "data": (*CORPUS_KEYS, "batch", "steps", "partition", "seed"),
    "shapes": (*CORPUS_KEYS, "batch", "steps", "hidden", "partition", "seed"),
    "identity": ("seed",),
    "training": (*CORPUS_KEYS, "batch", "steps", "hidden", "partition", "lr", "epochs", "clip", "engine", "device",
                 "seed"),
    "inside": (*CORPUS_KEYS, "hidden", "seed"),
    "generate": (*CORPUS_KEYS, "hidden", "seed"),
}


def lecture_mode() -> bool:
    """``?mode=lecture``: navigation on top, no sidebar, larger type, each page's settings inline.

    Read before the navigation is drawn: the mode control's value once it exists, else the URL's.
    """
    mode = st.session_state.get("mode") or st.query_params.get("mode")
    return mode == "lecture"


LECTURE_STYLE = """
<style>
/* lecture mode: everything a size larger for the back of the room */
[data-testid="stMainBlockContainer"] p, [data-testid="stMainBlockContainer"] li { font-size: 1.35rem; }
[data-testid="stMainBlockContainer"] h1 { font-size: 2.6rem; }
[data-testid="stMainBlockContainer"] { padding-top: 3.5rem; }
</style>
"""


# Every URL parameter bound to a widget (Streamlit refuses to set these directly, and keeps them itself)
BOUND_KEYS = {*URL_SPECS, "clip", "text", "prefix", "model", "epoch", "identity_f64", "inside_unit", "shapes_row"}


def view_link(page: str) -> str:
    """The address of this exact view: the page, the URL's parameters and every bound setting as it is now."""
    from urllib.parse import urlencode

    params = st.query_params.to_dict()
    for key in sorted(BOUND_KEYS):
        if key in st.session_state and st.session_state[key] is not None:
            value = st.session_state[key]
            default = URL_SPECS.get(key, (None, None, object()))[2]
            if value != default or key in params:
                params[key] = str(value).lower() if isinstance(value, bool) else str(value)
    query = urlencode(params)
    return f"{_root()}/{page}" + (f"?{query}" if query else "")


def _root() -> str:
    """The server's address as the browser sees it ('' when unknown: a link relative to the server)."""
    from urllib.parse import urlsplit

    base = urlsplit(getattr(st.context, "url", None) or "")
    return f"{base.scheme}://{base.netloc}" if base.netloc else ""


# The built-in Chinese text (the lesson itself, in d2l-zh too, trains on The Time Machine): every character kept.
CHINESE_DEMO = {"corpus": "chinese_numbers", "clean": "keep"}


def chinese_demo_link() -> str:
    """The Data page on the built-in Chinese corpus, in this run's language (and lecture mode, when on)."""
    from urllib.parse import urlencode

    params = {**CHINESE_DEMO, "lang": i18n.current(), **({"mode": "lecture"} if lecture_mode() else {})}
    return f"{_root()}/data?{urlencode(params)}"


def chinese_demo(where=st) -> None:
    """The Chinese demo one click away: a sentence on what it is and the link that opens it."""
    box = where.container(horizontal=True, vertical_alignment="center")
    box.link_button(t("demo.zh_open"), chinese_demo_link(), icon=":material/translate:")
    box.caption(t("demo.zh_about"))


def switch_to(path: str) -> None:
    """Open another page, keeping the URL's parameters (bound ones follow their widgets)."""
    from streamlit.errors import StreamlitAPIException

    keep = {k: v for k, v in st.query_params.to_dict().items() if k not in BOUND_KEYS}
    try:
        st.switch_page(PAGES[path][0], query_params=keep)
    except StreamlitAPIException:  # a parameter bound by a widget this module does not know
        st.switch_page(PAGES[path][0], query_params={})


def toolbar(page: str) -> None:
    """Above every page: previous and next page (keys P and N), the mode (lab or lecture), a link to this
    exact view, and the list of keys."""
    order = list(PAGES)
    i = order.index(page) if page in order else 0
    before = order[i - 1] if i > 0 else None
    after = order[i + 1] if i + 1 < len(order) else None
    c = st.columns([1, 1, 4, 1.3, 5], vertical_alignment="center")
    if c[0].button("", icon=":material/arrow_back:", key="page_previous", disabled=before is None,
                   shortcut=KEYS["previous"], help=t("toolbar.previous", title=page_title(before or ""))):
        switch_to(before)
    if c[1].button("", icon=":material/arrow_forward:", key="page_next", disabled=after is None,
                   shortcut=KEYS["next"], help=t("toolbar.next", title=page_title(after or ""))):
        switch_to(after)
    c[2].segmented_control(t("toolbar.mode"), ["lab", "lecture"], default="lab", key="mode", bind="query-params",
                           label_visibility="collapsed", help=t("toolbar.mode_help"))
    with c[3].popover("", icon=":material/link:", help=t("toolbar.link")):
        st.code(view_link(page), language=None, wrap_lines=True)
        st.caption(t("toolbar.link_help"))
    c[4].html(f'<div style="font-size: 0.85rem; color: rgba(49, 51, 63, 0.6); line-height: 1.3">'
              f'{t("toolbar.keys_html", **KEYS)}</div>')


def sidebar(live_run: bool = True, page: str | None = None, lecture: bool = False) -> Context:
    """Draw the settings sidebar (each widget bound to its URL parameter) and resolve corpus and device.

    ``live_run``: show this session's run with a live progress bar (the Training page draws its own).
    ``page``: the url_path of the page shown; settings it does not use go under "Used by other pages".
    ``lecture``: the settings go inline above the page instead (the ones it uses in their own expander).
    """
    bound = dict(bind="query-params")
    lang = language()
    url_checks(*SIDEBAR_KEYS)
    uses = USES.get(page, USES["training"]) if page is not None else USES["training"]
    unused = set(USES["training"]) - set(uses)
    if lecture:
        left, right = st.columns(2) if unused else (st.container(), None)
        here = left.expander(t("lecture.settings"), icon=":material/tune:")
        others = right.expander(t("sidebar.other_pages")) if unused else None
        run_box = st.container()
        here.selectbox(t("sidebar.language"), list(i18n.LANGS), index=list(i18n.LANGS).index(lang), key="lang",
                       format_func=i18n.LANGS.get, **bound)
    else:
        st.sidebar.selectbox(t("sidebar.language"), list(i18n.LANGS), index=list(i18n.LANGS).index(lang), key="lang",
                             format_func=i18n.LANGS.get, **bound)
        run_box = st.sidebar.container()  # this session's run, on top: seen on every page without scrolling
        st.sidebar.header(t("sidebar.settings"))
        here = st.sidebar.container()
        others = st.sidebar.expander(t("sidebar.other_pages")) if unused else None
    panel = others or here  # where the buttons and notes that belong to no one setting go

    def where(key: str):
        return here if key in uses or others is None else others

    sb = where("corpus")
    corpus = sb.selectbox(t("sidebar.corpus"), lab.CORPUS_CHOICES, index=0, key="corpus", **bound,
                          help=t("sidebar.corpus_help"))
    upload = None
    if corpus == "upload":
        f = sb.file_uploader(t("sidebar.upload", mb=MAX_CORPUS_BYTES // 2**20), type=["txt", "md", "csv"],
                             key="upload_file")
        if f is not None:
            upload = (f.file_id, f.name, f.getvalue())
    elif corpus in BUILTIN_CORPORA:
        sb.caption(t(f"corpus.{corpus}.about"))
    corpus_status = sb.container()  # filled once the corpus is resolved (it needs the token type and seed)
    token = where("token").radio(t("sidebar.token"), ["char", "word"], key="token", horizontal=True,
                                 captions=captions("token"), **bound)
    clean = where("clean").radio(t("sidebar.clean"), list(CLEANINGS), key="clean", horizontal=True,
                     captions=captions("clean"), help=t("sidebar.clean_help"), **bound)

    batch = where("batch").slider(t("sidebar.batch"), 1, 128, LESSON.batch, key="batch", **bound, help=t("sidebar.batch_help"))
    steps = where("steps").slider(t("sidebar.steps"), 1, 100, LESSON.steps, key="steps", **bound, help=t("sidebar.steps_help"))
    hidden = where("hidden").slider(t("sidebar.hidden"), 1, 1024, LESSON.hidden, key="hidden", **bound,
                       help=t("sidebar.hidden_help"))
    partition = where("partition").radio(t("sidebar.partition"), ["sequential", "random"], key="partition", horizontal=True,
                         captions=captions("partition"), help=t("sidebar.partition_help"), **bound)

    lr = where("lr").number_input(t("sidebar.lr"), min_value=0.001, max_value=100.0, value=LESSON.lr, step=0.1,
                         format="%g", key="lr", **bound)
    epochs = where("epochs").number_input(t("sidebar.epochs"), min_value=1, max_value=10_000, value=LESSON.epochs, step=10,
                             key="epochs", **bound)
    clip_text = where("clip").selectbox(t("sidebar.clip"), CLIP_CHOICES, index=CLIP_CHOICES.index("1"), key="clip",
                             accept_new_options=True, **bound, help=t("sidebar.clip_help"))
    clip, clip_error = parse_clip(clip_text)
    if clip_error:
        where("clip").warning(clip_error)
    engines = lab.engine_names()
    engine = where("engine").selectbox(t("sidebar.engine"), engines, index=0, key="engine", **bound, help=t("sidebar.engine_help"))
    device_choice = where("device").radio(t("sidebar.device"), ["auto", "cpu", "cuda"], key="device",
                                          horizontal=True, **bound)
    device_status = where("device").container()
    seed = where("seed").number_input(t("sidebar.seed"), min_value=0, max_value=2**31 - 1, value=LESSON.seed, step=1,
                           key="seed", **bound)
    panel.button(t("sidebar.reset"), on_click=reset_to_lesson, width="stretch", help=t("sidebar.reset_help"))
    panel.caption(t("sidebar.url_note"))

    settings = Settings(corpus=corpus, token=token, clean=clean, batch=int(batch), steps=int(steps),
                        hidden=int(hidden), lr=float(lr), epochs=int(epochs), clip=clip, partition=partition,
                        device=device_choice, seed=int(seed), engine=engine,
                        upload_id=upload[0] if upload else None)
    info = lab.corpus_info(settings, upload, st.session_state.get("last_good_corpus"))
    if info.error is None and info.used == info.requested:
        st.session_state["last_good_corpus"] = info  # what a refused upload leaves in use
    device, device_error = lab.resolve_device(settings)
    with corpus_status:
        if info.error:
            st.error(info.error, icon=":material/error:")
        if info.fallback_reason:
            st.warning(fallback_message(info))
        for warning in info.warnings:
            st.warning(warning)
    if device_error:
        device_status.error(t("sidebar.device_error", error=device_error, device=lab.describe_device(device)))
    if not lecture:
        _sidebar_summary(info, device)
    view = runs.current_view()
    if view is not None and live_run:
        with run_box:
            st.fragment(run_status, run_every=refresh_s() if view.running else None)()
    ctx = Context(settings, info, device, device_error)
    st.session_state["lab_context"] = ctx
    return ctx


def fallback_message(info: CorpusInfo) -> str:
    """Why the corpus in use is not the one asked for, and which one is in use now."""
    used = corpus_title(info.used)
    if info.requested == "upload":
        return t("sidebar.upload_refused" if info.error else "sidebar.upload_missing", used=used)
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
                 tokens=f"{len(info.tc.corpus):,}", vocab=len(info.vocab), device=lab.describe_device(device)))


def status_words(status: str) -> str:
    """A run's status in words, in the run's language."""
    return t(f"status.{status}")


def run_status() -> None:
    """The session's run in one line and a progress bar (a fragment: redrawn while the run trains)."""
    view = runs.current_view()
    if view is None:
        return
    ppl = t("run.ppl_part", ppl=lab.fmt_ppl(view.last["perplexity"])) if view.last else ""
    st.caption(t("run.status_line", epoch=view.epoch, target=view.target, ppl=ppl,
                 status=status_words(view.status)))
    st.progress(view.progress)
    if st.session_state.get("_run_was_running") and not view.running:
        st.session_state["_run_was_running"] = False
        st.rerun()  # the run ended: a full run turns the timer off and updates every view
    st.session_state["_run_was_running"] = view.running


LIVE_EVERY_S = 2.0  # each redraw of the live curves costs the browser ~0.25 s of CPU: on a laptop that trains
# too, a redraw every second took a quarter of a core from training (measured with two cores)


def refresh_s() -> float:
    """Seconds between live redraws: 2 s, longer when many runs train on the server (each redraw costs CPU)."""
    return max(LIVE_EVERY_S, 0.25 * len(runs.registry().scheduler.active()))


def context() -> Context:
    """This run's settings, corpus and device (set by the sidebar in Home.py)."""
    ctx = st.session_state.get("lab_context")
    if ctx is None:  # only when a page file is run on its own
        ctx = sidebar()
    return ctx


def index_slider(label: str, size: int, default: int, key: str, **kwargs) -> int:
    """A slider over 0..size-1 (a slider needs two values: with one there is nothing to choose)."""
    if size <= 1:
        st.caption(t("ui.only_one", label=label))
        return 0
    return st.slider(label, 0, size - 1, min(default, size - 1), key=key, **kwargs)


def header(title: str, intro: str, formulas: list[str], code: str, fold: bool = False) -> None:
    """A page's opening: title, two or three plain sentences, the formula, the lesson's code (collapsed).

    ``fold``: the formulas go into the collapsed part too (Training: its controls and live curves must be on
    a projector's first screen).
    """
    st.title(title)
    st.markdown(intro)
    if not fold:
        for formula in formulas:
            st.latex(formula)
    with st.expander(t("ui.formulas_code" if fold else "ui.lesson_code"), icon=":material/code:"):
        if fold:
            for formula in formulas:
                st.latex(formula)
        st.code(code, language="python")


def chart(fig, key: str | None = None) -> None:
    """Render a plotly figure full width with its own (large-font) template."""
    st.plotly_chart(fig, width="stretch", theme=None, key=key, config={"displaylogo": False})


@st.cache_resource(max_entries=256, show_spinner=False)
def _figure(builder: str, cache_key: tuple, _args: tuple, _kwargs: dict):
    # Figures are never mutated after building (st.plotly_chart serialises a copy), so sharing is safe.
    from . import charts  # plotly loads with the first chart, not with Home

    return getattr(charts, builder)(*_args, **_kwargs)


def cached_chart(builder: str, cache_key: tuple, *args, key: str | None = None, **kwargs) -> None:
    """Render ``charts.<builder>(*args, **kwargs)``, built once per `cache_key` (which must identify the inputs).

    Building a plotly figure costs tens of milliseconds; a slider that does not touch a chart's inputs
    should not pay for it again.
    """
    lang = i18n.current()
    chart(_figure(builder, (*cache_key, lang), args, {"lang": lang, **kwargs}), key=key)


def run_error(view) -> str | None:
    """Why a run stopped, in the page's language (a run keeps its error as English text; its status and epochs
    say it again here). None when it stopped on no error."""
    if not view.error:
        return None
    if view.status == "diverged":
        return t("error.run_diverged" if view.good_epoch else "error.run_diverged_start", epoch=view.epoch,
                 good=view.good_epoch)
    if view.status == "out_of_memory":
        return t("error.run_out_of_memory", device=view.device)
    return t("error.run_failed")  # a bug: the page shows the run's own message under this sentence


def user_error(exc: Exception) -> None:
    """A user-caused problem, said in one sentence in the page's language (never a traceback)."""
    st.error(i18n.error_text(exc), icon=":material/error:")

"""What every page draws the same way: the styles, a page's header, charts, sliders over indices, errors."""
from __future__ import annotations

import streamlit as st

from . import i18n
from .i18n import t
from .settings import ALWAYS_IN_URL, URL_SPECS, index_value

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
/* and a label too ("Minibatches per epoch", "‖g‖ before clipping"): it wraps, never ends in "…" */
[data-testid="stMetricLabel"], [data-testid="stMetricLabel"] * { white-space: normal !important;
  overflow: visible !important; text-overflow: clip !important; height: auto !important; }
/* the toolbar's list of keys: read from the room, not a grey footnote */
.rnnlab-keys { font-size: 1rem; line-height: 1.35; color: rgba(49, 51, 63, 0.85); }
/* a page link as long as its line wraps (Home's lesson map) instead of being cut at the column's edge */
[data-testid="stPageLink"] *, [data-testid="stPageLink-NavLink"] { white-space: normal !important;
  overflow: visible !important; text-overflow: clip !important; height: auto !important; }
/* 1.2em: the widest formula fits the 560 px a 1024 px projector leaves beside the sidebar */
[data-testid="stMarkdownContainer"] .katex { font-size: 1.2em; }
[data-testid="stMainBlockContainer"] [data-testid="stCode"] code { font-size: 1.05rem; }
</style>
"""

LECTURE_STYLE = """
<style>
/* lecture mode: everything a size larger for the back of the room */
[data-testid="stMainBlockContainer"] p, [data-testid="stMainBlockContainer"] li { font-size: 1.35rem; }
[data-testid="stMainBlockContainer"] h1 { font-size: 2.6rem; }
[data-testid="stMainBlockContainer"] { padding-top: 3.5rem; }
/* what a lecturer types or picks (Inside's string, Generate's prefix, the exercise) as large as the prose */
[data-testid="stMain"] input, [data-testid="stMain"] textarea,
[data-testid="stMain"] [data-baseweb="select"], [data-testid="stMain"] [data-baseweb="select"] *,
[data-baseweb="popover"] li, [data-baseweb="popover"] li * { font-size: 1.2rem !important; }
[data-testid="stMain"] [data-baseweb="input"], [data-testid="stMain"] [data-baseweb="select"] > div {
  min-height: 2.9rem; }
.rnnlab-keys { font-size: 1.15rem; }
/* a slider's value and ends: the prose's 1.35rem put the value over the track */
[data-testid="stSliderThumbValue"] p, [data-testid="stSliderTickBar"] p { font-size: 1.15rem; line-height: 1.1; }
</style>
"""


URL_NOTES = "_url_warnings"  # session state: URL parameter -> (the link's value, the value used instead)


def url_text(raw: str, longest: int = 60) -> str:
    """A URL's value as a warning quotes it, cut to `longest` characters, for the code span the catalogue puts it
    in (so a crafted link's Markdown, links or formulas show as the text they are)."""
    raw = raw if len(raw) <= longest else raw[:longest] + "…"
    return raw.replace("`", "'").replace("\n", " ")


def url_note(param: str, raw: str, used) -> bool:
    """Remember that the link's ``?param=raw`` is not used as it is, and the value used instead.

    False when the same note was made already: the URL still holds the value after it was replaced, and the
    page must not run again for it.
    """
    notes = st.session_state.setdefault(URL_NOTES, {})
    if notes.get(param) == (raw, used):
        return False
    notes[param] = (raw, used)
    return True


def url_replace(param: str, used, default) -> bool:
    """Put the value used into the URL in place of the link's (leave it out when it is the widget's default),
    so that the widget bound to ``?param=`` is seeded with it when the page runs again. Streamlit seeds a
    bound widget from the URL it was opened with, and reads ``?batch=7.9`` as 7: the run that found the bad
    value must end before its widget is drawn. False when the widget is bound already (Streamlit keeps its
    value and refuses the change)."""
    from streamlit.errors import StreamlitAPIException

    try:
        if used == default or used is None:
            if param in st.query_params:
                del st.query_params[param]
        else:
            st.query_params[param] = str(used).lower() if isinstance(used, bool) else str(used)
    except StreamlitAPIException:
        return False
    return True


PAGE_TURNED = "_page_turned"  # session state: True on the first run of a page the session turned to (Home.py)
UNSET = object()  # a setting whose widget is not drawn yet: it will take the value noted
URL_BOX = "_url_box"  # session state: this run's place for the link warnings found further down the page


def url_box() -> None:
    """Make the place, above the page, where warnings about a page's own link values go (a hidden unit's slider
    sits in a tab that is not shown at first: its warning must not)."""
    st.session_state[URL_BOX] = st.container()


def url_warning(param: str, shown=str, now=UNSET) -> None:
    """The warning for a link's value of ``?param=`` that was not used as it is: it names the value and
    ``shown(the value used)``, and stays while the setting (`now`) still holds the value used."""
    notes = st.session_state.get(URL_NOTES, {})
    if param not in notes:
        return
    raw, used = notes[param]
    if now is not UNSET and now != used:
        del notes[param]  # the setting was changed since
        return
    if URL_SPECS.get(param, ("",))[0] == "text":
        st.warning(t("url.too_long", param=param, length=len(raw), longest=len(used), used=url_text(used, 10**6)),
                   icon=":material/link_off:")
    else:
        st.warning(t("url.bad", param=param, value=url_text(raw), used=shown(used)), icon=":material/link_off:")


def choice_text(value: str, name: str) -> str:
    """A choice as a warning names it: its identifier (the URL's spelling) and, when it differs, its name."""
    return value if name == value else t("url.choice", value=value, name=name)


def url_choice(box, widget: str, label: str, options: list[str], key: str, default: str, names, **kwargs) -> str:
    """A radio, selectbox or segmented control over identifiers that shows each by ``names(option)`` (the page's
    language) while ``?key=`` holds the identifier.

    Not ``bind="query-params"``: a bound widget writes the shown name into the URL (``?lang=简体中文``), which
    the app in another language cannot read back. Instead the URL's value seeds the widget once per session (a
    bad one is noted for ``sidebar.url_checks`` to name), and the widget's value goes back to the URL on every
    run, left out when it is the default, as a bound widget does (except ``settings.ALWAYS_IN_URL``).
    """
    kept = st.session_state.get(f"_choice.{key}")  # this session's choice, kept apart from the widget's state
    if kept in options and (key not in st.session_state or st.session_state.get(PAGE_TURNED)):
        # A widget drawn by a page (the model choice on Inside and on Generate) is another widget on the next
        # page, and Streamlit drops its state there: it would start at its first option (seen: Inside's
        # reference model became "this session's" on Generate, which has none, and showed an untrained one).
        st.session_state[key] = kept
    elif st.session_state.get(key) not in options:
        raw = st.query_params.get(key)
        st.session_state[key] = raw if raw in options else default
        if raw is not None and raw not in options and key in URL_SPECS:
            url_note(key, raw, default)
    if widget == "segmented_control":
        kwargs["required"] = True  # a click on the chosen option keeps it
    shown = {option: names(option) for option in options}  # named now, in this run's language
    value = getattr(box, widget)(label, options, key=key, format_func=lambda o: shown.get(o, str(o)), **kwargs)
    st.session_state[f"_choice.{key}"] = value
    if value == default and key not in ALWAYS_IN_URL:  # the language stays: its default is the browser's
        st.query_params.pop(key, None)
    else:
        st.query_params[key] = value
    return value


def index_slider(label: str, size: int, default: int, key: str, **kwargs) -> int:
    """A slider over 0..size-1 (a slider needs two values: with one there is nothing to choose).

    Bound to the URL (``bind="query-params"``), a link's index outside 0..size-1 or not a whole number is named
    in a warning above the page (``url_box``), and the default is used.
    """
    default = min(default, max(size - 1, 0))
    if kwargs.get("bind") == "query-params":
        raw = st.query_params.get(key)
        if raw is not None and key not in st.session_state:
            good, used = index_value(raw, size, default)
            if not good and url_note(key, raw, used) and url_replace(key, used, default) and size > 1:
                st.rerun()  # the slider is seeded from the URL as it is now
        box = st.session_state.get(URL_BOX)
        with box if box is not None else st.container():
            url_warning(key, str, st.session_state.get(key, UNSET) if size > 1 else 0)
    if size <= 1:
        st.caption(t("ui.only_one", label=label))
        return 0
    if not 0 <= st.session_state.get(key, 0) < size:  # set on a larger slider (a batch of 32, then of 8)
        st.session_state[key] = default
    return st.slider(label, 0, size - 1, default, key=key, **kwargs)


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


def lecture() -> bool:
    """Lecture mode (``?mode=lecture`` or the toolbar's switch), as pages.lecture_mode reads it."""
    from .pages import lecture_mode  # pages imports this module

    return lecture_mode()


def chart(fig, key: str | None = None, lecture_ready: bool = False, on_select=None) -> None:
    """Render a plotly figure full width with its own (large-font) template; in lecture mode with tick labels of
    16 px or more (chart_base.lecture_figure; `lecture_ready`: done already). ``on_select``: called when a point
    is clicked (the selection is in st.session_state[key])."""
    if not lecture_ready and lecture():
        from . import chart_base  # plotly loads with the first chart, not with Home

        fig = chart_base.lecture_figure(fig)
    select = {} if on_select is None else {"on_select": on_select, "selection_mode": "points"}
    st.plotly_chart(fig, width="stretch", theme=None, key=key, config={"displaylogo": False}, **select)


@st.cache_resource(max_entries=256, show_spinner=False)
def _figure(builder_name: str, cache_key: tuple, _builder, _args: tuple, _kwargs: dict, lecture_mode: bool = False):
    # Figures are never mutated after building (st.plotly_chart serialises a copy), so sharing is safe.
    from . import chart_base  # plotly loads with the first chart, not with Home

    fig = _builder(*_args, **_kwargs)
    return chart_base.lecture_figure(fig) if lecture_mode else fig


def cached_chart(builder, cache_key: tuple, *args, key: str | None = None, on_select=None, **kwargs) -> None:
    """Render ``builder(*args, **kwargs)`` (a chart builder), built once per `cache_key` (which must identify
    the inputs).

    Building a plotly figure costs tens of milliseconds; a slider that does not touch a chart's inputs
    should not pay for it again.
    """
    lang = i18n.current()
    name = f"{builder.__module__}.{builder.__qualname__}"
    mode = lecture()
    chart(_figure(name, (*cache_key, lang), builder, args, {"lang": lang, **kwargs}, mode), key=key, lecture_ready=True,
          on_select=on_select)


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

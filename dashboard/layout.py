"""What every page draws the same way: the styles, a page's header, charts, sliders over indices, errors."""
from __future__ import annotations

import streamlit as st

from . import i18n
from .i18n import t

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

LECTURE_STYLE = """
<style>
/* lecture mode: everything a size larger for the back of the room */
[data-testid="stMainBlockContainer"] p, [data-testid="stMainBlockContainer"] li { font-size: 1.35rem; }
[data-testid="stMainBlockContainer"] h1 { font-size: 2.6rem; }
[data-testid="stMainBlockContainer"] { padding-top: 3.5rem; }
</style>
"""


def url_choice(box, widget: str, label: str, options: list[str], key: str, default: str, names, **kwargs) -> str:
    """A radio, selectbox or segmented control over identifiers that shows each by ``names(option)`` (the page's
    language) while ``?key=`` holds the identifier.

    Not ``bind="query-params"``: a bound widget writes the shown name into the URL (``?lang=简体中文``), which
    the app in another language cannot read back. Instead the URL's value seeds the widget once per session (a
    bad one is named by ``sidebar.url_checks``), and the widget's value goes back to the URL on every run, left
    out when it is the default, as a bound widget does.
    """
    if st.session_state.get(key) not in options:
        raw = st.query_params.get(key)
        st.session_state[key] = raw if raw in options else default
    if widget == "segmented_control":
        kwargs["required"] = True  # a click on the chosen option keeps it
    shown = {option: names(option) for option in options}  # named now, in this run's language
    value = getattr(box, widget)(label, options, key=key, format_func=lambda o: shown.get(o, str(o)), **kwargs)
    if value == default:
        st.query_params.pop(key, None)
    else:
        st.query_params[key] = value
    return value


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

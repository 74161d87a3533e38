"""The time step t (1-based) that every view of a text selects at once: the unrolled page's highlighted column and,
on Inside, the row of the Steps heatmaps, the loss step of the gradient flow, the character framed in the surprise
text and its row of the top-k table.

One slider bound to ``?t=`` per page (key ``t``). A page turn drops a widget's state, so the step is also kept in
the session apart from the widget and given back on the first run of the next page; a text shorter than the step
takes its last step, and the page says so. A click on a chart (``st.plotly_chart(on_select=...)``) selects the
step of the point clicked: ``step_of_points`` reads it from the point.
"""
from __future__ import annotations

import re

import streamlit as st

from . import layout
from .i18n import t

KEY = "t"  # the slider's key and URL parameter, the same on every page
KEPT = "_linked_t"  # this session's step, kept apart from the slider's state
CLAMPED = "_linked_t_clamped"  # (the step wanted, the last step of a shorter text used instead)


def from_url(steps: int) -> None:
    """A link's ?t= that is not a step of this text: named in a warning, the nearest step used instead (the
    page runs again with it in the URL, before the slider is drawn)."""
    raw = st.query_params.get(KEY)
    if raw is None or KEY in st.session_state:
        return
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")  # not a number: the first step
    if not (1 <= value <= steps and value == int(value)):
        used = min(max(1, round(value)), steps) if value == value and abs(value) < 1e9 else 1
        if layout.url_note(KEY, raw, used) and layout.url_replace(KEY, used, 1):
            st.rerun()


def prepare(steps: int) -> None:
    """Before the slider is drawn: check the link's ?t=, give back the step kept across a page turn, and keep the
    step within this text (a shorter text takes its last step; the clamp is noted for ``notes``)."""
    kept = st.session_state.get(KEPT)
    if kept is not None and st.session_state.get(layout.PAGE_TURNED) and not fragment_run():
        # the step of the page turned from, set by code: Streamlit's value kept for the last page's slider (another
        # widget) would not seed this one
        st.session_state[KEY] = kept
    from_url(steps)
    now = st.session_state.get(KEY)
    if now is not None and not 1 <= now <= steps:
        st.session_state[KEY] = steps
        st.session_state[CLAMPED] = (now, steps)


def fragment_run() -> bool:
    """Whether this run is a fragment's alone (the unrolled page's chain): Home.py did not run, so its page-turn flag
    is the last full run's, and a slider moved in the fragment must not be set back to the kept step."""
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    ctx = get_script_run_ctx()
    return bool(ctx is not None and getattr(ctx, "fragment_ids_this_run", None))


def slider(box, steps: int, help: str) -> int:
    """The step slider (bound to ?t=) in `box`; the step chosen, kept for the next page. One step: t = 1."""
    if steps > 1:
        step = box.slider(t("unrolled.step"), 1, steps, key=KEY, bind="query-params", help=help)
    else:
        step = 1
        box.caption(t("unrolled.one_step"))
    st.session_state[KEPT] = step
    return step


def notes(step: int) -> None:
    """The warnings that belong to the step: the link's bad ?t= and the step cut to a shorter text."""
    layout.url_warning(KEY, str, st.session_state.get(KEY, layout.UNSET))
    clamped = st.session_state.get(CLAMPED)
    if clamped is None:
        return
    if clamped[1] != step:
        del st.session_state[CLAMPED]  # the step was moved since
        return
    st.info(t("linked.clamped", wanted=clamped[0], steps=clamped[1]), icon=":material/straighten:")


STEP_LABEL = re.compile(r"\s*(\d+)\s*:")  # "12: e" (a step's label on the Inside charts' axes)


def step_of_points(points: list[dict], steps: int, axis: str = "y") -> int | None:
    """The step of the first point clicked, from its label ("12: e" on `axis`) or its customdata (the step
    itself); None when the point names no step of this text."""
    for point in points or ():
        value = None
        custom = point.get("customdata")
        if isinstance(custom, (int, float)) and not isinstance(custom, bool):
            value = int(custom)
        elif isinstance(custom, (list, tuple)) and custom and isinstance(custom[0], (int, float)):
            value = int(custom[0])
        else:
            match = STEP_LABEL.match(str(point.get(axis, "")))
            value = int(match[1]) if match else None
        if value is not None and 1 <= value <= steps:
            return value
    return None


def on_click(chart_key: str, steps: int, axis: str = "y"):
    """An ``on_select`` callback: the point clicked on chart `chart_key` selects its step (before the page runs,
    so the slider is drawn with it)."""
    def select() -> None:
        state = st.session_state.get(chart_key)
        points = state["selection"]["points"] if state else []
        step = step_of_points(points, steps, axis)
        if step is not None:
            st.session_state[KEY] = st.session_state[KEPT] = step
            st.session_state.pop(CLAMPED, None)
    return select


def chart(builder, cache_key: tuple, *args, key: str, steps: int, axis: str = "y", **kwargs) -> None:
    """``layout.cached_chart`` whose points select their step when clicked; `cache_key` identifies the inputs
    (the keyword arguments that are plain values, the step among them, are added to it)."""
    plain = tuple((k, v) for k, v in sorted(kwargs.items()) if isinstance(v, (bool, int, float, str, type(None))))
    layout.cached_chart(builder, (*cache_key, plain), *args, key=key, on_select=on_click(key, steps, axis), **kwargs)


def show(fig, key: str, steps: int, axis: str = "y") -> None:
    """``layout.chart`` whose points select their step when clicked."""
    layout.chart(fig, key=key, on_select=on_click(key, steps, axis))

"""5 · Training: Start / Stop, live loss and perplexity, gradient clipping, samples, save and load.

A run trains in the background (``rnn_core.runs.Scheduler``), not in this page's script runs: the page only
reads the run's view, redrawn by a fragment every 2 s while it trains (however many runs the server has),
and sends Start, Stop, Continue and Restart. The run goes on while other pages are open, and ``?run=<id>``
reopens it after a reload.
Another session's run (opened by its address) is shown read only, with "Train my own copy" instead of Stop.
"""
import streamlit as st

from dashboard import layout, lesson_code, pages, runs, settings, sidebar, training_page
from dashboard.compare import compare_with
from dashboard.i18n import t

ctx = sidebar.context()
s, info = ctx.settings, ctx.info

layout.header(
    t("training.title"),
    t("training.intro"),
    [r"\text{" + t("training.ppl_word") + r"} = "
     r"\exp\Big(-\frac{1}{n}\sum_{t=1}^{n} \log P(x_t \mid x_{t-1},\dots,x_1)\Big)",
     r"\mathbf{g} \leftarrow \min\Big(1, \frac{\theta}{\lVert \mathbf{g} \rVert}\Big)\,\mathbf{g}, \qquad "
     r"W \leftarrow W - \eta\,\mathbf{g}"],
    lesson_code.excerpt("training"),
    fold=True,
)

run = runs.current()
view = run.view() if run is not None else None
shared = runs.is_shared(run)  # another session's run: watched, never controlled from here
sidebar_run = runs.run_settings(s, info)
try:
    estimate = runs.check(s, info, ctx.device)
except settings.USER_ERRORS as exc:
    layout.user_error(exc)
    estimate = None


# Start and Stop first, then the live curves: both on a projector's first screen (1280x720)
if shared:
    st.info(t("training.shared", id=run.id), icon=":material/visibility:")
b1, b2, _ = st.columns([1, 2.4, 1.6] if shared else [1, 1, 3], gap="medium")  # room for "Train my own copy"
b1.button(t("training.start"), type="secondary" if shared else "primary", disabled=estimate is None,
          width="stretch", key="start_training", on_click=runs.press_start, args=(s, info, ctx.device),
          help=t("training.start_help"), shortcut=pages.KEYS["start"])
if shared:  # no Stop for a run this session does not control: a copy of its own instead
    b2.button(t("training.train_copy"), type="primary", width="stretch", key="train_copy",
              on_click=runs.press_train_copy, args=(ctx,), help=t("training.train_copy_help"))
else:
    b2.button(t("training.stop"), width="stretch", key="stop_training", disabled=not (view and view.running),
              on_click=runs.press_stop, help=t("training.stop_help"), shortcut=pages.KEYS["stop"])

if runs.offers_resume(view):
    training_page.offer_resume(view, ctx)
if (error := runs.take_error()) is not None:
    layout.user_error(error)
training_page.notes(run, view, sidebar_run, shared)

running = view is not None and view.running
st.session_state["_live_was_running"] = running
st.fragment(training_page.live, run_every=sidebar.refresh_s() if running else None)(ctx)
training_page.settings_line(ctx, view, sidebar_run, estimate)
st.fragment(training_page.details,
            run_every=max(training_page.DETAILS_EVERY_S, sidebar.refresh_s()) if running else None)()
compare_with(run)  # free A/B: another run of the session or the reference run, overlaid

if view is not None and runs.figures(run)[0]:
    c1, c2 = st.columns(2)
    c1.page_link("views/inside.py", label=t("training.look_inside"), icon=":material/biotech:")
    c2.page_link("views/generate.py", label=t("training.let_write"), icon=":material/edit_note:")

training_page.runs_panel(run, view, shared)

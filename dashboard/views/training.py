"""4 · Training: Start / Stop, live loss and perplexity, gradient clipping, samples, save and load.

A run trains in the background (``rnn_core.runs.Scheduler``), not in this page's script runs: the page only
reads the run's view, redrawn by a fragment every second while it trains, and sends Start, Stop, Continue
and Restart. The run goes on while other pages are open, and ``?run=<id>`` reopens it after a reload.
Another session's run (opened by its address) is shown read only, with "Train my own copy" instead of Stop.
"""
import streamlit as st

from dashboard import (compute, corpora, explain, formatting, layout, lesson_code, pages, runs, settings, sidebar,
                       training_charts)
from dashboard.compare import compare_with
from dashboard.i18n import current as lang_in_use, t

ctx = sidebar.context()
s, info = ctx.settings, ctx.info

layout.header(
    t("training.title"),
    t("training.intro"),
    [r"\text{" + t("training.ppl_word") + r"} = \exp\Big(-\frac{1}{n}\sum_{t=1}^{n} \log P(x_t \mid x_{t-1},\dots,x_1)\Big)",
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


@st.dialog(t("training.dialog"), on_dismiss=lambda: st.session_state.pop("offer_resume", None))
def continue_or_restart(view) -> None:
    if not st.session_state.get("offer_resume"):  # a choice was made: a full rerun closes the dialog
        st.rerun()
    ppl = formatting.fmt_ppl(view.last["perplexity"]) if view.last else "–"
    st.write(t("training.stopped_at", epoch=view.epoch, target=view.target, ppl=ppl))
    c1, c2 = st.columns(2)
    c1.button(t("training.continue", epoch=view.epoch), type="primary", width="stretch", key="continue_run",
              on_click=runs.choose_after_stop, args=("continue", s, info, ctx.device))
    c2.button(t("training.restart"), width="stretch", key="restart_run", on_click=runs.choose_after_stop,
              args=("restart", s, info, ctx.device))


def settings_line() -> None:
    """What Start trains, and what it costs (drawn under the live curves)."""
    if view is not None:
        st.caption(t("training.this_run", settings=formatting.describe_settings(view.settings, view.vocab_size),
                     device=view.device))
    else:
        st.caption(t("training.settings", settings=formatting.describe_settings(sidebar_run, len(info.vocab)),
                     device=compute.describe_device(ctx.device)))
    if estimate is not None:
        st.caption(t("training.estimate", mib=f"{estimate.total_bytes / 2**20:,.1f}",
                     tokens=f"{estimate.tokens_per_epoch:,}",
                     gflop=f"{estimate.flops_per_token * estimate.tokens_per_epoch / 1e9:,.2f}",
                     seconds=f"{estimate.seconds_per_epoch:,.2g}"))


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
    continue_or_restart(view)
if (error := runs.take_error()) is not None:
    layout.user_error(error)
if view is not None and view.status == "out_of_memory" and not shared:
    st.error(layout.run_error(view), icon=":material/memory:")
    if st.button(t("training.oom_cpu"), key="oom_to_cpu", help=t("training.oom_cpu_help")):
        runs.continue_on_cpu(run)
        st.rerun()
if view is not None:
    differ = sidebar_run.differences(view.settings)
    if differ:
        shown = {"corpus": corpora.corpus_title}  # a corpus by its title in the page's language, not its key
        listed = ", ".join(t("training.differ_item", key=t(f"setting.{k}"), a=shown.get(k, formatting.fmt_setting)(a),
                             b=shown.get(k, formatting.fmt_setting)(b)) for k, (a, b) in differ.items())
        st.info(t("training.differ", listed=listed), icon=":material/info:")
    if not view.trainable and not shared:
        why = t({"reference": "training.why_reference", "uploaded": "training.why_uploaded"}.get(
            view.origin, "training.why_disk"))
        st.caption(t("training.not_trainable", why=why))


def live() -> None:
    """Progress, numbers and the loss curves, all from one snapshot of the run (redrawn every 2 s)."""
    run = runs.current()
    if run is None:
        st.progress(0.0, text=t("training.press_start"))
        layout.chart(training_charts.training_curves(None, len(info.vocab), s.epochs, lang=lang_in_use()),
                     key="training_curves")
        return
    view = run.view()
    from_file = runs.file_figures(run)  # an uploaded checkpoint: its epoch and perplexity, no curves
    epoch, last = runs.figures(run)
    eta = t("training.eta", time=formatting.fmt_seconds(view.eta_s)) if view.eta_s is not None else ""
    st.progress(1.0 if from_file else view.progress,
                text=t("training.progress", epoch=epoch, target=view.target,
                       status=sidebar.status_words(view.status), eta=eta))
    chart_box = st.container()  # the curves right under the progress bar, the numbers below them
    ppl = last.get("perplexity") if last else None
    m = st.columns(6)
    m[0].metric(t("training.m_ppl"), formatting.fmt_ppl(ppl) if ppl is not None else "–")
    m[1].metric(t("training.m_loss"), formatting.fmt_num(last.get("loss")) if last else "–")
    m[2].metric(t("training.m_speed"), f"{view.tokens_per_s:,.0f}", help=t("training.m_speed_help"))
    m[3].metric(t("training.m_elapsed"), formatting.fmt_seconds(view.wall_s), help=t("training.m_elapsed_help"))
    m[4].metric(t("chart.grad.line"), formatting.fmt_num(last.get("grad_norm")) if last else "–")
    m[5].metric(t("training.m_clipped"), f"{last['clip_fraction']:.0%}" if last and "clip_fraction" in last else "–")
    if view.error and view.status != "out_of_memory":  # out of memory is said above, with its CPU offer
        st.error(layout.run_error(view), icon=":material/error:")
        if view.status == "failed":  # a bug: its own message, as it is
            st.code(view.error, language=None, wrap_lines=True)
    with chart_box:
        if from_file is not None:
            st.info(t("training.uploaded_curves", epoch=from_file[0],
                      ppl=formatting.fmt_ppl(from_file[1]) if from_file[1] is not None else "–"),
                    icon=":material/upload_file:")
        else:
            layout.chart(training_charts.training_curves(view.frame(), view.vocab_size, view.target, lang=lang_in_use()),
                         key="training_curves")
    if st.session_state.get("_live_was_running") and not view.running:
        st.session_state["_live_was_running"] = False
        st.rerun()  # the run ended: a full rerun turns the timers off and updates buttons and sidebar
    st.session_state["_live_was_running"] = view.running


def details() -> None:
    """Gradient norms, samples and gradient flow, from one snapshot (redrawn every few seconds: each figure
    redrawn costs the browser CPU that training on the same machine would otherwise have)."""
    run = runs.current()
    if run is None or runs.file_figures(run) is not None:  # an uploaded checkpoint has no records to draw
        return
    view = run.view()
    hist = view.frame()
    if view.running:
        st.caption(t("training.as_of", epoch=view.epoch, every=f"{DETAILS_EVERY_S:g}"))
    g, smp = st.columns([1, 1], gap="large")
    with g:
        layout.chart(training_charts.gradient_chart(hist, view.settings.clip, view.target, lang=lang_in_use()),
                 key="training_gradients")
    with smp:
        st.subheader(t("training.samples", prefix=view.settings.prefix))
        samples = formatting.samples_frame(hist)
        if len(samples):
            st.code(samples["sample"].iloc[0], language=None, wrap_lines=True)
            st.dataframe(samples, hide_index=True, width="stretch", height=260,
                         column_config={c: t(f"training.col_{c}") for c in ("epoch", "perplexity", "sample")})
        else:
            st.caption(t("training.no_sample"))
    try:
        flows = compute.checkpoint_flows(run, view.checkpoints)
    except runs.RUN_ERRORS as exc:  # a checkpoint removed or damaged since: said, the rest of the page stays
        layout.user_error(exc)
        flows = []
    except runs.DAMAGE:
        st.error(t("runs.no_checkpoint", id=run.id, why=t("runs.damaged")), icon=":material/error:")
        flows = []
    if flows:
        st.subheader(t("training.flow"))
        st.markdown(" ".join(explain.training_flow(flows)))
        c1, c2 = st.columns(2, gap="large")
        shown = (view.id, view.checkpoints)  # the figures change only at a checkpoint epoch
        with c1:
            layout.cached_chart(training_charts.decay_curves_chart, shown, formatting.decay_frame(flows), key="training_decay")
        with c2:
            layout.cached_chart(training_charts.spectrum_chart, shown, formatting.spectrum_frame(flows), key="training_spectrum")
        st.caption(t("training.flow_caption"))


def show_chosen_run() -> None:
    """The run picked in "Show run" becomes the one shown."""
    chosen = runs.get(st.session_state.get("show_run"))
    if chosen is not None:
        runs.show(chosen)


DETAILS_EVERY_S = 6.0
running = view is not None and view.running
st.session_state["_live_was_running"] = running
st.fragment(live, run_every=sidebar.refresh_s() if running else None)()
settings_line()
st.fragment(details, run_every=max(DETAILS_EVERY_S, sidebar.refresh_s()) if running else None)()
compare_with(run)  # free A/B: another run of the session or the reference run, overlaid

if view is not None and runs.figures(run)[0]:
    c1, c2 = st.columns(2)
    c1.page_link("views/inside.py", label=t("training.look_inside"), icon=":material/biotech:")
    c2.page_link("views/generate.py", label=t("training.let_write"), icon=":material/edit_note:")

with st.expander(t("training.runs"), icon=":material/save:"):
    mine = runs.session_runs()
    for ref in runs.references():
        if ref is not run:
            epochs, last = runs.figures(ref)
            st.button(t("training.show_reference", epochs=epochs,
                        ppl=formatting.fmt_ppl(last["perplexity"]) if last else "–"),
                      key=f"show_reference_{ref.id}", on_click=runs.show, args=(ref,),
                      help=t("training.show_reference_help"))
    if mine:
        table = formatting.runs_frame([r.view() for r in mine])
        for i, r in enumerate(mine):  # an uploaded checkpoint: its own epoch and perplexity, not 0 and none
            if (from_file := runs.file_figures(r)) is not None:
                table.loc[i, "epochs"] = f"{from_file[0]}/{r.settings.epochs}"
                table.loc[i, "perplexity"] = formatting.fmt_ppl(from_file[1]) if from_file[1] is not None else "–"
        st.dataframe(table, hide_index=True, width="stretch",
                     column_config={c: t(f"training.col_{c}")
                                    for c in ("run", "status", "epochs", "hidden", "corpus", "perplexity")})
        # the widget follows the run shown (Start may change it); empty while another run is shown
        st.session_state["show_run"] = run.id if run is not None and run in mine else None
        st.selectbox(t("training.show_run"), [r.id for r in mine], key="show_run", index=None,
                     placeholder=t("training.show_run_placeholder"), on_change=show_chosen_run,
                     help=t("training.show_run_help"))
    if view is not None and view.checkpoints:
        c1, c2 = st.columns(2)
        epoch = c1.selectbox(t("training.download_epoch"), list(view.checkpoints),
                             index=len(view.checkpoints) - 1, key="download_epoch")
        c2.download_button(t("training.download"), data=lambda: run.checkpoint_bytes(epoch),
                           file_name=f"rnn-lab-{view.id}-epoch{epoch}.pt", mime="application/octet-stream",
                           on_click="ignore", key="download_checkpoint", width="stretch",
                           help=t("training.download_help"))
    if shared:  # the session that started it, after a reload or in another browser: its owner key gives control
        with st.form("claim_run", clear_on_submit=True, border=False):
            key = st.text_input(t("training.claim"), type="password", key="claim_key", help=t("training.claim_help"))
            if st.form_submit_button(t("training.claim_button")):
                if runs.claim(run, key):
                    st.rerun()
                st.error(t("training.claim_wrong"), icon=":material/key_off:")
    else:
        if (key := runs.owner_key(run)) is not None:
            with st.popover(t("training.owner_key"), icon=":material/key:"):
                st.caption(t("training.owner_key_help"))
                st.code(key, language=None)
        uploaded = st.file_uploader(t("training.upload"), type=["pt"], key="upload_checkpoint")
        if uploaded is not None and runs.receive_upload(uploaded.file_id, uploaded.name, uploaded.getvalue()):
            st.rerun()

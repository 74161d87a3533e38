"""The Training page's parts (views/training.py draws them in order): the continue-or-restart dialog, the notes on
the run shown, the live curves and the details (fragments redrawn while a run trains), the settings line, and the
runs panel (this session's runs, the reference run, download, upload, owner key).

With no run of the session's own, the live curves are the lesson's reference run's (data/reference/lesson),
labelled as such: the page opens on a trained run instead of empty axes.
"""
from __future__ import annotations

import streamlit as st

from . import compute, corpora, explain, formatting, layout, runs, sidebar, training_charts
from .chart_base import PAGE_PX
from .i18n import current as lang_in_use, t

DETAILS_EVERY_S = 6.0  # the details' redraw while a run trains: each redraw costs the browser CPU training needs
REFERENCE = "lesson"  # the reference run shown before the session has a run of its own


def offer_resume(view, ctx) -> None:
    """After Stop, Start asks: continue the stopped run or restart from scratch (a dialog)."""
    s, info = ctx.settings, ctx.info

    @st.dialog(t("training.dialog"), on_dismiss=lambda: st.session_state.pop("offer_resume", None))
    def continue_or_restart() -> None:
        if not st.session_state.get("offer_resume"):  # a choice was made: a full rerun closes the dialog
            st.rerun()
        ppl = formatting.fmt_ppl(view.last["perplexity"]) if view.last else "–"
        st.write(t("training.stopped_at", epoch=view.epoch, target=view.target, ppl=ppl))
        c1, c2 = st.columns(2)
        c1.button(t("training.continue", epoch=view.epoch), type="primary", width="stretch", key="continue_run",
                  on_click=runs.choose_after_stop, args=("continue", s, info, ctx.device))
        c2.button(t("training.restart"), width="stretch", key="restart_run", on_click=runs.choose_after_stop,
                  args=("restart", s, info, ctx.device))

    continue_or_restart()


def notes(run, view, sidebar_run, shared: bool) -> None:
    """Out of memory (with the CPU offer), the sidebar's settings that differ from the run shown, why a run
    cannot be trained further."""
    if view is None:
        return
    if view.status == "out_of_memory" and not shared:
        st.error(layout.run_error(view), icon=":material/memory:")
        if st.button(t("training.oom_cpu"), key="oom_to_cpu", help=t("training.oom_cpu_help")):
            runs.continue_on_cpu(run)
            st.rerun()
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


def reference_run():
    """The lesson's reference run, or None where it is not shipped (or cannot be read)."""
    refs = runs.references()
    return next((r for r in refs if r.id == REFERENCE), refs[0] if refs else None)


def _reference_curves(ctx) -> None:
    """No run yet: the reference run's curves where the session's will be, said to be the reference's (in the
    progress bar's line: a caption more would push the curves below a 1280x720 projector's fold)."""
    ref = reference_run()
    if ref is None:  # not shipped: the empty axes, with perfect and uniform guessing marked
        st.progress(0.0, text=t("training.press_start"))
        layout.chart(training_charts.training_curves(None, len(ctx.info.vocab), ctx.settings.epochs,
                                                     lang=lang_in_use()), key="training_curves")
        return
    view = ref.view()
    st.progress(0.0, text=t("training.reference_shown", epochs=view.epoch, hidden=view.settings.hidden,
                            ppl=formatting.fmt_ppl(view.last["perplexity"]) if view.last else "–"))
    layout.cached_chart(training_charts.training_curves, (ref.id, view.epoch), view.frame(), view.vocab_size,
                        view.target, key="training_curves")


def live(ctx) -> None:
    """Progress, numbers and the loss curves, all from one snapshot of the run (a fragment: redrawn every
    second or two while the run trains)."""
    run = runs.current()
    if run is None:
        _reference_curves(ctx)
        return
    view = run.view()
    from_file = runs.file_figures(view)  # an uploaded checkpoint: its epoch and perplexity, no curves
    epoch, last = runs.figures(view)
    eta = t("training.eta", time=formatting.fmt_seconds(view.eta_s)) if view.eta_s is not None else ""
    st.progress(1.0 if from_file else view.progress,
                text=t("training.progress", epoch=epoch, target=view.target,
                       status=sidebar.status_words(view.status), eta=eta))
    chart_box = st.container()  # the curves right under the progress bar, the numbers below them
    ppl = last.get("perplexity") if last else None
    # two rows of three: six in a row leave ~90 px each at 1024 px beside the sidebar ("Tokens/s" was cut)
    m = [*st.columns(3), *st.columns(3)]
    m[0].metric(t("training.m_ppl"), formatting.fmt_ppl(ppl) if ppl is not None else "–")
    m[1].metric(t("training.m_loss"), formatting.num(last.get("loss"), 3) if last else "–")
    m[2].metric(t("chart.grad.line"), formatting.num(last.get("grad_norm"), 3) if last else "–")
    m[3].metric(t("training.m_clipped"), f"{last['clip_fraction']:.0%}" if last and "clip_fraction" in last else "–")
    m[4].metric(t("training.m_speed"), f"{view.tokens_per_s:,.0f}", help=t("training.m_speed_help"))
    m[5].metric(t("training.m_elapsed"), formatting.fmt_seconds(view.wall_s), help=t("training.m_elapsed_help"))
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
            layout.chart(training_charts.training_curves(view.frame(), view.vocab_size, view.target,
                                                         lang=lang_in_use()), key="training_curves")
    if st.session_state.get("_live_was_running") and not view.running:
        st.session_state["_live_was_running"] = False
        st.rerun()  # the run ended: a full rerun turns the timers off and updates buttons and sidebar
    st.session_state["_live_was_running"] = view.running


def settings_line(ctx, view, sidebar_run, estimate) -> None:
    """What Start trains, and what it costs (drawn under the live curves)."""
    if view is not None:
        st.caption(t("training.this_run", settings=formatting.describe_settings(view.settings, view.vocab_size),
                     device=view.device))
    else:
        st.caption(t("training.settings", settings=formatting.describe_settings(sidebar_run, len(ctx.info.vocab)),
                     device=compute.describe_device(ctx.device)))
    if estimate is not None:
        st.caption(t("training.estimate", mib=f"{estimate.total_bytes / 2**20:,.1f}",
                     tokens=f"{estimate.tokens_per_epoch:,}",
                     gflop=f"{estimate.flops_per_token * estimate.tokens_per_epoch / 1e9:,.2f}",
                     seconds=f"{estimate.seconds_per_epoch:,.2g}"))


def details() -> None:
    """Gradient norms, samples and gradient flow, from one snapshot (a fragment: redrawn every few seconds while
    the run trains)."""
    run = runs.current()
    view = run.view() if run is not None else None
    if view is None or runs.file_figures(view) is not None:  # an uploaded checkpoint has no records to draw
        return
    hist = view.frame()
    if view.running:
        st.caption(t("training.as_of", epoch=view.epoch, every=f"{DETAILS_EVERY_S:g}"))
    # one under the other: side by side at 1024 px beside the sidebar, the chart's plot was ~80 px wide between
    # its two axes, and a sample's line was cut
    layout.chart(training_charts.gradient_chart(hist, view.settings.clip, view.target, lang=lang_in_use(),
                                                width=PAGE_PX), key="training_gradients")
    st.subheader(t("training.samples", prefix=view.settings.prefix))
    samples = formatting.samples_frame(hist)
    if len(samples):
        st.code(samples["sample"].iloc[0], language=None, wrap_lines=True)
        st.dataframe(samples, hide_index=True, width="stretch", height=260,
                     column_config={c: t(f"training.col_{c}") for c in ("epoch", "perplexity", "sample")})
    else:
        st.caption(t("training.no_sample"))
    try:
        # while it trains, one new checkpoint per script run: the others come with the next redraws
        flows = compute.checkpoint_flows(run, view.checkpoints, new_at_most=1 if view.running else None)
    except runs.RUN_ERRORS as exc:  # a checkpoint removed or damaged since: said, the rest of the page stays
        layout.user_error(exc)
        flows = []
    except runs.DAMAGE:
        st.error(t("runs.no_checkpoint", id=run.id, why=t("runs.damaged")), icon=":material/error:")
        flows = []
    if flows:
        st.subheader(t("training.flow"))
        st.markdown(" ".join(explain.training_flow(flows)))
        shown = (view.id, tuple(f["epoch"] for f in flows))  # the figures change only with a checkpoint's flow
        # one under the other: side by side, each has ~250 px at 1024 px, too narrow for a legend of epochs
        layout.cached_chart(training_charts.decay_curves_chart, shown, formatting.decay_frame(flows),
                            key="training_decay")
        layout.cached_chart(training_charts.spectrum_chart, shown, formatting.spectrum_frame(flows),
                            key="training_spectrum")
        st.caption(t("training.flow_caption"))


def _show_chosen_run() -> None:
    """The run picked in "Show run" becomes the one shown."""
    chosen = runs.get(st.session_state.get("show_run"))
    if chosen is not None:
        runs.show(chosen)


def runs_panel(run, view, shared: bool) -> None:
    """The expander with the reference run, this session's runs, a checkpoint's download, and either the owner key
    and a checkpoint's upload or, for a shared run, the field that takes its owner key."""
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
            _session_runs(mine, run)
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
                key = st.text_input(t("training.claim"), type="password", key="claim_key",
                                    help=t("training.claim_help"))
                if st.form_submit_button(t("training.claim_button")):
                    if runs.claim(run, key):
                        st.rerun()
                    st.error(t("training.claim_wrong"), icon=":material/key_off:")
            return
        if (key := runs.owner_key(run)) is not None:
            with st.popover(t("training.owner_key"), icon=":material/key:"):
                st.caption(t("training.owner_key_help"))
                st.code(key, language=None)
        uploaded = st.file_uploader(t("training.upload"), type=["pt"], key="upload_checkpoint")
        if uploaded is not None and runs.receive_upload(uploaded.file_id, uploaded.name, uploaded.getvalue()):
            st.rerun()


def _session_runs(mine: list, run) -> None:
    """This session's runs as a table, and the choice of the one shown."""
    views = [r.view() for r in mine]
    table = formatting.runs_frame(views)
    for i, (r, view) in enumerate(zip(mine, views)):  # an uploaded checkpoint: its own epoch and perplexity
        if (from_file := runs.file_figures(view)) is not None:
            table.loc[i, "epochs"] = f"{from_file[0]}/{r.settings.epochs}"
            table.loc[i, "perplexity"] = formatting.fmt_ppl(from_file[1]) if from_file[1] is not None else "–"
    st.dataframe(table, hide_index=True, width="stretch",
                 column_config={c: t(f"training.col_{c}")
                                for c in ("run", "status", "epochs", "hidden", "corpus", "perplexity")})
    # the widget follows the run shown (Start may change it); empty while another run is shown
    st.session_state["show_run"] = run.id if run is not None and run in mine else None
    st.selectbox(t("training.show_run"), [r.id for r in mine], key="show_run", index=None,
                 placeholder=t("training.show_run_placeholder"), on_change=_show_chosen_run,
                 help=t("training.show_run_help"))

"""4 · Training: Start / Stop, live loss and perplexity, gradient clipping, samples, save and load.

A run trains in the background (``rnn_core.runs.Scheduler``), not in this page's script runs: the page only
reads the run's view, redrawn by a fragment every second while it trains, and sends Start, Stop, Continue
and Restart. The run goes on while other pages are open, and ``?run=<id>`` reopens it after a reload.
"""
import streamlit as st

from dashboard import charts, explain, lab, lesson, runs, ui

ctx = ui.context()
s, info = ctx.settings, ctx.info

ui.header(
    "4 · Training the RNN",
    "Each minibatch: run the RNN over the sequence, score every prediction with cross-entropy, "
    "backpropagate through time, **clip** the gradient to norm θ, and take an SGD step. "
    "**Perplexity** is e to the mean loss: 1 means the model always knows the next token, |V| means it "
    "guesses uniformly.",
    [r"\text{perplexity} = \exp\Big(-\frac{1}{n}\sum_{t=1}^{n} \log P(x_t \mid x_{t-1},\dots,x_1)\Big)",
     r"\mathbf{g} \leftarrow \min\Big(1, \frac{\theta}{\lVert \mathbf{g} \rVert}\Big)\,\mathbf{g}, \qquad "
     r"W \leftarrow W - \eta\,\mathbf{g}"],
    lesson.TRAINING,
)

run = runs.current()
view = run.view() if run is not None else None
sidebar_run = runs.run_settings(s, info)
try:
    estimate = runs.check(s, info, ctx.device)
except lab.USER_ERRORS as exc:
    ui.user_error(exc)
    estimate = None


def start_new() -> None:
    try:
        runs.start_new(s, info, ctx.device)
    except runs.RUN_ERRORS as exc:
        st.session_state["training_error"] = str(exc)


def on_start() -> None:
    """Start: a new run, or after Stop with the same settings, the choice to continue or restart."""
    run = runs.current()
    view = run.view() if run is not None else None
    same = view is not None and view.settings == sidebar_run
    if same and view.status == "stopped" and view.trainable and view.epoch < view.target:
        st.session_state["offer_resume"] = True
    elif not (same and view.running):
        start_new()


def choose(choice: str) -> None:
    """Callback of the continue/restart choice offered after Stop."""
    st.session_state.pop("offer_resume", None)
    if choice == "continue":
        runs.resume(runs.current())
    else:
        start_new()


@st.dialog("Continue or restart?", on_dismiss=lambda: st.session_state.pop("offer_resume", None))
def continue_or_restart(view) -> None:
    if not st.session_state.get("offer_resume"):  # a choice was made: a full rerun closes the dialog
        st.rerun()
    ppl = lab.fmt_ppl(view.last["perplexity"]) if view.last else "–"
    st.write(f"The stopped run is at epoch {view.epoch} of {view.target} (perplexity {ppl}).")
    c1, c2 = st.columns(2)
    c1.button(f"Continue from epoch {view.epoch}", type="primary", width="stretch", key="continue_run",
              on_click=choose, args=("continue",))
    c2.button("Restart from scratch", width="stretch", key="restart_run", on_click=choose, args=("restart",))


left, right = st.columns([3, 2], gap="large")
with left:
    if view is not None:
        st.markdown(f"**This run:** {lab.describe_settings(view.settings, view.vocab_size)}, "
                    f"device **{view.device}**.")
    else:
        st.markdown(f"**Settings:** {lab.describe_settings(sidebar_run, len(info.vocab))}, "
                    f"device **{lab.describe_device(ctx.device)}**.")
    if estimate is not None:
        st.caption(f"Start checks the sidebar's settings first: about {estimate.total_bytes / 2**20:,.1f} MiB of "
                   f"memory and {estimate.tokens_per_epoch:,} tokens per epoch; the arithmetic alone is "
                   f"{estimate.flops_per_token * estimate.tokens_per_epoch / 1e9:,.2f} GFLOP per epoch, "
                   f"roughly {estimate.seconds_per_epoch:,.2g} s per epoch on this device.")
with right:
    b1, b2 = st.columns(2)
    b1.button("Start", type="primary", disabled=estimate is None, width="stretch", key="start_training",
              on_click=on_start,
              help="A new run with the sidebar's settings; after Stop, choose to continue or restart.")
    b2.button("Stop", width="stretch", key="stop_training", disabled=not (view and view.running),
              on_click=lambda: run is not None and runs.stop(run),
              help="Stops within a second; the model keeps what it has learned.")

if st.session_state.get("offer_resume") and view is not None and view.status == "stopped":
    continue_or_restart(view)
if "training_error" in st.session_state:
    ui.user_error(Exception(st.session_state.pop("training_error")))
if view is not None and view.status == "out_of_memory":
    st.error(view.error, icon=":material/memory:")
    if st.button("Continue on the CPU", key="oom_to_cpu", help="Moves the model to the CPU and goes on there."):
        run.move_to_cpu()
        runs.resume(run)
        st.rerun()
if view is not None:
    differ = sidebar_run.differences(view.settings)
    if differ:
        listed = ", ".join(f"{k} {lab.fmt_setting(a)} (this run: {lab.fmt_setting(b)})" for k, (a, b) in differ.items())
        st.info(f"The sidebar differs from this run: {listed}. Start begins a new run with the sidebar's settings.",
                icon=":material/info:")
    if not view.trainable:
        why = {"reference": "the lesson's reference run, shipped with RNN Lab",
               "uploaded": "loaded from a checkpoint file"}.get(view.origin, "read back from disk (the server "
                                                                   "restarted since it trained)")
        st.caption(f"This run is {why}: it can be looked at and downloaded, not trained further.")


def live() -> None:
    """Progress, numbers and the loss curves, all from one snapshot of the run (redrawn every 2 s)."""
    run = runs.current()
    if run is None:
        st.progress(0.0, text="Press Start to train.")
        ui.chart(charts.training_curves(None, len(info.vocab), s.epochs), key="training_curves")
        return
    view = run.view()
    last = view.last
    eta = f", about {lab.fmt_seconds(view.eta_s)} to go" if view.eta_s is not None else ""
    st.progress(view.progress, text=f"Epoch {view.epoch} of {view.target} — {ui.STATUS_WORDS[view.status]}{eta}")
    m = st.columns(6)
    m[0].metric("Perplexity", lab.fmt_ppl(last["perplexity"]) if last else "–")
    m[1].metric("Loss", lab.fmt_num(last["loss"]) if last else "–")
    m[2].metric("Tokens/s", f"{view.tokens_per_s:,.0f}", help="Wall clock: tokens trained over the time the run "
                "has been running, turns of other runs on this server included.")
    m[3].metric("Elapsed", lab.fmt_seconds(view.wall_s), help="Wall-clock time spent running.")
    m[4].metric("‖g‖ before clipping", lab.fmt_num(last["grad_norm"]) if last else "–")
    m[5].metric("Clipped", f"{last['clip_fraction']:.0%}" if last else "–")
    if view.error and view.status != "out_of_memory":  # out of memory is said above, with its CPU offer
        st.error(view.error, icon=":material/error:")
    ui.chart(charts.training_curves(view.frame(), view.vocab_size, view.target), key="training_curves")
    if st.session_state.get("_live_was_running") and not view.running:
        st.session_state["_live_was_running"] = False
        st.rerun()  # the run ended: a full rerun turns the timers off and updates buttons and sidebar
    st.session_state["_live_was_running"] = view.running


def details() -> None:
    """Gradient norms, samples and gradient flow, from one snapshot (redrawn every few seconds: each figure
    redrawn costs the browser CPU that training on the same machine would otherwise have)."""
    run = runs.current()
    if run is None:
        return
    view = run.view()
    hist = view.frame()
    if view.running:
        st.caption(f"As of epoch {view.epoch}; redrawn every {DETAILS_EVERY_S:g} s while the run trains.")
    g, smp = st.columns([1, 1], gap="large")
    with g:
        ui.chart(charts.gradient_chart(hist, view.settings.clip, view.target), key="training_gradients")
    with smp:
        st.subheader(f"Samples from “{view.settings.prefix}”")
        samples = lab.samples_frame(hist)
        if len(samples):
            st.code(samples["sample"].iloc[0], language=None, wrap_lines=True)
            st.dataframe(samples, hide_index=True, width="stretch", height=260)
        else:
            st.caption("A sample is generated after the first epoch and every 10 epochs.")
    flows = lab.checkpoint_flows(run, view.checkpoints)
    if flows:
        st.subheader("Gradient flow as the model trains")
        st.markdown(" ".join(explain.training_flow(flows)))
        c1, c2 = st.columns(2, gap="large")
        shown = (view.id, view.checkpoints)  # the figures change only at a checkpoint epoch
        with c1:
            ui.cached_chart("decay_curves_chart", shown, lab.decay_frame(flows), key="training_decay")
        with c2:
            ui.cached_chart("spectrum_chart", shown, lab.spectrum_frame(flows), key="training_spectrum")
        st.caption("Measured with each checkpoint on the run's first minibatch: the mean of ‖∂ℓ_t/∂H_(t−d)‖ over "
                   "the steps t, d steps back, and the spectrum of W_hh. Where σ_max · max tanh′ < 1 (tanh′ ≤ 1), "
                   "the gradient must vanish going back; with clipping off, compare how the curves and ρ move.")


DETAILS_EVERY_S = 6.0
running = view is not None and view.running
st.session_state["_live_was_running"] = running
st.fragment(live, run_every=ui.refresh_s() if running else None)()
st.fragment(details, run_every=max(DETAILS_EVERY_S, ui.refresh_s()) if running else None)()

if view is not None and view.epoch:
    c1, c2 = st.columns(2)
    c1.page_link("views/inside.py", label="Look inside it", icon=":material/biotech:")
    c2.page_link("views/generate.py", label="Let it write", icon=":material/edit_note:")

with st.expander("This session's runs, the reference run, save and load", icon=":material/save:"):
    mine = runs.session_runs()
    for ref in runs.registry().references():
        if ref not in mine:
            rv = ref.view()
            st.button(f"Show the lesson's reference run ({rv.epoch} epochs, perplexity "
                      f"{lab.fmt_ppl(rv.last['perplexity'])})", key=f"show_reference_{ref.id}",
                      on_click=runs.adopt, args=(ref,),
                      help="Its curves, samples and checkpoints: trained at the lesson's settings, shipped "
                           "with RNN Lab. It can be looked at and downloaded, not trained further.")
    if mine:
        st.dataframe(lab.runs_frame([r.view() for r in mine]), hide_index=True, width="stretch")
        if run is not None:
            st.session_state["show_run"] = run.id  # the widget follows the run shown (Start may change it)
        st.selectbox("Show run", [r.id for r in mine], key="show_run",
                     on_change=lambda: runs.adopt(runs.registry().get(st.session_state["show_run"])),
                     help="Its address is in the URL (?run=...): a reload or a new tab with that URL reopens it.")
    if view is not None and view.checkpoints:
        c1, c2 = st.columns(2)
        epoch = c1.selectbox("Checkpoint to download (epoch)", list(view.checkpoints),
                             index=len(view.checkpoints) - 1, key="download_epoch")
        c2.download_button("Download checkpoint", data=lambda: run.checkpoint_bytes(epoch),
                           file_name=f"rnn-lab-{view.id}-epoch{epoch}.pt", mime="application/octet-stream",
                           on_click="ignore", key="download_checkpoint", width="stretch",
                           help="The same format as `python -m rnn_core.train --save`; `--load` reads it.")
    uploaded = st.file_uploader("Load a checkpoint (.pt from this dashboard or `python -m rnn_core.train --save`)",
                                type=["pt"], key="upload_checkpoint")
    if uploaded is not None and st.session_state.get("_uploaded_id") != uploaded.file_id:
        st.session_state["_uploaded_id"] = uploaded.file_id
        try:
            runs.upload(uploaded.name, uploaded.getvalue())
        except runs.RUN_ERRORS as exc:
            st.session_state["training_error"] = str(exc)
        st.rerun()

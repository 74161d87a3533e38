"""4 · Training: Start / Stop, live loss and perplexity, gradient clipping, samples.

Training advances in short chunks inside a fragment that reruns while a run is active, so the page stays
responsive and Stop acts within a second. Chunk and interval come from ``training_run.pace()``: 0.25 s
every 0.5 s for one run, shorter chunks and longer intervals when many sessions train at once.
"""
import streamlit as st

from dashboard import charts, lab, lesson, training_run, ui


ctx = ui.context()
s, info = ctx.settings, ctx.info
V = len(info.vocab)

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


def stop_training() -> None:
    """Callback: the fragment sees the status before its next chunk."""
    run = st.session_state.get("training_run")
    if run is not None and run.running:
        run.status = "stopped"


run = st.session_state.get("training_run")
runnable = True
try:
    estimate = training_run.check(s, info, ctx.device)
except lab.USER_ERRORS as exc:
    ui.user_error(exc)
    runnable, estimate = False, None

left, right = st.columns([3, 2], gap="large")
with left:
    st.markdown(
        f"**Settings:** {info.title}, {s.token} tokens (|V| = {V}), batch {s.batch}, {s.steps} steps, "
        f"{s.hidden} hidden units, learning rate {s.lr:g}, θ = {s.clip:g}, {s.epochs} epochs, {s.partition} "
        f"partitioning, engine **{s.engine}**, device **{lab.describe_device(ctx.device)}**, seed {s.seed}.")
    if estimate is not None:
        st.caption(f"Checked before starting: about {estimate.total_bytes / 2**20:,.1f} MiB of memory and "
                   f"{estimate.tokens_per_epoch:,} tokens per epoch; the arithmetic alone is "
                   f"{estimate.flops_per_token * estimate.tokens_per_epoch / 1e9:,.2f} GFLOP per epoch, "
                   f"roughly {estimate.seconds_per_epoch:,.2g} s per epoch on this device.")
with right:
    b1, b2 = st.columns(2)
    start = b1.button("Start", type="primary", disabled=not runnable, width="stretch", key="start_training",
                      help="A new run with the sidebar's settings; after Stop, choose to continue or restart.")
    b2.button("Stop", width="stretch", key="stop_training", on_click=stop_training,
              help="Stops within a second; the model keeps what it has learned.")


def new_run() -> None:
    """Replace the session's run with a fresh one for the sidebar's settings."""
    try:
        st.session_state["training_run"] = training_run.start_run(s, info, ctx.device)
    except lab.USER_ERRORS as exc:
        st.session_state["training_error"] = str(exc)


def choose(choice: str) -> None:
    """Callback of the continue/restart choice offered after Stop."""
    st.session_state.pop("offer_resume", None)
    if choice == "continue":
        st.session_state["training_run"].status = "running"
    else:
        new_run()


@st.dialog("Continue or restart?", on_dismiss=lambda: st.session_state.pop("offer_resume", None))
def continue_or_restart(run: training_run.TrainingRun) -> None:
    if not st.session_state.get("offer_resume"):  # a choice was made: a full rerun closes the dialog
        st.rerun()
    st.write(f"The stopped run is at epoch {run.epoch} of {run.target} "
             f"(perplexity {lab.fmt_ppl(run.trainer.history[-1].perplexity) if run.epoch else '–'}).")
    c1, c2 = st.columns(2)
    c1.button(f"Continue from epoch {run.epoch}", type="primary", width="stretch", key="continue_run",
              on_click=choose, args=("continue",))
    c2.button("Restart from scratch", width="stretch", key="restart_run", on_click=choose, args=("restart",))


if start:
    resumable = run is not None and run.settings == s and not run.finished and run.status == "stopped"
    if resumable:
        st.session_state["offer_resume"] = True
    elif not (run is not None and run.running and run.settings == s):
        new_run()
    run = st.session_state.get("training_run")
if st.session_state.get("offer_resume") and run is not None and run.status == "stopped":
    continue_or_restart(run)
if "training_error" in st.session_state:
    ui.user_error(Exception(st.session_state.pop("training_error")))
if run is not None and run.status == "out_of_memory":
    st.error(run.error, icon=":material/memory:")
    if st.button("Continue on the CPU", key="oom_to_cpu", help="Moves the model to the CPU and goes on there."):
        run.move_to_cpu()
        run.status = "running"
        st.rerun()
if run is not None and run.settings != s:
    st.info("The sidebar settings differ from the run shown below; Start begins a new run with them.",
            icon=":material/info:")


def live() -> None:
    """Train one chunk (when running), then draw progress, figures and samples."""
    run = st.session_state.get("training_run")
    was_running = run is not None and run.running
    if was_running:
        chunk, refresh = training_run.pace()
        run.train_for(chunk)
    if run is None:
        st.progress(0.0, text="Press Start to train.")
        ui.chart(charts.training_curves(None, V, s.epochs),
                 key="training_curves")
        return
    hist = run.history()
    last = run.trainer.history[-1] if run.epoch else None
    left = run.seconds_left()
    eta = f", about {left:,.0f} s to go" if left is not None and run.running else ""
    st.progress(run.progress, text=f"Epoch {run.epoch} of {run.target} — {run.status}{eta}")
    m = st.columns(6)
    m[0].metric("Perplexity", lab.fmt_ppl(last.perplexity) if last else "–")
    m[1].metric("Loss", f"{last.loss:.3f}" if last else "–")
    m[2].metric("Tokens/s", f"{run.tokens_per_s():,.0f}")
    m[3].metric("Device · engine", f"{run.device_name} · {run.settings.engine}")
    m[4].metric("‖g‖ before clipping", f"{last.grad_norm:.2f}" if last else "–")
    m[5].metric("Clipped", f"{last.clip_fraction:.0%}" if last else "–")
    if run.error and run.status != "out_of_memory":  # out of memory is said above, with its CPU offer
        st.error(run.error, icon=":material/error:")
    ui.chart(charts.training_curves(hist, len(run.vocab), run.target), key="training_curves")
    g, smp = st.columns([1, 1], gap="large")
    with g:
        ui.chart(charts.gradient_chart(hist, run.settings.clip, run.target), key="training_gradients")
    with smp:
        st.subheader(f"Samples from “{run.trainer.prefix}”")
        samples = run.samples()
        if len(samples):
            st.code(samples["sample"].iloc[0], language=None, wrap_lines=True)
            st.dataframe(samples, hide_index=True, width="stretch", height=260,
                         column_config={"perplexity": st.column_config.NumberColumn(format="%.2f")})
        else:
            st.caption("A sample is generated after the first epoch and every 10 epochs.")
    if was_running and not run.running:
        st.rerun()  # the run ended: a full rerun turns the timer off and updates buttons and sidebar
    if was_running and not 1 / 1.5 < refresh / declared_refresh < 1.5:
        st.rerun()  # the server got busier or quieter: a full rerun declares the new interval


declared_refresh = training_run.pace()[1]
st.fragment(live, run_every=declared_refresh if run is not None and run.running else None)()

if run is not None and run.epoch:
    st.caption(f"{run.epoch} epochs in {run.seconds:.1f} s. The model stays in this session: ")
    c1, c2 = st.columns(2)
    c1.page_link("views/inside.py", label="Look inside it", icon=":material/biotech:")
    c2.page_link("views/generate.py", label="Let it write", icon=":material/edit_note:")

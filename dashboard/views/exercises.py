"""7 · Exercises: the lesson's exercises as A/B pairs trained in the background, and step mode.

A card per exercise: its question, one button that trains the pair (two runs, the same seed and settings
except one switch, on the server's scheduler), the curves overlaid, the pair's numbers and samples, and two
sentences computed from them (``dashboard/exercises.py``). ``?exercise=&variation=&seed=`` reopens a pair.
Step mode trains one minibatch per press and shows what that step did.
"""
import math

import pandas as pd
import streamlit as st

from dashboard import corpora, formatting, layout, runs, settings, sidebar
from dashboard import exercise_charts as xc
from dashboard import exercises as ex
from dashboard.i18n import t

import rnn_core
from rnn_core.training import Trainer

ctx = sidebar.context()
lang = ex.lang_now()  # fixed for this script run: format functions are also called outside it


def tr(key: str, **fmt) -> str:
    return ex.tr(key, lang, **fmt)


reg = runs.registry()

st.title(tr("page.title"))
st.markdown(tr("page.intro"))


def _from_url(key: str, param: str, valid, default):
    """A widget's first value from the URL (so a link opens the card it names)."""
    if key not in st.session_state:
        value = st.query_params.get(param, default)
        st.session_state[key] = value if valid(value) else default


ids = list(ex.EXERCISES)
_from_url("ex_exercise", "exercise", lambda v: v in ex.EXERCISES, ids[0])
c1, c2, c3 = st.columns([3, 3, 1])
ex_id = c1.selectbox(tr("page.exercise"), ids, key="ex_exercise",
                     format_func=lambda i: f"{ids.index(i) + 1} · {ex.tr(f'ex.{i}.title', lang)}")
exercise = ex.EXERCISES[ex_id]
var_ids = [v.id for v in exercise.variations]
var_key = f"ex_variation_{ex_id}"
_from_url(var_key, "variation", lambda v: v in var_ids, var_ids[0])
if len(var_ids) > 1:
    var_id = c2.radio(tr("page.variation"), var_ids, key=var_key,
                      format_func=lambda v: ex.pair_name(exercise.variation(v), lang))
else:
    var_id = var_ids[0]
    c2.markdown(f"**{tr('page.variation')}:** {ex.pair_name(exercise.variation(var_id), lang)}")
variation = exercise.variation(var_id)
heldout_text = None
if ex_id == "heldout":  # B may be scored on a text of the student's own
    uploaded = st.file_uploader(tr("card.upload"), type=["txt"], key="ex_upload")
    if uploaded is not None:
        heldout_text = uploaded.getvalue()
        variation = ex.upload_variation(uploaded.name, heldout_text)
seed = int(ctx.settings.seed)  # the sidebar's seed, bound to ?seed=
c3.metric(tr("page.seed"), seed, help=tr("page.seed_help"))
st.query_params.update(exercise=ex_id, variation=var_id)

labels = {arm: ex.arm_label(variation, arm, lang) for arm in ("A", "B")}
settings_a, settings_b = ex.pair_settings(exercise, variation, seed)
info = corpora.corpus_info(settings.LESSON)


def run_pair() -> None:
    try:
        ex.start_pair(reg, info.tc, exercise, variation, seed, corpus=info.title, prefix=corpora.default_prefix(info),
                      heldout_text=heldout_text)
    except runs.RUN_ERRORS + (ValueError,) as exc:
        st.session_state["ex_error"] = exc  # said in the page's language when drawn


def stop_pair() -> None:
    ex.stop_pair(reg, ex.find_pair(reg, exercise, variation, seed))


with st.container(border=True):
    st.subheader(tr(f"ex.{ex_id}.title"))
    st.markdown("> " + tr(f"ex.{ex_id}.q"))
    st.markdown(tr(f"ex.{ex_id}.why"))
    diff = settings_a.differences(settings_b)
    fmt = formatting.fmt_setting
    st.caption(" · ".join(f"**{t(f'setting.{k}')}**: A {fmt(a)}, B {fmt(b)}" for k, (a, b) in diff.items())
               + "  \n" + tr("card.sizes", batch=settings_a.batch, steps=settings_a.steps, lr=fmt(settings_a.lr),
                              hidden=settings_a.hidden, epochs=settings_a.epochs, budget=ex.BUDGET_S))
    if "lesson" in (rnn_core.engines.engine_for(s.engine, s.activation, s.input, s.detach) for s in (settings_a,
                                                                                                    settings_b)):
        st.caption(tr("card.engine_note", what=tr("card.engine_what_embedding" if ex_id == "embedding"
                                                   else "card.engine_what_nodetach")))
    run_a, run_b = ex.find_pair(reg, exercise, variation, seed)
    running = any(r is not None and r.running for r in (run_a, run_b))
    done = ex.pair_complete(run_a) and ex.pair_complete(run_b)
    b1, b2, _ = st.columns([2, 2, 3])
    b1.button(tr("card.rerun") if done else tr("card.run"), type="primary", key="ex_run", on_click=run_pair,
              disabled=running, width="stretch")
    b2.button(tr("card.stop"), key="ex_stop", on_click=stop_pair, disabled=not running, width="stretch")
    if "ex_error" in st.session_state:
        layout.user_error(st.session_state.pop("ex_error"))


def pair_view() -> None:
    """The pair's curves, answer, numbers and samples, from one snapshot of each run (redrawn while they train)."""
    run_a, run_b = ex.find_pair(reg, exercise, variation, seed)
    va = run_a.view() if run_a is not None else None
    vb = run_b.view() if run_b is not None else None
    if va is None and vb is None:
        st.info(tr("card.not_started"), icon=":material/play_circle:")
    elif (va and va.running) or (vb and vb.running):
        st.progress(min(va.progress if va else 0, vb.progress if vb else 0),
                    text=tr("card.running", a=va.epoch if va else 0, b=vb.epoch if vb else 0))
    else:
        st.caption(tr("card.done"))
    st.markdown(f"**{tr('card.answer')}**  \n" + "  \n".join(ex.summary(exercise, variation, va, vb, lang)))
    frame = ex.pair_frame(va, vb)
    vocab_size = (va or vb).vocab_size if (va or vb) else len(info.vocab)
    layout.chart(xc.ab_curves(frame, labels, settings_a.epochs, vocab_size, tr("card.curves"), lang=lang),
                 key="ex_curves")
    rows = []
    for arm, v in (("A", va), ("B", vb)):
        s = ex.arm_stats(v)
        if s is None:
            continue
        rows.append({tr("col.arm"): labels[arm], tr("col.status"): sidebar.status_words(v.status),
                     tr("col.epochs"): s.epochs, tr("col.ppl"): ex.fmt(s.final_ppl), tr("col.best"): ex.fmt(s.best_ppl),
                     tr("col.held"): ex.fmt(s.heldout), tr("col.grad"): ex.fmt(s.grad_max),
                     tr("col.clip"): f"{s.clip_rate:.0%}" if s.clip_rate is not None else "–",
                     tr("col.sec"): ex.fmt(s.seconds_per_epoch, 2),
                     tr("col.tps"): f"{s.tokens_per_s:,.0f}" if s.tokens_per_s else "–",
                     tr("col.wall"): formatting.fmt_seconds(v.wall_s)})
    if rows:
        st.markdown(f"**{tr('card.table')}**")
        st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")
        layout.chart(xc.ab_gradients(frame, labels, {"A": settings_a.clip, "B": settings_b.clip}, settings_a.epochs,
                                 lang=lang), key="ex_gradients")
        samples = ex.samples_side_by_side(va, vb).rename(columns=labels)
        if len(samples):
            st.markdown(f"**{tr('card.samples', prefix=(va or vb).settings.prefix)}**")
            st.dataframe(samples, hide_index=True, width="stretch")
    was = st.session_state.get("_ex_was_running")
    now = bool((va and va.running) or (vb and vb.running))
    st.session_state["_ex_was_running"] = now
    if was and not now:
        st.rerun()  # the pair ended: a full run turns the timer off and updates the buttons


st.session_state["_ex_was_running"] = running
st.fragment(pair_view, run_every=sidebar.refresh_s() if running else None)()

with st.expander(tr("page.overview"), icon=":material/list:"):
    st.dataframe(ex.overview(reg, seed, lang), hide_index=True, width="stretch")


# ---------------------------------------------------------------- step mode

st.header(tr("step.title"))
st.markdown(tr("step.intro", hidden=ex.HIDDEN))
s1, s2 = st.columns(2)
detach = s1.toggle(tr("step.detach"), value=True, key="step_detach")
clip_text = s2.radio("θ", ["1", "off"], horizontal=True, key="step_clip",
                     format_func=lambda v: tr("step.clip_off") if v == "off" else f"θ = {v}")
theta = None if clip_text == "off" else 1.0
step_key = (seed, detach, theta, info.key)


def trainer() -> Trainer:
    """The session's step-mode trainer (a new one when the seed, detach or θ changed)."""
    held = st.session_state.get("step_trainer")
    if held is None or held[0] != step_key:
        net = rnn_core.make_model("fast", len(info.vocab), ex.HIDDEN, "cpu", seed=seed, detach=detach)
        loader = rnn_core.make_loader(info.tc, ex.BASE.batch, ex.BASE.steps, seed=seed)
        held = (step_key, Trainer(net, loader, info.vocab, lr=ex.BASE.lr, theta=theta, sample_every=0,
                                  detach=detach), [])
        st.session_state["step_trainer"] = held
        st.session_state.pop("step_last", None)
    return held[1]


def do_steps(n: int) -> None:
    t = trainer()
    history = st.session_state["step_trainer"][2]
    for _ in range(n):
        try:
            report = t.step()
        except rnn_core.DivergenceError as exc:
            st.session_state["ex_error"] = exc
            break
        history.append({"step": t.batches_done, "epoch": report.epoch, "minibatch": report.batch + 1,
                        "loss": report.loss, "‖g‖ before": report.grad_norm, "‖g‖ after": report.clipped_norm})
        st.session_state["step_last"] = report


def reset_steps() -> None:
    st.session_state.pop("step_trainer", None)
    st.session_state.pop("step_last", None)


b1, b2, b3 = st.columns(3)
b1.button(tr("step.one"), type="primary", key="step_one", on_click=do_steps, args=(1,), width="stretch")
b2.button(tr("step.ten"), key="step_ten", on_click=do_steps, args=(10,), width="stretch")
b3.button(tr("step.reset"), key="step_reset", on_click=reset_steps, width="stretch")
trainer()
report = st.session_state.get("step_last")
if report is None:
    st.caption(tr("step.none"))
else:
    vocab = info.vocab
    n_batches = len(st.session_state["step_trainer"][1].loader)
    st.markdown(tr("step.where", epoch=report.epoch, batch=report.batch + 1, n=n_batches))
    rows = 4
    lines = []
    for i in range(min(rows, report.X.shape[0])):
        x = corpora.visible_spaces("".join(vocab.to_tokens(report.X[i].tolist())))
        y = corpora.visible_spaces("".join(vocab.to_tokens(report.Y[i].tolist())))
        lines += [f"X[{i}]  {x}", f"Y[{i}]  {y}"]
    st.markdown(f"**{tr('step.rows', rows=rows)}**")
    st.code("\n".join(lines), language=None)
    m = st.columns(4)
    m[0].metric(tr("col.ppl"), ex.fmt(math.exp(report.loss)))
    m[1].metric(tr("step.loss", loss=""), ex.fmt(report.loss))
    m[2].metric(tr("step.g_before"), ex.fmt(report.grad_norm))
    m[3].metric(tr("step.g_after"), ex.fmt(report.clipped_norm))
    x_tokens = [vocab.to_tokens(row.tolist()) for row in report.X[:8]]
    layout.chart(xc.step_losses(report.losses.numpy(), x_tokens, lang=lang), key="step_losses")
    st.markdown(f"**{tr('step.updates')}**")
    u1, u2 = st.columns([2, 1])
    with u1:
        layout.chart(xc.update_sizes(report.update_ratio), key="step_updates")
    u2.dataframe(pd.DataFrame({"W": list(report.update_ratio),
                               "‖ΔW‖/‖W‖": [ex.fmt(r) if math.isfinite(r) else tr("step.from_zero")
                                            for r in report.update_ratio.values()]}),
                 hide_index=True, width="stretch")
    norm = float(report.state.norm())
    shape = f"{tuple(report.state.shape)}"
    st.markdown(tr("step.state_attached", shape=shape, norm=ex.fmt(norm), k=report.graph_batches) if report.attached
                else tr("step.state_detached", shape=shape, norm=ex.fmt(norm)))
    history = st.session_state["step_trainer"][2]
    if len(history) > 1:
        st.dataframe(pd.DataFrame(history[-10:]), hide_index=True, width="stretch")

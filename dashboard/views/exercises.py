"""7 · Exercises: the lesson's exercises as A/B pairs trained in the background, and step mode.

A card per exercise: its question, one button that trains the pair (two runs, the same seed and settings
except one switch, on the server's scheduler), the curves overlaid, the pair's numbers and samples, and two
sentences computed from them (``dashboard/exercises.py``). ``?exercise=&variation=&seed=`` reopens a pair.
Step mode trains one minibatch per press and shows what that step did.
"""
import math

import pandas as pd
import streamlit as st

from dashboard import corpora, layout, runs, settings, sidebar
from dashboard import exercise_charts as xc
from dashboard import exercises as ex

ctx = sidebar.context()
lang = ex.lang_now()  # fixed for this script run: format functions are also called outside it


def tr(key: str, **fmt) -> str:
    return ex.tr(key, lang, **fmt)


reg = runs.registry()
state = st.session_state

st.title(tr("page.title"))
st.markdown(tr("page.intro"))

ids = list(ex.EXERCISES)


def exercise_name(i: str) -> str:
    return f"{ids.index(i) + 1} · {ex.tr(f'ex.{i}.title', lang)}"


if (refused := ex.from_url(state, st.query_params, "ex_exercise", "exercise", lambda v: v in ex.EXERCISES,
                           ids[0])) is not None:
    layout.url_note("exercise", refused, ids[0])
url_notes = st.container()  # a link's unknown exercise or variation, named with the one shown instead
c1, c2, c3 = st.columns([3, 3, 1])
ex_id = c1.selectbox(tr("page.exercise"), ids, key="ex_exercise", format_func=exercise_name)
exercise = ex.EXERCISES[ex_id]
var_ids = [v.id for v in exercise.variations]
var_key = f"ex_variation_{ex_id}"
if (refused := ex.from_url(state, st.query_params, var_key, "variation", lambda v: v in var_ids,
                           var_ids[0])) is not None:
    layout.url_note("variation", refused, var_ids[0])
if len(var_ids) > 1:
    var_id = c2.radio(tr("page.variation"), var_ids, key=var_key,
                      format_func=lambda v: ex.pair_name(exercise.variation(v), lang))
else:
    var_id = var_ids[0]
    c2.markdown(f"**{tr('page.variation')}:** {ex.pair_name(exercise.variation(var_id), lang)}")
variation = exercise.variation(var_id)
with url_notes:
    layout.url_warning("exercise", lambda i: layout.choice_text(i, exercise_name(i)), ex_id)
    layout.url_warning("variation", lambda v: layout.choice_text(v, ex.pair_name(exercise.variation(v), lang)),
                       var_id)
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

with st.container(border=True):
    st.subheader(tr(f"ex.{ex_id}.title"))
    st.markdown("> " + tr(f"ex.{ex_id}.q"))
    st.markdown(tr(f"ex.{ex_id}.why"))
    st.caption(ex.settings_line(settings_a, settings_b, lang))
    if note := ex.engine_note(exercise, settings_a, settings_b, lang):
        st.caption(note)
    run_a, run_b = ex.find_pair(reg, exercise, variation, seed)
    running = ex.pair_running(run_a, run_b)
    done = ex.pair_complete(run_a) and ex.pair_complete(run_b)
    guess_key = f"ex_guess_{ex_id}_{variation.id}"  # the class's prediction, per pair (kept while it trains)
    st.markdown(f"**{tr('guess.title')}** · {tr('guess.intro')}")
    st.radio(ex.guess_question(exercise, variation, lang), ex.GUESS_CHOICES[ex.guess_kind(exercise, variation)],
             index=None, key=guess_key, horizontal=True, disabled=running,
             format_func=lambda c: ex.guess_choice(exercise, variation, c, lang),
             help=tr("guess.locked") if running else None)
    b1, b2, _ = st.columns([2, 2, 3])
    b1.button(tr("card.rerun") if done else tr("card.run"), type="primary", key="ex_run",
              on_click=ex.start_pair_keeping_the_error, args=(state, reg, info.tc, exercise, variation, seed),
              kwargs={"corpus": info.title, "prefix": corpora.default_prefix(info), "heldout_text": heldout_text},
              disabled=running, width="stretch")
    b2.button(tr("card.stop"), key="ex_stop", disabled=not ex.controls_pair((run_a, run_b)), width="stretch",
              on_click=lambda: ex.stop_pair(reg, ex.find_pair(reg, exercise, variation, seed)))
    if (error := ex.take_error(state)) is not None:
        layout.user_error(error)


def pair_view() -> None:
    """The pair's curves, answer, numbers and samples, from one snapshot of each run (redrawn while they train)."""
    run_a, run_b = ex.find_pair(reg, exercise, variation, seed)
    va = run_a.view() if run_a is not None else None
    vb = run_b.view() if run_b is not None else None
    now = ex.pair_running(va, vb)
    if va is None and vb is None:
        st.info(tr("card.not_started"), icon=":material/play_circle:")
    elif now:
        st.progress(min(va.progress if va else 0, vb.progress if vb else 0),
                    text=tr("card.running", a=va.epoch if va else 0, b=vb.epoch if vb else 0))
    else:
        st.caption(tr("card.done"))
    if (reveal := ex.guess_reveal(exercise, variation, state.get(guess_key), va, vb, lang)) is not None:
        text, right = reveal
        (st.success if right else st.info if right is None else st.warning)(
            text, icon=":material/check_circle:" if right else ":material/lightbulb:")
    va, vb = ex.at_same_epoch(va, vb)  # while they train, every number and chart below at the same epoch
    st.markdown(f"**{tr('card.answer')}**  \n" + "  \n".join(ex.summary(exercise, variation, va, vb, lang)))
    frame = ex.pair_frame(va, vb)
    vocab_size = (va or vb).vocab_size if (va or vb) else len(info.vocab)
    layout.chart(xc.ab_curves(frame, labels, settings_a.epochs, vocab_size, tr("card.curves"), lang=lang),
                 key="ex_curves")
    table = ex.pair_table(va, vb, labels, lang)
    if len(table):
        st.markdown(f"**{tr('card.table')}**")
        st.dataframe(table, hide_index=True, width="stretch")
        minibatches = ex.minibatch_frame(va, vb)
        if len(minibatches):
            st.markdown(f"**{tr('card.minibatches')}**")
            layout.chart(xc.ab_minibatches(minibatches, ex.above_by_epoch(minibatches), labels,
                                           ex.pair_theta(settings_a, settings_b), settings_a.epochs, lang=lang),
                         key="ex_minibatches")
        samples = ex.samples_side_by_side(va, vb).rename(columns=labels)
        if len(samples):
            st.markdown(f"**{tr('card.samples', prefix=(va or vb).settings.prefix)}**")
            st.dataframe(samples, hide_index=True, width="stretch")
    was = state.get("_ex_was_running")
    state["_ex_was_running"] = now
    if was and not now:
        st.rerun()  # the pair ended: a full run turns the timer off and updates the buttons


state["_ex_was_running"] = running
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
step = ex.StepMode(state, info, seed, detach, theta=None if clip_text == "off" else 1.0)

b1, b2, b3 = st.columns(3)
b1.button(tr("step.one"), type="primary", key="step_one", on_click=step.steps, args=(1,), width="stretch")
b2.button(tr("step.ten"), key="step_ten", on_click=step.steps, args=(10,), width="stretch")
b3.button(tr("step.reset"), key="step_reset", on_click=step.reset, width="stretch")
report = step.last
if report is None:
    st.caption(tr("step.none"))
else:
    st.markdown(tr("step.where", epoch=report.epoch, batch=report.batch + 1, n=len(step.trainer().loader)))
    rows = 4
    st.markdown(f"**{tr('step.rows', rows=rows)}**")
    st.code(ex.step_rows(report, info.vocab, rows), language=None)
    m = st.columns(4)
    m[0].metric(tr("col.ppl"), ex.fmt(math.exp(report.loss)))
    m[1].metric(tr("step.loss", loss=""), ex.fmt(report.loss))
    m[2].metric(tr("step.g_before"), ex.fmt(report.grad_norm))
    m[3].metric(tr("step.g_after"), ex.fmt(report.clipped_norm))
    x_tokens = [info.vocab.to_tokens(row.tolist()) for row in report.X[:8]]
    layout.chart(xc.step_losses(report.losses.numpy(), x_tokens, lang=lang), key="step_losses")
    st.markdown(f"**{tr('step.updates')}**")
    u1, u2 = st.columns([2, 1])
    with u1:
        layout.chart(xc.update_sizes(report.update_ratio), key="step_updates")
    u2.dataframe(ex.update_table(report, lang), hide_index=True, width="stretch")
    st.markdown(ex.state_sentence(report, lang))
    if len(step.history) > 1:
        st.dataframe(pd.DataFrame(step.history[-10:]), hide_index=True, width="stretch")

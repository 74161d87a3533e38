"""The Exercises page's panels, drawn with Streamlit: an exercise card (its question, the prediction, the buttons),
the pair's live view (answer, curves, table, minibatches, samples) and step mode. The page
(``views/exercises.py``) picks the card and calls these; the numbers and words come from ``dashboard.exercises``.
"""
from __future__ import annotations

import math

import streamlit as st

from . import corpora, layout, sidebar
from . import exercise_charts as xc
from . import exercises as ex
from .corpora import CorpusInfo
from .formatting import num


def card(exercise: ex.Exercise, variation: ex.Variation, seed: int, info: CorpusInfo, reg, lang: str,
         heldout_text: bytes | None = None) -> None:
    """One exercise's card: the question, the settings the arms differ in, predict first, Run / Stop, then the
    pair's view (a fragment that redraws while the pair trains)."""
    state = st.session_state
    settings_a, settings_b = ex.pair_settings(exercise, variation, seed)
    with st.container(border=True):
        st.subheader(ex.tr(f"ex.{exercise.id}.title", lang))
        st.markdown("> " + ex.tr(f"ex.{exercise.id}.q", lang))
        st.markdown(ex.tr(f"ex.{exercise.id}.why", lang))
        st.caption(ex.settings_line(settings_a, settings_b, lang))
        if note := ex.engine_note(exercise, settings_a, settings_b, lang):
            st.caption(note)
        run_a, run_b = ex.find_pair(reg, exercise, variation, seed)
        running = ex.pair_running(run_a, run_b)
        done = ex.pair_complete(run_a) and ex.pair_complete(run_b)
        guess_key = f"ex_guess_{exercise.id}_{variation.id}"  # the class's prediction, per pair (kept while it trains)
        st.markdown(f"**{ex.tr('guess.title', lang)}** · {ex.tr('guess.intro', lang)}")
        st.radio(ex.guess_question(exercise, variation, lang), ex.GUESS_CHOICES[ex.guess_kind(exercise, variation)],
                 index=None, key=guess_key, horizontal=True, disabled=running,
                 format_func=lambda c: ex.guess_choice(exercise, variation, c, lang),
                 help=ex.tr("guess.locked", lang) if running else None)
        b1, b2, _ = st.columns([2, 2, 3])
        b1.button(ex.tr("card.rerun" if done else "card.run", lang), type="primary", key="ex_run",
                  on_click=ex.start_pair_keeping_the_error, args=(state, reg, info.tc, exercise, variation, seed),
                  kwargs={"corpus": info.used, "prefix": corpora.default_prefix(info), "heldout_text": heldout_text},
                  disabled=running, width="stretch")
        b2.button(ex.tr("card.stop", lang), key="ex_stop", disabled=not ex.controls_pair((run_a, run_b)),
                  width="stretch", on_click=lambda: ex.stop_pair(reg, ex.find_pair(reg, exercise, variation, seed)))
        if (error := ex.take_error(state)) is not None:
            layout.user_error(error)

    def pair_view() -> None:
        """The pair's answer, curves, numbers and samples, from one snapshot of each run."""
        _pair_view(exercise, variation, seed, info, reg, lang, guess_key)

    state["_ex_was_running"] = running
    st.fragment(pair_view, run_every=sidebar.refresh_s() if running else None)()


def _pair_view(exercise, variation, seed: int, info: CorpusInfo, reg, lang: str, guess_key: str) -> None:
    state = st.session_state
    tr = lambda key, **fmt: ex.tr(key, lang, **fmt)  # noqa: E731
    labels = {arm: ex.arm_label(variation, arm, lang) for arm in ("A", "B")}
    settings_a, settings_b = ex.pair_settings(exercise, variation, seed)
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
    vocab_size = (va or vb).vocab_size if (va or vb) else len(info.vocab)
    layout.chart(xc.ab_curves(ex.pair_frame(va, vb), labels, settings_a.epochs, vocab_size, tr("card.curves"),
                              lang=lang), key="ex_curves")
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
        samples = ex.samples_side_by_side(va, vb).rename(columns={**labels, "epoch": tr("col.epoch")})
        if len(samples):
            st.markdown(f"**{tr('card.samples', prefix=(va or vb).settings.prefix)}**")
            st.dataframe(samples, hide_index=True, width="stretch")
    was = state.get("_ex_was_running")
    state["_ex_was_running"] = now
    if was and not now:
        st.rerun()  # the pair ended: a full run turns the timer off and updates the buttons


def step_mode(info: CorpusInfo, seed: int, lang: str) -> None:
    """Step mode: the switches, One minibatch / 10 steps / Start over, and what the last step did."""
    state = st.session_state
    tr = lambda key, **fmt: ex.tr(key, lang, **fmt)  # noqa: E731
    st.header(tr("step.title"))
    s1, s2 = st.columns(2)
    detach = s1.toggle(tr("step.detach"), value=True, key="step_detach")
    clip_text = s2.radio("θ", ["1", "off"], horizontal=True, key="step_clip",
                         format_func=lambda v: tr("step.clip_off") if v == "off" else f"θ = {v}")
    step = ex.StepMode(state, info, seed, detach, theta=None if clip_text == "off" else 1.0)
    st.markdown(ex.intro(step.settings, lang))
    trainer = step.trainer()  # here, so that a switch that changed is said before the buttons
    if (note := ex.restart_note(state, lang)) is not None:
        st.info(note, icon=":material/restart_alt:")
    b1, b2, b3 = st.columns(3)
    b1.button(tr("step.one"), type="primary", key="step_one", on_click=step.steps, args=(1,), width="stretch")
    b2.button(tr("step.ten"), key="step_ten", on_click=step.steps, args=(10,), width="stretch")
    b3.button(tr("step.reset"), key="step_reset", on_click=step.reset, width="stretch")
    if (error := ex.take_error(state)) is not None:
        layout.user_error(error)
    report = step.last
    if report is None:
        st.caption(tr("step.none"))
        return
    st.markdown(tr("step.where", epoch=report.epoch, batch=report.batch + 1, n=trainer.minibatches_per_epoch))
    rows = 4
    st.markdown(f"**{tr('step.rows', rows=rows)}**")
    st.code(ex.step_rows(report, info.vocab, rows), language=None)
    m = st.columns(4)
    m[0].metric(tr("col.ppl"), num(math.exp(min(report.loss, 700.0)), 3))
    m[1].metric(tr("step.loss", loss=""), num(report.loss, 3))
    m[2].metric(tr("step.g_before"), num(report.grad_norm, 3))
    m[3].metric(tr("step.g_after"), num(report.clipped_norm, 3))
    x_tokens = [info.vocab.to_tokens(row.tolist()) for row in report.X[:8]]
    layout.chart(xc.step_losses(report.losses.numpy(), x_tokens, lang=lang), key="step_losses")
    st.markdown(f"**{tr('step.updates')}**")
    u1, u2 = st.columns([2, 1])
    with u1:
        layout.chart(xc.update_sizes(report.update_ratio), key="step_updates")
    u2.dataframe(ex.update_table(report, lang), hide_index=True, width="stretch")
    st.markdown(ex.state_sentence(report, lang))
    if len(step.history) > 1:
        st.dataframe(ex.history_table(step.history, lang), hide_index=True, width="stretch")

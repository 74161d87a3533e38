"""Free A/B on the Training page: the run shown against any other run of the session or the reference run,
curves overlaid, with the settings that differ and the numbers of both (``compare_with``)."""
from __future__ import annotations

import pandas as pd
import streamlit as st

from . import exercise_charts as xc
from . import formatting, layout, runs
from .exercises import arm_stats, pair_frame, tr
from .formatting import num
from .i18n import t

def _t(key: str, **fmt) -> str:
    return t(f"compare.{key}", **fmt)


def _label(run) -> str:
    v = run.view()
    last = formatting.fmt_ppl(v.last["perplexity"]) if v.last else "–"
    who = _t("reference") + " " if v.origin == "reference" else ""
    return _t("label", who=who, id=run.id, epoch=v.epoch, target=v.target, ppl=last, hidden=v.settings.hidden)


def compare_with(run) -> None:
    """An expander: pick another run, see both curves overlaid and the settings that differ."""
    if run is None:
        return
    seen, others = {run.id}, []
    for r in [*reversed(runs.session_runs()), *runs.registry().references()]:
        if r.id not in seen and (r.epoch or r.origin == "reference"):
            seen.add(r.id)
            others.append(r)
    with st.expander(_t("title"), icon=":material/compare_arrows:"):
        if not others:
            st.caption(_t("none"))
            return
        by_id = {r.id: r for r in others}
        choice = st.selectbox(_t("pick"), list(by_id), index=None, key="compare_with",
                              format_func=lambda i: _label(by_id[i]))
        if choice is None:
            return
        va, vb = run.view(), by_id[choice].view()
        labels = {"A": f"A: {_t('this')}", "B": f"B: {vb.id}"}
        layout.chart(xc.ab_curves(pair_frame(va, vb), labels, max(va.target, vb.target, 1), va.vocab_size,
                              _t("curves")), key="compare_curves")
        diff = va.settings.differences(vb.settings)
        if diff:
            st.dataframe(pd.DataFrame([{_t("setting"): k, labels["A"]: formatting.fmt_setting(a),
                                        labels["B"]: formatting.fmt_setting(b)} for k, (a, b) in diff.items()]),
                         hide_index=True, width="stretch")
        else:
            st.caption(_t("same"))
        rows = []
        for arm, v in (("A", va), ("B", vb)):
            s = arm_stats(v)
            rows.append({tr("col.arm"): labels[arm], tr("col.epochs"): s.epochs, tr("col.ppl"): num(s.final_ppl, 3),
                         tr("col.best"): num(s.best_ppl, 3), tr("col.grad"): num(s.grad_max, 3),
                         tr("col.clip"): f"{s.clip_rate:.0%}" if s.clip_rate is not None else "–",
                         tr("col.tps"): f"{s.tokens_per_s:,.0f}" if s.tokens_per_s else "–"})
        st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")

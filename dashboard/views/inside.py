"""6 · Inside the RNN: hidden states, gradient flow through time, hidden units, surprise, and the nn.RNN twin."""
import numpy as np
import streamlit as st

from dashboard import (compute, corpora, explain, formatting, i18n, inside_charts, inside_tables, layout, lesson_code,
                       linked_explain, linked_step, pages, runs, settings, sidebar)
from dashboard.i18n import t

ctx = sidebar.context()

layout.header(
    t("inside.title"),
    t("inside.intro"),
    [r"H_t = \tanh(X_t W_{xh} + H_{t-1} W_{hh} + b_h)",
     r"P(x_{t+1} \mid x_{\le t}) = \mathrm{softmax}(H_t W_{hq} + b_q)",
     r"G_{ts} = \Big\lVert \frac{\partial \ell_t}{\partial H_s} \Big\rVert",
     r"\frac{\partial \ell_t}{\partial H_{s-1}} = \Big(\frac{\partial \ell_t}{\partial H_s} \odot "
     r"(1 - H_s^2)\Big) W_{hh}^\top"],
    lesson_code.excerpt("inside"),
)
model = runs.pick_model(ctx)
runs.model_banner(model)

text = st.text_input(t("inside.text"), corpora.default_text(model.info), max_chars=settings.TEXT_MAX_CHARS, key="text",
                     bind="query-params")
unknown = corpora.unknown_tokens(model.vocab, text)
if unknown:
    st.warning(t("generate.unknown", tokens=", ".join(repr(tok) for tok in unknown)))
if len(corpora.split_text(model.vocab, text)) < 2:
    st.error(t("inside.two_tokens"))
    st.stop()

r = compute.inspect(model.net, model.vocab, model.key, text)
steps, hidden = r["steps"], r["hidden"]
loss, ppl = compute.mean_loss(steps)
c1, c2, c3 = st.columns(3)
c1.metric(t("inside.m_steps"), len(steps))
c2.metric(t("inside.m_loss"), f"{loss:.3f}", help=t("inside.m_loss_help"))
c3.metric(t("inside.m_ppl"), formatting.fmt_ppl(ppl), help=t("inside.m_ppl_help", V=len(model.vocab)))

linked_step.prepare(len(steps))  # the step t every view below selects (the unrolled page's too)
step = linked_step.slider(st, len(steps), t("inside.step_help"))
linked_step.notes(step)
lecture = pages.lecture_mode()  # larger tick labels

passage = corpora.passage(model.info)
units = compute.hidden_units(model.net, model.vocab, model.key, passage)
seen = (model.key, text)  # what the figures below depend on

step_tab, flow_tab, units_tab, surprise_tab, twin_tab = st.tabs(
    [t("inside.tab_steps"), t("inside.tab_flow"), t("inside.tab_units"), t("inside.tab_surprise"),
     t("inside.tab_twin")])

with step_tab:
    st.markdown(t("inside.steps_text"))
    linked_step.chart(inside_charts.step_heatmaps, seen, hidden, r["probs"], r["tokens"], steps, key="inside_steps",
                      steps=len(steps), unit_order=units["order"], step=step, lecture=lecture)
    st.markdown(linked_explain.steps_row(steps, step))
    table = st.expander(t("inside.table"), on_change="rerun", key="inside_table")
    if table.open:  # a table is costly to draw: only when asked for
        with table:
            st.dataframe(inside_tables.steps_table(steps), hide_index=True, width="stretch",
                         column_config=inside_tables.steps_columns(steps))

with flow_tab:
    flow = compute.gradient_flow(model.net, model.vocab, model.key, text)
    spec = compute.w_hh_spectrum(model.net, model.key)
    per_step = spec.sigma_max * flow.max_tanh_prime
    st.markdown(t("inside.flow_text") + (t("inside.flow_bound") if per_step < 1 else t("inside.flow_end")))
    linked_step.chart(inside_charts.gradient_flow_chart, (*seen, "flow"), flow.matrix.numpy(), flow.curve.numpy(),
                      flow.bound(per_step).numpy() if per_step < 1 else None, flow.inputs, flow.targets,
                      key="inside_flow", steps=len(steps), step=step, lecture=lecture)
    st.markdown(linked_explain.flow_row(flow.matrix.numpy(), step))
    st.markdown("\n".join(f"- {s}" for s in explain.gradient_flow(flow)))
    m1, m2, m3, m4 = st.columns(4)
    m1.metric("ρ(W_hh)", f"{spec.radius:.3g}", help=t("inside.rho_help"))
    m2.metric("σ_max(W_hh)", f"{spec.sigma_max:.3g}", help=t("inside.sigma_help"))
    m3.metric("max tanh′", f"{flow.max_tanh_prime:.3g}", help=t("inside.tanh_help"))
    m4.metric("σ_max · max tanh′", f"{per_step:.3g}", help=t("inside.bound_help"))
    st.markdown("\n".join(f"- {s}" for s in explain.spectrum(flow, spec)))
    st.caption(t("inside.singular", values=", ".join(f"{v:.3g}" for v in spec.singular.tolist())))

with units_tab:
    st.markdown(t("inside.units_text", n=len(units["tokens"])))
    finder = units["finder"].rename(columns={"label": "feature", "feature": "name", "unit": "best unit"})
    finder["feature"] = [explain.feature_label(name, units["labels"]) for name in finder["name"]]

    def pick_unit(found=tuple(finder["best unit"])):
        """A click on a row of the table moves the unit slider to that row's unit."""
        rows = st.session_state["inside_finder"].selection.rows
        if rows and hidden.shape[1] > 1:
            st.session_state["inside_unit"] = int(found[rows[0]])

    st.dataframe(finder[["feature", "best unit", "r"]], hide_index=True, width="stretch", key="inside_finder",
                 on_select=pick_unit, selection_mode="single-row",
                 column_config={"feature": t("inside.col_feature"), "best unit": t("inside.col_unit"),
                                "r": st.column_config.NumberColumn(format="%+.2f")})
    unit = layout.index_slider(t("inside.unit"), hidden.shape[1], units["best"], key="inside_unit", bind="query-params",
                           help=t("inside.unit_help"))
    st.markdown(explain.unit(units["finder"], units["correlations"].iloc[unit], unit, units["labels"],
                             len(units["tokens"])))
    st.html(inside_charts.activation_html(corpora.display_tokens(model.vocab, units["tokens"]),
                                   units["hidden"][:, unit]))
    st.caption(t("inside.units_caption"))

with surprise_tab:
    st.markdown(t("inside.surprise_text"))
    text_s = st.text_area(t("inside.score"), passage, height=120, key="inside_surprise_text", max_chars=2000)
    if len(corpora.split_text(model.vocab, text_s)) < 2:
        st.error(t("inside.two_tokens"))
    else:
        s = compute.surprise(model.net, model.vocab, model.key, text_s)
        sur = s["surprise"]
        st.markdown(explain.surprise(sur, len(model.vocab)))
        st.html(inside_charts.surprise_html(corpora.display_tokens(model.vocab, sur.tokens), sur.surprisal.numpy(),
                                            float(np.log(len(model.vocab))), lang=i18n.current(), step=step))
        st.caption(linked_explain.surprise_char(sur.tokens, sur.surprisal.numpy(), step))
        st.markdown(i18n.sentences(t("inside.top_k"), explain.top_k(s["top_k"])))
        row = linked_explain.top_k_row(s["top_k"], step)
        if row:
            st.markdown(row)
        st.dataframe(inside_tables.top_k_table(s["top_k"]), hide_index=True, width="stretch", height=320,
                     column_config=inside_tables.top_k_columns(s["top_k"]))

with twin_tab:
    st.markdown(t("inside.twin_text"))
    diffs = compute.twin(model.net, model.vocab, model.key, text)
    st.dataframe(inside_tables.twin_table(diffs), hide_index=True, width="stretch",
                 column_config=inside_tables.twin_columns())
    st.markdown(explain.twin(diffs))

"""5 · Inside the RNN: hidden states, gradient flow through time, hidden units, surprise, and the nn.RNN twin."""
import numpy as np
import streamlit as st

from dashboard import charts, explain, lab, lesson, ui

ctx = ui.context()

ui.header(
    "5 · Inside the RNN",
    "Feed text through the model and look inside: the hidden state `H_t` at every step and what it predicts, "
    "how far back in time the loss reaches through the hidden states (gradient flow), hidden units that "
    "follow features of the text, how surprised the model is by each character, and the same weights in "
    "`torch.nn.RNN`.",
    [r"H_t = \tanh(X_t W_{xh} + H_{t-1} W_{hh} + b_h), \qquad P(x_{t+1} \mid x_{\le t}) = "
     r"\mathrm{softmax}(H_t W_{hq} + b_q)",
     r"G_{ts} = \Big\lVert \frac{\partial \ell_t}{\partial H_s} \Big\rVert, \qquad "
     r"\frac{\partial \ell_t}{\partial H_{s-1}} = \Big(\frac{\partial \ell_t}{\partial H_s} \odot "
     r"(1 - H_s^2)\Big) W_{hh}^\top"],
    lesson.INSIDE,
)
model = ui.session_model(ctx)
ui.model_banner(model)

text = st.text_input("Input string (the model reads each token and predicts the next)",
                     lab.default_text(model.info), max_chars=200)
unknown = lab.unknown_tokens(model.vocab, text)
if unknown:
    st.warning(f"Not in the model's vocabulary, read as <unk>: {', '.join(repr(t) for t in unknown)}.")
if len(lab.split_text(model.vocab, text)) < 2:
    st.error("Type at least two tokens: the model predicts each next one from those before it.")
    st.stop()

r = lab.inspect(model.net, model.vocab, model.key, text)
steps, hidden = r["steps"], r["hidden"]
loss, ppl = lab.mean_loss(steps)
c1, c2, c3 = st.columns(3)
c1.metric("Steps", len(steps))
c2.metric("Mean loss", f"{loss:.3f}", help="Mean cross-entropy per step on this string.")
c3.metric("Perplexity", lab.fmt_ppl(ppl), help=f"exp(mean loss) on this string; |V| = {len(model.vocab)} is "
                                               "uniform guessing.")

passage = lab.passage(model.info)
units = lab.hidden_units(model.net, model.vocab, model.key, passage)
seen = (model.key, text)  # what the figures below depend on

step_tab, flow_tab, units_tab, surprise_tab, twin_tab = st.tabs(
    ["Steps", "Gradient flow", "Hidden units", "Surprise & top-k", "nn.RNN twin"])

with step_tab:
    st.markdown("Each row is one step: the hidden state after reading its token (units ordered so that units "
                "which behave alike over a passage of the corpus sit side by side), and the probabilities of "
                "the next token (○ the true next token, × the model's top choice).")
    ui.cached_chart("step_heatmaps", seen, hidden, r["probs"], r["tokens"], steps, unit_order=units["order"])
    table = st.expander("All per-step numbers", on_change="rerun", key="inside_table")
    if table.open:  # a table is costly to draw: only when asked for
        with table:
            st.dataframe(steps, hide_index=True, width="stretch")

with flow_tab:
    flow = lab.gradient_flow(model.net, model.vocab, model.key, text)
    spec = lab.w_hh_spectrum(model.net, model.key)
    per_step = spec.sigma_max * flow.max_tanh_prime
    st.markdown("Row t, column s: how strongly the loss at step t depends on the hidden state at an earlier "
                "step s, ‖∂ℓ_t/∂H_s‖. Right: the same averaged by how far back s is, d = t − s"
                + ("; the dashed line is the most it can be: (σ_max · max tanh′)^d times the mean ‖∂ℓ_t/∂H_t‖ "
                   "over the same t."
                   if per_step < 1 else "."))
    ui.cached_chart("gradient_flow_chart", (*seen, "flow"), flow.matrix.numpy(), flow.curve.numpy(),
                    flow.bound(per_step).numpy() if per_step < 1 else None, flow.inputs, flow.targets)
    st.markdown("\n".join(f"- {s}" for s in explain.gradient_flow(flow)))
    m1, m2, m3, m4 = st.columns(4)
    m1.metric("ρ(W_hh)", f"{spec.radius:.3g}", help="Spectral radius: the largest |eigenvalue|.")
    m2.metric("σ_max(W_hh)", f"{spec.sigma_max:.3g}", help="Largest singular value: the most W_hh stretches a vector.")
    m3.metric("max tanh′", f"{flow.max_tanh_prime:.3g}", help="max of 1 − H_s² over the steps and units.")
    m4.metric("σ_max · max tanh′", f"{per_step:.3g}", help="Bound on one step back's factor.")
    st.markdown("\n".join(f"- {s}" for s in explain.spectrum(flow, spec)))
    st.caption("Largest singular values of W_hh: " + ", ".join(f"{v:.3g}" for v in spec.singular.tolist()))

with units_tab:
    st.markdown(f"Each unit's activation over the first {len(units['tokens'])} tokens of the corpus, correlated "
                "with simple features of the text (Pearson r). The best unit for each feature:")
    finder = units["finder"].rename(columns={"label": "feature", "feature": "name", "unit": "best unit"})

    def pick_unit(found=tuple(finder["best unit"])):
        """A click on a row of the table moves the unit slider to that row's unit."""
        rows = st.session_state["inside_finder"].selection.rows
        if rows and hidden.shape[1] > 1:
            st.session_state["inside_unit"] = int(found[rows[0]])

    st.dataframe(finder[["feature", "best unit", "r"]], hide_index=True, width="stretch", key="inside_finder",
                 on_select=pick_unit, selection_mode="single-row",
                 column_config={"r": st.column_config.NumberColumn(format="%+.2f")})
    unit = ui.index_slider("Hidden unit", hidden.shape[1], units["best"], key="inside_unit",
                           help="Starts at the unit that matches a feature best; click a row above to show its unit.")
    st.markdown(explain.unit(units["finder"], units["correlations"].iloc[unit], unit, units["labels"],
                             len(units["tokens"])))
    st.html(charts.activation_html(lab.display_tokens(model.vocab, units["tokens"]),
                                   units["hidden"][:, unit]))
    st.caption("Each token coloured by the unit's activation after reading it: red positive, blue negative.")

with surprise_tab:
    st.markdown("Each character coloured by how surprised the model was to see it: −log p(true next | what came "
                "before). White: expected; red: −log p at or above log |V|, worse than uniform guessing.")
    text_s = st.text_area("Text to score", passage, height=120, key="inside_surprise_text", max_chars=2000)
    if len(lab.split_text(model.vocab, text_s)) < 2:
        st.error("Type at least two tokens: the model predicts each next one from those before it.")
    else:
        s = lab.surprise(model.net, model.vocab, model.key, text_s)
        sur = s["surprise"]
        st.markdown(explain.surprise(sur, len(model.vocab)))
        st.html(charts.surprise_html(lab.display_tokens(model.vocab, sur.tokens), sur.surprisal.numpy(),
                                     float(np.log(len(model.vocab)))))
        st.markdown("Per step, the five most likely next tokens; rank 1 means the true next token was the "
                    "model's first choice. " + explain.top_k(s["top_k"]))
        st.dataframe(s["top_k"], hide_index=True, width="stretch", height=320,
                     column_config={c: st.column_config.NumberColumn(format="%.3f")
                                    for c in s["top_k"].columns if c.startswith("p")})

with twin_tab:
    st.markdown("The same weights loaded into `torch.nn.RNN` + `nn.Linear` (W_ih = W_xhᵀ, W_hh = W_hhᵀ, "
                "b_ih = b_h, b_hh = 0), run on this string against the lesson's scratch loop; forward and "
                "backward, computed now for this model.")
    diffs = lab.twin(model.net, model.vocab, model.key, text)
    st.dataframe(diffs, hide_index=True, width="stretch",
                 column_config={"largest |value|": st.column_config.NumberColumn(format="%.3e"),
                                "max |difference|": st.column_config.NumberColumn(format="%.2e")})
    st.markdown(explain.twin(diffs))

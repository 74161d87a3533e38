"""5 · Inside the RNN: per-step hidden states, output probabilities, losses and gradients for one string."""
import streamlit as st

from dashboard import charts, lab, lesson, ui

ctx = ui.context()
model = ui.session_model(ctx)

ui.header(
    "5 · Inside the RNN",
    "Feed one string through the model and look at every time step: the hidden state `H_t` it carries, "
    "the probabilities it gives each possible next token, and how wrong it was. The gradient norm shows "
    "how strongly the loss depends on each hidden state, and so how far back in time learning reaches.",
    [r"H_t = \tanh(X_t W_{xh} + H_{t-1} W_{hh} + b_h), \qquad P(x_{t+1} \mid x_{\le t}) = "
     r"\mathrm{softmax}(H_t W_{hq} + b_q)",
     r"\ell_t = -\log P(x_{t+1} = \text{true next token} \mid x_{\le t}), \qquad "
     r"\Big\lVert \frac{\partial \bar\ell}{\partial H_t} \Big\rVert"],
    lesson.INSIDE,
)
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
c2.metric("Mean loss on this string", f"{loss:.3f}")
c3.metric("Perplexity on this string", lab.fmt_ppl(ppl), help=f"|V| = {len(model.vocab)} is uniform guessing")

seen = (model.key, text)  # what every figure below depends on (with the unit where it is drawn)
ui.cached_chart("step_heatmaps", seen, hidden, r["probs"], r["tokens"], steps)

st.header("One hidden unit")
unit = ui.index_slider("Hidden unit", hidden.shape[1], lab.most_active_unit(hidden), key="inside_unit",
                       help="Starts at the unit whose activation varies most over this string.")
st.markdown("Each input token coloured by the unit's activation after reading it (red positive, blue negative):")
st.html(charts.activation_html(lab.display_tokens(model.vocab, list(steps["input"])), hidden[:, unit]))

st.header("Step by step")
st.markdown("On one time axis: the loss at each step, the chosen unit's activation, and the norm of "
            "∂loss/∂H_t. The gradient norm is usually largest near the end of the string and shrinks going "
            "back in time, repeatedly multiplied by W_hh and tanh′: the vanishing gradient.")
ui.cached_chart("step_timeline", (*seen, unit), steps, hidden[:, unit], unit)
table = st.expander("All per-step numbers", on_change="rerun", key="inside_table")
if table.open:  # a table is costly to draw: only when asked for
    with table:
        st.dataframe(steps, hide_index=True, width="stretch")

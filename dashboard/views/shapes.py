"""2 · One-hot & shapes: X (batch, steps) -> X.T -> one-hot (steps, batch, vocab), and a forward pass's shapes."""
import streamlit as st

from dashboard import lab, lesson, ui

ctx = ui.context()
s, info = ctx.settings, ctx.info
V = len(info.vocab)

ui.header(
    "2 · One-hot vectors and tensor shapes",
    "A token index becomes a **one-hot vector** of length |V|: all zeros but a 1 at its index. The model "
    "transposes `X` first so that time comes first: one slice `X_t` of shape (batch, vocab) per time step. "
    "Each step multiplies by the weights and produces the hidden state and the outputs whose shapes are "
    "traced below.",
    [r"X\,(\text{batch},\text{steps}) \xrightarrow{\;X^\top\;} (\text{steps},\text{batch}) "
     r"\xrightarrow{\;\text{one\_hot}\;} (\text{steps},\text{batch},|V|)",
     r"H_t = \tanh(X_t W_{xh} + H_{t-1} W_{hh} + b_h) \in \mathbb{R}^{\text{batch}\times h}, \qquad "
     r"O_t = H_t W_{hq} + b_q \in \mathbb{R}^{\text{batch}\times |V|}"],
    lesson.SHAPES,
)

st.header("One-hot encoding of one batch row")
try:
    X, _ = lab.first_minibatch(info, s)
except lab.USER_ERRORS as exc:
    ui.user_error(exc)
    X = None
if X is not None:
    row = ui.index_slider("Batch row to show", X.shape[0], 0, key="shapes_row")
    one_hot = lab.one_hot_rows(X, V, row)
    inputs = info.vocab.to_tokens(X[row])
    st.markdown(f"Row {row} of the first `X` reads **{lab.join_tokens(info, inputs)!r}**. "
                f"`one_hot(X.T)` has shape `({s.steps}, {s.batch}, {V})`; below is its slice `[:, {row}, :]`, "
                f"shape `({s.steps}, {V})`.")
    ui.cached_chart("one_hot_heatmap", (info.key, s.batch, s.steps, s.partition, s.seed, row), one_hot, inputs,
                    info.vocab.idx_to_token, f"one_hot(X.T)[:, {row}, :]: {s.steps} steps × {V} tokens")

st.header("Shapes of one forward pass")
trace, checks = lab.shape_table(V, s.batch, s.steps, s.hidden, s.seed)
left, right = st.columns([3, 2], gap="large")
with left:
    st.markdown(f"The scratch model with |V| = {V}, batch {s.batch}, {s.steps} steps and {s.hidden} hidden units "
                f"(the per-step rows are listed for the first two steps).")
    st.dataframe(lab.printable_trace(trace), hide_index=True, width="stretch", height=560, key="shape_table")
with right:
    st.subheader("The lesson's checks")
    for check in checks.itertuples():
        text = f"`{check.tensor}`: expected `{check.expected}`, got `{check.actual}`"
        if check.passed:
            st.success(f"Passed — {text}", icon=":material/check_circle:")
        else:
            st.error(f"Failed — {text}", icon=":material/cancel:")
    st.caption("The outputs stack all time steps: (steps·batch, vocab). The new state is one H per batch row: "
               "(batch, hidden).")
    ui.cached_chart("tensor_sizes", (V, s.batch, s.steps, s.hidden, s.seed), trace)

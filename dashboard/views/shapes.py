"""2 · One-hot & shapes: X (batch, steps) -> X.T -> one-hot (steps, batch, vocab), and a forward pass's shapes."""
import streamlit as st

from dashboard import compute, corpora, formatting, layout, lesson_charts, lesson_code, settings, sidebar
from dashboard.i18n import t

ctx = sidebar.context()
s, info = ctx.settings, ctx.info
V = len(info.vocab)

layout.header(
    t("shapes.title"),
    t("shapes.intro"),
    [r"X\,(\text{batch},\text{steps}) \xrightarrow{\;X^\top\;} (\text{steps},\text{batch}) "
     r"\xrightarrow{\;\text{one\_hot}\;} (\text{steps},\text{batch},|V|)",
     r"H_t = \tanh(X_t W_{xh} + H_{t-1} W_{hh} + b_h) \in \mathbb{R}^{\text{batch}\times h}",
     r"O_t = H_t W_{hq} + b_q \in \mathbb{R}^{\text{batch}\times |V|}"],
    lesson_code.excerpt("shapes"),
)

st.header(t("shapes.one_hot"))
try:
    X, _ = corpora.first_minibatch(info, s)
except settings.USER_ERRORS as exc:
    layout.user_error(exc)
    X = None
if X is not None:
    row = layout.index_slider(t("shapes.row"), X.shape[0], 0, key="shapes_row", bind="query-params")
    one_hot = corpora.one_hot_rows(X, V, row)
    inputs = info.vocab.to_tokens(X[row])
    st.markdown(t("shapes.row_text", row=row, text=corpora.join_tokens(info, inputs), steps=s.steps, batch=s.batch,
                  V=V))
    layout.cached_chart(lesson_charts.one_hot_heatmap, (info.key, s.batch, s.steps, s.partition, s.seed, row), one_hot, inputs,
                    info.vocab.idx_to_token, t("shapes.one_hot_title", row=row, steps=s.steps, V=V))

st.header(t("shapes.forward"))
trace, checks = compute.shape_table(V, s.batch, s.steps, s.hidden, s.seed)
left, right = st.columns([3, 2], gap="large")
with left:
    st.markdown(t("shapes.forward_text", V=V, batch=s.batch, steps=s.steps, hidden=s.hidden))
with right:
    st.subheader(t("shapes.checks"))
    for check in checks.itertuples():
        text = t("shapes.check", tensor=check.tensor, expected=check.expected, actual=check.actual)
        if check.passed:
            st.success(t("shapes.passed", text=text), icon=":material/check_circle:")
        else:
            st.error(t("shapes.failed", text=text), icon=":material/cancel:")
    st.caption(t("shapes.stack_note"))
# the table under both columns: in 3/5 of a 1024 px page its names and dtypes were cut ("one_hc", "float3")
rows = formatting.shape_rows(compute.printable_trace(trace))  # each row said in the page's language
widths = {"step": 64, "name": 120, "shape": 110, "dtype": 80, "formula": None}  # px; the formula, last, the rest
st.dataframe(rows, hide_index=True, width="stretch", height=560, key="shape_table", column_order=list(widths),
             column_config={c: st.column_config.Column(t(f"shapes.col_{c}"), width=w) for c, w in widths.items()})
# the whole page's width: a tensor's name and shape label each bar, and the axis reaches W_hh's h x h elements
layout.cached_chart(lesson_charts.tensor_sizes, (V, s.batch, s.steps, s.hidden, s.seed), trace)

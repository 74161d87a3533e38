"""4 · Concat identity: X W_xh + H W_hh equals [X | H] @ [W_xh ; W_hh], up to float32 rounding."""
import streamlit as st

from rnn_core import settings_schema as schema

from dashboard import compute, layout, lesson_charts, lesson_code, sidebar
from dashboard.i18n import t

ctx = sidebar.context()
s = ctx.settings

layout.header(
    t("identity.title"),
    t("identity.intro"),
    [r"X W_{xh} + H W_{hh} \;=\; [\,X \mid H\,]\begin{bmatrix} W_{xh} \\ W_{hh} \end{bmatrix}",
     r"X \in \mathbb{R}^{n\times d},\; H \in \mathbb{R}^{n\times h},\; "
     r"W_{xh} \in \mathbb{R}^{d\times h},\; W_{hh} \in \mathbb{R}^{h\times h}"],
    lesson_code.excerpt("identity"),
)

sidebar.url_checks("identity_n", "identity_d", "identity_h")
c1, c2, c3, c4 = st.columns(4)
n = c1.slider(t("identity.n"), **schema.widget_args("identity_n"), key="identity_n", bind="query-params")
d = c2.slider(t("identity.d"), **schema.widget_args("identity_d"), key="identity_d", bind="query-params")
h = c3.slider(t("identity.h"), **schema.widget_args("identity_h"), key="identity_h", bind="query-params")
float64 = c4.toggle("float64", key="identity_f64", bind="query-params", help=sidebar.help_text("identity_f64"))
st.caption(t("identity.example", seed=s.seed))
r = compute.identity(n, d, h, s.seed, float64)
ident = (n, d, h, s.seed, float64)  # everything the figures below depend on

st.markdown(t("identity.blocks"))
inner = lesson_charts.block_labels("x", d) + lesson_charts.block_labels("h", h)
left, right = st.columns([d + h + 2, h + 2], gap="large")
with left:
    layout.cached_chart(lesson_charts.matrix_heatmap, ("XH", *ident), r["XH"], f"[X | H]: {n}×({d}+{h})", split=d,
                    axis="col", col_labels=inner)
with right:
    layout.cached_chart(lesson_charts.matrix_heatmap, ("W", *ident), r["W"], f"[W_xh ; W_hh]: ({d}+{h})×{h}", split=d,
                    axis="row", row_labels=lesson_charts.block_labels("W_xh·", d) + lesson_charts.block_labels("W_hh·", h))

zmax = float(max(abs(r["separate"]).max(), abs(r["concatenated"]).max()))
a, b = st.columns(2, gap="large")
with a:
    layout.cached_chart(lesson_charts.matrix_heatmap, ("separate", *ident), r["separate"], t("identity.two"), zmax=zmax)
with b:
    layout.cached_chart(lesson_charts.matrix_heatmap, ("concatenated", *ident), r["concatenated"], t("identity.one"), zmax=zmax)

dtype = "float64" if float64 else "float32"
c, d_ = st.columns(2, gap="large")
with c:
    layout.cached_chart(lesson_charts.difference_heatmap, ("difference", *ident), r["difference"], t("identity.diff_title"))
with d_:
    m1, m2 = st.container(), st.container()  # one above the other: a number like 2.384e-07 needs the width
    m1.metric(t("identity.maxdiff"), f"{r['max_abs_diff']:.3e}")
    m2.metric(t("identity.eps", dtype=dtype), f"{r['eps']:.3e}")
    st.markdown(t("identity.rounding", dtype=dtype, eps=f"{r['eps']:.0e}"))

"""3 · Concat identity: X W_xh + H W_hh equals [X | H] @ [W_xh ; W_hh], up to float32 rounding."""
import streamlit as st

from dashboard import charts, lab, lesson, ui

ctx = ui.context()
s = ctx.settings

ui.header(
    "3 · One product instead of two",
    "The hidden layer adds two products: the input times `W_xh` and the previous state times `W_hh`. "
    "Put `X` and `H` side by side and stack `W_xh` on top of `W_hh`, and a **single** matrix product gives "
    "the same result: each output sums the X-columns against the W_xh-rows, then the H-columns against the "
    "W_hh-rows.",
    [r"X W_{xh} + H W_{hh} \;=\; [\,X \mid H\,]\begin{bmatrix} W_{xh} \\ W_{hh} \end{bmatrix}, \qquad "
     r"X \in \mathbb{R}^{n\times d},\; H \in \mathbb{R}^{n\times h},\; "
     r"W_{xh} \in \mathbb{R}^{d\times h},\; W_{hh} \in \mathbb{R}^{h\times h}"],
    lesson.IDENTITY,
)

c1, c2, c3, c4 = st.columns(4)
n = c1.slider("Rows n (batch)", 1, 12, 3, key="identity_n")
d = c2.slider("Inputs d", 1, 12, 1, key="identity_d")
h = c3.slider("Hidden h", 1, 12, 4, key="identity_h")
float64 = c4.toggle("float64", key="identity_f64",
                    help="Twice the bits: the rounding difference shrinks by about 9 orders of magnitude.")
st.caption(f"The lesson's example is n = 3, d = 1, h = 4. Entries drawn from N(0, 1) with seed {s.seed}.")
r = lab.identity(n, d, h, s.seed, float64)
ident = (n, d, h, s.seed, float64)  # everything the figures below depend on

st.markdown("Columns `x·` of `[X | H]` come from X and meet the rows `W_xh·` of the stacked weights; "
            "columns `h·` come from H and meet the rows `W_hh·`. The black lines mark the seams.")
inner = charts.block_labels("x", d) + charts.block_labels("h", h)
left, right = st.columns([d + h + 2, h + 2], gap="large")
with left:
    ui.cached_chart("matrix_heatmap", ("XH", *ident), r["XH"], f"[X | H]  ({n} × {d}+{h})", split=d,
                    axis="col", col_labels=inner)
with right:
    ui.cached_chart("matrix_heatmap", ("W", *ident), r["W"], f"[W_xh ; W_hh]  ({d}+{h} × {h})", split=d,
                    axis="row", row_labels=charts.block_labels("W_xh·", d) + charts.block_labels("W_hh·", h))

zmax = float(max(abs(r["separate"]).max(), abs(r["concatenated"]).max()))
a, b = st.columns(2, gap="large")
with a:
    ui.cached_chart("matrix_heatmap", ("separate", *ident), r["separate"], "X W_xh + H W_hh  (two products)",
                    zmax=zmax)
with b:
    ui.cached_chart("matrix_heatmap", ("concatenated", *ident), r["concatenated"],
                    "[X | H] [W_xh ; W_hh]  (one product)", zmax=zmax)

dtype = "float64" if float64 else "float32"
c, d_ = st.columns(2, gap="large")
with c:
    ui.cached_chart("difference_heatmap", ("difference", *ident), r["difference"],
                    "Two products minus one product (own scale)")
with d_:
    m1, m2 = st.columns(2)
    m1.metric("max |difference|", f"{r['max_abs_diff']:.3e}")
    m2.metric(f"machine epsilon of {dtype}", f"{r['eps']:.3e}")
    st.markdown(
        f"The two sides are equal in exact arithmetic. In {dtype} every addition rounds to about "
        f"{r['eps']:.0e} relative error, and the two computations add the same terms **in a different order** "
        f"(two sums then one addition, against one long sum), so the last bits can differ. A difference of a "
        f"few epsilons times the size of the entries is rounding, not a mistake: compare with "
        f"`torch.allclose`, not `==`."
    )

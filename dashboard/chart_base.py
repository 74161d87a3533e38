"""What every chart builder shares: the large-font ``rnnlab`` template, colours, token labels, hover texts.

The builders live in one module per thing they show (lesson_charts, training_charts, inside_charts,
exercise_charts, unrolled_charts): DataFrames and tensors in, plotly Figures out. No Streamlit here. Fonts are large on purpose: the charts are read from the back of a lecture hall.
Every builder uses the ``rnnlab`` template registered below (the pages render with ``theme=None`` so
Streamlit does not override it).
"""
from __future__ import annotations

import math

import plotly.graph_objects as go
import plotly.io as pio


FONT_SIZE = 18
COLORS = {"loss": "#1f77b4", "ppl": "#d62728", "ref": "#7f7f7f", "good": "#2ca02c", "accent": "#ff7f0e",
          "x_block": "#1f77b4", "h_block": "#9467bd"}
DIVERGING = "RdBu_r"  # blue negative, red positive, white 0

# plotly_white's layout only: its per-trace defaults make every figure 4x slower to build and 10 kB bigger.
_template = go.layout.Template(layout=pio.templates["plotly_white"].layout)
_template.layout.update(
    font=dict(size=FONT_SIZE, family="Inter, Helvetica, Arial, sans-serif"),
    title=dict(font=dict(size=FONT_SIZE + 4), x=0.0, xanchor="left"),
    margin=dict(l=70, r=30, t=70, b=60),
    hoverlabel=dict(font=dict(size=FONT_SIZE)),
    legend=dict(font=dict(size=FONT_SIZE - 2)),
)
pio.templates["rnnlab"] = _template
TEMPLATE = "rnnlab"


def show_token(token: str) -> str:
    """A token as it reads on a chart axis: a space becomes '␣'."""
    return token.replace(" ", "␣") if token.strip() == "" or len(token) == 1 else token


def hover(*lines: str) -> str:
    """A hover template from its lines: words from the catalogues, values as plotly's ``%{...}`` fields."""
    return "<br>".join(lines) + "<extra></extra>"


def styled(fig: go.Figure, title: str | None, height: int | None = None) -> go.Figure:
    fig.update_layout(template=TEMPLATE, title=title)
    if height:
        fig.update_layout(height=height)
    return fig


def log_ticks(lo: float, hi: float, max_ticks: int = 7) -> tuple[list[int], list[str]]:
    """Integer powers of ten within 10^lo .. 10^hi (log10 units), at most `max_ticks`, labelled '1e-3'."""
    lo, hi = math.ceil(lo), math.floor(hi)
    if hi < lo:  # less than a decade without a power of ten in it
        lo = hi = round((lo + hi) / 2)
    step = max(1, math.ceil((hi - lo) / max(1, max_ticks - 1)))
    first = -(-lo // step) * step  # a multiple of step, so 1e0 is a tick when in range
    vals = list(range(first, hi + 1, step)) or [lo]
    return vals, [f"1e{v}" for v in vals]


def whole_log_ticks(lo: float, hi: float, max_ticks: int = 8) -> tuple[list[float], list[str]]:
    """Ticks for a log axis over the values lo .. hi (both > 0), labelled with the numbers they are.

    plotly's own log ticks label the minor ticks "2 3 4" above "10", so 20, 30 and 40 read as 2, 3 and 4.
    Here a tick says its value: 1, 2, 5, 10, 20, 50, ... while they fit in `max_ticks`, else the decades
    only (1, 10, 100; from 10^6 up and below 10^-3 as 1e6, 1e-4).
    """
    lo, hi = min(lo, hi), max(lo, hi)
    lo_d, hi_d = math.floor(math.log10(lo)), math.ceil(math.log10(hi))
    for mantissas in ((1, 2, 5), (1,)):
        vals = [m * 10.0 ** d for d in range(lo_d, hi_d + 1) for m in mantissas]
        vals = [v for v in vals if lo * (1 - 1e-9) <= v <= hi * (1 + 1e-9)]
        if len(vals) <= max_ticks:
            break
    else:  # even the decades are too many: every k-th decade
        step = math.ceil(len(vals) / max_ticks)
        vals = vals[::step]
    if len(vals) < 2:  # under a decade: every whole digit, else the ends
        vals = [m * 10.0 ** d for d in range(lo_d, hi_d + 1) for m in range(1, 10)]
        vals = [v for v in vals if lo * (1 - 1e-9) <= v <= hi * (1 + 1e-9)] or [lo, hi]

    def label(v: float) -> str:
        if 1 <= v < 1e6:
            return f"{v:,.0f}" if v == round(v) else f"{v:.3g}"
        if 1e-3 <= v < 1:
            return f"{v:.3g}"
        return f"1e{round(math.log10(v))}" if math.log10(v).is_integer() else f"{v:.0e}"
    return vals, [label(v) for v in vals]


def log_axis(lo: float, hi: float, **axis) -> dict:
    """A plotly log axis over the values lo .. hi with `whole_log_ticks` (pass it to update_xaxes/update_yaxes
    or as a layout axis dict; `axis` adds to it, e.g. title)."""
    vals, text = whole_log_ticks(lo, hi)
    return dict(type="log", tickvals=vals, ticktext=text, **axis)

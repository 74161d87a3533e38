"""The unrolled recurrence drawn with its real numbers: one column per time step, and the weights it reads.

No Streamlit here: ``rnn_core.unrolled.Unrolled`` in, plotly Figures out. The chain is laid out in cell
units (one number per cell); per step, from the top:

    t = 3                     the step
    'm'  #13  ▯▯▮▯▯▯          the input token, its one-hot row index and the row itself
    HW | XW | b               H_{t-1} W_hh, X_t W_xh and b_h, one row per hidden unit
    z  |  φ  | H              their sum, φ, and H_t        (H_t goes on into the next step's HW)
    e 0.64 / a 0.15 / i 0.06  softmax(O_t): the three most likely next tokens
    predicted / true          on green when they agree, red when not
    ●  ‖∂ℓ_t/∂H_s‖            the backward pass of the highlighted step's loss, s ≤ t

Every number is one heatmap (one trace for all cells, coloured on one scale around 0) and the words are text
traces: hundreds of annotations would cost the browser a second to lay out.
"""
from __future__ import annotations

import math

import numpy as np
import plotly.graph_objects as go
from plotly.colors import sample_colorscale

from rnn_core.unrolled import Unrolled

from .chart_base import COLORS, DIVERGING, figure, show_token
from .formatting import SUPERSCRIPT, num
from .i18n import t

STEP_W = 3.75  # one step: three cells and a gap of 0.75 that the arrow carrying H_t runs in
LABEL_W = 3.1  # the row names (and unit numbers) left of the first step
CELL_PX = 17  # a cell's height in pixels
NUMBER_FONT = 10  # "-0.08" is 23 px wide: a cell is ~26 px at 1024 px beside the sidebar
HIGHLIGHT = "#fff2c2"
BACKWARD = "#d62728"
DECADES = 4  # the backward row's widths span this many powers of ten below ‖∂ℓ_t/∂H_t‖


def window(t: int, steps: int, count: int) -> range:
    """The steps shown when step t is highlighted: the page of `count` steps that holds t (1-based)."""
    count = max(1, min(count, steps))
    first = min(((t - 1) // count) * count + 1, steps - count + 1)
    return range(first, first + count)


def number_format(values: np.ndarray) -> tuple[int, int]:
    """(e, decimals): the cells show value / 10^e with `decimals` decimals, so that the largest |value| has two or
    three significant digits in at most five characters ("-2.17"). e = 0 unless every |value| is below 0.095
    (an untrained model's are ~0.01: shown ×10⁻² instead of as "-0.000")."""
    m = float(np.nanmax(np.abs(values))) if np.size(values) and np.isfinite(values).any() else 1.0
    if m >= 10:
        return 0, 1
    if m >= 0.095 or m == 0:
        return 0, 2
    return math.floor(math.log10(m)), 2


def scaled_text(values: np.ndarray, e: int, digits: int) -> np.ndarray:
    """The cells' numbers as text ("" where a value is NaN), in units of 10^e."""
    shown = np.nan_to_num(values) / 10.0 ** e
    return np.where(np.isnan(values), "", np.vectorize(lambda v: f"{v:.{digits}f}")(shown))


def power_text(e: int) -> str:
    """10^e as it reads in a label: '10⁻²'."""
    return "10" + str(e).translate(SUPERSCRIPT)


# a click on a step selects it (plotly then dims every point it did not select): the words stay as they are
BRIGHT = dict(marker=dict(opacity=1))


def _text(x, y, text, size=NUMBER_FONT, color="#31333f", position="middle center") -> go.Scatter:
    return go.Scatter(x=list(x), y=list(y), text=list(text), mode="text", textposition=position,
                      textfont=dict(size=size, color=color), hoverinfo="skip", showlegend=False, cliponaxis=False,
                      unselected=dict(textfont=dict(color=color), **BRIGHT))


def _rect(x0, y0, x1, y1, fill="rgba(0,0,0,0)", line="#b0b3bb", width=1, layer="above") -> dict:
    return dict(type="rect", x0=x0, y0=y0, x1=x1, y1=y1, fillcolor=fill, layer=layer,
                line=dict(color=line, width=width))


def _arrow(x0, y0, x1, y1, color, width=1.5) -> dict:
    """An arrow from (x0, y0) to (x1, y1) in data units (an annotation without text)."""
    return dict(x=x1, y=y1, ax=x0, ay=y0, xref="x", yref="y", axref="x", ayref="y", text="", showarrow=True,
                arrowhead=2, arrowsize=1, arrowwidth=width, arrowcolor=color)


def chain_figure(u: Unrolled, step: int, shown: range, units: list[int], lang: str = "en") -> go.Figure:
    """The unrolled chain over the steps in `shown` (1-based), step `step` highlighted; the rows of `units`
    (every unit of a tiny model, the k that matter of a large one)."""
    k = len(units)
    V = len(u.tokens)
    y_token, y_strip = 1.1, 3.05  # token box top; one-hot strip top
    y_b = 4.8  # block HW | XW | b
    y_c = y_b + k + 1.6  # block z | φ | H
    y_p = y_c + k + 0.6  # softmax lines
    y_e = y_p + 3.5  # predicted / true
    y_f = y_e + 3.0  # backward row
    bottom = y_f + 2.4
    first = shown[0]
    base = {s: (s - first) * STEP_W for s in shown}  # left edge of each step's column

    # ---- every number: one heatmap over a grid of cells (gaps are None)
    edges_x, z_cols = [], []
    for s in shown:
        b = base[s]
        edges_x += [b, b + 1, b + 2, b + 3]
        z_cols += [("HW", s), ("XW", s), ("b", s), None]
    edges_x.append(base[shown[-1]] + 3 + (STEP_W - 3))
    edges_y = [y_b + i for i in range(k + 1)] + [y_c + i for i in range(k + 1)]
    rows = [("B", j) for j in range(k)] + [None] + [("C", j) for j in range(k)]
    value = {"HW": u.HW, "XW": u.XW, "Z": u.Z, "H": u.H}
    names = {"HW": "H<sub>t−1</sub>W<sub>hh</sub>", "XW": "X<sub>t</sub>W<sub>xh</sub>", "b": "b<sub>h</sub>",
             "Z": "z<sub>t</sub>", "H": "H<sub>t</sub>"}
    z = np.full((len(rows), len(z_cols)), np.nan)
    hover = np.full(z.shape, "", dtype=object)
    for i, row in enumerate(rows):
        if row is None:
            continue
        block, j = row
        unit = units[j]
        for c, col in enumerate(z_cols):
            if col is None:
                continue
            name, s = col
            if block == "C":
                name = {"HW": "Z", "XW": None, "b": "H"}[name]
                if name is None:
                    continue
            v = float(u.b_h[unit]) if name == "b" else float(value[name][s - 1, unit])
            z[i, c] = v
            hover[i, c] = f"t = {s}, {t('unrolled.chart.unit', lang)} {unit}<br>{names[name]} = {v:.4f}"
    e, digits = number_format(z)
    text = scaled_text(z, e, digits)
    zmax = float(np.nanmax(np.abs(z))) or 1.0
    traces = [go.Heatmap(z=z, x=edges_x, y=edges_y, text=text, texttemplate="%{text}",
                         textfont=dict(size=NUMBER_FONT), customdata=hover,
                         hovertemplate="%{customdata}<extra></extra>", colorscale=DIVERGING, zmin=-zmax, zmax=zmax,
                         zmid=0, showscale=False, xgap=1, ygap=1)]
    shapes, arrows = [], []

    # ---- highlight of the chosen step, drawn under everything
    b = base[step]
    shapes.append(_rect(b - 0.3, 0.0, b + 3.3, bottom, fill=HIGHLIGHT, line=COLORS["accent"], width=2, layer="below"))

    # ---- per step: its label, token, one-hot row, headers, softmax, predicted / true
    xs, ys, words, sizes = [], [], [], []

    def word(x, y, w, size=NUMBER_FONT):
        xs.append(x), ys.append(y), words.append(w), sizes.append(size)

    for s in shown:
        b, mid, here = base[s], base[s] + 1.5, s == step
        word(mid, 0.5, f"<b>t = {s}</b>" if here else f"t = {s}", NUMBER_FONT + 2)
        shapes.append(_rect(b, y_token, b + 3, y_token + 1.8, fill="white", line="#808495", layer="below"))
        word(b + 1.0, y_token + 0.9, f"<b>{show_token(u.inputs[s - 1])}</b>", 20)
        word(b + 2.2, y_token + 0.9, f"#{int(u.index[s - 1])}")
        # the one-hot row: V cells, one lit
        shapes.append(_rect(b, y_strip, b + 3, y_strip + 0.55, fill="white", line="#b0b3bb"))
        i = int(u.index[s - 1])
        shapes.append(_rect(b + 3 * i / V, y_strip, b + 3 * (i + 1) / V, y_strip + 0.55, fill="#31333f",
                            line="#31333f"))
        for c, head in enumerate(("HW", "XW", "b")):
            word(b + c + 0.5, y_b - 0.55, head, NUMBER_FONT - 1)
        word(b + 0.5, y_c - 0.55, "z", NUMBER_FONT - 1)
        word(b + 2.5, y_c - 0.55, "H", NUMBER_FONT - 1)
        word(b + 1.5, y_c + k / 2 - 0.45, "φ", NUMBER_FONT + 3)
        word(b + 1.5, y_c + k / 2 + 0.55, u.activation, NUMBER_FONT - 2)
        arrows.append(_arrow(b + 1.05, y_c + k / 2, b + 1.95, y_c + k / 2, "#808495", 1))
        arrows.append(_arrow(b + 1.5, y_b + k + 0.05, b + 0.5, y_c - 1.0, "#808495", 1))  # the sum into z
        # softmax(O_t): the three most likely next tokens, the true one in bold
        target = u.targets[s - 1]
        for r, (tok, p) in enumerate(u.top_tokens(s, 3)):
            label = f"{show_token(tok)}  {p:.2f}"
            word(mid, y_p + 0.55 + 1.05 * r, f"<b>{label}</b>" if tok == target else label)
        predicted = u.tokens[int(u.predicted[s - 1])]
        right = predicted == target
        shapes.append(_rect(b, y_e, b + 3, y_e + 2.4, fill="#e3f4df" if right else "#fde0dd",
                            line=COLORS["good"] if right else BACKWARD, layer="below"))
        word(mid, y_e + 0.65, f"{t('unrolled.chart.predicted', lang)} {show_token(predicted)}")
        word(mid, y_e + 1.75, f"{t('unrolled.chart.true', lang)} {show_token(target)}")

    # ---- H_t carried into the next step: right out of H, up the gap, into the next step's HW
    for s in shown:
        if s + 1 not in base:
            continue
        b, nb = base[s], base[s + 1]
        feeds = s + 1 == step
        color, width = (COLORS["accent"], 3) if feeds else ("#808495", 1.5)
        x_gap = b + 3 + (STEP_W - 3) / 2
        shapes.append(dict(type="path", path=f"M {b + 3},{y_c + k / 2} L {x_gap},{y_c + k / 2} L {x_gap},{y_b + k / 2}",
                           line=dict(color=color, width=width), layer="above"))
        arrows.append(_arrow(x_gap, y_b + k / 2, nb + 0.02, y_b + k / 2, color, width))
    if first > 1:  # H_{first-1} comes from a step left of the window: in over the first HW's header
        color = COLORS["accent"] if step == first else "#808495"
        arrows.append(_arrow(-0.9, y_b - 0.55, 0.12, y_b - 0.55, color, 3 if step == first else 1.5))
    # the highlighted step's input feeds its XW
    arrows.append(_arrow(base[step] + 1.5, y_strip + 0.6, base[step] + 1.5, y_b - 0.95, COLORS["accent"], 2))

    # ---- backward: ‖∂ℓ_t/∂H_s‖ for s ≤ t, as circles and arrows whose width follows the number
    row = u.gradient_row(step)
    top = max(row) if row and max(row) > 0 else 1.0

    def strength(g: float) -> float:  # 1 at the largest, 0 at DECADES powers of ten below it
        return max(0.0, min(1.0, 1 + math.log10(max(g, 1e-300) / top) / DECADES))

    gx, gy, gsize, gcolor, glabel = [], [], [], [], []
    for s in shown:
        if s > step:
            continue
        g = row[s - 1]
        r = strength(g)
        gx.append(base[s] + 1.5), gy.append(y_f + 0.8)
        gsize.append(6 + 22 * r), gcolor.append(sample_colorscale("Reds", [0.15 + 0.85 * r])[0])
        glabel.append(num(g))
        if s - 1 in base:
            arrows.append(_arrow(base[s] + 1.5 - 0.5, y_f + 0.8, base[s - 1] + 1.5 + 0.5, y_f + 0.8, BACKWARD,
                                 0.5 + 5 * strength(row[s - 2])))
    if first > 1 and step >= first:  # the gradient goes on to the steps left of the window
        arrows.append(_arrow(1.0, y_f + 0.8, -0.85, y_f + 0.8, BACKWARD, 0.5 + 5 * strength(row[first - 2])))
    traces.append(go.Scatter(x=gx, y=gy, mode="markers", marker=dict(size=gsize, color=gcolor, line=dict(width=0)),
                             hoverinfo="skip", showlegend=False, cliponaxis=False, unselected=BRIGHT))
    traces.append(_text(gx, [y + 1.25 for y in gy], glabel, position="bottom center"))

    traces.append(go.Scatter(x=xs, y=ys, text=words, mode="text", textfont=dict(size=sizes, color="#31333f"),
                             hoverinfo="skip", showlegend=False, cliponaxis=False,
                             unselected=dict(textfont=dict(color="#31333f"), **BRIGHT)))

    # ---- row names on the left, unit numbers beside the first step's cells
    left = -LABEL_W - 0.3 * (len(str(max(units))) - 1)  # room for the unit numbers (u7, u263)
    named = [(y_token + 0.9, "row_input"), (y_b + k / 2, "row_sum"), (y_c + k / 2, "row_phi"),
             (y_p + 1.6, "row_softmax"), (y_e + 1.2, "row_predicted"), (y_f + 1.0, "row_backward")]
    if e:
        named.append((0.5, "scale"))  # the cells' numbers are in units of 10^e
    traces.append(_text([left] * len(named), [y for y, _ in named],
                        [t(f"unrolled.chart.{key}", lang, t=step, power=power_text(e)) for _, key in named],
                        position="middle right"))
    unit_y = [y_b + j + 0.5 for j in range(k)] + [y_c + j + 0.5 for j in range(k)]
    traces.append(_text([-0.12] * (2 * k), unit_y, [f"{t('unrolled.chart.unit_short', lang)}{u_}" for u_ in units] * 2,
                        size=NUMBER_FONT - 1, color="#808495", position="middle left"))

    # the columns' click targets, their customdata the step: an invisible square over each step's label "t = s", its
    # token box and its predicted / true box (the cells are a heatmap, which plotly does not let a click select)
    rows = (y_token + 0.9, 0.5, y_e + 1.2)
    traces.append(go.Scatter(x=[base[s] + 1.5 for _ in rows for s in shown], y=[y for y in rows for _ in shown],
                             customdata=[s for _ in rows for s in shown],
                             mode="markers", marker=dict(symbol="square", size=40, opacity=0), showlegend=False,
                             unselected=dict(marker=dict(opacity=0)), selected=dict(marker=dict(opacity=0)),
                             hovertemplate=t("unrolled.chart.select", lang, t="%{customdata}") + "<extra></extra>"))

    fig = figure(traces)
    fig.update_layout(
        height=int(bottom * CELL_PX) + 20, margin=dict(l=4, r=4, t=4, b=4), showlegend=False,
        shapes=shapes, annotations=arrows, hovermode="closest", dragmode=False, plot_bgcolor="white",
        xaxis=dict(range=[left - 0.1, base[shown[-1]] + 3.4], visible=False, fixedrange=True),
        yaxis=dict(range=[bottom, -0.1], visible=False, fixedrange=True))
    return fig


def weights_figure(u: Unrolled, step: int, units: list[int], lang: str = "en") -> go.Figure:
    """Every weight the chain reads, as numbers and colours: W_xh and W_hqᵀ with b_q (one row per token),
    W_hh and b_h (the `units` shown). Step `step`'s input row of W_xh and its predicted token's row are framed."""
    p = {k: v.double().numpy() for k, v in u.params.items()}
    tokens = [show_token(tok) for tok in u.tokens]
    V, k = len(tokens), len(units)
    blocks = {  # name -> the numbers drawn: rows are tokens (top) or units, columns are units
        "W_xh": p["W_xh"][:, units], "W_hq": p["W_hq"][units, :].T, "b_q": p["b_q"][:, None],
        "W_hh": p["W_hh"][np.ix_(units, units)], "b_h": p["b_h"][units][None, :],
    }
    zmax = max(float(np.abs(m).max()) for m in blocks.values()) or 1.0
    e, digits = number_format(np.concatenate([m.ravel() for m in blocks.values()]))
    unit_names = [str(j) for j in units]
    # columns: W_xh (k) | W_hqᵀ (k) | b_q (1); below: W_hh (k) | b_h (k); domains in proportion to the cells
    span = 2 * k + 1 + 1.2  # cells and gaps across
    x1 = (0.0, k / span)
    x2 = ((k + 0.6) / span, (2 * k + 0.6) / span)
    x3 = ((2 * k + 1.2) / span, 1.0)
    tall, short = V + 1.5, k + 2.5
    r = 1 / (tall + short)  # one cell's height, in paper units
    y_top = (short * r + 0.02, 1.0)
    y_bottom = (0.0, k * r)
    layout_axes = {}
    traces = []
    panels = [("W_xh", x1, y_top, tokens, unit_names), ("W_hq", x2, y_top, tokens, unit_names),
              ("b_q", x3, y_top, tokens, ["b_q"]), ("W_hh", x1, y_bottom, unit_names, unit_names),
              ("b_h", x2, ((k - 1) * r, k * r), ["b_h"], unit_names)]
    titles = {"W_xh": "W<sub>xh</sub>", "W_hq": "W<sub>hq</sub><sup>T</sup>", "b_q": "b<sub>q</sub>",
              "W_hh": "W<sub>hh</sub>", "b_h": "b<sub>h</sub>"}
    shapes, notes = [], []
    for n, (name, xd, yd, rows, cols) in enumerate(panels, start=1):
        m = blocks[name]
        xa, ya = ("x", "y") if n == 1 else (f"x{n}", f"y{n}")
        traces.append(go.Heatmap(
            z=m, x=cols, y=rows, xaxis=xa, yaxis=ya, colorscale=DIVERGING, zmin=-zmax, zmax=zmax, zmid=0,
            showscale=False, xgap=1, ygap=1, text=scaled_text(m, e, digits),
            texttemplate="%{text}", textfont=dict(size=NUMBER_FONT - 1),
            hovertemplate=f"{titles[name]}[%{{y}}, %{{x}}] = %{{z:.4f}}<extra></extra>"))
        axis = "xaxis" if n == 1 else f"xaxis{n}"
        yaxis = "yaxis" if n == 1 else f"yaxis{n}"
        layout_axes[axis] = dict(domain=list(xd), anchor=ya, type="category", side="top", tickangle=0,
                                 tickfont=dict(size=NUMBER_FONT - 1), fixedrange=True, showgrid=False)
        layout_axes[yaxis] = dict(domain=list(yd), anchor=xa, type="category", autorange="reversed",
                                  tickfont=dict(size=NUMBER_FONT), fixedrange=True, showgrid=False,
                                  showticklabels=name in ("W_xh", "W_hh"))
        title = titles[name] if not e else f"{titles[name]}  (×{power_text(e)})"
        notes.append(dict(text=title, x=xd[0], y=yd[1], xref="paper", yref="paper", xanchor="left",
                          yanchor="bottom", yshift=18, showarrow=False, font=dict(size=NUMBER_FONT + 3)))
    # frame step's input row of W_xh (X_t W_xh is that row) and its predicted token's row of W_hqᵀ
    for xa, ya, tok in (("x", "y", int(u.index[step - 1])), ("x2", "y2", int(u.predicted[step - 1]))):
        shapes.append(dict(type="rect", xref=f"{xa} domain", yref=ya, x0=0, x1=1, y0=tok - 0.5, y1=tok + 0.5,
                           line=dict(color=COLORS["accent"], width=3)))
    fig = figure(traces)
    fig.update_layout(height=int((tall + short) * 16) + 90, showlegend=False, shapes=shapes,
                      annotations=notes, margin=dict(l=60, r=10, t=40, b=10), **layout_axes)
    return fig

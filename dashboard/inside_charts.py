"""Charts of one model on one text: hidden states and p(next) per step, a unit's activations, the next-token
distribution, the gradient flow through time and the surprise per character."""
from __future__ import annotations

import html
import math

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from .chart_base import (FONT_SIZE, COLORS, DIVERGING, figure, show_token, hover, styled, tick_size,
                         whole_log_ticks, log_axis)
from .i18n import t

# A full-width chart's plotting area at 1024 px (its width less the margins l=70, r=30): beside the sidebar the
# page's column is ~560 px; in lecture mode (no sidebar) ~864 px. Labels are fitted to these, the narrowest shown.
PLOT_PX = {False: 460, True: 764}


# ---------------------------------------------------------------- Inside the RNN

def _scale(values: np.ndarray) -> float:
    """Symmetric colour/axis limit: the largest |value| (an untrained model's are tiny), at most 1."""
    return float(min(1.0, max(1e-4, np.abs(values).max() if np.size(values) else 1.0)))


def _step_labels(steps: pd.DataFrame) -> list[str]:
    """'t: token' per step; steps are counted t = 1..T, as on the unrolled page."""
    return [f"{t}: {show_token(c)}" for t, c in zip(steps["step"], steps["input"])]


def _panel_title(text: str, x: float, y: float, yshift: int = 0) -> dict:
    """A subplot's title as a paper-anchored annotation (make_subplots costs ~45 ms per figure)."""
    return dict(text=text, x=x, y=y, xref="paper", yref="paper", xanchor="left", yanchor="bottom",
                yshift=yshift, showarrow=False, font=dict(size=FONT_SIZE + 2))


def step_ticks(labels: list[str], index: int | None, row_px: float, size: int) -> dict:
    """Tick labels of a step axis whose rows are `row_px` high: every k-th label so that each has 1.3 lines of
    `size` px, the selected one (`index`) always, in bold."""
    k = max(1, math.ceil(1.3 * size / max(row_px, 1e-9)))
    shown = sorted({*range(0, len(labels), k), *([index] if index is not None and 0 <= index < len(labels) else [])})
    if index is not None and k > 1:  # a neighbour closer than k rows to the selected label would overlap it
        shown = [i for i in shown if i == index or abs(i - index) >= k]
    return dict(tickmode="array", tickvals=[labels[i] for i in shown],
                ticktext=[f"<b>{labels[i]}</b>" if i == index else labels[i] for i in shown])


def _row_frame(index: int, x0: float = 0.0, x1: float = 1.0, yref: str = "y") -> dict:
    """A frame around row `index` of a category axis `yref`, from x0 to x1 of the plot's width (paper units)."""
    return dict(type="rect", xref="paper", yref=yref, x0=x0, x1=x1, y0=index - 0.5, y1=index + 0.5,
                line=dict(color=COLORS["accent"], width=3), fillcolor="rgba(0,0,0,0)", layer="above")


def token_ticks(x: list[str], width_px: float, size: int) -> list[str]:
    """The tokens labelled on an axis `width_px` wide, upright, at `size` px: all of them when each fits its
    column, else every k-th (a label longer than the others is left out before it overlaps them)."""
    if not x:
        return []
    column = width_px / len(x)
    width = lambda tok: 0.6 * size * len(tok) + 2  # noqa: E731  a glyph is ~0.6 em wide; 2 px between labels
    if all(width(tok) <= column for tok in x):
        return list(x)
    short = [tok for tok in x if len(tok) == 1]
    if len(short) >= 0.8 * len(x) and all(width(tok) <= column for tok in short):
        return short  # a character vocabulary: every character, without '<unk>'
    longest = max(width(tok) for tok in x)
    k = max(2, math.ceil(longest / column))
    return x[::k]


def step_heatmaps(hidden: np.ndarray, probs: np.ndarray, vocab_tokens: list[str], steps: pd.DataFrame,
                  unit_order: np.ndarray | None = None, lang: str = "en", step: int | None = None,
                  lecture: bool = False) -> go.Figure:
    """Side by side on the same step rows: H_t per hidden unit (left) and softmax(O_t) per token (right).

    Left: colour scale ±max|H| (tanh keeps it in [-1, 1]); columns in `unit_order` (a permutation of the
    units, e.g. similar units side by side), numbered by unit in the hover. Right: × marks the top
    prediction, ○ the true next token (their customdata is the step: a click on one selects its step). One
    figure, so a row is one step across both and the browser draws one plot instead of two. `step` (1-based):
    its row is framed across both panels and its label is bold.
    """
    labels = _step_labels(steps)
    x = [show_token(t) for t in vocab_tokens]
    zmax = _scale(hidden)
    order = np.arange(hidden.shape[1]) if unit_order is None else np.asarray(unit_order)
    numbers = steps["step"].to_numpy()
    keep = dict(unselected=dict(marker=dict(opacity=1)))  # a click selects a step: the other marks stay as bright
    fig = figure([
        # float32 halves what goes over the wire (base64) and is more precision than a colour shows
        go.Heatmap(z=np.asarray(hidden, dtype=np.float32)[:, order], y=labels, coloraxis="coloraxis",
                   x=[f'{t("hover.unit", lang)} {u}' for u in order],
                   hovertemplate=hover(f'{t("hover.step", lang)} %{{y}}', "%{x}", "H = %{z:.3f}")),
        go.Heatmap(z=np.asarray(probs, dtype=np.float32), x=x, y=labels, xaxis="x2", coloraxis="coloraxis2",
                   hovertemplate=hover(f'{t("hover.step", lang)} %{{y}}', f'{t("hover.next", lang)} = %{{x}}',
                                       "p = %{z:.3f}")),
        go.Scatter(x=[show_token(t) for t in steps["target"]], y=labels, xaxis="x2", mode="markers",
                   customdata=numbers, name=t("chart.steps.true", lang), **keep,
                   marker=dict(symbol="circle-open", size=16, line=dict(width=3), color=COLORS["good"])),
        go.Scatter(x=[show_token(t) for t in steps["predicted"]], y=labels, xaxis="x2", mode="markers",
                   customdata=numbers, name=t("chart.steps.top", lang), **keep,
                   marker=dict(symbol="x-thin", size=12, line=dict(width=3), color=COLORS["ppl"])),
    ])
    # x domains; both panels share the step axis y. The probabilities get the wider one: their columns are
    # labelled, the units' are not.
    left, right = [0.0, 0.32], [0.37, 1.0]
    size = tick_size(FONT_SIZE - 6, lecture)
    ticks = token_ticks(x, (right[1] - right[0]) * PLOT_PX[lecture], size)
    selected = None if step is None else int(step) - 1
    height = max(520, min(1200, 260 + 22 * len(labels)))
    # colour bars lie under their panels, so neither panel loses width to them
    bar = dict(orientation="h", thickness=14, y=-0.03, yanchor="top", xanchor="center",
               tickfont=dict(size=tick_size(FONT_SIZE - 4, lecture)))
    fig.update_layout(
        # units are numbered in the hover; the colour bar below is the axis's caption
        xaxis=dict(domain=left, anchor="y", showticklabels=False, showgrid=False, type="category"),
        xaxis2=dict(domain=right, anchor="y", side="top", type="category", categoryorder="array",
                    categoryarray=x, tickmode="array", tickvals=ticks, ticktext=ticks, tickangle=0,
                    tickfont=dict(size=size)),
        yaxis=dict(autorange="reversed", type="category", title=t("chart.steps.y", lang),
                   tickfont=dict(size=tick_size(14, lecture)),
                   **step_ticks(labels, selected, (height - 250) / max(1, len(labels)), tick_size(14, lecture))),
        coloraxis=dict(colorscale=DIVERGING, cmin=-zmax, cmax=zmax,
                       colorbar=dict(title=dict(text=f"H (±{zmax:.2g})", side="top"), x=sum(left) / 2, len=0.38,
                                     **bar)),
        coloraxis2=dict(colorscale="Blues", cmin=0, cmax=1,
                        colorbar=dict(title=dict(text="p", side="top"), x=sum(right) / 2, len=0.4, **bar)),
        # titles above the top tick labels of the probabilities
        annotations=[_panel_title(t("chart.steps.hidden", lang), left[0], 1.0, yshift=40),
                     _panel_title(t("chart.steps.probs", lang), right[0], 1.0, yshift=40)],
        shapes=[] if selected is None or not 0 <= selected < len(labels) else [_row_frame(selected)],
        showlegend=False)
    # the margins after the template's: the panel titles and the top tick labels above, the colour bars below
    return styled(fig, None, height).update_layout(margin=dict(t=130, b=120))


def step_timeline(steps: pd.DataFrame, values: np.ndarray, unit: int, lang: str = "en") -> go.Figure:
    """Three views of the same time axis, stacked: the loss at each step, hidden unit `unit`'s activation
    H_t[unit], and ‖∂loss/∂H_t‖ (log scale).

    One figure with shared steps rather than three: the eye lines up a step across the rows, and one plot
    draws in the browser in a third of the time three take.
    """
    labels = _step_labels(steps)
    right = steps["predicted"] == steps["target"]
    limit = _scale(values) * 1.05
    rows = [[0.74, 1.0], [0.37, 0.63], [0.0, 0.26]]  # y domains, top to bottom; one x axis for all three
    fig = figure([
        go.Bar(x=labels, y=steps["loss"], marker_color=np.where(right, COLORS["good"], COLORS["ppl"]),
               customdata=np.stack([[show_token(t) for t in steps["target"]], steps["p_target"],
                                    [show_token(t) for t in steps["predicted"]]], axis=1),
               hovertemplate=hover("%{x} → %{customdata[0]}", f'{t("chart.loss", lang)} %{{y:.3f}}',
                                   "p(true) %{customdata[1]:.3f}", f'{t("hover.predicted", lang)} %{{customdata[2]}}')),
        go.Scatter(x=labels, y=values, yaxis="y2", mode="lines+markers", line=dict(color=COLORS["h_block"], width=3),
                   marker=dict(size=8), hovertemplate=hover("%{x}", "H = %{y:.3f}")),
        go.Scatter(x=labels, y=steps["grad_norm"], yaxis="y3", mode="lines+markers",
                   line=dict(color=COLORS["accent"], width=3), marker=dict(size=8),
                   hovertemplate=hover("%{x}", "‖∂loss/∂H_t‖ = %{y:.3g}")),
    ])
    fig.update_layout(
        xaxis=dict(anchor="y3", type="category", tickangle=-60, title=t("chart.step_timeline.x", lang)),
        yaxis=dict(domain=rows[0], anchor="x", title="−log p(true)"),
        yaxis2=dict(domain=rows[1], anchor="x", title=f"H[{unit}]", range=[-limit, limit],
                    zeroline=True, zerolinecolor=COLORS["ref"]),
        yaxis3=log_axis(max(float(steps["grad_norm"].min()), 1e-12), max(float(steps["grad_norm"].max()), 1e-12),
                        domain=rows[2], anchor="x", title=t("chart.step_timeline.norm", lang)),
        annotations=[_panel_title(t("chart.step_timeline.loss", lang), 0, rows[0][1]),
                     _panel_title(t("chart.step_timeline.unit", lang, unit=unit), 0, rows[1][1]),
                     _panel_title(t("chart.step_timeline.grad", lang), 0, rows[2][1])],
        showlegend=False, margin=dict(t=50))
    return styled(fig, None, 860)


def activation_html(tokens: list[str], values: np.ndarray) -> str:
    """The text with each token's background coloured by its activation (blue −, red +, scaled to ±max|v|)."""
    spans = []
    scale = _scale(values)
    for token, raw in zip(tokens, values):
        v = float(max(-1.0, min(1.0, raw / scale)))
        rgb = (214, 39, 40) if v >= 0 else (31, 119, 180)
        alpha = abs(v)
        text = html.escape(token).replace(" ", "&nbsp;") or "&nbsp;"
        spans.append(f'<span title="{float(raw):+.3f}" style="background: rgba({rgb[0]},{rgb[1]},{rgb[2]},{alpha:.2f});'
                     f'padding: 2px 1px; border-radius: 3px;">{text}</span>')
    return ('<div style="font-family: monospace; font-size: 1.6rem; line-height: 2.4rem; '
            'word-break: break-all;">' + "".join(spans) + "</div>")


# ---------------------------------------------------------------- Generate

def next_token_chart(dist: pd.DataFrame, top: int = 15, lang: str = "en") -> go.Figure:
    """Probability of the most likely next tokens at each temperature (columns token, temperature, p)."""
    best = (dist[dist["temperature"] == dist["temperature"].min()].nlargest(top, "p")["token"].tolist())
    fig = figure()
    for temp, part in dist.groupby("temperature", sort=True):
        part = part.set_index("token").reindex(best)
        fig.add_trace(go.Bar(x=[show_token(tok) for tok in best], y=part["p"], name=f"T = {temp:g}",
                             hovertemplate=f'{t("hover.next", lang)} %{{x}}<br>p %{{y:.3f}}'
                                           f'<extra>T = {temp:g}</extra>'))
    # the legend right of the bars, clear of the title above and the axis title below
    fig.update_layout(barmode="group", legend=dict(x=1.01, xanchor="left", y=1.0, yanchor="top"))
    fig.update_xaxes(title=t("chart.next.x", lang), type="category")
    fig.update_yaxes(title=t("chart.next.y", lang), range=[0, min(1.0, float(dist["p"].max()) * 1.15)])
    return styled(fig, t("chart.next.title", lang), 420)



def gradient_flow_chart(matrix: np.ndarray, curve: np.ndarray, bound: np.ndarray | None,
                        inputs: list[str], targets: list[str], lang: str = "en", step: int | None = None,
                        lecture: bool = False) -> go.Figure:
    """Left: G[t, s] = ‖∂ℓ_t/∂H_s‖ as a heatmap (rows: loss step t; columns: hidden state s; log colour), steps
    counted t = 1..T; row `step` framed. Right: the decay curve, mean G by distance d = t − s on a log axis, with
    an upper bound when given.

    A heatmap's cells cannot be clicked in Streamlit (plotly selects points of scatter traces only): an invisible
    marker on every cell (on the diagonal of a long text) carries its loss step t, so a click selects the row.
    """
    G = np.asarray(matrix, dtype=np.float64)
    T = G.shape[0]
    with np.errstate(divide="ignore", invalid="ignore"):
        logG = np.where(G > 0, np.log10(G), np.nan)  # NaN above the diagonal (s > t): no dependence
    finite = G[np.isfinite(logG)]
    lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.1, 1.0)
    if hi / lo < 10:  # less than a decade: widen to one, around the middle
        mid = math.sqrt(lo * hi)
        lo, hi = mid / math.sqrt(10), mid * math.sqrt(10)
    cvals, ctext = whole_log_ticks(lo, hi)
    x = [f"{s}: {show_token(c)}" for s, c in enumerate(inputs, start=1)]
    y = [f"{t}: {show_token(c)}→{show_token(n)}" for t, (c, n) in enumerate(zip(inputs, targets), start=1)]
    small = T <= 40
    ticks = dict(tickfont=dict(size=tick_size(FONT_SIZE - 6 if small else FONT_SIZE - 8, lecture)))
    curve = np.asarray(curve, dtype=np.float64)
    d = np.arange(len(curve))
    positive = curve[curve > 0]
    parts = [positive] + ([np.asarray(bound)[np.asarray(bound) > 0]] if bound is not None else [])
    both = np.concatenate(parts) if positive.size else np.array([1.0])
    ylo, yhi = float(both.min()), float(both.max())
    ylo, yhi = (ylo / 3, yhi * 3) if yhi / ylo < 10 else (ylo / 1.6, yhi * 1.6)
    selected = None if step is None or not 1 <= step <= T else int(step) - 1
    rows, cols = np.tril_indices(T) if small else (np.arange(T), np.arange(T))  # every cell, or the diagonal
    hover_cell = hover(f'{t("hover.loss_at_step", lang)} %{{y}}', f'{t("hover.hidden_state", lang)} %{{x}}',
                       "‖∂ℓ_t/∂H_s‖ = %{customdata[1]:.2e}")
    traces = [
        go.Heatmap(z=logG.astype(np.float32), x=x, y=y, customdata=G.astype(np.float32), colorscale="Viridis",
                   zmin=math.log10(lo), zmax=math.log10(hi), hoverongaps=False,
                   colorbar=dict(tickvals=[math.log10(v) for v in cvals], ticktext=ctext, thickness=12, x=0.45,
                                 xanchor="left", len=0.9, tickfont=dict(size=tick_size(FONT_SIZE - 4, lecture))),
                   hovertemplate=hover(f'{t("hover.loss_at_step", lang)} %{{y}}',
                                       f'{t("hover.hidden_state", lang)} %{{x}}', "‖∂ℓ_t/∂H_s‖ = %{customdata:.2e}")),
        go.Scatter(x=d, y=curve, xaxis="x2", yaxis="y2", mode="lines+markers", name=t("chart.flow.mean", lang),
                   line=dict(color=COLORS["accent"], width=3), marker=dict(size=7),
                   unselected=dict(marker=dict(opacity=1)),
                   hovertemplate=hover(f'd = %{{x}} {t("hover.steps_back", lang)}',
                                       f'{t("hover.mean", lang)} ‖∂ℓ_t/∂H_(t−d)‖ = %{{y:.2e}}')),
    ]
    if bound is not None:
        traces.append(go.Scatter(x=d, y=bound, xaxis="x2", yaxis="y2", mode="lines", name=t("chart.flow.bound", lang),
                                 line=dict(color=COLORS["ref"], width=2, dash="dash"),
                                 hovertemplate=hover("d = %{x}", f'{t("chart.flow.bound", lang)} %{{y:.2e}}')))
    # the cells' click targets: invisible, customdata (loss step t, G) for the selection and the hover
    traces.append(go.Scatter(x=[x[c] for c in cols], y=[y[r] for r in rows], mode="markers", showlegend=False,
                             customdata=np.stack([rows + 1, G[rows, cols]], axis=1).astype(np.float32),
                             marker=dict(symbol="square", size=12, opacity=0), hovertemplate=hover_cell,
                             unselected=dict(marker=dict(opacity=0)), selected=dict(marker=dict(opacity=0))))
    layout = dict(
        height=560, showlegend=bound is not None,
        # bottom left of the right panel: empty when the bound is drawn (then the curve falls)
        legend=dict(x=0.71, xanchor="left", y=0.02, yanchor="bottom", bgcolor="rgba(255,255,255,0.8)",
                    font=dict(size=tick_size(FONT_SIZE - 4, lecture))),
        margin=dict(l=70, r=10, t=50, b=110),
        xaxis=dict(domain=[0.0, 0.44], anchor="y", type="category", tickangle=-90, showgrid=False,
                   title=dict(text=t("chart.flow.x", lang), standoff=2), **ticks,
                   **({} if small else dict(nticks=20))),
        # 560 px less the margins: ~400 px for the rows
        yaxis=dict(anchor="x", type="category", autorange="reversed", showgrid=False, **ticks,
                   **step_ticks(y, selected, 400 / max(1, T), ticks["tickfont"]["size"])),
        xaxis2=dict(domain=[0.7, 1.0], anchor="y2", title=dict(text="d = t − s", standoff=2),
                    range=[-0.5, max(1, len(curve)) - 0.5], tickfont=dict(size=tick_size(FONT_SIZE, lecture))),
        yaxis2=log_axis(ylo, yhi, anchor="x2", range=[math.log10(ylo), math.log10(yhi)],
                        tickfont=dict(size=tick_size(FONT_SIZE, lecture))),
        annotations=[_panel_title(t("chart.flow.left", lang), 0.0, 1.0, yshift=6),
                     _panel_title(t("chart.flow.right", lang), 0.62, 1.0, yshift=6)],
        shapes=[] if selected is None else [_row_frame(selected, 0.0, 0.44)],
    )
    return figure(traces, layout)


def surprise_html(tokens: list[str], surprisal: np.ndarray, scale: float, lang: str = "en",
                  step: int | None = None) -> str:
    """The text with each token's background coloured by −log p(token | prefix) (white 0 → red at `scale`).

    tokens has one more entry than surprisal: the first token has no prediction and stays uncoloured. `step`
    (1-based): the token step t reads, tokens[t - 1], is framed; its prediction's surprise colours the next one.
    """
    framed = None if step is None or not 1 <= step <= len(tokens) else int(step) - 1
    frame = f"outline: 3px solid {COLORS['accent']}; outline-offset: 1px;"

    def span(i: int, title: str, style: str) -> str:
        text = html.escape(tokens[i]).replace(" ", "&nbsp;") or "&nbsp;"
        style = style + (frame if i == framed else "")
        mark = ' data-step="selected"' if i == framed else ""
        return f'<span title="{title}"{mark} style="{style}">{text}</span>'

    spans = [span(0, t("chart.surprise.first", lang), "")]
    for i, s in enumerate(surprisal, start=1):
        alpha = float(max(0.0, min(1.0, s / scale)))
        spans.append(span(i, f"−log p = {float(s):.2f} (p = {math.exp(-float(s)):.3f})",
                          f"background: rgba(214,39,40,{alpha:.2f}); padding: 2px 1px; border-radius: 3px;"))
    return ('<div style="font-family: monospace; font-size: 1.4rem; line-height: 2.2rem; '
            'word-break: break-all;">' + "".join(spans) + "</div>")

"""Charts of one model on one text: hidden states and p(next) per step, a unit's activations, the next-token
distribution, the gradient flow through time and the surprise per character."""
from __future__ import annotations

import html
import math

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from .chart_base import FONT_SIZE, COLORS, DIVERGING, TEMPLATE, show_token, hover, styled, log_ticks
from .i18n import t


# ---------------------------------------------------------------- Inside the RNN

def _scale(values: np.ndarray) -> float:
    """Symmetric colour/axis limit: the largest |value| (an untrained model's are tiny), at most 1."""
    return float(min(1.0, max(1e-4, np.abs(values).max() if np.size(values) else 1.0)))


def _step_labels(steps: pd.DataFrame) -> list[str]:
    return [f"{t}: {show_token(c)}" for t, c in zip(steps["step"], steps["input"])]


def _panel_title(text: str, x: float, y: float, yshift: int = 0) -> dict:
    """A subplot's title as a paper-anchored annotation (make_subplots costs ~45 ms per figure)."""
    return dict(text=text, x=x, y=y, xref="paper", yref="paper", xanchor="left", yanchor="bottom",
                yshift=yshift, showarrow=False, font=dict(size=FONT_SIZE + 2))


def step_heatmaps(hidden: np.ndarray, probs: np.ndarray, vocab_tokens: list[str], steps: pd.DataFrame,
                  unit_order: np.ndarray | None = None, lang: str = "en") -> go.Figure:
    """Side by side on the same step rows: H_t per hidden unit (left) and softmax(O_t) per token (right).

    Left: colour scale ±max|H| (tanh keeps it in [-1, 1]); columns in `unit_order` (a permutation of the
    units, e.g. similar units side by side), numbered by unit in the hover. Right: × marks the top
    prediction, ○ the true next token. One figure, so a row is one step across both and the browser draws
    one plot instead of two.
    """
    labels = _step_labels(steps)
    x = [show_token(t) for t in vocab_tokens]
    zmax = _scale(hidden)
    order = np.arange(hidden.shape[1]) if unit_order is None else np.asarray(unit_order)
    fig = go.Figure([
        # float32 halves what goes over the wire (base64) and is more precision than a colour shows
        go.Heatmap(z=np.asarray(hidden, dtype=np.float32)[:, order], y=labels, coloraxis="coloraxis",
                   x=[f'{t("hover.unit", lang)} {u}' for u in order],
                   hovertemplate=hover(f'{t("hover.step", lang)} %{{y}}', "%{x}", "H = %{z:.3f}")),
        go.Heatmap(z=np.asarray(probs, dtype=np.float32), x=x, y=labels, xaxis="x2", coloraxis="coloraxis2",
                   hovertemplate=hover(f'{t("hover.step", lang)} %{{y}}', f'{t("hover.next", lang)} = %{{x}}',
                                       "p = %{z:.3f}")),
        go.Scatter(x=[show_token(t) for t in steps["target"]], y=labels, xaxis="x2", mode="markers",
                   name=t("chart.steps.true", lang), marker=dict(symbol="circle-open", size=16, line=dict(width=3),
                                                       color=COLORS["good"])),
        go.Scatter(x=[show_token(t) for t in steps["predicted"]], y=labels, xaxis="x2", mode="markers",
                   name=t("chart.steps.top", lang), marker=dict(symbol="x-thin", size=12, line=dict(width=3),
                                                      color=COLORS["ppl"])),
    ])
    left, right = [0.0, 0.53], [0.57, 1.0]  # x domains; both panels share the step axis y
    # colour bars lie under their panels, so neither panel loses width to them
    bar = dict(orientation="h", thickness=14, y=-0.03, yanchor="top", xanchor="center")
    fig.update_layout(
        # units are numbered in the hover; the colour bar below is the axis's caption
        xaxis=dict(domain=left, anchor="y", showticklabels=False, showgrid=False, type="category"),
        xaxis2=dict(domain=right, anchor="y", side="top", type="category", categoryorder="array",
                    categoryarray=x, tickmode="array", tickvals=x if len(x) <= 40 else None,
                    # upright only when every label is one character: "<unk>" across a 10 px column overlaps
                    tickangle=0 if len(x) <= 40 and max(map(len, x), default=0) <= 1 else -90,
                    tickfont=dict(size=FONT_SIZE - 5 if len(x) > 20 else FONT_SIZE)),
        yaxis=dict(autorange="reversed", type="category", title=t("chart.steps.y", lang)),
        coloraxis=dict(colorscale=DIVERGING, cmin=-zmax, cmax=zmax,
                       colorbar=dict(title=dict(text=f"H (±{zmax:.2g})", side="top"), x=sum(left) / 2, len=0.45,
                                     **bar)),
        coloraxis2=dict(colorscale="Blues", cmin=0, cmax=1,
                        colorbar=dict(title=dict(text="p", side="top"), x=sum(right) / 2, len=0.38, **bar)),
        # titles above the top tick labels of the probabilities
        # short titles: at 1024 px with the sidebar open each panel is ~300 px wide
        annotations=[_panel_title(t("chart.steps.hidden", lang), left[0], 1.0, yshift=40),
                     _panel_title(t("chart.steps.probs", lang), right[0], 1.0, yshift=40)],
        showlegend=False, margin=dict(t=130, b=120))
    return styled(fig, None, max(520, min(1200, 260 + 22 * len(labels))))


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
    fig = go.Figure([
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
        yaxis3=dict(domain=rows[2], anchor="x", title=t("chart.step_timeline.norm", lang), type="log",
                    exponentformat="e"),
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
    fig = go.Figure()
    for temp, part in dist.groupby("temperature", sort=True):
        part = part.set_index("token").reindex(best)
        fig.add_trace(go.Bar(x=[show_token(tok) for tok in best], y=part["p"], name=f"T = {temp:g}",
                             hovertemplate=f'{t("hover.next", lang)} %{{x}}<br>p %{{y:.3f}}<extra>T = {temp:g}</extra>'))
    fig.update_layout(barmode="group", legend=dict(orientation="h", y=-0.2))
    fig.update_xaxes(title=t("chart.next.x", lang), type="category")
    fig.update_yaxes(title=t("chart.next.y", lang), range=[0, min(1.0, float(dist["p"].max()) * 1.15)])
    return styled(fig, t("chart.next.title", lang), 420)



def gradient_flow_chart(matrix: np.ndarray, curve: np.ndarray, bound: np.ndarray | None,
                        inputs: list[str], targets: list[str], lang: str = "en") -> go.Figure:
    """Left: G[t, s] = ‖∂ℓ_t/∂H_s‖ as a heatmap (rows: loss step t; columns: hidden state s; log colour).
    Right: the decay curve, mean G by distance d = t − s on a log axis, with an upper bound when given.
    """
    G = np.asarray(matrix, dtype=np.float64)
    T = G.shape[0]
    with np.errstate(divide="ignore", invalid="ignore"):
        logG = np.where(G > 0, np.log10(G), np.nan)  # NaN above the diagonal (s > t): no dependence
    finite = logG[np.isfinite(logG)]
    lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (-1.0, 0.0)
    if hi - lo < 1:
        lo, hi = lo - 0.5, hi + 0.5
    cvals, ctext = log_ticks(lo, hi)
    x = [f"{s}: {show_token(c)}" for s, c in enumerate(inputs)]
    y = [f"{t}: {show_token(c)}→{show_token(n)}" for t, (c, n) in enumerate(zip(inputs, targets))]
    small = T <= 40
    ticks = dict(tickfont=dict(size=FONT_SIZE - 6 if small else FONT_SIZE - 8))
    curve = np.asarray(curve, dtype=np.float64)
    d = np.arange(len(curve))
    positive = curve[curve > 0]
    parts = [positive] + ([np.asarray(bound)[np.asarray(bound) > 0]] if bound is not None else [])
    both = np.concatenate(parts) if positive.size else np.array([1.0])
    ylo, yhi = math.log10(both.min()), math.log10(both.max())
    ylo, yhi = (ylo - 0.5, yhi + 0.5) if yhi - ylo < 1 else (ylo - 0.2, yhi + 0.2)
    yvals, ytext = log_ticks(ylo, yhi)
    traces = [
        go.Heatmap(z=logG.astype(np.float32), x=x, y=y, customdata=G.astype(np.float32), colorscale="Viridis",
                   zmin=lo, zmax=hi, hoverongaps=False,
                   colorbar=dict(tickvals=cvals, ticktext=ctext, thickness=12, x=0.45, xanchor="left", len=0.9,
                                 tickfont=dict(size=FONT_SIZE - 4)),
                   hovertemplate=hover(f'{t("hover.loss_at_step", lang)} %{{y}}', f'{t("hover.hidden_state", lang)} %{{x}}',
                                       "‖∂ℓ_t/∂H_s‖ = %{customdata:.2e}")),
        go.Scatter(x=d, y=curve, xaxis="x2", yaxis="y2", mode="lines+markers", name=t("chart.flow.mean", lang),
                   line=dict(color=COLORS["accent"], width=3), marker=dict(size=7),
                   hovertemplate=hover(f'd = %{{x}} {t("hover.steps_back", lang)}',
                                       f'{t("hover.mean", lang)} ‖∂ℓ_t/∂H_(t−d)‖ = %{{y:.2e}}')),
    ]
    if bound is not None:
        traces.append(go.Scatter(x=d, y=bound, xaxis="x2", yaxis="y2", mode="lines", name=t("chart.flow.bound", lang),
                                 line=dict(color=COLORS["ref"], width=2, dash="dash"),
                                 hovertemplate=hover("d = %{x}", f'{t("chart.flow.bound", lang)} %{{y:.2e}}')))
    layout = dict(
        template=TEMPLATE, height=560, showlegend=bound is not None,
        # bottom left of the right panel: empty when the bound is drawn (then the curve falls)
        legend=dict(x=0.71, xanchor="left", y=0.02, yanchor="bottom", bgcolor="rgba(255,255,255,0.8)",
                    font=dict(size=FONT_SIZE - 4)),
        margin=dict(l=70, r=10, t=50, b=110),
        xaxis=dict(domain=[0.0, 0.44], anchor="y", type="category", tickangle=-90, showgrid=False,
                   title=dict(text=t("chart.flow.x", lang), standoff=2), **ticks,
                   **({} if small else dict(nticks=20))),
        yaxis=dict(anchor="x", type="category", autorange="reversed", showgrid=False, **ticks,
                   **({} if small else dict(nticks=20))),
        xaxis2=dict(domain=[0.7, 1.0], anchor="y2", title=dict(text="d = t − s", standoff=2),
                    range=[-0.5, max(1, len(curve)) - 0.5]),
        yaxis2=dict(anchor="x2", type="log", range=[ylo, yhi], tickvals=[10.0 ** v for v in yvals],
                    ticktext=ytext),
        annotations=[_panel_title(t("chart.flow.left", lang), 0.0, 1.0, yshift=6),
                     _panel_title(t("chart.flow.right", lang), 0.62, 1.0, yshift=6)],
    )
    return go.Figure(traces, layout)


def surprise_html(tokens: list[str], surprisal: np.ndarray, scale: float, lang: str = "en") -> str:
    """The text with each token's background coloured by −log p(token | prefix) (white 0 → red at `scale`).

    tokens has one more entry than surprisal: the first token has no prediction and stays uncoloured.
    """
    spans = [f'<span title="{t("chart.surprise.first", lang)}">{html.escape(tokens[0]).replace(" ", "&nbsp;")}</span>']
    for token, s in zip(tokens[1:], surprisal):
        alpha = float(max(0.0, min(1.0, s / scale)))
        text = html.escape(token).replace(" ", "&nbsp;") or "&nbsp;"
        spans.append(f'<span title="−log p = {float(s):.2f} (p = {math.exp(-float(s)):.3f})" '
                     f'style="background: rgba(214,39,40,{alpha:.2f}); padding: 2px 1px; border-radius: 3px;">'
                     f'{text}</span>')
    return ('<div style="font-family: monospace; font-size: 1.4rem; line-height: 2.2rem; '
            'word-break: break-all;">' + "".join(spans) + "</div>")

"""Chart builders for the dashboard: DataFrames and tensors in, plotly Figures out.

No Streamlit here. Fonts are large on purpose: the charts are read from the back of a lecture hall.
Every builder uses the ``rnnlab`` template registered below (the pages render with ``theme=None`` so
Streamlit does not override it).
"""
from __future__ import annotations

import html
import math

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import plotly.io as pio

from .i18n import t

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


def _base(fig: go.Figure, title: str | None, height: int | None = None) -> go.Figure:
    fig.update_layout(template=TEMPLATE, title=title)
    if height:
        fig.update_layout(height=height)
    return fig


# ---------------------------------------------------------------- Data

def vocab_frequency(vocab_df: pd.DataFrame, top: int = 40, lang: str = "en") -> go.Figure:
    """Bar chart of the `top` most frequent tokens (columns token, index, count)."""
    df = vocab_df[vocab_df["count"] > 0].sort_values("count", ascending=False).head(top)
    labels = [f"{show_token(t)}" for t in df["token"]]
    fig = go.Figure(go.Bar(x=labels, y=df["count"], marker_color=COLORS["loss"],
                           customdata=df["index"],
                           hovertemplate=hover(f'{t("hover.token", lang)} %{{x}}', f'{t("hover.index", lang)} %{{customdata}}',
                                               f'{t("hover.count", lang)} %{{y:,}}')))
    fig.update_xaxes(title=t("chart.vocab.x", lang), type="category", tickmode="array", tickvals=labels,
                     tickangle=0 if len(df) <= 30 else -45)
    fig.update_yaxes(title=t("chart.vocab.y", lang))
    return _base(fig, t("chart.vocab.title", lang, top=len(df), of=int((vocab_df["count"] > 0).sum())), 420)


def minibatch_map(positions: pd.DataFrame, num_tokens: int, title: str, bins: int = 400,
                  lang: str = "en") -> go.Figure:
    """Which corpus positions each batch row reads during one epoch, coloured by minibatch.

    `positions` has columns minibatch, row, start, stop. Drawn as a heatmap over `bins` slices of the
    corpus (one image, where hundreds of bars cost the browser a second to redraw); a slice takes the
    minibatch that reads it, and stays blank when no minibatch does.
    """
    rows = int(positions["row"].max()) + 1 if len(positions) else 1
    bins = max(1, min(bins, num_tokens))
    width = num_tokens / bins  # tokens per slice
    z = np.full((rows, bins), np.nan, dtype=np.float32)
    first = np.floor(positions["start"].to_numpy() / width).astype(int)
    last = np.maximum(first + 1, np.ceil(positions["stop"].to_numpy() / width).astype(int))
    for row, b0, b1, mb in zip(positions["row"].to_numpy(), first, last, positions["minibatch"].to_numpy()):
        z[row, b0:min(b1, bins)] = mb
    top = max(int(positions["minibatch"].max()), 1) if len(positions) else 1
    fig = go.Figure(go.Heatmap(
        z=z, x=(np.arange(bins) + 0.5) * width, y=np.arange(rows), colorscale="Viridis", zmin=0, zmax=top,
        colorbar=dict(title=dict(text=t("chart.minibatch.bar", lang), side="right"), thickness=14),
        hoverongaps=False,
        hovertemplate=hover(f'{t("hover.batch_row", lang)} %{{y}}', f'{t("hover.tokens", lang)} ≈ %{{x:,.0f}}',
                            f'{t("hover.minibatch", lang)} %{{z}}')))
    fig.update_xaxes(title=t("chart.minibatch.x", lang), range=[0, num_tokens], showgrid=False)
    fig.update_yaxes(title=t("chart.minibatch.y", lang), autorange="reversed", showgrid=False)
    return _base(fig, title, max(320, min(700, 140 + 14 * rows)))


# ---------------------------------------------------------------- One-hot & shapes

def one_hot_heatmap(one_hot: np.ndarray, inputs: list[str], vocab_tokens: list[str], title: str,
                    lang: str = "en") -> go.Figure:
    """(steps, vocab) 0/1 matrix: one row per time step, a single 1 in the input token's column."""
    y = [f"t={t} {show_token(c)}" for t, c in enumerate(inputs)]
    x = [show_token(t) for t in vocab_tokens]
    fig = go.Figure(go.Heatmap(z=one_hot, x=x, y=y, colorscale=[[0, "#f4f4f4"], [1, COLORS["loss"]]],
                               zmin=0, zmax=1, showscale=False, xgap=1, ygap=1,
                               hovertemplate=hover(f'{t("hover.step", lang)} %{{y}}', f'{t("hover.column", lang)} %{{x}}',
                                                   f'{t("hover.value", lang)} %{{z}}')))
    fig.update_xaxes(type="category", side="top", tickangle=0)
    fig.update_yaxes(title=t("chart.one_hot.y", lang), autorange="reversed", type="category")
    steps = len(y)
    fig = _base(fig, title + t("chart.one_hot.columns", lang), max(360, min(1100, 140 + 24 * steps)))
    fig.update_layout(margin=dict(t=110))
    return fig


def tensor_sizes(trace: pd.DataFrame, lang: str = "en") -> go.Figure:
    """Number of elements of each distinct tensor of one forward pass (log scale)."""
    df = trace[trace["step"].isna() | (trace["step"] == 0)].drop_duplicates("name").copy()
    df["elements"] = [math.prod(s) if len(s) else 1 for s in df["shape"]]
    df["label"] = [f"{n} {tuple(s)}" for n, s in zip(df["name"], df["shape"])]
    fig = go.Figure(go.Bar(x=df["elements"], y=df["label"], orientation="h", marker_color=COLORS["h_block"],
                           hovertemplate=hover("%{y}", f'%{{x:,}} {t("hover.elements", lang)}')))
    fig.update_xaxes(title=t("chart.sizes.x", lang), type="log")
    fig.update_yaxes(autorange="reversed", type="category")
    return _base(fig, t("chart.sizes.title", lang), max(420, 40 * len(df) + 120))


# ---------------------------------------------------------------- Concat identity

def matrix_heatmap(matrix: np.ndarray, title: str, split: int | None = None, axis: str = "col",
                   row_labels: list[str] | None = None, col_labels: list[str] | None = None,
                   zmax: float | None = None, annotate: bool | None = None, lang: str = "en") -> go.Figure:
    """A matrix as a heatmap; `split` draws the line between two blocks (after column or row `split`).

    Values are written in the cells only when the cells are wide enough for them: at most 6 columns (a
    half-width chart at 1024 px gives a column ~50 px, a 5-character number at 14 px needs ~40).
    """
    matrix = np.asarray(matrix, dtype=float)
    n, m = matrix.shape
    zmax = zmax if zmax is not None else float(np.abs(matrix).max() or 1.0)
    annotate = (m <= MAX_ANNOTATED_COLUMNS and n <= 12) if annotate is None else annotate
    fig = go.Figure(go.Heatmap(
        z=matrix, x=list(range(m)), y=list(range(n)), colorscale=DIVERGING, zmin=-zmax, zmax=zmax,
        text=np.vectorize(lambda v: f"{v:.2f}")(matrix) if annotate else None,
        texttemplate="%{text}" if annotate else None, textfont=dict(size=FONT_SIZE - 4),
        hovertemplate=hover(f'{t("hover.row", lang)} %{{y}}, {t("hover.column", lang)} %{{x}}',
                            f'{t("hover.value", lang)} %{{z:.6f}}'), xgap=1, ygap=1,
        colorbar=dict(thickness=14)))
    if split is not None and 0 < split < (m if axis == "col" else n):
        line = dict(color="black", width=4)
        if axis == "col":
            fig.add_shape(type="line", x0=split - 0.5, x1=split - 0.5, y0=-0.5, y1=n - 0.5, line=line)
        else:
            fig.add_shape(type="line", x0=-0.5, x1=m - 0.5, y0=split - 0.5, y1=split - 0.5, line=line)
    xaxis = dict(tickmode="array", tickvals=list(range(m)), ticktext=col_labels) if col_labels else \
        dict(dtick=1 if m <= 20 else None)
    yaxis = dict(tickmode="array", tickvals=list(range(n)), ticktext=row_labels) if row_labels else \
        dict(dtick=1 if n <= 20 else None)
    fig.update_xaxes(showgrid=False, zeroline=False, **xaxis)
    fig.update_yaxes(autorange="reversed", showgrid=False, zeroline=False, **yaxis)
    fig = _base(fig, title, max(300, min(720, 150 + 56 * n)))
    fig.update_layout(margin=dict(l=90, r=20, t=70, b=50))
    return fig


MAX_ANNOTATED_COLUMNS = 6


def block_labels(name: str, size: int) -> list[str]:
    """Tick labels naming a block's rows or columns: x0, x1, ... or h0, h1, ..."""
    return [f"{name}{i}" for i in range(size)]


def difference_heatmap(diff: np.ndarray, title: str, lang: str = "en") -> go.Figure:
    """Element-wise difference of the two sides, on its own (tiny) colour scale."""
    diff = np.asarray(diff, dtype=float)
    zmax = float(np.abs(diff).max()) or 1e-12
    fig = matrix_heatmap(diff, title, zmax=zmax, annotate=False, lang=lang)
    fig.update_traces(hovertemplate=hover(f'{t("hover.row", lang)} %{{y}}, {t("hover.column", lang)} %{{x}}',
                                          f'{t("hover.difference", lang)} %{{z:.3e}}'),
                      colorbar=dict(thickness=14, exponentformat="e"))
    return fig


# ---------------------------------------------------------------- Training

HISTORY_COLUMNS = ["epoch", "loss", "perplexity", "tokens_per_s", "grad_norm", "clip_fraction", "seconds", "sample"]


def _history(history: pd.DataFrame | None) -> pd.DataFrame:
    return pd.DataFrame(columns=HISTORY_COLUMNS) if history is None else history


def _hline(y: float, axis: str, color: str, dash: str = "dash") -> dict:
    """A horizontal reference line across one subplot (a layout shape; cheaper than add_hline)."""
    return dict(type="line", xref=f"x{axis} domain", x0=0, x1=1, yref=f"y{axis}", y0=y, y1=y,
                line=dict(color=color, dash=dash, width=2))


def _label(text: str, y: float, axis: str, color: str, x: float = 1.0, xanchor: str = "right") -> dict:
    """A label sitting on a reference line (y in axis units: log10 of the value on a log axis)."""
    return dict(text=text, xref=f"x{axis} domain", x=x, xanchor=xanchor, yref=f"y{axis}", y=y, yanchor="bottom",
                showarrow=False, font=dict(size=FONT_SIZE - 2, color=color))


def _title(text: str, x: float) -> dict:
    return dict(text=text, xref="paper", x=x, xanchor="center", yref="paper", y=1.02, yanchor="bottom",
                showarrow=False, font=dict(size=FONT_SIZE))


# Built from one layout dict (no make_subplots, no add_hline): these two are rebuilt on every training
# update, and the helpers cost 5x more than the figure itself.
def training_curves(history: pd.DataFrame | None, vocab_size: int, target_epochs: int | None = None,
                    lang: str = "en") -> go.Figure:
    """Loss and perplexity per epoch, with perplexity 1 (perfect) and |V| (uniform guessing) marked."""
    history = _history(history)
    # plain lists, not typed arrays: the browser tests count points in gd.data
    epochs, loss, ppl = (history[c].astype(float).tolist() for c in ("epoch", "loss", "perplexity"))
    x_range = [0, max(target_epochs or 1, int(max(epochs)) if epochs else 1) + 0.5]
    top_ppl = max(vocab_size, max(ppl) if ppl else vocab_size) * 1.1
    top_loss = max(math.log(vocab_size), max(loss) if loss else 0) * 1.1
    log_ppl = top_ppl > 10 * vocab_size  # a run far worse than guessing: only a log axis shows both
    on_ppl = (lambda v: math.log10(v)) if log_ppl else (lambda v: v)
    layout = dict(
        template=TEMPLATE, height=440, showlegend=False, uirevision="training", margin=dict(t=60),
        xaxis=dict(domain=[0, 0.44], range=x_range, title=dict(text=t("chart.epoch", lang)), anchor="y"),
        xaxis2=dict(domain=[0.56, 1], range=x_range, title=dict(text=t("chart.epoch", lang)), anchor="y2"),
        yaxis=dict(range=[0, top_loss], title=dict(text=t("chart.loss", lang)), anchor="x"),
        yaxis2=dict(type="log" if log_ppl else "linear", range=[0, on_ppl(top_ppl)], anchor="x2",
                    title=dict(text=t("chart.ppl_log" if log_ppl else "chart.ppl", lang))),
        shapes=[_hline(math.log(vocab_size), "", COLORS["ref"]), _hline(vocab_size, "2", COLORS["ref"]),
                _hline(1, "2", COLORS["good"])],
        annotations=[_title(t("chart.curves.loss_title", lang), 0.22), _title(t("chart.curves.ppl_title", lang), 0.78),
                     _label(f"log |V| = {math.log(vocab_size):.2f}", math.log(vocab_size), "", COLORS["ref"]),
                     _label(t("chart.curves.uniform", lang, V=vocab_size), on_ppl(vocab_size), "2", COLORS["ref"]),
                     _label(t("chart.curves.perfect", lang), on_ppl(1), "2", COLORS["good"])],
    )
    return go.Figure([
        go.Scatter(x=epochs, y=loss, mode="lines+markers", name=t("chart.loss", lang), line=dict(color=COLORS["loss"], width=3),
                   marker=dict(size=5)),
        go.Scatter(x=epochs, y=ppl, mode="lines+markers", name=t("chart.ppl", lang), xaxis="x2", yaxis="y2",
                   line=dict(color=COLORS["ppl"], width=3), marker=dict(size=5)),
    ], layout)


def gradient_chart(history: pd.DataFrame | None, theta: float | None, target_epochs: int | None = None,
                   lang: str = "en") -> go.Figure:
    """Mean gradient norm before clipping per epoch, the threshold θ (None: no clipping), and the share of
    clipped minibatches."""
    history = _history(history)
    epochs, norm, clipped = (history[c].astype(float).tolist() for c in ("epoch", "grad_norm", "clip_fraction"))
    x_max = max(target_epochs or 1, int(max(epochs)) if epochs else 1)
    layout = dict(
        template=TEMPLATE, height=420, title=dict(text=t("chart.grad.title", lang)), uirevision="gradients",
        margin=dict(b=120, r=80), legend=dict(orientation="h", yanchor="top", y=-0.3, xanchor="left", x=0.0),
        xaxis=dict(range=[0, x_max + 0.5], title=dict(text=t("chart.epoch", lang))),
        yaxis=dict(type="log", title=dict(text=t("chart.grad.y", lang)), dtick=1, tickformat=".2g"),
        yaxis2=dict(overlaying="y", side="right", range=[0, 105], tickvals=[0, 25, 50, 75, 100], showgrid=False,
                    title=dict(text=t("chart.grad.y2", lang))),
        shapes=[_hline(theta, "", "black", "dot")] if theta is not None else [],
        annotations=[_label(f"θ = {theta:g}", math.log10(theta), "", "black", x=0.0, xanchor="left")
                     if theta is not None else
                     dict(text=t("chart.grad.no_clip", lang), xref="paper", yref="paper", x=0.0, y=1.0, xanchor="left",
                          yanchor="bottom", showarrow=False)],
    )
    return go.Figure([
        go.Bar(x=epochs, y=[100 * c for c in clipped], name=t("chart.grad.bars", lang), yaxis="y2",
               marker_color=COLORS["accent"], opacity=0.35),
        go.Scatter(x=epochs, y=norm, name=t("chart.grad.line", lang), mode="lines",
                   line=dict(color=COLORS["h_block"], width=3)),
    ], layout)


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
    return _base(fig, None, max(520, min(1200, 260 + 22 * len(labels))))


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
    return _base(fig, None, 860)


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
    return _base(fig, t("chart.next.title", lang), 420)


# ---------------------------------------------------------------- Inside: gradient flow, surprise

def _log_ticks(lo: float, hi: float, max_ticks: int = 7) -> tuple[list[int], list[str]]:
    """Integer powers of ten within 10^lo .. 10^hi (log10 units), at most `max_ticks`, labelled '1e-3'."""
    lo, hi = math.ceil(lo), math.floor(hi)
    if hi < lo:  # less than a decade without a power of ten in it
        lo = hi = round((lo + hi) / 2)
    step = max(1, math.ceil((hi - lo) / max(1, max_ticks - 1)))
    first = -(-lo // step) * step  # a multiple of step, so 1e0 is a tick when in range
    vals = list(range(first, hi + 1, step)) or [lo]
    return vals, [f"1e{v}" for v in vals]


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
    cvals, ctext = _log_ticks(lo, hi)
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
    yvals, ytext = _log_ticks(ylo, yhi)
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


def decay_curves_chart(curves: pd.DataFrame, lang: str = "en") -> go.Figure:
    """Decay curves of several epochs overlaid (columns epoch, d, mean): mean ‖∂ℓ_t/∂H_(t−d)‖ on a log axis,
    one line per epoch, light to dark as training goes on (e.g. from rnn_core.gradflow.decay_curve)."""
    epochs = sorted(curves["epoch"].unique()) if len(curves) else []
    positive = curves.loc[curves["mean"] > 0, "mean"] if len(curves) else pd.Series([1.0])
    lo, hi = (math.log10(positive.min()), math.log10(positive.max())) if len(positive) else (-1.0, 0.0)
    lo, hi = (lo - 0.5, hi + 0.5) if hi - lo < 1 else (lo - 0.2, hi + 0.2)
    vals, text = _log_ticks(lo, hi)
    traces = []
    for i, epoch in enumerate(epochs):
        part = curves[curves["epoch"] == epoch].sort_values("d")
        shade = 0.25 + 0.75 * (i + 1) / len(epochs)  # later epochs darker
        traces.append(go.Scatter(x=part["d"].tolist(), y=part["mean"].tolist(), mode="lines",
                                 name=t("chart.epoch_n", lang, epoch=epoch),
                                 line=dict(color=f"rgba(255,127,14,{shade:.2f})", width=3),
                                 hovertemplate=hover(t("chart.epoch_n", lang, epoch=epoch), "d = %{x}",
                                                     f'{t("hover.mean", lang)} %{{y:.2e}}')))
    layout = dict(template=TEMPLATE, height=420, title=dict(text=t("chart.decay.title", lang)),
                  xaxis=dict(title=dict(text=t("chart.decay.x", lang))),
                  yaxis=dict(type="log", range=[lo, hi], tickvals=[10.0 ** v for v in vals], ticktext=text,
                             title=dict(text=f'{t("hover.mean", lang)} ‖∂ℓ_t/∂H_(t−d)‖')),
                  legend=dict(orientation="h", yanchor="top", y=-0.25, xanchor="left", x=0.0),
                  margin=dict(b=120))
    return go.Figure(traces, layout)


def spectrum_chart(spectra: pd.DataFrame, lang: str = "en") -> go.Figure:
    """ρ(W_hh) and σ_max(W_hh) per epoch (columns epoch, radius, sigma_max), with the line 1 marked: below it,
    σ_max · max tanh′ < 1 forces the gradient through time to vanish."""
    epochs = spectra["epoch"].tolist() if len(spectra) else []
    layout = dict(template=TEMPLATE, height=420, title=dict(text=t("chart.spectrum.title", lang)),
                  xaxis=dict(title=dict(text=t("chart.epoch", lang)), type="log" if len(epochs) > 2 else "linear"),
                  yaxis=dict(title=dict(text=t("chart.spectrum.y", lang)), rangemode="tozero"),
                  legend=dict(orientation="h", yanchor="top", y=-0.25, xanchor="left", x=0.0),
                  margin=dict(b=120), shapes=[_hline(1.0, "", "black", "dot")])
    return go.Figure([
        go.Scatter(x=epochs, y=spectra["radius"].tolist() if len(spectra) else [], mode="lines+markers",
                   name=t("chart.spectrum.radius", lang), line=dict(color=COLORS["h_block"], width=3)),
        go.Scatter(x=epochs, y=spectra["sigma_max"].tolist() if len(spectra) else [], mode="lines+markers",
                   name="σ_max(W_hh)", line=dict(color=COLORS["accent"], width=3)),
    ], layout)


# ---------------------------------------------------------------- Playback through training

def perplexity_marker(history: pd.DataFrame, epoch: int, checkpoints: list[int] | None = None,
                      lang: str = "en") -> go.Figure:
    """A small perplexity-by-epoch curve of a run (log x: checkpoints sit at 1, 2, 5, 10, ...), its checkpoints
    as dots and a marker at ``epoch``, the frame shown. ``history`` holds the run's records (epoch, perplexity)."""
    h = history[["epoch", "perplexity"]].dropna()
    fig = go.Figure(go.Scatter(x=h["epoch"], y=h["perplexity"], mode="lines", line=dict(color=COLORS["ppl"], width=2),
                               hovertemplate=hover(t("chart.epoch", lang) + " %{x}",
                                                   t("chart.ppl", lang) + " %{y:.3f}"),
                               showlegend=False))
    at = h.set_index("epoch")["perplexity"]
    saved = [e for e in (checkpoints or []) if e in at.index]
    if saved:
        fig.add_trace(go.Scatter(x=saved, y=[at[e] for e in saved], mode="markers", hoverinfo="skip",
                                 marker=dict(color=COLORS["ref"], size=6), showlegend=False))
    if epoch in at.index:
        fig.add_trace(go.Scatter(x=[epoch], y=[at[epoch]], mode="markers+text", text=[f"{at[epoch]:.2f}"],
                                 textposition="top right", hoverinfo="skip", showlegend=False,
                                 marker=dict(color=COLORS["accent"], size=14, line=dict(color="black", width=1))))
    fig.update_layout(template=TEMPLATE, height=200, margin=dict(l=60, r=20, t=10, b=45),
                      font=dict(size=FONT_SIZE - 4),
                      xaxis=dict(type="log", title=dict(text=t("chart.epoch", lang), standoff=4)),
                      yaxis=dict(type="log", title=dict(text=t("chart.ppl_log", lang), standoff=4)))
    return fig

"""Charts of the lesson's first pages: the data (vocabulary, minibatches), one-hot and shapes, the concat identity."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from .chart_base import FONT_SIZE, COLORS, DIVERGING, show_token, hover, styled
from .i18n import t


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
    return styled(fig, t("chart.vocab.title", lang, top=len(df), of=int((vocab_df["count"] > 0).sum())), 420)


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
    return styled(fig, title, max(320, min(700, 140 + 14 * rows)))


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
    fig = styled(fig, title + t("chart.one_hot.columns", lang), max(360, min(1100, 140 + 24 * steps)))
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
    return styled(fig, t("chart.sizes.title", lang), max(420, 40 * len(df) + 120))


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
    fig = styled(fig, title, max(300, min(720, 150 + 56 * n)))
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

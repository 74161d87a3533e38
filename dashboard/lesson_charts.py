"""Charts of the lesson's first pages: the data (vocabulary, minibatches), one-hot and shapes, the concat identity."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from .chart_base import (AXIS_TITLE_SIZE, FONT_SIZE, COLORS, DIVERGING, HALF_PX, PAGE_PX, figure, show_token, hover,
                         styled, text_px, whole_log_ticks, wrap)
from .i18n import t


# ---------------------------------------------------------------- Data

def vocab_frequency(vocab_df: pd.DataFrame, top: int = 40, lang: str = "en") -> go.Figure:
    """Bar chart of the `top` most frequent tokens (columns token, index, count)."""
    df = vocab_df[vocab_df["count"] > 0].sort_values("count", ascending=False).head(top)
    labels = [f"{show_token(t)}" for t in df["token"]]
    fig = figure(go.Bar(x=labels, y=df["count"], marker_color=COLORS["loss"],
                        customdata=df["index"],
                        hovertemplate=hover(f'{t("hover.token", lang)} %{{x}}',
                                            f'{t("hover.index", lang)} %{{customdata}}',
                                            f'{t("hover.count", lang)} %{{y:,}}')))
    # 27 characters in the ~280 px a 1024 px page leaves the chart's plot: at 18 px they would touch
    fig.update_xaxes(title=t("chart.vocab.x", lang), type="category", tickmode="array", tickvals=labels,
                     tickangle=0 if len(df) <= 30 else -45,
                     tickfont=dict(size=FONT_SIZE - 4 if len(df) > 20 else None))
    fig.update_yaxes(title=t("chart.vocab.y", lang))
    seen = int((vocab_df["count"] > 0).sum())  # all of them shown: said plainly, not "top 27 of 27"
    return styled(fig, t("chart.vocab.title" if len(df) < seen else "chart.vocab.title_all", lang, top=len(df),
                         of=seen), 420, width=VOCAB_PX)


VOCAB_PX = 340  # the Data page's right column (2 of 3) at 1024 px


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
    fig = figure(go.Heatmap(
        z=z, x=(np.arange(bins) + 0.5) * width, y=np.arange(rows), colorscale="Viridis", zmin=0, zmax=top,
        colorbar=dict(title=dict(text=t("chart.minibatch.bar", lang), side="right"), thickness=14),
        hoverongaps=False,
        hovertemplate=hover(f'{t("hover.batch_row", lang)} %{{y}}', f'{t("hover.tokens", lang)} ≈ %{{x:,.0f}}',
                            f'{t("hover.minibatch", lang)} %{{z}}')))
    x_title = wrap(t("chart.minibatch.x", lang), HALF_PX - 20, AXIS_TITLE_SIZE)  # drawn in half a page
    fig.update_xaxes(title=x_title, range=[0, num_tokens], showgrid=False, nticks=4)
    fig.update_yaxes(title=t("chart.minibatch.y", lang), autorange="reversed", showgrid=False)
    fig = styled(fig, title, max(320, min(700, 140 + 14 * rows)), width=HALF_PX)
    fig.update_layout(margin=dict(b=40 + 28 * x_title.count("<br>") + 28, l=60, r=10))
    return fig


# ---------------------------------------------------------------- One-hot & shapes

def one_hot_heatmap(one_hot: np.ndarray, inputs: list[str], vocab_tokens: list[str], title: str,
                    lang: str = "en") -> go.Figure:
    """(steps, vocab) 0/1 matrix: one row per time step, a single 1 in the input token's column."""
    y = [f"t={t} {show_token(c)}" for t, c in enumerate(inputs)]
    x = [show_token(t) for t in vocab_tokens]
    fig = figure(go.Heatmap(z=one_hot, x=x, y=y, colorscale=[[0, "#f4f4f4"], [1, COLORS["loss"]]],
                            zmin=0, zmax=1, showscale=False, xgap=1, ygap=1,
                            hovertemplate=hover(f'{t("hover.step", lang)} %{{y}}', f'{t("hover.column", lang)} %{{x}}',
                                                f'{t("hover.value", lang)} %{{z}}')))
    fig.update_xaxes(type="category", side="top", tickangle=0)
    fig.update_yaxes(title=t("chart.one_hot.y", lang), autorange="reversed", type="category")
    steps = len(y)
    fig = styled(fig, title + t("chart.one_hot.columns", lang), max(360, min(1100, 140 + 24 * steps)), width=PAGE_PX)
    fig.update_layout(margin=dict(t=fig.layout.margin.t + 40))  # the x ticks are on top, under the title
    return fig


def tensor_sizes(trace: pd.DataFrame, lang: str = "en") -> go.Figure:
    """Number of elements of each distinct tensor of one forward pass (log scale)."""
    df = trace[trace["step"].isna() | (trace["step"] == 0)].drop_duplicates("name").copy()
    df["elements"] = [math.prod(s) if len(s) else 1 for s in df["shape"]]
    df["label"] = [f"{n} {tuple(s)}" for n, s in zip(df["name"], df["shape"])]
    fig = figure(go.Bar(x=df["elements"], y=df["label"], orientation="h", marker_color=COLORS["h_block"],
                        hovertemplate=hover("%{y}", f'%{{x:,}} {t("hover.elements", lang)}')))
    lo, hi = float(df["elements"].min()), float(df["elements"].max())
    # the range from the smallest to the largest tensor (W_hh's 262,144 elements at h = 512), a bar's end in it
    ticks, text = whole_log_ticks(min(lo, 1.0), hi * 1.5, max_ticks=4)  # "100,000" is wide: upright, 4 fit
    fig.update_xaxes(type="log", tickvals=ticks, ticktext=text, tickangle=0,
                     range=[math.log10(min(lo, 1.0)) - 0.05, math.log10(hi * 1.5)],
                     title=wrap(t("chart.sizes.x", lang), PAGE_PX - 200, AXIS_TITLE_SIZE))
    fig.update_yaxes(autorange="reversed", type="category", automargin=True)
    return styled(fig, t("chart.sizes.title", lang), max(420, 40 * len(df) + 120), width=PAGE_PX)


# ---------------------------------------------------------------- Concat identity

MATRIX_PX = 220  # the Concat identity page's narrower column at 1024 px, at the lesson's n, d, h
HEATMAP_FRAME_PX = 180  # what a heatmap's width loses to its row labels, margins and colour bar
NUMBER_SIZE = FONT_SIZE - 4


def matrix_heatmap(matrix: np.ndarray, title: str, split: int | None = None, axis: str = "col",
                   row_labels: list[str] | None = None, col_labels: list[str] | None = None,
                   zmax: float | None = None, annotate: bool | None = None, lang: str = "en",
                   width: float = MATRIX_PX) -> go.Figure:
    """A matrix as a heatmap; `split` draws the line between two blocks (after column or row `split`).

    `width`: the narrowest the chart is drawn at (px): the title is wrapped to it, and values are written in the
    cells only when a cell of a chart that wide holds them (`cells_hold_numbers`).
    """
    matrix = np.asarray(matrix, dtype=float)
    n, m = matrix.shape
    zmax = zmax if zmax is not None else float(np.abs(matrix).max() or 1.0)
    numbers = np.vectorize(lambda v: f"{v:.2f}")(matrix) if matrix.size else np.empty((n, m), dtype=str)
    if annotate is None:
        annotate = cells_hold_numbers(numbers, width - HEATMAP_FRAME_PX, NUMBER_SIZE)
    fig = figure(go.Heatmap(
        z=matrix, x=list(range(m)), y=list(range(n)), colorscale=DIVERGING, zmin=-zmax, zmax=zmax,
        text=numbers if annotate else None,
        texttemplate="%{text}" if annotate else None, textfont=dict(size=NUMBER_SIZE),
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
    fig = styled(fig, title, max(300, min(720, 150 + 56 * n)), width=width)
    fig.update_layout(margin=dict(l=90, r=20, b=50))
    return fig


def cells_hold_numbers(numbers: np.ndarray, plot_px: float, size: float) -> bool:
    """Whether each cell of a matrix drawn `plot_px` wide holds its number at `size` px (with 4 px to spare),
    so that no two numbers touch."""
    if numbers.size == 0:
        return False
    cell = plot_px / numbers.shape[1]
    return max(text_px(str(v), size) for v in numbers.ravel()) + 4 <= cell


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

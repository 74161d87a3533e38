"""Charts of a run: loss and perplexity by epoch, gradient norms, gradient decay and W_hh's spectrum per
checkpoint, and the marker that playback moves along the perplexity curve."""
from __future__ import annotations

import math

import pandas as pd
import plotly.graph_objects as go

from .chart_base import (AXIS_TITLE_SIZE, FONT_SIZE, COLORS, HALF_PX, PAGE_PX, figure, hover, legend_below,
                         log_axis, title_margin, wrap, whole_log_ticks)
from .i18n import t


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


def _title(text: str, x: float, width: float = 0.44 * PAGE_PX) -> dict:
    """A panel's title over its panel, wrapped to the panel's width (px)."""
    return dict(text=wrap(text, width, FONT_SIZE), xref="paper", x=x, xanchor="center", yref="paper", y=1.02,
                yanchor="bottom",
                showarrow=False, font=dict(size=FONT_SIZE))


# Built from one layout dict (no make_subplots, no add_hline): these two are rebuilt on every training
# update, and the helpers cost 5x more than the figure itself.
def training_curves(history: pd.DataFrame | None, vocab_size: int, target_epochs: int | None = None,
                    lang: str = "en") -> go.Figure:
    """Loss and perplexity per epoch, with perplexity 1 (perfect) and |V| (uniform guessing) marked."""
    history = _history(history)
    # arrays, not lists: plotly validates a list element by element (at 800 epochs this chart took 5.5 ms to build
    # from lists, 2.2 ms from arrays); arrays go out as typed bytes, about as many as the numbers as text
    epochs, loss, ppl = (history[c].to_numpy(dtype=float) for c in ("epoch", "loss", "perplexity"))
    x_range = [0, max(target_epochs or 1, int(max(epochs)) if len(epochs) else 1) + 0.5]
    finite_ppl, finite_loss = [v for v in ppl if math.isfinite(v)], [v for v in loss if math.isfinite(v)]
    top_ppl = max(vocab_size, max(finite_ppl) if finite_ppl else vocab_size) * 1.1  # a diverged epoch's inf: off
    top_loss = max(math.log(vocab_size), max(finite_loss) if finite_loss else 0) * 1.1
    log_ppl = top_ppl > 10 * vocab_size  # a run far worse than guessing: only a log axis shows both
    on_ppl = (lambda v: math.log10(v)) if log_ppl else (lambda v: v)
    layout = dict(
        height=440, showlegend=False, uirevision="training",
        margin=dict(t=36 + int(1.3 * FONT_SIZE) * max(wrap(t(k, lang), 0.44 * PAGE_PX, FONT_SIZE).count("<br>") + 1
                                                      for k in ("chart.curves.loss_title", "chart.curves.ppl_title"))),
        xaxis=dict(domain=[0, 0.44], range=x_range, title=dict(text=t("chart.epoch", lang)), anchor="y"),
        xaxis2=dict(domain=[0.56, 1], range=x_range, title=dict(text=t("chart.epoch", lang)), anchor="y2"),
        yaxis=dict(range=[0, top_loss], title=dict(text=t("chart.loss", lang)), anchor="x"),
        yaxis2=dict(**(log_axis(1, top_ppl) if log_ppl else dict(type="linear")), range=[0, on_ppl(top_ppl)],
                    anchor="x2", title=dict(text=t("chart.ppl_log" if log_ppl else "chart.ppl", lang))),
        shapes=[_hline(math.log(vocab_size), "", COLORS["ref"]), _hline(vocab_size, "2", COLORS["ref"]),
                _hline(1, "2", COLORS["good"])],
        annotations=[_title(t("chart.curves.loss_title", lang), 0.22), _title(t("chart.curves.ppl_title", lang), 0.78),
                     _label(f"log |V| = {math.log(vocab_size):.2f}", math.log(vocab_size), "", COLORS["ref"]),
                     _label(t("chart.curves.uniform", lang, V=vocab_size), on_ppl(vocab_size), "2", COLORS["ref"]),
                     _label(t("chart.curves.perfect", lang), on_ppl(1), "2", COLORS["good"])],
    )
    return figure([
        go.Scatter(x=epochs, y=loss, mode="lines+markers", name=t("chart.loss", lang),
                   line=dict(color=COLORS["loss"], width=3),
                   marker=dict(size=5)),
        go.Scatter(x=epochs, y=ppl, mode="lines+markers", name=t("chart.ppl", lang), xaxis="x2", yaxis="y2",
                   line=dict(color=COLORS["ppl"], width=3), marker=dict(size=5)),
    ], layout)


def gradient_chart(history: pd.DataFrame | None, theta: float | None, target_epochs: int | None = None,
                   lang: str = "en", width: float = HALF_PX) -> go.Figure:
    """Mean gradient norm before clipping per epoch, the threshold θ (None: no clipping), and the share of
    clipped minibatches. `width`: the narrowest the chart is drawn at (px), for its title and legend."""
    history = _history(history)
    epochs, norm, clipped = (history[c].to_numpy(dtype=float) for c in ("epoch", "grad_norm", "clip_fraction"))
    x_max = max(target_epochs or 1, int(max(epochs)) if len(epochs) else 1)
    names = [t("chart.grad.bars", lang), t("chart.grad.line", lang)]
    legend, bottom = legend_below(names, width)
    shown = [v for v in norm if 0 < v < math.inf] + ([theta] if theta is not None else [])
    lo, hi = (min(shown) / 1.5, max(shown) * 1.5) if shown else (0.1, 10.0)
    title = wrap(t("chart.grad.title", lang), width - 10, FONT_SIZE + 4)
    layout = dict(
        height=420 + bottom - 60, title=dict(text=title), uirevision="gradients",
        margin=dict(b=bottom, r=80, t=title_margin(title)), legend=legend,
        xaxis=dict(range=[0, x_max + 0.5], title=dict(text=t("chart.epoch", lang))),
        yaxis=dict(**log_axis(lo, hi), range=[math.log10(lo), math.log10(hi)],
                   title=dict(text=t("chart.grad.y", lang))),
        yaxis2=dict(overlaying="y", side="right", range=[0, 105], tickvals=[0, 25, 50, 75, 100], showgrid=False,
                    title=dict(text=t("chart.grad.y2", lang))),
        shapes=[_hline(theta, "", "black", "dot")] if theta is not None else [],
        annotations=[_label(f"θ = {theta:g}", math.log10(theta), "", "black", x=0.0, xanchor="left")
                     if theta is not None else
                     dict(text=t("chart.grad.no_clip", lang), xref="paper", yref="paper", x=0.0, y=1.0, xanchor="left",
                          yanchor="bottom", showarrow=False)],
    )
    return figure([
        go.Bar(x=epochs, y=100 * clipped, name=names[0], yaxis="y2",
               marker_color=COLORS["accent"], opacity=0.35),
        go.Scatter(x=epochs, y=norm, name=names[1], mode="lines",
                   line=dict(color=COLORS["h_block"], width=3)),
    ], layout)


def decay_curves_chart(curves: pd.DataFrame, lang: str = "en", width: float = PAGE_PX) -> go.Figure:
    """Decay curves of several epochs overlaid (columns epoch, d, mean): mean ‖∂ℓ_t/∂H_(t−d)‖ on a log axis,
    one line per epoch, light to dark as training goes on (e.g. from rnn_core.gradflow.decay_curve).
    `width`: the narrowest the chart is drawn at (px), for its title and legend."""
    epochs = sorted(curves["epoch"].unique()) if len(curves) else []
    finite = (curves["mean"] > 0) & (curves["mean"] < math.inf) if len(curves) else None
    positive = curves.loc[finite, "mean"] if len(curves) else pd.Series([1.0])
    lo, hi = (math.log10(positive.min()), math.log10(positive.max())) if len(positive) else (-1.0, 0.0)
    lo, hi = (lo - 0.5, hi + 0.5) if hi - lo < 1 else (lo - 0.2, hi + 0.2)
    traces = []
    for i, epoch in enumerate(epochs):
        part = curves[curves["epoch"] == epoch].sort_values("d")
        shade = 0.25 + 0.75 * (i + 1) / len(epochs)  # later epochs darker
        traces.append(go.Scatter(x=part["d"].tolist(), y=part["mean"].tolist(), mode="lines",
                                 name=t("chart.epoch_n", lang, epoch=epoch),
                                 line=dict(color=f"rgba(255,127,14,{shade:.2f})", width=3),
                                 hovertemplate=hover(t("chart.epoch_n", lang, epoch=epoch), "d = %{x}",
                                                     f'{t("hover.mean", lang)} %{{y:.2e}}')))
    legend, bottom = legend_below([tr.name for tr in traces], width)
    title = wrap(t("chart.decay.title", lang), width - 10, FONT_SIZE + 4)
    layout = dict(height=360 + bottom, title=dict(text=title),
                  xaxis=dict(title=dict(text=t("chart.decay.x", lang))),
                  yaxis=dict(**log_axis(10.0 ** lo, 10.0 ** hi), range=[lo, hi],
                             title=dict(text=wrap(f'{t("hover.mean", lang)} ‖∂ℓ_t/∂H_(t−d)‖', 300,
                                                  AXIS_TITLE_SIZE))),
                  legend=legend, margin=dict(b=bottom, t=title_margin(title)))
    return figure(traces, layout)


def spectrum_chart(spectra: pd.DataFrame, lang: str = "en", width: float = PAGE_PX) -> go.Figure:
    """ρ(W_hh) and σ_max(W_hh) per epoch (columns epoch, radius, sigma_max), with the line 1 marked: below it,
    σ_max · max tanh′ < 1 forces the gradient through time to vanish. `width`: as for decay_curves_chart."""
    epochs = spectra["epoch"].tolist() if len(spectra) else []
    names = [t("chart.spectrum.radius", lang), "σ_max(W_hh)"]
    legend, bottom = legend_below(names, width)
    x_axis = dict(**log_axis(min(epochs), max(epochs)), range=[math.log10(min(epochs)) - 0.1,
                                                               math.log10(max(epochs)) + 0.1]) \
        if len(epochs) > 2 and min(epochs) > 0 else dict(type="linear")
    title = wrap(t("chart.spectrum.title", lang), width - 10, FONT_SIZE + 4)
    layout = dict(height=360 + bottom, title=dict(text=title),
                  xaxis=dict(title=dict(text=t("chart.epoch", lang)), **x_axis),
                  yaxis=dict(title=dict(text=t("chart.spectrum.y", lang)), rangemode="tozero"),
                  legend=legend, margin=dict(b=bottom, t=title_margin(title)), shapes=[_hline(1.0, "", "black", "dot")])
    return figure([
        go.Scatter(x=epochs, y=spectra["radius"].tolist() if len(spectra) else [], mode="lines+markers",
                   name=names[0], line=dict(color=COLORS["h_block"], width=3)),
        go.Scatter(x=epochs, y=spectra["sigma_max"].tolist() if len(spectra) else [], mode="lines+markers",
                   name=names[1], line=dict(color=COLORS["accent"], width=3)),
    ], layout)


# ---------------------------------------------------------------- Playback through training

def perplexity_marker(history: pd.DataFrame, epoch: int, checkpoints: list[int] | None = None,
                      lang: str = "en") -> go.Figure:
    """A small perplexity-by-epoch curve of a run (log x: checkpoints sit at 1, 2, 5, 10, ...), its checkpoints
    as dots and a marker at ``epoch``, the frame shown. ``history`` holds the run's records (epoch, perplexity)."""
    h = history[["epoch", "perplexity"]].dropna()
    fig = figure(go.Scatter(x=h["epoch"], y=h["perplexity"], mode="lines", line=dict(color=COLORS["ppl"], width=2),
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
    fig.update_layout(height=200, margin=dict(l=60, r=20, t=10, b=45),
                      font=dict(size=FONT_SIZE - 4),
                      xaxis=dict(**_log_axis_over(h["epoch"]), title=dict(text=t("chart.epoch", lang), standoff=4)),
                      yaxis=dict(**_log_axis_over(h["perplexity"]),
                                 title=dict(text=t("chart.ppl_log", lang), standoff=4)))
    return fig


def _log_axis_over(values: pd.Series) -> dict:
    """A log axis over the positive `values`, labelled with the values it marks (chart_base.log_axis)."""
    positive = values[(values > 0) & (values < math.inf)]
    if not len(positive):
        return dict(type="log")
    lo, hi = float(positive.min()), float(positive.max())
    hi = max(hi, lo * 1.01)
    return dict(**log_axis(lo, hi), range=[math.log10(lo) - 0.05, math.log10(hi) + 0.05])

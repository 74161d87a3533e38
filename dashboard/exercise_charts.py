"""Chart builders for the Exercises page: an A/B pair's curves and every minibatch overlaid, and one minibatch in
step mode.

DataFrames and tensors in, plotly Figures out (no Streamlit), with the dashboard's ``rnnlab`` template.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from .chart_base import PAGE_PX, figure, hover, legend_below, log_axis, show_token, subplots, whole_log_ticks
from .i18n import t

ARM_COLORS = {"A": "#1f77b4", "B": "#d62728"}


def _layout(fig: go.Figure, title: str | None, height: int) -> go.Figure:
    fig.update_layout(title=title, height=height,
                      legend=dict(orientation="h", yanchor="bottom", y=1.02, x=0))
    return fig


def _legend_at_foot(fig: go.Figure, width: float = PAGE_PX) -> go.Figure:
    """`fig` with its legend under the x axis title, clear of every title (``chart_base.legend_below``, for a chart
    `width` px wide: these are drawn across the page); the bottom margin grows to hold it."""
    names = [tr.name for tr in fig.data if tr.name and tr.showlegend is not False]
    legend, bottom = legend_below(names, width)
    return fig.update_layout(legend=legend, margin=dict(b=bottom))


def ab_curves(frame: pd.DataFrame, labels: dict[str, str], target_epochs: int, vocab_size: int,
              title: str | None = None, lang: str | None = None) -> go.Figure:
    """Perplexity per epoch of arms A and B on a log axis (held-out perplexity dotted where there is one);
    the uniform guess |V| as a grey line."""
    fig = figure()
    for arm in ("A", "B"):
        d = frame[frame["arm"] == arm]
        if not len(d):
            continue
        color = ARM_COLORS[arm]
        fig.add_scatter(x=d["epoch"], y=d["perplexity"], mode="lines+markers", marker_size=4, name=labels[arm],
                        line=dict(color=color, width=3),
                        hovertemplate=f'{t("chart.epoch", lang)} %{{x}}<br>{t("chart.ppl", lang)} %{{y:.4g}}'
                                      f"<extra>{labels[arm]}</extra>")
        held = d["heldout_perplexity"] if "heldout_perplexity" in d else None
        if held is not None and held.notna().any():
            fig.add_scatter(x=d["epoch"], y=held, mode="lines", name=t("chart.heldout", lang, label=labels[arm]),
                            line=dict(color=color, width=2, dash="dot"),
                            hovertemplate=hover(f'{t("chart.epoch", lang)} %{{x}}',
                                                f'{t("hover.heldout_ppl", lang)} %{{y:.4g}}'))
    fig.add_hline(y=vocab_size, line=dict(color="#7f7f7f", dash="dash", width=1),
                  annotation_text=t("chart.curves.uniform", lang, V=vocab_size), annotation_position="top left")
    fig.update_xaxes(title=t("chart.epoch", lang), range=[0, max(target_epochs, 1) + 0.5])
    values = pd.to_numeric(pd.concat([frame.get("perplexity", pd.Series(dtype=float)),
                                      frame.get("heldout_perplexity", pd.Series(dtype=float))]), errors="coerce")
    values = values[np.isfinite(values) & (values > 0)]
    lo = min(float(values.min()) if len(values) else 1.0, 1.0)
    hi = max(float(values.max()) if len(values) else vocab_size, vocab_size)
    fig.update_yaxes(**log_axis(lo * 0.9, hi * 1.5, title=t("chart.ppl_log", lang),
                                range=[np.log10(lo * 0.9), np.log10(hi * 1.5)]))
    return _legend_at_foot(_layout(fig, title, 480))


def _log_range(values, *extra: float) -> tuple[float, float]:
    """The finite positive values' span (with ``extra`` values such as θ), as (lo, hi) for a log axis."""
    v = np.asarray(pd.to_numeric(pd.Series(values), errors="coerce"), dtype=float)
    v = np.concatenate([v[np.isfinite(v) & (v > 0)], [x for x in extra if x is not None and x > 0]])
    if not len(v):
        return 0.1, 10.0
    lo, hi = float(v.min()), float(v.max())
    return (lo / 2, hi * 2) if hi > lo else (lo / 3, hi * 3)


def _log_yaxis(fig: go.Figure, lo: float, hi: float, row: int, title: str, max_ticks: int) -> float:
    """A log y axis from lo to hi with ticks that say their values (``whole_log_ticks``); returns the value at its
    top, where a point that is not finite is drawn."""
    vals, text = whole_log_ticks(lo, hi, max_ticks=max_ticks)
    top = math.log10(hi)
    fig.update_yaxes(type="log", range=[math.log10(lo), top + 0.08 * (top - math.log10(lo))], tickvals=vals,
                     ticktext=text, title=title, row=row, col=1)
    return hi


def ab_minibatches(minibatches: pd.DataFrame, above: pd.DataFrame, labels: dict[str, str], theta: float | None,
                   target_epochs: int, lang: str | None = None) -> go.Figure:
    """Every minibatch of arms A and B on the epoch axis (``dashboard.exercise_stats.minibatch_frame``): ‖g‖ before
    clipping with θ drawn on it (log), the loss (log, where a blow-up shows), and per epoch the share of
    minibatches whose ‖g‖ was above θ (``above_by_epoch``: what the arm with θ clipped). A minibatch whose loss or
    ‖g‖ is not a finite number (the epoch that blew up) is a cross at the top of its axis. The legend sits below
    the plot, clear of the titles."""
    titles = (t("exercises.chart.grad", lang), t("exercises.chart.loss", lang), t("exercises.chart.clipped", lang))
    fig = subplots(rows=3, cols=1, shared_xaxes=True, vertical_spacing=0.09, subplot_titles=titles,
                   row_heights=[0.4, 0.35, 0.25])
    where = t("exercises.chart.minibatch", lang)
    g_lo, g_hi = _log_range(minibatches["grad_norm"], theta)
    l_lo, l_hi = _log_range(minibatches["loss"])
    tops = {"grad_norm": _log_yaxis(fig, g_lo, g_hi, 1, "‖g‖", 5),
            "loss": _log_yaxis(fig, l_lo, l_hi, 2, t("chart.loss", lang), 4)}
    nonfinite_named = False
    for arm in ("A", "B"):
        d = minibatches[minibatches["arm"] == arm]
        if not len(d):
            continue
        color, custom = ARM_COLORS[arm], d[["epoch", "minibatch"]].to_numpy()
        fig.add_scatter(x=d["x"], y=d["grad_norm"], mode="lines", name=labels[arm], line=dict(color=color, width=1.5),
                        customdata=custom, row=1, col=1, hovertemplate=hover(labels[arm], where, "‖g‖ %{y:.3g}"))
        fig.add_scatter(x=d["x"], y=d["loss"], mode="lines", name=labels[arm], showlegend=False,
                        line=dict(color=color, width=1.5), customdata=custom, row=2, col=1,
                        hovertemplate=hover(labels[arm], where, f'{t("chart.loss", lang)} %{{y:.3g}}'))
        for row, column in ((1, "grad_norm"), (2, "loss")):
            bad = d[~np.isfinite(d[column].to_numpy(float))]
            if len(bad):  # inf or nan: drawn at the top of the axis, its value in the hover
                fig.add_scatter(x=bad["x"], y=[tops[column]] * len(bad), mode="markers", row=row, col=1,
                                name=t("exercises.chart.nonfinite", lang), showlegend=not nonfinite_named,
                                marker=dict(symbol="x", size=11, color=color, line=dict(width=1, color="black")),
                                customdata=np.column_stack([bad[["epoch", "minibatch"]].to_numpy(),
                                                            bad[column].astype(str).to_numpy()]),
                                hovertemplate=hover(labels[arm], where, "%{customdata[2]}"))
                nonfinite_named = True
        e = above[above["arm"] == arm]
        fig.add_bar(x=e["epoch"] - 0.5, y=e["share"], name=labels[arm], showlegend=False, marker_color=color,
                    opacity=0.8, customdata=e[["epoch", "above", "minibatches"]].to_numpy(), row=3, col=1,
                    hovertemplate=hover(labels[arm], f'{t("chart.epoch", lang)} %{{customdata[0]}}',
                                        "‖g‖ > θ: %{customdata[1]} / %{customdata[2]} (%{y:.0%})"))
    if theta is not None:
        fig.add_hline(y=theta, line=dict(color="#2ca02c", dash="dash", width=2), row=1, col=1)
        # on a log axis an annotation's y is log10 of the value (add_hline's own label would sit at 10^θ)
        fig.add_annotation(text=f"θ = {theta:g}", x=0, xref="x domain", y=math.log10(theta), yref="y",
                           xanchor="left", yanchor="bottom", showarrow=False, font=dict(color="#2ca02c"))
    fig.update_yaxes(range=[0, 1.05], tickvals=[0, 0.5, 1], tickformat=".0%", row=3, col=1)
    step = next(d for d in (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 10_000) if d * 10 >= target_epochs)
    fig.update_xaxes(range=[0, max(target_epochs, 1) + 0.5], tick0=0, dtick=step)  # whole epochs
    fig.update_xaxes(title=t("exercises.chart.x", lang), row=3, col=1)
    fig.update_layout(barmode="group", bargap=0.1)
    return _legend_at_foot(_layout(fig, None, 720))


def step_losses(losses: np.ndarray, x_tokens: list[list[str]], rows: int = 8, lang: str | None = None) -> go.Figure:
    """The loss at every position of a minibatch's first ``rows`` rows (rows x steps), input tokens as text."""
    z = np.asarray(losses)[:rows]
    text = [[show_token(tok) for tok in row] for row in x_tokens[:rows]]
    fig = figure(go.Heatmap(z=z, text=text, texttemplate="%{text}", colorscale="Reds", zmin=0,
                            colorbar=dict(title=t("chart.loss", lang)),
                            hovertemplate=hover(f'{t("hover.row", lang)} %{{y}}, {t("hover.step", lang)} %{{x}}',
                                                f'{t("hover.input", lang)} %{{text}}',
                                                f'{t("chart.loss", lang)} %{{z:.3f}}')))
    fig.update_xaxes(title=t("chart.time_step", lang), dtick=5)
    fig.update_yaxes(title=t("exercises.chart.step_row", lang), autorange="reversed", dtick=1)
    return _layout(fig, t("exercises.chart.step_loss", lang), 120 + 34 * len(z))


def update_sizes(ratios: dict[str, float]) -> go.Figure:
    """‖ΔW‖ / ‖W‖ per parameter on a log axis (a parameter that was 0 is left out: its ratio is infinite)."""
    names = [k for k, v in ratios.items() if np.isfinite(v) and v > 0]
    fig = figure(go.Bar(x=names, y=[ratios[k] for k in names], marker_color="#1f77b4",
                        hovertemplate=hover("%{x}: ‖ΔW‖/‖W‖ = %{y:.3g}")))
    lo, hi = _log_range([ratios[k] for k in names])
    fig.update_yaxes(**log_axis(lo, hi, title="‖ΔW‖ / ‖W‖", range=[math.log10(lo), math.log10(hi)]))
    return _layout(fig, None, 300)

"""Chart builders for the Exercises page: an A/B pair's curves and every minibatch overlaid, and one minibatch in
step mode.

DataFrames and tensors in, plotly Figures out (no Streamlit), with the dashboard's ``rnnlab`` template.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from .chart_base import TEMPLATE, hover, show_token
from .i18n import t

ARM_COLORS = {"A": "#1f77b4", "B": "#d62728"}


def _layout(fig: go.Figure, title: str | None, height: int) -> go.Figure:
    fig.update_layout(template=TEMPLATE, title=title, height=height,
                      legend=dict(orientation="h", yanchor="bottom", y=1.02, x=0))
    return fig


def ab_curves(frame: pd.DataFrame, labels: dict[str, str], target_epochs: int, vocab_size: int,
              title: str | None = None, lang: str | None = None) -> go.Figure:
    """Perplexity per epoch of arms A and B on a log axis (held-out perplexity dotted where there is one);
    the uniform guess |V| as a grey line."""
    fig = go.Figure()
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
    fig.update_yaxes(title=t("chart.ppl_log", lang), type="log", range=[np.log10(lo * 0.9), np.log10(hi * 1.5)])
    return _layout(fig, title, 420)


def ab_minibatches(minibatches: pd.DataFrame, above: pd.DataFrame, labels: dict[str, str], theta: float | None,
                   target_epochs: int, lang: str | None = None) -> go.Figure:
    """Every minibatch of arms A and B on the epoch axis (``dashboard.exercises.minibatch_frame``): ‖g‖ before
    clipping with θ drawn on it (log), the loss (log, where a blow-up shows), and per epoch the share of
    minibatches whose ‖g‖ was above θ (``above_by_epoch``: what the arm with θ clipped)."""
    titles = (t("exercises.chart.grad", lang), t("exercises.chart.loss", lang), t("exercises.chart.clipped", lang))
    fig = make_subplots(rows=3, cols=1, shared_xaxes=True, vertical_spacing=0.07, subplot_titles=titles,
                        row_heights=[0.4, 0.35, 0.25])
    where = t("exercises.chart.minibatch", lang)
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
    fig.update_yaxes(type="log", title="‖g‖", row=1, col=1)
    fig.update_yaxes(type="log", title=t("chart.loss", lang), row=2, col=1)
    fig.update_yaxes(range=[0, 1.05], tickformat=".0%", row=3, col=1)
    step = next(d for d in (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 10_000) if d * 10 >= target_epochs)
    fig.update_xaxes(range=[0, max(target_epochs, 1) + 0.5], tick0=0, dtick=step)  # whole epochs
    fig.update_xaxes(title=t("exercises.chart.x", lang), row=3, col=1)
    fig.update_layout(barmode="group", bargap=0.1)
    return _layout(fig, None, 620)


def step_losses(losses: np.ndarray, x_tokens: list[list[str]], rows: int = 8, lang: str | None = None) -> go.Figure:
    """The loss at every position of a minibatch's first ``rows`` rows (rows x steps), input tokens as text."""
    z = np.asarray(losses)[:rows]
    text = [[show_token(tok) for tok in row] for row in x_tokens[:rows]]
    fig = go.Figure(go.Heatmap(z=z, text=text, texttemplate="%{text}", colorscale="Reds", zmin=0,
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
    fig = go.Figure(go.Bar(x=names, y=[ratios[k] for k in names], marker_color="#1f77b4",
                           hovertemplate=hover("%{x}: ‖ΔW‖/‖W‖ = %{y:.3g}")))
    fig.update_yaxes(type="log", title="‖ΔW‖ / ‖W‖")
    return _layout(fig, None, 300)

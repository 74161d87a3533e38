"""The Inside page's chart builders: gradient flow (log colour and axis), surprise text, ordered units."""
import math

import numpy as np
import pandas as pd
import pytest

from dashboard import chart_base, inside_charts, training_charts


def flow_arrays(T=6, factor=0.1):
    G = np.full((T, T), np.nan)
    for t in range(T):
        for s in range(t + 1):
            G[t, s] = 2.0 * factor ** (t - s)
    curve = np.array([np.nanmean(np.diagonal(G, -d)) for d in range(T)])
    return G, curve


def test_gradient_flow_chart_is_log_scaled_with_ticks_that_say_their_values():
    G, curve = flow_arrays()
    fig = inside_charts.gradient_flow_chart(G, curve, 0.5 ** np.arange(6) * 2, list("abcdef"), list("bcdefg"))
    heat, line, bound, cells = fig.data
    z = np.asarray(heat.z, dtype=float)
    assert np.isnan(z[0, 1]) and z[5, 0] == np.float32(math.log10(2e-5))  # log10 G; nothing above the diagonal
    assert list(line.y) == list(curve) and bound.name == "bound"
    assert fig.layout.yaxis2.type == "log"
    lo, hi = fig.layout.yaxis2.range  # log10 units, around 2e-5 .. 2
    assert lo < math.log10(2e-5) and hi > math.log10(2)
    vals, text = chart_base.whole_log_ticks(10 ** lo, 10 ** hi)
    assert list(fig.layout.yaxis2.tickvals) == vals and list(fig.layout.yaxis2.ticktext) == text
    # the colour bar is log10 G: its ticks sit at log10 of the values they name
    vals, text = chart_base.whole_log_ticks(2e-5, 2)
    assert list(heat.colorbar.ticktext) == text
    assert np.allclose(heat.colorbar.tickvals, np.log10(vals))
    # a click target on every cell of the lower triangle, carrying its loss step t (1-based) and G[t, s]
    assert len(cells.x) == 21 and cells.marker.opacity == 0
    custom = np.asarray(cells.customdata, dtype=float)
    assert set(custom[:, 0]) == set(range(1, 7))
    assert all(math.isclose(g, G[int(t) - 1, int(x.split(":")[0]) - 1], rel_tol=1e-6)
               for (t, g), x in zip(custom, cells.x))
    assert list(heat.x)[:2] == ["1: a", "2: b"] and list(heat.y)[0] == "1: a→b"  # steps counted from 1
    assert len(inside_charts.gradient_flow_chart(G, curve, None, list("abcdef"), list("bcdefg")).data) == 3


def test_the_selected_step_is_framed_on_its_row_and_bold():
    G, curve = flow_arrays()
    fig = inside_charts.gradient_flow_chart(G, curve, None, list("abcdef"), list("bcdefg"), step=4)
    frame, = fig.layout.shapes
    assert (frame.yref, frame.y0, frame.y1) == ("y", 2.5, 3.5)  # row index 3: loss step t = 4
    assert list(fig.layout.yaxis.ticktext)[3] == "<b>4: d→e</b>"
    assert not inside_charts.gradient_flow_chart(G, curve, None, list("abcdef"), list("bcdefg")).layout.shapes


def test_surprise_html_colours_by_surprisal_and_escapes():
    out = inside_charts.surprise_html(["<", "a", " "], np.array([math.log(28), 0.0]), math.log(28))
    assert out.count("<span") == 3 and "&lt;" in out
    assert "rgba(214,39,40,1.00)" in out and "rgba(214,39,40,0.00)" in out
    assert "p = 0.036" in out  # exp(-log 28)


def test_step_heatmaps_follow_the_unit_order():
    steps = pd.DataFrame({"step": range(2), "input": list("ab"), "target": list("bc"), "predicted": list("bb"),
                          "p_target": [0.5, 0.1], "p_predicted": [0.5, 0.3], "loss": [0.7, 2.3],
                          "grad_norm": [1e-3, 1e-2]})
    hidden = np.array([[0.1, 0.2, 0.3], [0.4, 0.5, 0.6]])
    fig = inside_charts.step_heatmaps(hidden, np.full((2, 4), 0.25), list("<abc"), steps,
                                      unit_order=np.array([2, 0, 1]))
    assert np.allclose(np.asarray(fig.data[0].z, dtype=float), hidden[:, [2, 0, 1]])
    assert list(fig.data[0].x) == ["unit 2", "unit 0", "unit 1"]


def test_decay_curves_chart_overlays_epochs_on_a_log_axis():
    import torch

    from rnn_core.gradflow import decay_curve
    from rnn_core.model import RNN

    net = RNN(10, 16, "cpu", seed=0)
    X = torch.randint(0, 10, (4, 12), generator=torch.Generator().manual_seed(0))
    frames = []
    for epoch in (1, 5):
        with torch.no_grad():
            net.params[1].mul_(5.0)  # "training" grows W_hh
        curve = decay_curve(net, X)
        frames.append(pd.DataFrame({"epoch": epoch, "d": range(len(curve)), "mean": curve.numpy()}))
    fig = training_charts.decay_curves_chart(pd.concat(frames))
    assert [t.name for t in fig.data] == ["epoch 1", "epoch 5"] and len(fig.data[0].x) == 11
    assert fig.layout.yaxis.type == "log"
    # each tick says the value it marks ("0.01", "1e-4"), never plotly's minor "2" for 20
    for value, text in zip(fig.layout.yaxis.tickvals, fig.layout.yaxis.ticktext):
        assert float(text.replace(",", "")) == pytest.approx(value, rel=0.05)
    assert fig.data[1].y[-1] > fig.data[0].y[-1]  # a larger W_hh carries the gradient further back
    # no checkpoint yet
    assert not training_charts.decay_curves_chart(pd.DataFrame(columns=["epoch", "d", "mean"])).data


# ---------------------------------------------------------------- readable at 1024x768 and in lecture mode

CHARS = ["<unk>", " ", *"etaionshrdlmucfwgypbvkxzjq"]  # the lesson's 28 tokens, by frequency


def steps_frame(T: int) -> pd.DataFrame:
    text = ("the time traveller " * 20)[:T + 1]
    return pd.DataFrame({"step": range(1, T + 1), "input": list(text[:-1]), "target": list(text[1:]),
                         "predicted": list(text[1:]), "p_target": 0.5, "p_predicted": 0.5, "loss": 0.7,
                         "grad_norm": 1e-2})


def tick_sizes(fig) -> dict:
    """Every axis's and colour bar's tick font size (None: the template's, 18 px)."""
    sizes, layout = {}, fig.layout
    for name in ("xaxis", "yaxis", "xaxis2", "yaxis2"):
        axis = layout[name] if name in layout else None
        if axis is not None and axis.visible is not False and axis.showticklabels is not False:
            sizes[name] = axis.tickfont.size
    for trace in fig.data:
        if trace.type == "heatmap" and trace.coloraxis is None and trace.showscale is not False:
            sizes["colorbar"] = trace.colorbar.tickfont.size
    for name in {trace.coloraxis for trace in fig.data if getattr(trace, "coloraxis", None)}:
        sizes[name] = layout[name].colorbar.tickfont.size
    return sizes


@pytest.mark.parametrize("lecture", [False, True])
def test_the_p_next_labels_are_upright_fit_their_columns_and_are_16_px_in_lecture_mode(lecture):
    T = 39
    fig = inside_charts.step_heatmaps(np.zeros((T, 8)), np.full((T, 28), 1 / 28), CHARS, steps_frame(T), step=5,
                                      lecture=lecture)
    axis = fig.layout.xaxis2
    assert axis.tickangle == 0 and list(axis.tickvals) == list(axis.ticktext)
    size = axis.tickfont.size
    assert size >= 16 if lecture else size >= 12
    panel = (axis.domain[1] - axis.domain[0]) * inside_charts.PLOT_PX[lecture]  # px at 1024 px
    column = panel / 28
    assert all(0.6 * size * len(label) + 2 <= column for label in axis.ticktext)  # none overlaps its neighbour
    assert "<unk>" not in axis.ticktext and len(axis.ticktext) == 27  # every character but '<unk>'
    if lecture:
        assert all(s is not None and s >= 16 for s in tick_sizes(fig).values()), tick_sizes(fig)
        assert chart_base.lecture_figure(fig) is fig  # the builder and lecture_figure follow one rule: nothing left
    else:  # the lab figure through lecture_figure: its axes and shared colour axes' bars raised
        raised = tick_sizes(chart_base.lecture_figure(fig))
        assert raised.keys() == tick_sizes(fig).keys() and all(s >= 16 for s in raised.values()), raised
        assert axis.tickfont.size == 12  # the lab figure (cached, shared) is left alone


def test_word_tokens_are_labelled_every_kth_upright():
    words = [f"word{i}" for i in range(60)]
    ticks = inside_charts.token_ticks(words, 350, 14)
    k = words.index(ticks[1])
    assert ticks == words[::k] and k * 350 / 60 >= 0.6 * 14 * 6 + 2


def test_gradient_flow_ticks_are_16_px_in_lecture_mode_and_thinned_to_their_rows():
    T = 39
    G, curve = flow_arrays(T, 0.8)
    inputs = list(("the time traveller " * 3)[:T])
    fig = inside_charts.gradient_flow_chart(G, curve, None, inputs, inputs[1:] + ["x"], step=5, lecture=True)
    assert all(s is not None and s >= 16 for s in tick_sizes(fig).values()), tick_sizes(fig)
    assert fig.layout.legend.font.size >= 16
    shown = list(fig.layout.yaxis.tickvals)
    rows = [list(fig.data[0].y).index(label) for label in shown]
    gap = min(b - a for a, b in zip(rows, rows[1:]))
    assert gap * 400 / T >= 1.3 * 16  # each label has its 1.3 lines
    assert "<b>5: t→i</b>" in fig.layout.yaxis.ticktext  # the selected step, always labelled


@pytest.mark.parametrize("rows, px, selected, k", [(39, 10, 4, 3), (39, 30, 4, 1), (200, 5, 100, 5)])
def test_step_ticks_keep_the_selected_step_and_room_for_each_label(rows, px, selected, k):
    labels = [f"{i + 1}: a" for i in range(rows)]
    ticks = inside_charts.step_ticks(labels, selected, px, 16)
    index = [labels.index(v) for v in ticks["tickvals"]]
    assert selected in index and ticks["ticktext"][index.index(selected)] == f"<b>{labels[selected]}</b>"
    assert min(b - a for a, b in zip(index, index[1:])) >= k and ticks["ticktext"].count("<b>") <= 1
    assert sum(t.startswith("<b>") for t in ticks["ticktext"]) == 1


def test_the_next_token_legend_is_clear_of_the_title_and_the_axis_title():
    dist = pd.DataFrame({"token": list("ab ") * 3, "temperature": [0.5] * 3 + [1.0] * 3 + [2.0] * 3,
                         "p": [0.7, 0.2, 0.1, 0.5, 0.3, 0.2, 0.4, 0.3, 0.3]})
    fig = inside_charts.next_token_chart(dist)
    legend = fig.layout.legend
    assert legend.x > 1 and legend.xanchor == "left"  # right of the plotting area: not over a title
    assert legend.orientation != "h"
    assert "␣" in list(fig.data[0].x)


def test_the_surprise_text_frames_the_character_the_step_reads():
    out = inside_charts.surprise_html(list("abc d"), np.array([1.0, 2.0, 0.5, 0.1]), 3.0, step=4)
    spans = out.split("<span")[1:]
    framed = [i for i, span in enumerate(spans, start=1) if "outline:" in span]
    assert framed == [4] and 'data-step="selected"' in spans[3] and "&nbsp;" in spans[3]  # the space, step 4
    assert "outline:" not in inside_charts.surprise_html(list("ab"), np.array([1.0]), 3.0, step=5)

"""Chart builders: DataFrames/arrays in, plotly Figures out, no Streamlit."""
import ast
import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from dashboard import chart_base, exercise_charts, inside_charts, lesson_charts, training_charts, unrolled_charts

STEPS = pd.DataFrame({"step": range(4), "input": list("the "), "target": list("he t"), "predicted": list("hhet"),
                      "p_target": [0.5, 0.1, 0.2, 0.9], "p_predicted": [0.5, 0.3, 0.4, 0.9],
                      "loss": [0.7, 2.3, 1.6, 0.1], "grad_norm": [1e-3, 1e-2, 1e-1, 1.0]})
HISTORY = pd.DataFrame({"epoch": [1, 2, 3], "loss": [3.2, 2.9, 2.5], "perplexity": [24.5, 18.2, 12.2],
                        "tokens_per_s": [1e4] * 3, "grad_norm": [0.5, 1.5, 0.8], "clip_fraction": [0, 0.5, 0.1],
                        "seconds": [0.1] * 3, "sample": ["a", None, None]})


@pytest.mark.parametrize("module", [chart_base, lesson_charts, training_charts, inside_charts, exercise_charts,
                                    unrolled_charts], ids=lambda m: m.__name__)
def test_chart_modules_have_no_streamlit(module):
    tree = ast.parse(Path(module.__file__).read_text())
    imported = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, (ast.Import, ast.ImportFrom))
                for alias in getattr(node, "names", [])} | {
        (node.module or "").split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert "streamlit" not in imported


def test_every_builder_draws_with_the_large_font_template_no_builder_sets():
    figs = [training_charts.training_curves(HISTORY, 28, 10), training_charts.gradient_chart(HISTORY, 1.0, 10),
            inside_charts.step_timeline(STEPS, np.ones((4, 8)), 0), exercise_charts.update_sizes({"W_hh": 1e-3}),
            lesson_charts.vocab_frequency(pd.DataFrame({"index": [0, 1], "token": ["<unk>", " "], "count": [0, 3]}))]
    for fig in figs:
        assert fig.layout.template.layout.font.size == chart_base.FONT_SIZE
        assert fig.layout.template.layout.title.font.size == chart_base.FONT_SIZE + 4
    for module in (lesson_charts, training_charts, inside_charts, exercise_charts, unrolled_charts):
        # chart_base.figure makes them all; template= would validate the whole template again (2.4 ms a figure)
        source = Path(module.__file__).read_text()
        assert "go.Figure(" not in source and "make_subplots(" not in source
        assert not re.search(r"\btemplate=", source)  # hovertemplate= and texttemplate= are a trace's texts


def test_vocab_frequency_draws_the_used_tokens_most_frequent_first_with_a_visible_space():
    fig = lesson_charts.vocab_frequency(pd.DataFrame({"index": [0, 1, 2, 3], "token": ["<unk>", " ", "e", "t"],
                                               "count": [0, 10, 5, 7]}))
    (bars,) = fig.data
    assert list(bars.x) == ["␣", "t", "e"] and list(bars.y) == [10, 7, 5]  # <unk>, never seen, is left out


def test_minibatch_map_colours_each_position_by_the_minibatch_that_reads_it():
    spans = pd.DataFrame({"minibatch": [0, 0, 1, 1], "row": [0, 1, 0, 1],
                          "start": [0, 50, 5, 55], "stop": [5, 55, 10, 60]})
    row0, row1 = np.asarray(lesson_charts.minibatch_map(spans, 100, "map").data[0].z, dtype=float)  # a line per batch row
    assert (row0[0:5] == 0).all() and (row0[5:10] == 1).all() and np.isnan(row0[10:]).all()
    assert (row1[50:55] == 0).all() and (row1[55:60] == 1).all()
    assert np.isnan(row1[:50]).all() and np.isnan(row1[60:]).all()  # positions no minibatch reads stay blank


def test_one_hot_heatmap_has_one_column_per_token_in_index_order():
    fig = lesson_charts.one_hot_heatmap(np.eye(3, 5), list("abc"), list("<abcd"), "one-hot")
    (heat,) = fig.data
    assert list(heat.x) == list("<abcd") and np.array_equal(np.asarray(heat.z, dtype=float), np.eye(3, 5))


def test_matrix_heatmap_draws_the_line_between_the_two_blocks_it_joins():
    fig = lesson_charts.matrix_heatmap(np.ones((3, 5)), "XH", split=1, axis="col", col_labels=list("xhhhh"))
    (line,) = fig.layout.shapes
    assert line.x0 == line.x1 == 0.5  # between column 0 (X) and columns 1.. (H)


def test_training_curves_show_uniform_and_perfect_before_the_first_epoch():
    fig = training_charts.training_curves(None, 28, 10)
    assert all(len(trace.x) == 0 for trace in fig.data)
    assert {s.y0 for s in fig.layout.shapes} >= {28, 1}  # perplexity of uniform guessing over |V| = 28, and 1
    assert any("uniform guessing" in a.text for a in fig.layout.annotations)


def test_gradient_chart_shows_each_epochs_norm_clipped_share_and_theta():
    fig = training_charts.gradient_chart(HISTORY, 1.0, 10)
    clipped, norm = fig.data
    assert list(clipped.y) == [0, 50, 10] and list(norm.y) == [0.5, 1.5, 0.8]  # clip_fraction in %, ‖g‖
    assert [s.y0 for s in fig.layout.shapes] == [1.0] and "θ = 1" in fig.layout.annotations[0].text


def test_step_timeline_labels_steps_by_their_input_and_plots_loss_unit_and_gradient():
    fig = inside_charts.step_timeline(STEPS, np.array([0.1, -0.2, 0.3, 0.0]), 2)
    loss, unit, grad = fig.data
    assert list(loss.x) == ["0: t", "1: h", "2: e", "3: ␣"] and list(loss.y) == list(STEPS["loss"])
    assert list(unit.y) == [0.1, -0.2, 0.3, 0.0] and list(grad.y) == list(STEPS["grad_norm"])
    assert any("Hidden unit 2" in a.text for a in fig.layout.annotations)


def test_next_token_chart_has_one_bar_series_per_temperature():
    fig = inside_charts.next_token_chart(pd.DataFrame({"token": list("ab") * 2, "temperature": [0.5] * 2 + [1.0] * 2,
                                                "p": [0.9, 0.1, 0.7, 0.3]}))
    assert [(t.name, list(t.x), list(t.y)) for t in fig.data] == [("T = 0.5", ["a", "b"], [0.9, 0.1]),
                                                                  ("T = 1", ["a", "b"], [0.7, 0.3])]


def test_training_curves_mark_perfect_and_uniform_perplexity():
    fig = training_charts.training_curves(HISTORY, 28, 10)
    texts = " ".join(a.text for a in fig.layout.annotations)
    assert "|V| = 28" in texts and "1: perfect" in texts
    assert list(fig.data[1].y) == [24.5, 18.2, 12.2]


def test_activation_html_escapes_and_colours():
    out = inside_charts.activation_html(["<", "a"], np.array([0.5, -0.25]))
    assert "&lt;" in out and "rgba(214,39,40,1.00)" in out and "rgba(31,119,180,0.50)" in out


@pytest.mark.parametrize("lo, hi", [(1, 262_144), (2.5, 60), (1e-12, 1), (0.8, 1.2), (3, 7), (1.02, 30)])
def test_log_ticks_say_the_values_they_mark(lo, hi):
    vals, text = chart_base.whole_log_ticks(lo, hi)
    assert 2 <= len(vals) <= 8 and vals == sorted(vals)
    assert all(lo * 0.999 <= v <= hi * 1.001 for v in vals)
    for v, label in zip(vals, text):  # a label read back is its tick's value: "20" is never written "2"
        assert float(label.replace(",", "")) == pytest.approx(v, rel=1e-9)


@pytest.mark.parametrize("text, width", [("X W_xh + H W_hh  (two products)", 240), ("[W_xh ; W_hh]: (1+4)×4", 210),
                                         ("两次乘法减去一次乘法（独立色标）", 240), ("corpus position (token index)", 230)])
def test_a_title_is_wrapped_to_the_width_it_is_drawn_at_and_keeps_its_words(text, width):
    size = chart_base.FONT_SIZE + 4
    lines = chart_base.wrap(text, width, size).split("<br>")
    assert all(chart_base.text_px(line, size) <= width for line in lines)
    assert len(lines) >= 2 and chart_base.text_px(text, size) > width  # each of these is too wide for one line
    assert "".join(lines).replace(" ", "") == text.replace(" ", "")  # nothing lost, a word is never split


def test_a_chinese_title_breaks_before_its_bracket_not_inside_it():
    assert chart_base.wrap("语料中的位置（词元索引）", 230, 22) == "语料中的位置<br>（词元索引）"


def test_text_px_is_about_the_browsers_width():
    # widths Chromium drew at 1024x768 (Liberation Sans): "corpus position (token index)" at 22 px is 282 px
    assert 282 <= chart_base.text_px("corpus position (token index)", 22) <= 282 * 1.06
    assert 233 <= chart_base.text_px("[W_xh ; W_hh]: (1+4)×4", 22) <= 233 * 1.06
    assert chart_base.text_px("困惑度", 20) == 60  # a CJK character is 1 em


def test_heatmap_numbers_only_where_each_cell_holds_its_number():
    small = np.array([[0.5, -1.25], [2.0, 0.0]])
    narrow = lesson_charts.matrix_heatmap(np.random.default_rng(0).normal(size=(3, 5)), "XH", width=250)
    wide = lesson_charts.matrix_heatmap(small, "W", width=400)
    assert narrow.data[0].text is None  # 5 columns in ~70 px of plot: "-1.08" would run into "0.57"
    assert [list(r) for r in wide.data[0].text] == [["0.50", "-1.25"], ["2.00", "0.00"]]
    assert lesson_charts.cells_hold_numbers(np.array([["-1.08"] * 2]), 100, 14)
    assert not lesson_charts.cells_hold_numbers(np.array([["-1.08"] * 3]), 100, 14)


def test_heatmap_titles_are_wrapped_to_the_chart_and_the_top_margin_holds_them():
    fig = lesson_charts.matrix_heatmap(np.ones((5, 4)), "[W_xh ; W_hh]: (1+4)×4", width=lesson_charts.MATRIX_PX)
    lines = fig.layout.title.text.split("<br>")
    assert len(lines) == 2 and all(chart_base.text_px(x, 22) <= lesson_charts.MATRIX_PX for x in lines)
    assert fig.layout.margin.t >= 2 * 22 + 20


def test_tensor_sizes_axis_reaches_the_largest_tensor_and_says_its_values():
    from rnn_core.model import shape_trace
    trace = shape_trace(28, 32, 35, 512)
    fig = lesson_charts.tensor_sizes(trace)
    x = fig.layout.xaxis
    assert x.type == "log" and 10 ** x.range[1] >= 512 * 512  # W_hh's 262,144 elements in range
    assert max(fig.data[0].x) == 512 * 512
    for v, label in zip(x.tickvals, x.ticktext):
        assert float(label.replace(",", "")) == v


def test_every_log_axis_of_a_run_says_the_values_it_marks():
    epochs = [1, 2, 5, 10, 20, 50, 100, 200, 500]
    spectra = pd.DataFrame({"epoch": epochs, "radius": np.linspace(0.5, 1.5, 9), "sigma_max": np.linspace(1, 3, 9)})
    curves = pd.DataFrame({"epoch": [1] * 3 + [500] * 3, "d": [0, 1, 2] * 2, "mean": [1, 0.1, 0.01, 1, 0.5, 0.2]})
    history = pd.DataFrame({"epoch": epochs, "perplexity": np.geomspace(28, 1.02, 9)})
    axes = [training_charts.gradient_chart(HISTORY, 1.0, 10).layout.yaxis,
            training_charts.spectrum_chart(spectra).layout.xaxis,
            training_charts.decay_curves_chart(curves).layout.yaxis,
            *(lambda f: (f.layout.xaxis, f.layout.yaxis))(training_charts.perplexity_marker(history, 5, epochs))]
    for axis in axes:
        assert axis.type == "log" and len(axis.tickvals) >= 2
        for v, label in zip(axis.tickvals, axis.ticktext):  # "20" is never written "2"
            assert float(label.replace(",", "")) == pytest.approx(v)
    assert list(axes[1].ticktext) == ["1", "10", "100"]  # epochs 1 to 500: the decades, not "1 2 5 10 2 5 100"


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_legends_sit_under_the_x_axis_title_in_a_margin_that_holds_them(lang):
    epochs = [1, 2, 5, 10, 20, 50, 100, 200, 500]
    curves = pd.DataFrame({"epoch": np.repeat(epochs, 3), "d": [0, 1, 2] * 9, "mean": [1.0, 0.5, 0.2] * 9})
    for fig in (training_charts.gradient_chart(HISTORY, 1.0, 10, lang=lang),
                training_charts.decay_curves_chart(curves, lang=lang)):
        legend = fig.layout.legend
        assert legend.yref == "container" and legend.y == 0 and legend.yanchor == "bottom"
        # ticks and the x axis title (~70 px) above the legend's rows
        assert fig.layout.margin.b >= 70 + 20
    many = training_charts.decay_curves_chart(curves, lang=lang, width=chart_base.HALF_PX)
    assert many.layout.margin.b > training_charts.decay_curves_chart(curves, lang=lang).layout.margin.b


def test_a_diverged_runs_infinite_numbers_leave_the_charts_drawable():
    history = HISTORY.assign(loss=[3.2, math.inf, math.nan], perplexity=[24.5, math.inf, math.nan],
                             grad_norm=[0.5, math.inf, math.nan])
    curves = training_charts.training_curves(history, 28, 10)
    grads = training_charts.gradient_chart(history, None, 10)
    assert math.isfinite(curves.layout.yaxis2.range[1]) and all(math.isfinite(v) for v in grads.layout.yaxis.range)


def test_lecture_mode_draws_every_tick_label_at_16_px_or_more():
    history = pd.DataFrame({"epoch": [1, 2, 5], "perplexity": [20.0, 10.0, 5.0]})
    small = training_charts.perplexity_marker(history, 2, [1, 2, 5])  # 14 px ticks in lab mode
    assert small.layout.font.size < chart_base.LECTURE_TICK
    big = chart_base.lecture_figure(small)
    assert big.layout.xaxis.tickfont.size >= 16 and big.layout.yaxis.tickfont.size >= 16
    assert small.layout.xaxis.tickfont.size is None  # the figure built (and cached) for lab mode is left alone
    heat = chart_base.lecture_figure(lesson_charts.matrix_heatmap(np.ones((2, 2)), "W").update_traces(
        colorbar=dict(tickfont=dict(size=10))))
    assert heat.data[0].colorbar.tickfont.size == 16
    large = training_charts.training_curves(HISTORY, 28, 10)
    assert chart_base.lecture_figure(large) is large  # nothing under 16 px: not copied

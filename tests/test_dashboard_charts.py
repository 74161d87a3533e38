"""Chart builders: DataFrames/arrays in, plotly Figures out, no Streamlit."""
import ast
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest

from dashboard import charts

STEPS = pd.DataFrame({"step": range(4), "input": list("the "), "target": list("he t"), "predicted": list("hhet"),
                      "p_target": [0.5, 0.1, 0.2, 0.9], "p_predicted": [0.5, 0.3, 0.4, 0.9],
                      "loss": [0.7, 2.3, 1.6, 0.1], "grad_norm": [1e-3, 1e-2, 1e-1, 1.0]})
HISTORY = pd.DataFrame({"epoch": [1, 2, 3], "loss": [3.2, 2.9, 2.5], "perplexity": [24.5, 18.2, 12.2],
                        "tokens_per_s": [1e4] * 3, "grad_norm": [0.5, 1.5, 0.8], "clip_fraction": [0, 0.5, 0.1],
                        "seconds": [0.1] * 3, "sample": ["a", None, None]})


def test_charts_module_has_no_streamlit():
    tree = ast.parse(Path(charts.__file__).read_text())
    imported = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, (ast.Import, ast.ImportFrom))
                for alias in getattr(node, "names", [])} | {
        (node.module or "").split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert "streamlit" not in imported


@pytest.mark.parametrize("build", [
    lambda: charts.vocab_frequency(pd.DataFrame({"index": [0, 1, 2], "token": ["<unk>", " ", "e"],
                                                 "count": [0, 10, 5]})),
    lambda: charts.minibatch_map(pd.DataFrame({"minibatch": [0, 0, 1, 1], "row": [0, 1, 0, 1],
                                               "start": [0, 50, 5, 55], "stop": [5, 55, 10, 60]}), 100, "map"),
    lambda: charts.one_hot_heatmap(np.eye(3, 5), list("abc"), list("<abcd"), "one-hot"),
    lambda: charts.matrix_heatmap(np.ones((3, 5)), "XH", split=1, axis="col", col_labels=list("xhhhh")),
    lambda: charts.difference_heatmap(np.full((3, 4), 1e-7), "diff"),
    lambda: charts.training_curves(HISTORY, 28, 10),
    lambda: charts.training_curves(None, 28, 10),
    lambda: charts.gradient_chart(HISTORY, 1.0, 10),
    lambda: charts.step_heatmaps(np.zeros((4, 8)), np.full((4, 5), 0.2), ["<unk>", " ", "t", "h", "e"], STEPS),
    lambda: charts.step_timeline(STEPS, np.array([0.1, -0.2, 0.3, 0.0]), 2),
    lambda: charts.next_token_chart(pd.DataFrame({"token": list("ab") * 2, "temperature": [0.5] * 2 + [1.0] * 2,
                                                  "p": [0.9, 0.1, 0.7, 0.3]})),
])
def test_builders_return_figures_with_data(build):
    fig = build()
    assert isinstance(fig, go.Figure) and fig.data
    assert fig.layout.template.layout.font.size == charts.FONT_SIZE


def test_training_curves_mark_perfect_and_uniform_perplexity():
    fig = charts.training_curves(HISTORY, 28, 10)
    texts = " ".join(a.text for a in fig.layout.annotations)
    assert "|V| = 28" in texts and "1: perfect" in texts
    assert list(fig.data[1].y) == [24.5, 18.2, 12.2]


def test_activation_html_escapes_and_colours():
    out = charts.activation_html(["<", "a"], np.array([0.5, -0.25]))
    assert "&lt;" in out and "rgba(214,39,40,1.00)" in out and "rgba(31,119,180,0.50)" in out

"""One step t in every view: ?t= (1-based, as on the unrolled page) frames the same step in Inside's Steps rows,
gradient-flow row and surprise text, each view's sentence states that step's numbers, a bad ?t= is named and
replaced, the step survives a page turn between the unrolled page and Inside (cut to a shorter text, said), and a
click on a chart's point selects the step the point belongs to."""
import json
import re

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from dashboard import linked_step
from dashboard.formatting import numbers
from tests.plotly_json import values
from tests.test_dashboard_pages import FILES, assert_clean, charts, open_app, texts


def framed_row(figure: dict) -> int:
    """The 1-based step of the row a figure frames (its one shape, on the category axis y)."""
    shape, = figure["layout"]["shapes"]
    assert shape["yref"] == "y" and shape["y1"] - shape["y0"] == 1
    return int(shape["y0"] + 0.5) + 1


def framed_char(html: str) -> int | None:
    """The 1-based position of the framed character in the surprise text's HTML."""
    spans = re.findall(r"<span [^>]*>", html)
    framed = [i for i, span in enumerate(spans, start=1) if 'data-step="selected"' in span]
    return framed[0] if framed else None


def views(at):
    steps, flow = charts(at)
    surprise = next(h.proto.body for h in at.get("html") if "−log p" in h.proto.body)
    return steps, flow, surprise


def the_text(at) -> str:
    return at.text_input(key="text").value


@pytest.mark.parametrize("t", [1, 4, 9])
def test_t_selects_the_same_step_in_every_view_of_inside(t):
    at = open_app("inside", t=t)
    assert_clean(at)
    assert at.slider(key="t").value == t and at.slider(key="t").proto.query_param_key == "t"
    steps, flow, surprise = views(at)
    assert framed_row(steps) == t and framed_row(flow) == t
    text = the_text(at)
    bold = [label for label in values(steps["layout"]["yaxis"]["ticktext"]) if label.startswith("<b>")]
    assert bold == [f"<b>{t}: {text[t - 1].replace(' ', '␣')}</b>"]  # step t reads character t
    flow_labels = values(flow["data"][0]["y"])
    assert flow_labels[t - 1].startswith(f"{t}: ")
    assert framed_char(surprise) == t  # the scored passage is longer than 9 characters
    said = texts(at.markdown)
    assert f"step **t = {t}** reads “{text[t - 1].replace(' ', '␣')}”" in said
    assert f"Step t = {t} of the scored text reads" in said


def test_each_sentence_states_the_numbers_of_the_step_drawn():
    at = open_app("inside", t=6)
    steps_fig, flow, _ = views(at)
    row = next(m.value for m in at.markdown if m.value.startswith("Framed: step"))
    p_pred, p_true = numbers(row)[1], numbers(row)[2]
    probs = np.asarray(values(steps_fig["data"][1]["z"]))  # (steps, vocab) as drawn
    assert p_pred == pytest.approx(float(probs[5].max()), rel=0.06)
    target = values(steps_fig["data"][2]["x"])[5]  # the ○ of step 6: the true next token
    column = values(steps_fig["layout"]["xaxis2"]["categoryarray"]).index(target)
    assert p_true == pytest.approx(float(probs[5, column]), rel=0.06)
    said = next(m.value for m in at.markdown if m.value.startswith("Framed: row t = 6"))
    G = np.asarray(values(flow["data"][0]["customdata"]), dtype=float)
    g, g1 = numbers(said)[2], numbers(said)[4]  # "row t = 6, the loss at step 6. ‖∂ℓ_t/∂H_t‖ = g ... = g1 at H_1"
    assert g == pytest.approx(G[5, 5], rel=0.06) and g1 == pytest.approx(G[5, 0], rel=0.06)


@pytest.mark.parametrize("raw, used", [("99", 39), ("0", 1), ("2.5", 2), ("abc", 1)])
def test_a_bad_t_is_named_and_replaced_in_the_url(raw, used):
    at = open_app("inside", t=raw)
    assert_clean(at)
    steps = len(the_text(at)) - 1
    used = min(used, steps)
    assert at.slider(key="t").value == used
    assert f"t={raw}" in texts(at.warning) and f"t = {used}" in texts(at.warning)
    assert at.query_params.get("t") in ((None if used == 1 else str(used)), [str(used)])
    steps_fig, flow, _ = views(at)
    assert framed_row(steps_fig) == used and framed_row(flow) == used


def test_the_step_survives_page_turns_between_the_unrolled_page_and_inside():
    at = open_app("unrolled", t=5)
    assert at.slider(key="t").value == 5
    at.switch_page(FILES["inside"]).run()
    assert_clean(at)
    assert at.slider(key="t").value == 5
    steps, flow, surprise = views(at)
    assert framed_row(steps) == 5 and framed_row(flow) == 5 and framed_char(surprise) == 5
    at.slider(key="t").set_value(8).run()
    at.switch_page(FILES["unrolled"]).run()
    assert_clean(at)
    assert at.slider(key="t").value == 8
    chain = charts(at)[0]
    assert "<b>t = 8</b>" in {w for trace in chain["data"] for w in trace.get("text") or () if isinstance(w, str)}
    assert at.query_params.get("t") in ("8", ["8"])


def test_a_step_past_a_shorter_text_takes_its_last_step_and_says_so():
    at = open_app("unrolled", t=13)  # "time traveller": 13 steps
    at.switch_page(FILES["inside"]).run()
    at.text_input(key="text").set_value("time").run()  # 3 steps
    assert_clean(at)
    assert at.slider(key="t").value == 3
    assert "t = 13 is past the last step of this text: t = 3" in texts(at.info)
    steps, flow, _ = views(at)
    assert framed_row(steps) == 3 and framed_row(flow) == 3
    at.slider(key="t").set_value(2).run()
    assert "is past the last step" not in texts(at.info)  # moved since: the note goes


def test_the_unrolled_page_cuts_a_step_from_a_longer_text_and_says_so():
    at = open_app("inside", t=30)  # the corpus's first 40 characters: 39 steps
    at.switch_page(FILES["unrolled"]).run()  # "time traveller": 13 steps
    assert_clean(at)
    assert at.slider(key="t").value == 13
    assert "t = 30 is past the last step of this text: t = 13" in texts(at.info)
    chain = charts(at)[0]
    assert "<b>t = 13</b>" in {w for trace in chain["data"] for w in trace.get("text") or () if isinstance(w, str)}


def test_the_chinese_page_says_the_step_and_labels_its_tables():
    at = open_app("inside", t=2, lang="zh")
    assert_clean(at)
    said = texts(at.markdown)
    assert "框出的是时间步 **t = 2**" in said and "评分文本的时间步 t = 2" in said
    top_k = next(d for d in at.dataframe if "rank" in d.value.columns)
    config = json.loads(top_k.proto.columns)
    headers = {c: config[c]["label"] for c in ("step", "input", "true next", "p(true)", "rank")}
    assert headers == {"step": "时间步", "input": "输入", "true next": "真实的下一个", "p(true)": "p(真实)",
                       "rank": "排名"}
    assert "␣" in set(top_k.value["input"]) and " " not in set(top_k.value["input"])
    twin = next(d for d in at.dataframe if "max |difference|" in d.value.columns)
    assert {json.loads(twin.proto.columns)[c]["label"] for c in twin.value.columns} == {"比较项", "形状", "最大 |值|",
                                                                                      "最大 |差|"}
    assert list(twin.value["compared"][:3]) == ["输出 O（时间步，词表）", "最终隐状态 H_T（1，隐藏单元）", "损失"]


# ---------------------------------------------------------------- a click selects the step

def test_a_point_names_its_step():
    assert linked_step.step_of_points([{"x": "e", "y": "12: e", "customdata": 12}], 20) == 12
    assert linked_step.step_of_points([{"x": "3: m", "y": "7: m→e", "customdata": [7.0, 0.2]}], 20) == 7
    assert linked_step.step_of_points([{"x": "e", "y": "12: e"}], 20) == 12  # no customdata: the label
    assert linked_step.step_of_points([{"y": "12: e", "customdata": 12}], 10) is None  # not a step of this text
    assert linked_step.step_of_points([], 10) is None


def clicked(figure: dict, trace: int, index: int) -> dict:
    """The point a click on `index` of trace `trace` reports, as Streamlit's selection state holds it."""
    data = figure["data"][trace]
    custom = values(data["customdata"])[index]
    return {"curve_number": trace, "point_index": index, "x": values(data["x"])[index],
            "y": values(data["y"])[index], "customdata": custom}


def test_the_charts_points_carry_their_steps():
    at = open_app("inside")
    steps, flow, _ = views(at)
    for trace in (2, 3):  # ○ true next and × top prediction, one a step
        assert linked_step.step_of_points([clicked(steps, trace, 6)], 39) == 7
    cells = flow["data"][-1]  # a click target on every cell of the lower triangle
    for index in (0, 10, len(values(cells["x"])) - 1):
        point = clicked(flow, len(flow["data"]) - 1, index)
        assert linked_step.step_of_points([point], 39) == int(point["y"].split(":")[0])
    at = open_app("unrolled", t=2)
    chain = charts(at)[0]
    targets = chain["data"][-1]
    assert values(targets["customdata"]) == [1, 2, 3, 4, 5] * 3  # the five columns shown: label, token, prediction
    assert linked_step.step_of_points([clicked(chain, len(chain["data"]) - 1, 3)], 13) == 4


SCRIPT = """
import streamlit as st
from dashboard import linked_step

st.session_state["chart"] = {"selection": {"points": POINTS}}
linked_step.on_click("chart", 13)()
st.write(st.session_state.get("t"), st.session_state.get("_linked_t"))
"""


@pytest.mark.parametrize("points, step", [([{"y": "4: m", "customdata": 4}], 4), ([], None)])
def test_a_click_sets_the_step_the_slider_and_the_next_page_read(points, step):
    at = AppTest.from_string(SCRIPT.replace("POINTS", repr(points)), default_timeout=60).run()
    assert_clean(at)
    assert at.session_state["t"] == step if step else "t" not in at.session_state


def test_the_per_step_table_is_headed_in_the_pages_language():
    from dashboard import i18n, inside_tables
    from rnn_core.inspection import inspect_sequence
    from rnn_core.model import RNN
    from rnn_core.vocab import Vocab

    vocab = Vocab(list("time traveller"))
    net = RNN(len(vocab), 4, device="cpu")
    steps = inspect_sequence(net, vocab, list("time traveller")).steps_frame()
    assert set(inside_tables.STEP_HEADERS) == set(steps.columns)  # every column has a header
    zh = {c: i18n.t(key, "zh") for c, key in inside_tables.STEP_HEADERS.items()}
    assert zh["target"] == "目标" and zh["loss"] == "损失" and zh["predicted"] == "最可能的预测"
    assert not any(re.search(r"[A-Za-z]{3,}", label) for label in zh.values())

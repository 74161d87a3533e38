"""The recurrence unrolled: its numbers are the lesson's step and output layer's, its gradients autograd's, the
picture draws one column per step shown, the sentences state the numbers drawn, and the page opens from a link."""
import math

import pytest
import torch
from torch.nn import functional as F

from dashboard import unrolled_charts as charts
from dashboard import unrolled_explain as explain
from dashboard.formatting import numbers
from rnn_core.model import PARAM_NAMES, rnn_forward, rnn_output, rnn_step
from rnn_core.reference import REFERENCE_ID
from rnn_core.runs import REFERENCE_ROOT, RunStore
from rnn_core.unrolled import TINY_ID, tiny_run, unroll, untrained_params
from tests.test_dashboard_pages import assert_clean, charts as page_charts, open_app, texts

TEXT = "time traveller"
TOLERANCE = {torch.float32: 1e-6, torch.float64: 1e-12}


def words(figure) -> list[str]:
    """The text a figure writes outside its cells (its scatter traces' text)."""
    return [text for trace in figure.data if trace.type == "scatter" for text in (trace.text or ())]


@pytest.fixture(scope="module")
def tiny():
    run = tiny_run()
    assert run is not None, "no tiny model in data/reference/unrolled/: python -m rnn_core.unrolled makes it"
    return run


@pytest.fixture(scope="module")
def tiny_params(tiny):
    return tiny.checkpoint(tiny.checkpoints[-1])


def reference_steps(params: dict, vocab, tokens: list[str], activation: str, dtype):
    """H_1..H_T by rnn_step on one-hot rows, and O by the lesson's rnn_forward: (H (T, h), O (T, V))."""
    p = [params[name].to(dtype) for name in PARAM_NAMES]
    x = torch.tensor(vocab[tokens[:-1]])
    X = F.one_hot(x, len(vocab)).to(dtype)  # (T, V)
    H = torch.zeros(1, p[1].shape[0], dtype=dtype)
    hs = []
    for X_t in X:
        H = rnn_step(X_t[None], H, p[0], p[1], p[2], activation)
        hs.append(H)
    O, (H_T,) = rnn_forward(X[:, None, :], (torch.zeros(1, p[1].shape[0], dtype=dtype),), p, activation)
    return torch.cat(hs), O, H_T


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("activation", ["tanh", "relu"])
def test_the_unrolled_numbers_are_the_lessons_step_and_output(tiny, tiny_params, dtype, activation):
    tokens = list(TEXT)
    u = unroll(tiny_params, tiny.vocab, tokens, activation, dtype)
    H, O, H_T = reference_steps(tiny_params, tiny.vocab, tokens, activation, dtype)
    tol = TOLERANCE[dtype]
    assert u.H.dtype == dtype and u.H.abs().max() > 0.1  # the comparison means something
    assert (u.H - H).abs().max() <= tol and (u.H[-1] - H_T[0]).abs().max() <= tol
    assert (u.O - O).abs().max() <= tol * max(1.0, float(O.abs().max()))
    assert (u.O - rnn_output(u.H, u.params["W_hq"], u.params["b_q"])).abs().max() == 0
    # the three terms, each the product it names, and φ of their sum is H_t
    p = {k: v.to(dtype) for k, v in tiny_params.items()}
    X = F.one_hot(u.index, len(tiny.vocab)).to(dtype)
    H_prev = torch.cat([torch.zeros(1, u.hidden, dtype=dtype), H[:-1]])
    assert (u.XW - X @ p["W_xh"]).abs().max() <= tol
    assert (u.HW - H_prev @ p["W_hh"]).abs().max() <= tol and u.HW[0].abs().max() == 0  # H_0 = 0
    assert (u.Z - (u.XW + u.HW + u.b_h)).abs().max() == 0
    phi = torch.tanh if activation == "tanh" else torch.relu
    assert (phi(u.Z) - u.H).abs().max() == 0
    assert (u.P - torch.softmax(O, dim=1)).abs().max() <= tol
    y = torch.tensor(tiny.vocab[tokens[1:]])
    assert (u.loss - F.cross_entropy(O, y, reduction="none")).abs().max() <= 10 * tol


def test_shapes_and_what_each_step_reads(tiny, tiny_params):
    u = unroll(tiny_params, tiny.vocab, list(TEXT))
    T, V, h = len(TEXT) - 1, len(tiny.vocab), 8
    assert u.steps == T and u.hidden == h
    assert u.XW.shape == u.HW.shape == u.Z.shape == u.H.shape == (T, h) and u.b_h.shape == (h,)
    assert u.O.shape == u.P.shape == (T, V) and u.loss.shape == (T,) and u.grad.shape == (T, T)
    assert u.inputs == list(TEXT[:-1]) and u.targets == list(TEXT[1:])
    assert u.index.tolist() == tiny.vocab[list(TEXT[:-1])]
    assert torch.allclose(u.P.sum(dim=1), torch.ones(T))
    assert u.top_tokens(3, 3)[0][0] == u.tokens[int(u.predicted[2])]


def test_the_backward_numbers_are_autograds(tiny, tiny_params):
    """G[t, s] = ‖∂ℓ_t/∂H_s‖ (rnn_core.gradflow's sweep) against one autograd backward per loss step."""
    tokens = list(TEXT)
    u = unroll(tiny_params, tiny.vocab, tokens, dtype=torch.float64)
    p = {k: v.double().requires_grad_() for k, v in tiny_params.items()}
    x, y = torch.tensor(tiny.vocab[tokens[:-1]]), torch.tensor(tiny.vocab[tokens[1:]])
    for t in (1, 5, u.steps):
        H = torch.zeros(1, u.hidden, dtype=torch.float64)
        hs = []
        for s in range(t):
            H = rnn_step(x[s:s + 1], H, p["W_xh"], p["W_hh"], p["b_h"])
            H.retain_grad()
            hs.append(H)
        loss = F.cross_entropy(rnn_output(hs[-1], p["W_hq"], p["b_q"]), y[t - 1:t])
        loss.backward()
        expected = [float(h_s.grad.norm()) for h_s in hs]
        assert u.gradient_row(t) == pytest.approx(expected, rel=1e-9)
        assert math.isnan(float(u.grad[0, -1])) or t == 1  # ℓ_1 does not reach H_T
    assert u.gradient_row(u.steps)[0] < u.gradient_row(u.steps)[-1] / 100  # it vanishes going back


def test_a_large_model_shows_the_units_with_the_largest_activation():
    run = RunStore(reference_root=REFERENCE_ROOT).load(REFERENCE_ID)
    if run is None:
        pytest.skip("no reference run in data/reference/")
    u = unroll(run.checkpoint(run.checkpoints[-1]), run.vocab, list(TEXT))
    units = u.top_units(4, 8)
    assert u.hidden == 512 and len(units) == 8 and units == sorted(units)
    assert float(u.H[3, units].abs().min()) >= float(u.H[3].abs().topk(8).values.min())
    figure = charts.chain_figure(u, 4, charts.window(4, u.steps, 5), units)
    assert {f"u{j}" for j in units} <= set(words(figure))
    sentence = explain.units(u, 4, units)
    assert numbers(sentence)[:3] == [512, 8, 4] and numbers(sentence)[3:11] == units


def test_the_untrained_model_is_the_tiny_model_before_its_first_epoch(tiny):
    from rnn_core.engines import make_model
    from rnn_core.model import formula_params

    fresh = formula_params(make_model(tiny.settings.engine, len(tiny.vocab), tiny.settings.hidden, "cpu",
                                      seed=tiny.settings.seed))
    drawn = untrained_params(len(tiny.vocab), tiny.settings.hidden, tiny.settings.seed)
    assert all(torch.equal(drawn[k], fresh[k]) for k in PARAM_NAMES)


def test_the_tiny_model_is_shipped_read_only_and_the_lesson_stays_the_reference(tiny, time_machine):
    from rnn_core.reference import evaluate_run

    assert tiny.id == TINY_ID and tiny.origin == "reference" and tiny.settings.hidden == 8
    assert evaluate_run(tiny) == pytest.approx(tiny.extra["eval_perplexity"], rel=1e-4)
    assert tiny.extra["eval_perplexity"] < 12  # it learnt something: 28 is guessing
    assert RunStore(reference_root=REFERENCE_ROOT).reference_ids() == [REFERENCE_ID]  # not listed beside it


# ---------------------------------------------------------------- the picture and its sentences

@pytest.mark.parametrize("t, steps, count, first", [(1, 13, 5, 1), (5, 13, 5, 1), (6, 13, 5, 6), (13, 13, 5, 9),
                                                    (2, 3, 5, 1), (11, 13, 5, 9)])
def test_the_window_is_the_page_of_steps_that_holds_the_step(t, steps, count, first):
    shown = charts.window(t, steps, count)
    assert shown[0] == first and t in shown and len(shown) == min(count, steps) and shown[-1] <= steps


@pytest.mark.parametrize("t", [1, 3, 7, 13])
def test_the_chain_draws_one_column_per_step_shown(tiny, tiny_params, t):
    u = unroll(tiny_params, tiny.vocab, list(TEXT))
    shown = charts.window(t, u.steps, 5)
    figure = charts.chain_figure(u, t, shown, list(range(8)))
    labels = words(figure)
    assert [s for s in range(1, u.steps + 1) if f"t = {s}" in labels or f"<b>t = {s}</b>" in labels] == list(shown)
    cells = figure.data[0]
    assert cells.type == "heatmap" and len(cells.x) == 4 * len(shown) + 1  # edges of 3 cells and a gap per step
    # the column of step s holds its numbers: H_{s-1} W_hh, X_s W_xh, b_h over H_s's pre-activation and H_s
    col = 4 * (shown.index(t))
    z = torch.tensor(cells.z, dtype=torch.float64)
    assert torch.allclose(z[:8, col], u.HW[t - 1].double()) and torch.allclose(z[:8, col + 1], u.XW[t - 1].double())
    assert torch.allclose(z[9:, col], u.Z[t - 1].double()) and torch.allclose(z[9:, col + 2], u.H[t - 1].double())
    assert f"<b>t = {t}</b>" in labels  # the highlighted one
    weights = charts.weights_figure(u, t, list(range(8)))
    assert [trace.z.shape for trace in weights.data] == [(28, 8), (28, 8), (28, 1), (8, 8), (1, 8)]


def test_small_numbers_are_shown_in_units_of_a_power_of_ten(tiny):
    u = unroll(untrained_params(len(tiny.vocab), 8, 0), tiny.vocab, list(TEXT))
    figure = charts.chain_figure(u, 2, charts.window(2, u.steps, 5), list(range(8)))
    labels = words(figure)
    e, digits = charts.number_format(figure.data[0].z)
    assert e < 0 and any(f"×{charts.power_text(e)}" in label for label in labels)
    assert max(len(text) for row in figure.data[0].text for text in row) <= 5  # "-2.17" fits a cell


@pytest.mark.parametrize("t", [1, 2, 3, 8, 13])
def test_the_sentences_state_the_numbers_drawn(tiny, tiny_params, t):
    u = unroll(tiny_params, tiny.vocab, list(TEXT))
    said = numbers(explain.step(u, t))
    unit = int(u.H[t - 1].abs().argmax())
    expected = [t, int(u.index[t - 1]), int(u.index[t - 1]), unit, float(u.H[t - 1, unit]), u.p_true(t),
                float(u.loss[t - 1])]
    if int(u.predicted[t - 1]) != int(u.target_index[t - 1]):
        expected.append(float(u.P[t - 1].max()))
    assert said == pytest.approx(expected, rel=0.06, abs=0.006)  # num() keeps two significant digits
    row = u.gradient_row(t)
    back = numbers(explain.backward(u, t))
    if t == 1:  # "ℓ_1 reaches only H_1, with ‖∂ℓ_1/∂H_1‖ = g"
        assert back[:-1] == [1, 1, 1, 1] and back[-1] == pytest.approx(row[0], rel=0.06)
    else:  # "‖∂ℓ_t/∂H_t‖ = g at step t itself, and g1 at H_1, d steps back: ratio of its size, a factor f"
        ratio = row[0] / row[-1]
        assert back == pytest.approx([row[-1], t, row[0], 1, t - 1, ratio, ratio ** (1 / (t - 1))], rel=0.06)


# ---------------------------------------------------------------- the page

def test_the_page_opens_on_the_tiny_model_at_step_one():
    at = open_app("unrolled")
    assert_clean(at)
    assert at.title[0].value.startswith("3 · The recurrence, unrolled")
    assert at.session_state["unrolled_model"] == "tiny" and at.slider(key="t").value == 1
    assert "8 hidden units, 200 epochs" in texts(at.success)
    assert len(page_charts(at)) == 2


def test_a_link_with_t_selects_that_step_and_the_sentences_are_its_numbers(tiny, tiny_params):
    at = open_app("unrolled", t=3, unrolled_text="time traveller")
    assert_clean(at)
    assert at.slider(key="t").value == 3 and at.slider(key="t").proto.query_param_key == "t"
    u = unroll(tiny_params, tiny.vocab, list(TEXT))
    shown = texts(at.markdown)
    assert explain.step(u, 3) in shown and explain.backward(u, 3) in shown
    chain = page_charts(at)[0]
    assert "<b>t = 3</b>" in {text for trace in chain["data"] for text in trace.get("text") or () if
                              isinstance(text, str)}


def test_a_step_beyond_the_text_is_named_and_the_last_step_used():
    at = open_app("unrolled", t=99, unrolled_text="time")
    assert_clean(at)
    assert at.slider(key="t").value == 3
    assert "t=99" in texts(at.warning) and "t = 3" in texts(at.warning)


def test_play_moves_the_step_along_the_chain_and_pause_stops_it():
    at = open_app("unrolled", t=12)
    at.button(key="unrolled_play_button").click().run()
    assert_clean(at)
    assert at.session_state["unrolled_play"] and at.slider(key="t").value == 12
    at.run()  # what the timer does every 1.5 s
    assert at.slider(key="t").value == 13
    at.run()
    assert at.slider(key="t").value == 1  # after the last step, the first
    at.button(key="unrolled_play_button").click().run()
    at.run()
    assert not at.session_state["unrolled_play"] and at.slider(key="t").value == 1


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_the_lessons_model_shows_the_units_that_matter_and_says_so(lang):
    if not RunStore(reference_root=REFERENCE_ROOT).reference_ids():
        pytest.skip("no reference run in data/reference/")
    at = open_app("unrolled", lang=lang, unrolled_model="lesson", t=5)
    assert_clean(at)
    said = texts(at.caption)
    assert ("512 hidden units" if lang == "en" else "512 个隐藏单元") in said
    assert len(page_charts(at)) == 2


def test_the_untrained_model_says_it_is_untrained_in_chinese():
    at = open_app("unrolled", lang="zh", unrolled_model="untrained")
    assert_clean(at)
    assert at.title[0].value.startswith("3 · 循环的展开")
    assert "未训练" in texts(at.warning)


def test_the_text_comes_from_the_link_and_a_page_turn_keeps_the_language():
    at = open_app("unrolled", lang="zh", unrolled_text="the time machine", t=4)
    assert_clean(at)
    box = at.text_input(key="unrolled_text")
    assert box.value == "the time machine" and box.proto.query_param_key == "unrolled_text"
    assert at.slider(key="t").max == len("the time machine") - 1
    at.button(key="page_next").click().run()  # the bound ?t= and ?unrolled_text= stay behind, the rest goes along
    assert_clean(at)
    assert at.title[0].value.startswith("4 · ") and at.query_params.get("lang") in ("zh", ["zh"])
    assert "t" not in at.query_params

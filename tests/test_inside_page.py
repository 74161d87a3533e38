"""The Inside page on unusual models: word tokens, one hidden unit, nn.RNN's engine, a planted unit."""
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

APP = str(Path(__file__).resolve().parents[1] / "dashboard" / "Home.py")


def inside(**query) -> AppTest:
    """The Inside page with an untrained model for the sidebar's settings (where a model picker exists)."""
    at = AppTest.from_file(APP, default_timeout=60)
    at.query_params.update({k: str(v) for k, v in query.items()})
    at.run()
    at.switch_page("views/inside.py").run()
    if any(r.key == "model" for r in at.radio):
        at.radio(key="model").set_value("untrained").run()
    assert not at.exception, [e.value for e in at.exception]
    return at


@pytest.mark.parametrize("query", [
    {"token": "word", "corpus": "toy_english", "hidden": 8},
    {"hidden": 1},
    {"corpus": "parentheses", "engine": "torch", "hidden": 24},
], ids=["words", "one-unit", "parentheses-torch"])
def test_every_view_works_on_unusual_models(query):
    at = inside(**query)
    assert "UNTRAINED" in "\n".join(w.value for w in at.warning)
    assert len(at.tabs) == 5 and len([c for c in at.get("plotly_chart")]) == 2
    text = "\n".join(str(m.value) for m in at.markdown)
    assert "spectral radius" in text and "Perplexity" in text and "Largest difference" in text
    twin = next(d.value for d in at.dataframe if "max |difference|" in d.value.columns)
    assert (twin["max |difference|"] < 1e-5).all()
    if query["hidden"] == 1:
        assert not any(s.key == "inside_unit" for s in at.slider)  # one unit: nothing to choose
    else:
        assert at.slider(key="inside_unit").max == query["hidden"] - 1


def test_a_new_string_updates_every_view():
    at = inside(hidden=32)
    before = "\n".join(str(m.value) for m in at.markdown)
    at.text_input[0].set_value("it was a dark and stormy night").run()
    assert not at.exception
    after = "\n".join(str(m.value) for m in at.markdown)
    assert "over the 29 steps t" in after and after != before
    twin = next(d.value for d in at.dataframe if "max |difference|" in d.value.columns)
    assert twin.loc[0, "shape"] == "(29, " + str(twin.loc[0, "shape"]).split(", ")[1]


def test_a_one_token_string_is_one_error_sentence():
    at = inside(hidden=16)
    at.text_input[0].set_value("a").run()
    assert not at.exception and len(at.error) == 1 and "at least two tokens" in at.error[0].value


@pytest.mark.parametrize("mode, smallest", [("lecture", 16), ("lab", 12)])
def test_lecture_mode_draws_the_tick_labels_at_16_px_or_more(mode, smallest):
    from tests.test_dashboard_pages import charts, open_app

    at = open_app("inside", mode=mode)
    assert not at.exception
    steps, flow = charts(at)
    sizes = [steps["layout"][a]["tickfont"]["size"] for a in ("xaxis2", "yaxis")]
    sizes += [flow["layout"][a]["tickfont"]["size"] for a in ("xaxis", "yaxis", "xaxis2", "yaxis2")]
    assert min(sizes) >= smallest and (mode == "lab") == (min(sizes) < 16)
    assert steps["layout"]["xaxis2"]["tickangle"] == 0  # upright

"""AppTest: every dashboard page renders without exception and shows its key elements; sliders change results."""
import itertools
import json
import re
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

import rnn_core
from dashboard.pages import PAGES as APP_PAGES

APP = str(Path(__file__).resolve().parents[1] / "dashboard" / "Home.py")
# The app's pages by name ("" is Home), and the file each runs
PAGES = [path or "home" for path in APP_PAGES]
FILES = {path or "home": file for path, (file, _) in APP_PAGES.items()}
LESSON_STEPS = ["data", "shapes", "identity", "training", "inside", "generate"]  # each shows its formula and code


def open_app(page: str = "home", **query) -> AppTest:
    """Run the app (with URL query parameters) and switch to a page."""
    at = AppTest.from_file(APP, default_timeout=60)
    at.query_params.update({k: str(v) for k, v in query.items()})
    at.run()
    if page != "home":
        at.switch_page(FILES[page]).run()
    return at


def charts(at: AppTest, curve: bool = False) -> list[dict]:
    """The plotly figures on the page, as dicts (the checkpoint scrubber's perplexity curve only with `curve`)."""
    return [json.loads(c.proto.spec) for c in at.get("plotly_chart")
            if curve or not c.proto.id.endswith("-epoch_curve")]


def texts(elements) -> str:
    return "\n".join(str(e.value) for e in elements)


def assert_clean(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]


# What each page must show, besides its title and (except Home) a plotly chart.
def check_home(at):
    assert len(at.get("page_link")) >= 6
    assert any(m.label == "Found" for m in at.metric)
    assert "Time Machine" in texts(at.success) + texts(at.warning)


def check_data(at):
    vocab = at.dataframe[0].value
    assert list(vocab.columns) == ["index", "token", "count"] and len(vocab) > 20
    assert len(charts(at)) >= 3  # frequencies, sequential map, random map
    assert "X (input)" in at.dataframe[1].value.columns


def check_shapes(at):
    assert "Passed" in texts(at.success) and not at.error
    assert "W_hh" in set(at.dataframe[0].value["name"])


def check_unrolled(at):
    assert at.session_state["unrolled_model"] == "tiny" and at.slider(key="t").value == 1
    assert len(charts(at)) == 2  # the chain and the weights it reads (tests/test_unrolled.py checks the numbers)


def check_identity(at):
    diff = next(m for m in at.metric if m.label == "max |difference|")
    assert float(diff.value) < 1e-5
    assert len(charts(at)) == 5


def check_training(at):
    labels = [b.label for b in at.button]
    assert "Start" in labels and "Stop" in labels
    assert at.get("progress")


def check_inside(at):
    assert "UNTRAINED" in texts(at.warning) or at.success  # says which model it shows
    assert [t.label for t in at.tabs] == ["Steps", "Gradient flow", "Hidden units", "Surprise & top-k",
                                          "nn.RNN twin"]
    figures = charts(at)  # H_t and probabilities heatmaps (one figure); gradient-flow matrix and decay curve
    assert len(figures) == 2
    assert [t["type"] for t in figures[0]["data"]] == ["heatmap", "heatmap", "scatter", "scatter"]
    flow = figures[1]
    assert [t["type"] for t in flow["data"]][:2] == ["heatmap", "scatter"]  # and the bound, when below 1 a step
    assert flow["layout"]["yaxis2"]["type"] == "log"
    assert all(re.fullmatch(r"1e-?\d+|\d[\d,]*(\.\d+)?", t) for t in flow["layout"]["yaxis2"]["ticktext"])  # values
    text = texts(at.markdown)
    assert "10 steps back" in text and "spectral radius" in text
    assert ("must vanish" in text) != ("does not force the gradient to vanish" in text)
    assert "usually largest near the end" not in text
    twin = next(d.value for d in at.dataframe if "max |difference|" in d.value.columns)
    # float32 rounding: 1e-5 of the compared values' size (a trained model's logits reach tens)
    assert (twin["max |difference|"] < 1e-5 * twin["largest |value|"].clip(lower=1)).all() and len(twin) == 9
    top_k = next(d.value for d in at.dataframe if "rank" in d.value.columns)
    assert (top_k["rank"] >= 1).all() and len(top_k) > 100  # the corpus passage, scored
    unit = at.slider(key="inside_unit")
    finder = next(d.value for d in at.dataframe if "best unit" in d.value.columns)
    assert unit.value == finder["best unit"].iloc[0]  # starts at the unit that matches a feature best
    assert f"Unit {unit.value} " in texts(at.markdown)
    shown = [h.proto.body for h in at.get("html")]
    other = 0 if unit.value else 1
    unit.set_value(other).run()
    assert_clean(at)
    assert f"Unit {other} " in texts(at.markdown)
    assert [h.proto.body for h in at.get("html")] != shown, "the coloured passage does not follow the unit"


def check_generate(at):
    assert len(at.code) >= 2  # greedy and sampled side by side
    assert at.slider(key="generate_temperature")


def check_exercises(at):
    from dashboard import exercises

    chosen = at.selectbox(key="ex_exercise")
    assert len(chosen.options) == len(exercises.EXERCISES) and chosen.value in exercises.EXERCISES  # a card each
    assert any(b.label == "Run the pair" and not b.disabled for b in at.button)
    assert any(exercises.tr(f"ex.{chosen.value}.q", "en")[:40] in m.value for m in at.markdown)  # its question


CHECKS = {name: globals()[f"check_{name}"] for name in PAGES}


@pytest.mark.parametrize("page", PAGES)
def test_page_renders(page):
    at = open_app(page)
    assert_clean(at)
    assert at.title, "no title"
    if page != "home":
        assert charts(at), f"{page}: no plotly chart"
    if page in LESSON_STEPS:
        assert at.latex, f"{page}: no formula"
        assert any("lesson's code" in e.label for e in at.expander), f"{page}: no lesson code"
    CHECKS[page](at)


def test_query_params_set_the_sidebar():
    at = open_app("shapes", batch=8, steps=10, hidden=64, lr=0.5, partition="random", corpus="counting")
    assert_clean(at)
    assert (at.slider(key="batch").value, at.slider(key="steps").value, at.slider(key="hidden").value) == (8, 10, 64)
    assert at.number_input(key="lr").value == 0.5
    assert at.radio(key="partition").value == "random"
    assert at.selectbox(key="corpus").value == "counting"
    shapes = dict(zip(at.dataframe[0].value["name"], at.dataframe[0].value["shape"]))
    assert shapes["X"] == "(8, 10)" and shapes["W_hh"] == "(64, 64)"


def test_hidden_slider_changes_the_shape_table():
    at = open_app("shapes")
    before = dict(zip(at.dataframe[0].value["name"], at.dataframe[0].value["shape"]))
    at.slider(key="hidden").set_value(64).run()
    assert_clean(at)
    after = dict(zip(at.dataframe[0].value["name"], at.dataframe[0].value["shape"]))
    assert before["W_hh"] == "(512, 512)" and after["W_hh"] == "(64, 64)"
    assert "Passed" in texts(at.success) and "(32, 64)" in texts(at.success)


def test_batch_slider_changes_the_minibatch_map():
    at = open_app("data")
    per_epoch = next(m for m in at.metric if m.label == "Minibatches").value
    at.slider(key="batch").set_value(8).run()
    assert_clean(at)
    assert next(m for m in at.metric if m.label == "Minibatches").value != per_epoch
    assert len(at.dataframe[1].value) == 8  # first X and Y: one line per batch row


def test_reset_restores_the_lesson_settings():
    at = open_app("home", batch=8, steps=10, hidden=64, lr=2, epochs=7, clip=10)
    next(b for b in at.sidebar.button if b.label.startswith("Reset")).click().run()
    assert_clean(at)
    values = {k: at.sidebar.slider(key=k).value for k in ("batch", "steps", "hidden")}
    values |= {k: at.sidebar.number_input(key=k).value for k in ("lr", "epochs")}
    values["clip"] = at.sidebar.selectbox(key="clip").value
    assert values == {"batch": 32, "steps": 35, "hidden": 512, "lr": 1.0, "epochs": 500, "clip": "1"}


def test_identity_sliders_resize_the_blocks():
    at = open_app("identity")
    at.slider(key="identity_h").set_value(6).run()
    assert_clean(at)
    xh = charts(at)[0]
    assert "6" in xh["layout"]["title"]["text"]


def test_corpus_too_short_is_one_error_sentence_not_a_traceback():
    at = open_app("training", batch=128, steps=100)
    assert_clean(at)
    assert len(at.error) == 1 and "too few" in at.error[0].value
    assert next(b for b in at.button if b.label == "Start").disabled


def test_bad_upload_says_so_and_falls_back():
    at = open_app("data", corpus="upload")
    assert "choose a text file of at most 5 MB" in texts(at.sidebar.warning)
    at.sidebar.file_uploader[0].upload("binary.txt", b"\x00\x01\x02" * 100, "text/plain").run()
    assert_clean(at)
    assert "binary" in texts(at.sidebar.error)
    assert charts(at)


def test_upload_is_used_as_the_corpus():
    at = open_app("data", corpus="upload", batch=4, steps=5)
    text = ("the quick brown fox jumps over the lazy dog " * 40).encode()
    at.sidebar.file_uploader[0].upload("fox.txt", text, "text/plain").run()
    assert_clean(at)
    assert not at.sidebar.error
    assert "fox.txt" in texts(at.markdown)
    assert set(at.dataframe[0].value["token"]) >= set("thequickbrownfx")


def test_missing_time_machine_falls_back_to_a_builtin_corpus(monkeypatch, tmp_path):
    def offline(*args, **kwargs):
        raise urllib.error.URLError("no network in this test")

    monkeypatch.setenv("RNN_LAB_DATA", str(tmp_path))  # a data folder without the book
    monkeypatch.setattr(urllib.request, "urlopen", offline)  # and a machine without a network
    st.cache_resource.clear()
    try:
        at = open_app("home")
        assert_clean(at)
        assert "not available" in texts(at.warning)
        assert "Toy English" in texts(at.info) and "could not be downloaded" in texts(at.info)
        assert "Toy English" in texts(at.sidebar.warning)
    finally:
        st.cache_resource.clear()  # the real Time Machine for the other tests


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="a CUDA GPU is present")
def test_asking_for_cuda_without_a_gpu_is_an_error_not_a_crash():
    at = open_app("shapes", device="cuda")
    assert_clean(at)
    assert "CUDA" in texts(at.sidebar.error)
    assert charts(at)


@pytest.mark.parametrize("query", [
    {"batch": 1, "steps": 1, "hidden": 1},  # sliders with one value to choose from
    {"token": "word", "corpus": "toy_english", "hidden": 8},
    {"corpus": "parentheses", "partition": "random", "engine": "torch"},
    {"corpus": "nonsense", "token": "bytes", "batch": 999},  # bad URL values fall back to the defaults
], ids=["tiny", "words", "parentheses", "bad-url"])
def test_every_page_survives_unusual_settings(query):
    at = open_app("home", **query)
    assert_clean(at)
    for page in PAGES[1:]:
        at.switch_page(FILES[page]).run()
        assert_clean(at)
        assert charts(at), f"{page}: no plotly chart with {query}"


def test_refused_upload_leaves_the_previous_corpus_in_use():
    at = open_app("data", corpus="counting")
    counting_vocab = set(at.dataframe[0].value["token"])
    at.sidebar.selectbox(key="corpus").set_value("upload").run()
    at.sidebar.file_uploader[0].upload("binary.txt", b"\x00\x01\x02" * 100, "text/plain").run()
    assert_clean(at)
    assert "binary" in texts(at.sidebar.error)
    assert "Counting" in texts(at.sidebar.warning)  # says which corpus is still in use
    assert set(at.dataframe[0].value["token"]) == counting_vocab


def test_upload_too_short_for_one_minibatch_is_refused_with_the_minimum():
    at = open_app("data", corpus="counting", batch=32, steps=35)
    at.sidebar.selectbox(key="corpus").set_value("upload").run()
    at.sidebar.file_uploader[0].upload("short.txt", b"a short text, far too short for a minibatch\n",
                                       "text/plain").run()
    assert_clean(at)
    error = texts(at.sidebar.error)
    assert "needs at least 1,156" in error and "lower the batch size" in error
    assert "Counting" in texts(at.sidebar.warning)


def test_empty_upload_is_refused():
    at = open_app("data", corpus="counting")
    at.sidebar.selectbox(key="corpus").set_value("upload").run()
    at.sidebar.file_uploader[0].upload("empty.txt", b"", "text/plain").run()
    assert_clean(at)
    assert "empty" in texts(at.sidebar.error)


def test_non_utf8_upload_is_read_with_a_warning():
    at = open_app("data", corpus="upload", batch=4, steps=5)
    text = ("caf\xe9 au lait et cr\xe8me br\xfbl\xe9e " * 40).encode("latin-1")
    at.sidebar.file_uploader[0].upload("latin.txt", text, "text/plain").run()
    assert_clean(at)
    assert not at.sidebar.error
    assert "Latin-1" in texts(at.sidebar.warning)
    assert "latin.txt" in texts(at.markdown)


def test_word_vocabulary_over_the_cap_is_refused_before_training():
    letters = "abcdefghijklmnopqrstuvwxyz"
    words = " ".join(a + b + c + d for a, b, c, d in itertools.islice(itertools.product(letters, repeat=4), 25_000))
    words = words.encode()  # 25,000 distinct words (cleaning keeps letters only)
    at = open_app("training", corpus="upload", token="word", batch=4, steps=5, hidden=16)
    at.sidebar.file_uploader[0].upload("words.txt", words, "text/plain").run()
    assert_clean(at)
    assert "vocabulary" in texts(at.error) and "limit" in texts(at.error)
    assert next(b for b in at.button if b.label == "Start").disabled


def test_streamlit_run_serves_home_as_an_app_that_warms_up(monkeypatch):
    """`streamlit run dashboard/Home.py` finds the st.App (whose start-up hook warms the caches), and after
    the warm-up the first session's corpus needs no tokenizing."""
    from streamlit.web.server.app_discovery import discover_asgi_app

    from dashboard import compute, corpora, settings

    found = discover_asgi_app(Path(APP))
    assert found.is_asgi_app and found.app_name == "app"
    st.cache_resource.clear()
    compute.warm_up()

    def no_tokenizing(*args, **kwargs):
        raise AssertionError("tokenized again: the warm-up did not fill the cache")

    monkeypatch.setattr(rnn_core, "tokenize_corpus", no_tokenizing)  # a spy on the public function the pages call
    info = corpora.corpus_info(settings.LESSON)
    assert info.used in ("time_machine", settings.FALLBACK_CORPUS) and len(info.vocab) > 2


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_home_says_where_the_settings_are_in_each_mode(lang):
    """Lab mode has the settings in the sidebar; lecture mode has no sidebar, its settings are above each page."""
    from dashboard.i18n import t

    lab, lecture = open_app("home", lang=lang), open_app("home", lang=lang, mode="lecture")
    assert_clean(lab)
    assert_clean(lecture)
    assert t("home.controls_lab", lang) in texts(lab.markdown) and lab.sidebar.slider
    assert t("home.controls_lecture", lang) in texts(lecture.markdown) and not lecture.sidebar.slider
    assert t("lecture.settings", lang) in t("home.controls_lecture", lang)  # names the expander it means
    assert t("lecture.settings", lang) in [e.label for e in lecture.expander]


def test_the_vocabulary_chart_says_plainly_when_it_shows_every_token():
    chars = open_app("data")
    vocab = chars.dataframe[0].value
    occurring = int((vocab["count"] > 0).sum())
    title = charts(chars)[0]["layout"]["title"]["text"].replace("<br>", " ")  # wrapped to the chart's width
    assert f"all {occurring} tokens" in title and "top" not in title, title
    zh = open_app("data", lang="zh")
    assert f"全部 {occurring} 个" in charts(zh)[0]["layout"]["title"]["text"].replace("<br>", "")
    words = open_app("data", token="word", corpus="toy_english")
    shown = len(charts(words)[0]["data"][0]["x"])
    title = charts(words)[0]["layout"]["title"]["text"].replace("<br>", " ")
    assert shown == 40 and f"top 40 of {int((words.dataframe[0].value['count'] > 0).sum())}" in title, title


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_generates_samples_by_checkpoint_line_up_under_their_heading(lang):
    """The epoch column of the samples after each checkpoint: its heading (two columns a Chinese character) and
    the epochs end in the same column, so the │ separators form one line."""
    from dashboard.formatting import display_width

    at = open_app("generate", lang=lang, model="reference", generate_length="10")
    assert_clean(at)
    block = next(c.value for c in at.code if "│" in c.value).splitlines()
    assert len(block) > 3
    assert len({display_width(line.split("│")[0]) for line in block}) == 1, block

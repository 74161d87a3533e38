"""Every value the app reads from a link: a value that is not used as it is gets a warning that names it and the
value used instead, and that value is the one the widget holds and the page computes with."""
import re

import pytest

from dashboard import settings
from dashboard.settings import LESSON, index_value, url_value
from tests.test_dashboard_pages import assert_clean, open_app, texts

LONG = "the time machine " * 20  # 340 characters: over the text boxes' 200

# Per parameter: (page, parameter, the link's values that are not used as they are, the value used instead, how
# the warning writes it). Each bad value is a case of its own.
BAD = [
    ("data", "batch", ["7.9", "", "1e3", "nan", "inf", "-5", "abc"], 32, "32"),
    ("data", "steps", ["0"], 35, "35"),
    ("data", "seed", ["-1", "99999999999999999999", "1.5"], 0, "0"),
    ("data", "lang", ["xx"], "en", "en (English)"),
    ("data", "mode", ["evil"], "lab", "lab"),
    ("data", "corpus", ["../etc/passwd"], "time_machine", "time_machine (The Time Machine (H. G. Wells))"),
    ("data", "token", ["bytes"], "char", "char"),
    ("data", "clean", ["none"], "lesson", "lesson"),
    ("data", "partition", ["shuffled"], "sequential", "sequential"),
    ("data", "device", ["gpu"], "auto", "auto"),
    ("shapes", "hidden", ["1.5", "5000"], 512, "512"),
    ("shapes", "shapes_row", ["99", "1.5", "-1"], 0, "0"),
    ("training", "lr", ["inf", "nan", "0", "1e308"], 1.0, "1"),
    ("training", "epochs", ["7.9"], 500, "500"),
    ("training", "engine", ["quantum"], LESSON.engine, LESSON.engine),
    ("training", "clip", ["abc", "0", "-2"], "1", "1"),
    ("identity", "identity_n", ["99"], 3, "3"),
    ("identity", "identity_h", ["2.5"], 4, "4"),
    ("identity", "identity_f64", ["yes"], False, "false"),
    ("generate", "generate_temperature", ["0"], 1.0, "1.0"),
    ("generate", "generate_temperature", ["0.15"], 0.1, "0.1"),  # the slider shows %.1f
    ("generate", "generate_length", ["5"], 50, "50"),
    ("generate", "generate_seed", ["-1"], 0, "0"),
    ("exercises", "exercise", ["evil"], "embedding", "embedding (1 · One-hot or a learnable embedding)"),
]
CASES = [(page, param, raw, used, shown) for page, param, bad, used, shown in BAD for raw in bad]

# The session key of a parameter's widget where it is not the parameter's name
WIDGET_KEYS = {"exercise": "ex_exercise", "variation": "ex_variation_clip"}

# The sidebar's settings: each is the field of the Settings the page computed with
SETTINGS_FIELDS = {"batch", "steps", "hidden", "lr", "epochs", "seed", "corpus", "token", "clean", "partition",
                   "device", "engine", "clip"}


def url_warnings(at) -> list[str]:
    """The warnings about the link's values (the catalogue's url.bad and url.too_long)."""
    return [w.value for w in at.warning if w.value.startswith("The link's")]


def used_in(warning: str, param: str) -> str:
    """The value a url.bad warning says is used."""
    found = re.search(rf"using {re.escape(param)} = (.*) instead\.$", warning)
    assert found, warning
    return found.group(1)


@pytest.mark.parametrize("page,param,raw,used,shown", CASES, ids=[f"{c[0]}-{c[1]}={c[2][:12]}" for c in CASES])
def test_a_bad_url_value_is_named_with_the_value_used_and_that_value_is_used(page, param, raw, used, shown):
    at = open_app(page, **{param: raw})
    assert_clean(at)
    warnings = [w for w in url_warnings(at) if f"`{param}={raw}`" in w]
    assert len(warnings) == 1, texts(at.warning)
    assert used_in(warnings[0], param) == shown
    value = at.session_state[WIDGET_KEYS.get(param, param)]  # the widget's value
    assert value == pytest.approx(used) if isinstance(used, float) else value == used
    if param in SETTINGS_FIELDS:  # and the settings the page computed with
        computed = getattr(at.session_state["lab_context"].settings, param)
        if param == "clip":
            computed = f"{computed:g}"
        assert computed == pytest.approx(used) if isinstance(used, float) else computed == used
    assert at.query_params.get(param) in (None, str(used).lower() if isinstance(used, bool) else str(used))


def test_shapes_with_a_fractional_hidden_size_computes_with_the_size_it_names():
    at = open_app("shapes", hidden="1.5")
    assert_clean(at)
    assert used_in(url_warnings(at)[0], "hidden") == "512"
    assert at.slider(key="hidden").value == 512
    shapes = dict(zip(at.dataframe[0].value["name"], at.dataframe[0].value["shape"]))
    assert shapes["W_hh"] == "(512, 512)" and "(32, 512)" in texts(at.success)  # the state's shape, checked


def test_data_with_a_fractional_batch_cuts_minibatches_of_the_size_it_names():
    at = open_app("data", batch="7.9")
    assert_clean(at)
    assert used_in(url_warnings(at)[0], "batch") == "32"
    assert at.slider(key="batch").value == 32
    assert "have shape `(32, 35)`" in texts(at.markdown)  # the first minibatch X, Y
    lesson = open_app("data")
    per_epoch = next(m for m in lesson.metric if m.label == "Minibatches").value
    assert next(m for m in at.metric if m.label == "Minibatches").value == per_epoch


@pytest.mark.parametrize("raw", ["-1", "99999", "2.5", "x"])
def test_a_bad_hidden_unit_is_named_with_the_unit_shown(raw):
    at = open_app("inside", inside_unit=raw)
    assert_clean(at)
    warnings = [w for w in url_warnings(at) if f"`inside_unit={raw}`" in w]
    assert len(warnings) == 1, texts(at.warning)
    unit = at.slider(key="inside_unit")
    assert used_in(warnings[0], "inside_unit") == str(unit.value) and 0 <= unit.value <= unit.max
    assert f"Unit {unit.value} " in texts(at.markdown)  # the unit the page describes
    assert not any("inside_unit" in texts(tab.warning) for tab in at.tabs)  # above the page, not in a closed tab


@pytest.mark.parametrize("page,param", [("inside", "text"), ("generate", "prefix")])
def test_a_text_longer_than_its_box_is_cut_with_a_warning_naming_what_is_used(page, param):
    at = open_app(page, **{param: LONG})
    assert_clean(at)
    warnings = [w for w in url_warnings(at) if f"{param} is {len(LONG)} characters long" in w]
    assert len(warnings) == 1, texts(at.warning)
    used = LONG[:settings.TEXT_MAX_CHARS]
    assert f"first {len(used)}, `{used}`" in warnings[0]
    assert at.text_input(key=param).value == used
    assert at.query_params[param] == used


def test_an_unknown_variation_is_named_with_the_one_shown():
    at = open_app("exercises", exercise="clip", variation="evil")
    assert_clean(at)
    warnings = [w for w in url_warnings(at) if "`variation=evil`" in w]
    assert len(warnings) == 1 and used_in(warnings[0], "variation").startswith("off (")
    assert at.session_state["ex_variation_clip"] == "off"
    assert at.selectbox(key="ex_exercise").value == "clip" and not [w for w in url_warnings(at) if "exercise=" in w]


def test_the_warning_is_in_the_pages_language():
    at = open_app("data", lang="zh", batch="7.9", corpus="nope")
    assert_clean(at)
    shown = texts(at.warning)
    assert "链接中的 `batch=7.9` 超出范围或无法识别：改用 batch = 32。" in shown
    assert "`corpus=nope`" in shown and "《时间机器》" in shown
    assert at.slider(key="batch").value == 32


def test_a_crafted_value_is_quoted_as_code_and_cut():
    link = "[click](http://example.com) $x$ " + "9" * 100
    at = open_app("data", corpus=link)
    assert_clean(at)
    warning = url_warnings(at)[0]
    assert f"`corpus={link[:60]}…`" in warning  # inside a code span: no link, no formula, 60 characters
    assert at.selectbox(key="corpus").value == "time_machine"


def test_the_warning_stays_until_the_setting_is_changed():
    at = open_app("data", batch="7.9")
    at.run()
    assert len(url_warnings(at)) == 1
    at.slider(key="batch").set_value(8).run()
    assert_clean(at)
    assert not url_warnings(at)


GOOD = [
    ("data", {"batch": "8", "steps": "10", "seed": "3", "corpus": "counting", "partition": "random", "lang": "en",
              "token": "char", "clean": "lesson", "device": "cpu"}),
    ("shapes", {"hidden": "64", "batch": "1e1", "shapes_row": "3"}),
    ("training", {"lr": "0.5", "epochs": "20", "clip": "off", "engine": "torch", "mode": "lecture"}),
    ("identity", {"identity_n": "5", "identity_d": "2", "identity_f64": "TRUE"}),
    ("inside", {"text": "the time machine", "inside_unit": "4"}),
    ("generate", {"prefix": "the time", "generate_temperature": "0.5", "generate_length": "120",
                  "generate_seed": "7"}),
    ("exercises", {"exercise": "clip", "variation": "off"}),
]


@pytest.mark.parametrize("page,query", GOOD, ids=[g[0] for g in GOOD])
def test_good_url_values_give_no_warning_and_are_used(page, query):
    at = open_app(page, **query)
    assert_clean(at)
    assert not url_warnings(at), url_warnings(at)
    for param, raw in query.items():
        key = WIDGET_KEYS.get(param, param)
        good, value = url_value(param, raw) if param in settings.URL_SPECS else (True, raw)
        if param in ("shapes_row", "inside_unit"):
            value = int(raw)
        assert good and at.session_state[key] == value, param


@pytest.mark.parametrize("key,raw,expected", [
    ("batch", "8", (True, 8)), ("batch", " 8 ", (True, 8)), ("batch", "1e1", (True, 10)), ("batch", "8.0", (True, 8)),
    ("batch", "7.9", (False, 32)), ("batch", "", (False, 32)), ("batch", "nan", (False, 32)),
    ("batch", "-inf", (False, 32)), ("batch", "129", (False, 32)), ("seed", "2147483648", (False, 0)),
    ("lr", "1e-3", (True, 0.001)), ("lr", "0.0009", (False, 1.0)), ("lr", "inf", (False, 1.0)),
    ("generate_temperature", "2.55", (False, 2.5)), ("generate_temperature", "3", (True, 3.0)),
    ("generate_temperature", "0.30000000000000004", (True, 0.30000000000000004)),  # a slider's own 0.1 + 0.2
    ("lr", "0.0012345", (True, 0.0012345)),  # a number box holds what was typed, whatever it shows
    ("clip", "OFF", (True, "OFF")), ("clip", "1e400", (False, "1")), ("clip", "0.5", (True, "0.5")),
    ("identity_f64", "False", (True, False)), ("identity_f64", "1", (False, False)),
    ("mode", "Lecture", (False, "lab")), ("corpus", "upload", (True, "upload")),
    ("text", "x" * 200, (True, "x" * 200)), ("text", "x" * 201, (False, "x" * 200)),
])
def test_url_value_reads_a_link_as_the_widget_is_to_use_it(key, raw, expected):
    assert url_value(key, raw) == expected


def test_index_value_takes_whole_numbers_inside_the_range():
    assert index_value("3", 8, 0) == (True, 3)
    assert [index_value(raw, 8, 5) for raw in ("8", "-1", "2.5", "", "nan", "1e9")] == [(False, 5)] * 6
    assert index_value("0", 1, 0) == (True, 0) and index_value("1", 1, 0) == (False, 0)

"""One settings schema (rnn_core.settings_schema): the CLI's flags, the dashboard's URL specs and its widgets'
ranges all come from it, and a run's saved settings keep their fields."""
import argparse
import dataclasses

import pytest

from dashboard import exercise_catalogue, i18n, settings, sidebar
from dashboard.corpora import corpus_title
from rnn_core import runs, train
from rnn_core import settings_schema as schema
from rnn_core.checkpoint import CheckpointError
from rnn_core.guards import SettingsError
from rnn_core.runs import RunSettings
from tests.test_dashboard_pages import open_app

CLI_FIELDS = [f for f in dataclasses.fields(schema.LessonSettings) if f.metadata["cli"]]
URL_FIELDS = [f for f in schema.schema_fields() if f.metadata["url"]]
RANGED = [f for f in URL_FIELDS if f.metadata["range"]]


def cli_actions() -> dict[str, argparse.Action]:
    """The CLI parser's actions by flag, as ``parse_args`` builds them."""
    made = []
    real = argparse.ArgumentParser.parse_args

    def keep(self, args=None, namespace=None):
        made.append(self)
        return real(self, args, namespace)

    argparse.ArgumentParser.parse_args = keep
    try:
        train.parse_args([])
    finally:
        argparse.ArgumentParser.parse_args = real
    return {flag: a for a in made[0]._actions for flag in a.option_strings}


@pytest.mark.parametrize("f", CLI_FIELDS, ids=lambda f: f.name)
def test_each_flag_of_the_cli_is_the_schemas_with_its_default_and_choices(f):
    cli = f.metadata["cli"]
    action = cli_actions()[cli["flag"]]
    assert action.default == schema.cli_default(f)
    assert action.choices == cli.get("choices")
    assert action.type is cli.get("type")
    assert action.help == cli.get("help")
    if cli.get("choices"):
        with pytest.raises(SettingsError, match="invalid choice"):
            train.parse_args([cli["flag"], "not-a-choice"])
        assert getattr(train.parse_args([cli["flag"], cli["choices"][-1]]), action.dest) == cli["choices"][-1]


def test_the_cli_keeps_its_lesson_defaults():
    args = train.parse_args([])
    assert (args.batch_size, args.num_steps, args.hidden, args.epochs, args.lr, args.clip) == (32, 35, None, 500, 1.0,
                                                                                               1.0)
    assert (args.corpus, args.token, args.clean, args.max_tokens, args.random_iter, args.device) == (
        "time_machine", "char", "lesson", 10_000, False, "auto")
    assert (args.engine, args.seed, args.prefix, args.no_detach, args.predict) == ("fast", 0, "time traveller", False,
                                                                                  "greedy")
    assert train.parse_args(["--clip", "off"]).clip is None
    with pytest.raises(SettingsError, match="--predict"):
        train.parse_args(["--predict", "loudly"])


@pytest.mark.parametrize("f", URL_FIELDS, ids=lambda f: f.metadata["url"])
def test_each_url_spec_of_a_setting_is_the_schemas(f):
    key = f.metadata["url"]
    assert settings.URL_SPECS[key] == (f.metadata["kind"], f.metadata["range"] or f.metadata["choices"],
                                       schema.url_default(f))


@pytest.mark.parametrize("f", RANGED, ids=lambda f: f.metadata["url"])
def test_a_url_value_is_taken_inside_the_schemas_range_and_refused_outside(f):
    key, (lo, hi) = f.metadata["url"], f.metadata["range"]
    assert settings.url_value(key, str(lo)) == (True, lo)
    assert settings.url_value(key, str(hi)) == (True, hi)
    below = lo - (f.metadata["step"] or 1) if f.metadata["kind"] == "float" else lo - 1
    assert settings.url_value(key, str(below)) == (False, f.default)
    assert settings.url_value(key, str(hi + 1)) == (False, f.default)


def test_the_url_choices_and_formats_are_the_schemas():
    assert settings.CORPUS_CHOICES == list(schema.CORPUS_CHOICES)
    assert settings.CLIP_CHOICES == list(schema.CLIP_CHOICES)
    assert settings.URL_FORMATS == {"lr": "%g", "generate_temperature": "%.1f"}
    assert settings.URL_GRID == {"generate_temperature": 0.1}
    assert settings.MAX_TOKENS == schema.LESSON.max_tokens == train.parse_args([]).max_tokens


def test_the_saved_settings_keep_their_fields_order_and_the_schemas_defaults():
    names = [f.name for f in dataclasses.fields(RunSettings)]
    assert names == ["corpus", "token", "batch", "steps", "hidden", "lr", "epochs", "clip", "partition", "engine",
                     "device", "seed", "prefix", "activation", "input", "embed", "detach", "predict", "heldout"]
    for name in names:
        assert getattr(RunSettings(), name) == getattr(schema.LESSON, name), name
    for f in dataclasses.fields(settings.Settings):
        if f.name != "upload_id":
            assert getattr(settings.LESSON, f.name) == getattr(schema.LESSON, f.name), f.name


def test_the_exercises_start_from_the_lesson_and_keep_the_corpus_by_its_key():
    base = exercise_catalogue.BASE
    assert base.corpus in schema.CORPUS_CHOICES
    assert dataclasses.replace(base, hidden=schema.LESSON.hidden, epochs=schema.LESSON.epochs, device="auto") \
        == RunSettings()
    assert exercise_catalogue.pair_ids(exercise_catalogue.EXERCISES["relu"],
                                       exercise_catalogue.EXERCISES["relu"].variations[0], 3,
                                       exercise_catalogue.Sizes()) == ("ex-relu-relu-s3-v2-A", "ex-relu-relu-s3-v2-B")


def widget_matches(widget, f) -> None:
    lo, hi = f.metadata["range"]
    assert (widget.min, widget.max) == (lo, hi), f.name
    if f.metadata["step"] is not None:
        assert widget.step == f.metadata["step"], f.name


def test_the_sidebars_widgets_take_the_schemas_ranges():
    at = open_app("training")
    assert not at.exception
    for f in dataclasses.fields(schema.LessonSettings):
        key = f.metadata["url"]
        if f.metadata["range"]:
            widget = next(w for w in [*at.slider, *at.number_input] if w.key == key)
            widget_matches(widget, f)
            assert widget.value == f.default, key
        elif key and f.metadata["choices"]:
            widget = next(w for w in [*at.selectbox, *at.radio] if w.key == key)
            shown = {"corpus": corpus_title}.get(key, str)  # the corpora by their titles (English)
            assert list(widget.options) == [shown(o) for o in f.metadata["choices"]], key
        if f.metadata["help"]:
            widget = next(w for w in [*at.slider, *at.number_input, *at.selectbox, *at.radio] if w.key == key)
            assert widget.help == i18n.t(f.metadata["help"], "en"), key


@pytest.mark.parametrize("page, controls", [("generate", schema.GenerateSettings),
                                           ("identity", schema.IdentitySettings)])
def test_a_pages_own_widgets_take_the_schemas_ranges(page, controls):
    at = open_app(page)
    assert not at.exception
    for f in dataclasses.fields(controls):
        widget = next(w for w in [*at.slider, *at.number_input, *at.toggle] if w.key == f.metadata["url"])
        assert widget.value == (at.session_state["seed"] if f.name == "seed" else f.default), f.name
        if f.metadata["range"]:
            widget_matches(widget, f)
        if f.metadata["help"]:
            assert widget.help == i18n.t(f.metadata["help"], "en"), f.name


@pytest.mark.parametrize("f", [f for f in schema.schema_fields() if f.metadata["help"]], ids=lambda f: f.name)
def test_each_help_id_of_the_schema_is_in_both_catalogues_and_is_the_widgets_help(f):
    for lang in i18n.LANGS:
        assert f.metadata["help"] in i18n.catalogue(lang), (lang, f.metadata["help"])
    assert sidebar.help_text(f.metadata["url"]) == i18n.t(f.metadata["help"], "en")


@pytest.mark.parametrize("name, listed", [("token", "char, word"), ("partition", "sequential, random"),
                                          ("activation", "tanh, relu"), ("input", "onehot, embedding"),
                                          ("engine", "lesson, torch, fast")])
def test_a_saved_setting_is_checked_against_the_schemas_choices(name, listed):
    with pytest.raises(CheckpointError, match=f"{name} must be one of {listed} "):
        RunSettings.from_dict({name: "bogus"}, "run.json")
    if name != "engine":
        assert runs.SAVED_CHOICES[name] == schema.choices(name)

"""Two languages for every word: both catalogues hold every message id with the same {fields}; in zh a page shows
no English sentence outside code, formulas, quotes and identifiers; the lesson's code keeps its lines."""
import json
import re
from pathlib import Path

import pytest

from dashboard import i18n, lesson_code
from tests.test_dashboard_pages import PAGES, assert_clean, open_app

CODE_IDS = re.compile(r"""\bt\(\s*["']([a-z_]+(?:\.[a-z0-9_]+)+)["'](?=\s*[,)])""")


def test_both_catalogues_have_every_message_with_the_same_fields():
    en, zh = i18n.catalogue("en"), i18n.catalogue("zh")
    assert set(en) == set(zh)
    for key in en:
        assert i18n.fields(en[key]) == i18n.fields(zh[key]), key
        assert zh[key].strip(), key


def test_every_message_id_the_code_names_exists():
    root = Path(__file__).resolve().parents[1] / "dashboard"
    used = {m for f in root.rglob("*.py") for m in CODE_IDS.findall(f.read_text(encoding="utf-8"))}
    assert used and not used - set(i18n.catalogue("en")), sorted(used - set(i18n.catalogue("en")))


def test_catalogues_are_plain_json_objects_of_strings():
    for lang in i18n.LANGS:
        data = json.loads((Path(i18n.__file__).parent / f"{lang}.json").read_text(encoding="utf-8"))
        assert all(isinstance(k, str) and isinstance(v, str) for k, v in data.items())


def test_the_lesson_code_is_the_lessons_in_english_and_only_its_comments_change_in_chinese():
    for page, code in lesson_code.EXCERPTS.items():
        assert lesson_code.excerpt(page, "en") == code
        zh = lesson_code.excerpt(page, "zh")
        strip = lambda c: [lesson_code.COMMENT.sub("", line) for line in c.splitlines()]  # noqa: E731
        assert strip(zh) == strip(code)
    assert "裁剪梯度" in lesson_code.excerpt("training", "zh")


def test_locale_picks_the_language():
    assert i18n.from_locale("zh-CN") == i18n.from_locale("zh-Hant-TW") == "zh"
    assert i18n.from_locale("en-US") == i18n.from_locale(None) == "en"


# ---------------------------------------------------------------- the zh rendering check

# An English sentence: three or more words of Latin letters in a row, separated by single spaces, none touching
# a digit, '_' or '.', counted after removing what may stay English: code (``` blocks and `spans`), formulas
# ($...$), quoted text (“...”, "...": corpus text and the model's output) and URLs.
ENGLISH_RUN = re.compile(r"(?<![A-Za-z0-9_.])[A-Za-z]+(?: [A-Za-z]+){2,}(?![A-Za-z0-9_])")
ALLOWED = [re.compile(p, re.S) for p in (r"```.*?```", r"`[^`]*`", r"\$[^$]*\$", r"“[^”]*”", r'"[^"]*"',
                                         r"https?://\S+", r"<[^>]+>")]


def english_runs(text: str) -> list[str]:
    """The English word runs left in `text` once code, formulas, quotes and identifiers are taken out."""
    for pattern in ALLOWED:
        text = pattern.sub(" ", text)
    return ENGLISH_RUN.findall(text)


def test_the_english_run_check_finds_sentences_and_spares_code():
    assert english_runs("Press Start to train.") == ["Press Start to train"]
    assert english_runs("按 `predict_ch8 prefix num` 开始，$\\text{one hot vec}$，“the time traveller”") == []
    assert english_runs("词元 time_machine H_t batch 32") == []


def page_texts(at) -> list[str]:
    """Every word a page shows outside code blocks: text elements, labels and help of widgets, chart titles."""
    out = []
    for kind in ("title", "header", "subheader", "markdown", "caption", "info", "warning", "error", "success"):
        out += [str(e.value) for e in at.get(kind)]
    for kind in ("slider", "select_slider", "radio", "selectbox", "text_input", "text_area", "number_input",
                 "toggle", "button", "metric", "expander", "tab", "checkbox", "multiselect"):
        for e in at.get(kind):
            out += [str(getattr(e, "label", "") or ""), str(getattr(e, "help", "") or "")]
    for c in at.get("plotly_chart"):
        spec = json.loads(c.proto.spec)
        layout = spec.get("layout", {})
        out += [str((layout.get("title") or {}).get("text", "") if isinstance(layout.get("title"), dict)
                    else layout.get("title") or "")]
        out += [str(a.get("text", "")) for a in layout.get("annotations", [])]
        for name, axis in layout.items():
            if name.startswith(("xaxis", "yaxis")) and isinstance(axis.get("title"), dict):
                out.append(str(axis["title"].get("text", "")))
        out += [str(trace.get("name", "")) for trace in spec.get("data", [])]
    return out


@pytest.mark.parametrize("page", PAGES)
def test_in_chinese_a_page_shows_no_english_sentence(page):
    at = open_app(page, lang="zh", hidden=16)
    assert_clean(at)
    found = {run: text for text in page_texts(at) for run in english_runs(text)}
    assert not found, found


# A page's own title id (its heading) besides its navigation title nav.<page>.title
PAGE_TITLE_IDS = {"data": "data.title", "shapes": "shapes.title", "unrolled": "unrolled.title",
                  "identity": "identity.title", "training": "training.title", "inside": "inside.title",
                  "generate": "generate.title", "exercises": "exercises.page.title"}


@pytest.mark.parametrize("lang", list(i18n.LANGS))
def test_the_pages_are_numbered_in_their_order_in_both_languages(lang):
    from dashboard.pages import PAGES as ORDER

    steps = [path for path in ORDER if path]
    assert set(steps) == set(PAGE_TITLE_IDS)
    for number, path in enumerate(steps, start=1):
        for key in (f"nav.{path}.title", PAGE_TITLE_IDS[path]):
            assert i18n.t(key, lang).startswith(f"{number} · "), (key, i18n.t(key, lang))


def test_the_language_follows_the_url_and_the_sidebar():
    at = open_app("data", lang="zh")
    assert at.title[0].value.startswith("1 · 数据")
    at.sidebar.selectbox(key="lang").set_value("en").run()
    assert at.title[0].value.startswith("1 · Data")


# ---------------------------------------------------------------- errors a user can cause

ROOT = Path(__file__).resolve().parents[1]


def user_error_classes() -> set[str]:
    """The names of rnn_core's error classes a user can cause (subclasses of rnn_core.errors.UserError)."""
    import importlib
    import pkgutil

    import rnn_core
    from rnn_core.errors import UserError

    names = set()
    for module in pkgutil.iter_modules(rnn_core.__path__):
        mod = importlib.import_module(f"rnn_core.{module.name}")
        names |= {n for n, v in vars(mod).items() if isinstance(v, type) and issubclass(v, UserError)}
    return names - {"UserError"}


def raised_user_errors(path: Path) -> list[tuple[str, int, list[str] | None, set[str]]]:
    """(class, line, message ids or None when the id is not written out, value names) of every
    ``raise <UserError subclass>(message, key, **values)`` in a file."""
    import ast

    classes = user_error_classes()
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if not (isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call)):
            continue
        func = node.exc.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
        if name not in classes:
            continue
        key = node.exc.args[1] if len(node.exc.args) > 1 else None
        branches = [key.body, key.orelse] if isinstance(key, ast.IfExp) else [key]
        ids = [b.value for b in branches if isinstance(b, ast.Constant) and isinstance(b.value, str)]
        literal = all(isinstance(b, ast.Constant) for b in branches)
        values = {k.arg for k in node.exc.keywords if k.arg}
        found.append((name, node.lineno, ids if literal else None, values))
    return found


def test_every_message_id_a_user_error_is_raised_with_is_in_both_catalogues_with_its_values():
    en, zh = i18n.catalogue("en"), i18n.catalogue("zh")
    files = [*sorted((ROOT / "rnn_core").glob("*.py")), *sorted((ROOT / "dashboard").rglob("*.py"))]
    seen = set()
    for path in files:
        for name, line, ids, values in raised_user_errors(path):
            where = f"{path.relative_to(ROOT)}:{line}"
            # rnn_core says every user error with an id (the CLI's own wrappers in train.py excepted)
            if path.parent.name == "rnn_core" and path.name != "train.py":
                assert ids, f"{where}: {name} raised without a message id"
            for key in ids or ():
                seen.add(key)
                for catalogue in (en, zh):
                    assert f"error.{key}" in catalogue, f"{where}: error.{key} missing"
                    fields = i18n.fields(catalogue[f"error.{key}"])
                    # one id: its message uses every value; two (one per case): each fills its own from them
                    assert fields == values if len(ids) == 1 else fields <= values, (where, key, fields, values)
    assert {"empty_file", "corpus_too_short", "too_much_memory", "checkpoint_unreadable", "diverged_stuck",
            "no_cuda", "server_limit", "upload_too_short"} <= seen
    from rnn_core.guards import LIMITS

    for setting in LIMITS:  # out_of_range names its setting in the language too
        assert f"error.setting.{setting}" in en and f"error.setting.{setting}" in zh


def test_a_user_error_keeps_its_english_sentence_and_says_it_in_chinese():
    import rnn_core

    with pytest.raises(rnn_core.SettingsError) as caught:
        rnn_core.check_settings(10, 0, 5, 5, 100)
    assert str(caught.value) == "Batch size must be a whole number from 1 to 1,024 (got 0)."
    assert i18n.error_text(caught.value, "en") == str(caught.value)
    assert i18n.error_text(caught.value, "zh") == "批量大小必须是 1 到 1,024 之间的整数（当前为 0）。"
    assert i18n.error_text(ValueError("plain\nsecond line"), "zh") == "plain"  # no id: its own first line


def test_in_chinese_a_refused_upload_and_a_corpus_too_short_are_said_in_chinese():
    at = open_app("data", lang="zh", corpus="upload", batch=128, steps=100)
    at.sidebar.file_uploader[0].set_value(("notes.txt", b"\x00\x01binary" * 50, "text/plain")).run()
    assert_clean(at)
    errors = [e.value for e in at.error]
    assert any("notes.txt 看起来是二进制文件" in e for e in errors), errors
    # the Time Machine stays in use: 10,000 tokens cannot fill one 128 x 100 minibatch
    assert any(e.startswith("语料只有 10,000 个词元") for e in errors), errors
    found = {run: text for text in page_texts(at) for run in english_runs(text)}
    assert not found, found


def test_a_corpus_warning_is_said_in_the_pages_language_and_keeps_its_id_through_a_cache():
    import pickle

    from rnn_core.corpus import decode_text

    _, warnings = decode_text("café au lait".encode("latin-1"), "menu.txt")
    kept = pickle.loads(pickle.dumps(warnings[0]))  # st.cache_data pickles what it keeps
    assert str(kept).startswith("menu.txt is not valid UTF-8") and kept.key == "read_as_latin1"
    zh = i18n.error_text(kept, "zh")
    assert "menu.txt" in zh and "Latin-1" in zh and "UTF-8" in zh and "read as" not in zh

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
    ``<UserError subclass>(message, key, **values)`` made in a file (raised at once or kept and raised later)."""
    import ast

    classes = user_error_classes()
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
        if name not in classes:
            continue
        key = node.args[1] if len(node.args) > 1 else None
        branches = [key.body, key.orelse] if isinstance(key, ast.IfExp) else [key]
        ids = [b.value for b in branches if isinstance(b, ast.Constant) and isinstance(b.value, str)]
        literal = all(isinstance(b, ast.Constant) for b in branches)
        values = {k.arg for k in node.keywords if k.arg}
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


# ---------------------------------------------------------------- Chinese words in Chinese

# Latin words a Chinese text may keep: names (RNN Lab, PyTorch, NVIDIA), units, formula symbols and functions,
# the identifiers a user types or reads in a URL or a file name (off, auto, lesson, keep, data/, timemachine.txt)
IDENTIFIERS = {
    "RNN", "Lab", "PyTorch", "torch", "nn", "NVIDIA", "Apple", "GPU", "CPU", "CUDA", "MPS", "cpu", "cuda", "mps",
    "tanh", "ReLU", "softmax", "argmax", "log", "max", "exp", "SGD", "SHA", "UTF", "Latin", "NFKC", "Unicode",
    "NUL", "NaN", "nan", "MB", "MiB", "GiB", "GFLOP", "XW", "HW", "xh", "hh", "hq", "dim",
    "linear",  # nn.Linear's parameters as the code names them (linear.bias) in the nn.RNN twin check
    "auto", "off", "true", "false", "lesson", "keep", "sequential", "random", "lab", "lecture", "mode", "data",
    "timemachine", "rest", "builtin", "upload", "hidden", "epochs", "lr", "inputs", "prefix",
    "Language",  # the language control names itself in English too, for a reader who cannot read the other
}
# A Latin word of two letters or more, not part of an identifier (W_xh, float32, X.T, one_hot) or a call (cat(...))
LATIN_WORD = re.compile(r"(?<![A-Za-z0-9_.\\/+-])[A-Za-z]{2,}(?![A-Za-z0-9_(=])")
NOT_WORDS = [re.compile(p, re.S) for p in (r"```.*?```", r"`[^`]*`", r"\$[^$]*\$", r"“[^”]*”", r'"[^"]*"',
                                           r"https?://\S+", r"<[^>]+>", r"\{[^{}]*\}", r"\?\w+=\S*")]


def english_words(text: str) -> set[str]:
    """Latin words in `text` that are not identifiers, once code, formulas, quotes and {fields} are taken out."""
    for pattern in NOT_WORDS:
        text = pattern.sub(" ", text)
    return set(LATIN_WORD.findall(text)) - IDENTIFIERS


def test_the_english_word_check_finds_words_and_spares_identifiers():
    assert english_words("转置：time first（步数）") == {"time", "first"}
    assert english_words("char 词元，引擎 fast") == {"char", "fast"}
    assert english_words("`one_hot(X.T)` W_xh float32 cat(O_1..O_T, dim=0) 在 data/ 中，SHA-1，?mode=lecture") == set()


def test_the_chinese_catalogue_has_no_english_word_outside_identifiers():
    found = {key: words for key, value in i18n.catalogue("zh").items() if (words := english_words(value))}
    assert not found, found


# A space between two Chinese characters (or their punctuation) reads as a gap in the sentence: "只改 一个开关"
CJK = r"[\u3400-\u9fff\u3000-\u303f\uff01-\uff5e《》“”‘’]"
CJK_GAP = re.compile(rf"{CJK} +{CJK}")
# The exercises' A/B pair names keep " 对比 " between their two arms as a separator, like English " vs "
CJK_GAP_KEPT = (" 对比 ",)


def cjk_gaps(text: str) -> list[str]:
    text = text.replace("**", "")  # bold marks are not on screen
    for kept in CJK_GAP_KEPT:
        text = text.replace(kept, "对比")
    return CJK_GAP.findall(text)


def test_no_chinese_message_has_a_space_between_two_chinese_characters():
    assert cjk_gaps("只改 **一个开关**") and cjk_gaps("在 《时间机器》（H. G. 威尔斯） 上") and not cjk_gaps("第 3 个")
    found = {key: gaps for key, value in i18n.catalogue("zh").items() if (gaps := cjk_gaps(value))}
    assert not found, found


def table_texts(at, code_columns=("token", "X (input)", "Y (target = X shifted by one)", "name")) -> list[str]:
    """Every table's column labels as shown (column_config's label, else the column's name) and its cells that are
    words (not corpus text, nor the tensors' names as the lesson's code writes them)."""
    out = []
    for table in at.dataframe:
        config = json.loads(table.proto.columns or "{}")
        df = table.value
        for column in df.columns:
            out.append(str(config.get(column, {}).get("label", column)))
            if column not in code_columns:
                out += [cell for cell in df[column].tolist() if isinstance(cell, str)]
    return out


@pytest.mark.parametrize("page", PAGES)
def test_in_chinese_no_label_header_or_table_has_an_english_word(page):
    at = open_app(page, lang="zh", hidden=16)
    assert_clean(at)
    shown = page_texts(at) + table_texts(at)
    found = {word: text for text in shown for word in english_words(text)}
    assert not found, found
    gaps = {gap: text for text in shown for gap in cjk_gaps(text)}
    assert not gaps, gaps


def test_the_shape_tables_rows_are_each_said_in_both_languages():
    import rnn_core
    from dashboard import formatting

    trace = rnn_core.shape_trace(5, 2, 3, 4, device="cpu", max_steps_listed=1)
    assert set(trace["name"]) <= set(formatting.SHAPE_NOTES)
    for note in set(formatting.SHAPE_NOTES.values()):
        assert i18n.t(f"shapes.f.{note}", "zh") and f"shapes.f.{note}" in i18n.catalogue("en")
    # in English the table reads as rnn_core writes it
    english = {note: i18n.t(f"shapes.f.{note}", "en") for note in formatting.SHAPE_NOTES.values()}
    assert all(english[formatting.SHAPE_NOTES[n]] == f for n, f in zip(trace["name"], trace["formula"]))


def test_the_training_settings_line_names_its_settings_in_the_pages_language(monkeypatch):
    from dashboard import formatting
    from rnn_core.engines import ENGINES
    from rnn_core.runs import RunSettings

    run = RunSettings(corpus="time_machine", token="char", batch=32, steps=35, hidden=512, lr=1.0, epochs=500,
                      clip=None, partition="sequential", engine="fast", seed=0)
    monkeypatch.setattr(i18n, "current", lambda: "zh")
    line = formatting.describe_settings(run, 28)
    assert "字符词元" in line and "**快速引擎**" in line and "不裁剪梯度" in line and "顺序分区" in line, line
    assert not english_words(line) and not cjk_gaps(line), line
    assert formatting.fmt_setting(None) == "不裁剪"
    for engine in ENGINES:
        assert i18n.t(f"settings.engine.{engine}", "zh") and f"settings.engine.{engine}" in i18n.catalogue("en")
    monkeypatch.setattr(i18n, "current", lambda: "en")
    english = formatting.describe_settings(run, 28)
    assert "char tokens" in english and "engine **fast**" in english and "no clipping" in english, english


def test_english_counts_one_in_the_singular():
    assert i18n.t("runs.trained", "en", who="The run", epoch=1, corpus="The Time Machine", hidden=1, ppl="",
                  training="") == "The run: 1 epoch on The Time Machine, 1 hidden unit."
    assert "21 epochs" in i18n.t("runs.trained", "en", who="r", epoch=21, corpus="c", hidden=8, ppl="", training="")
    assert i18n.singular_for_one("1/5 epochs, 0.1 seconds, 10,001 tokens") == "1/5 epochs, 0.1 seconds, 10,001 tokens"


@pytest.mark.parametrize("text", ["X W_xh + H W_hh（两次乘法）", "[X | H] [W_xh ; W_hh]（一次乘法）",
                                  "词元频率（出现的全部 27 个）", "同一前缀“time traveller”在每个检查点之后的续写"])
def test_a_chinese_chart_title_never_ends_a_line_on_an_opening_bracket_nor_starts_one_on_a_closing_one(text):
    from dashboard import chart_base

    for width in range(120, 420, 10):
        lines = chart_base.wrap(text, width, chart_base.FONT_SIZE + 4).split("<br>")
        assert "".join(lines).replace(" ", "") == text.replace(" ", "")
        assert not any(line[-1] in "（《“【" for line in lines), (width, lines)
        assert not any(line[0] in "，。；：、）】》”！？" for line in lines), (width, lines)

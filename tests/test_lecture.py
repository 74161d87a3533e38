"""Links to exact views: every page-level control round-trips through the URL, a bad URL value is named with what
is used instead, lecture mode (?mode=lecture) moves the settings inline, and the toolbar turns pages."""
import pytest

from tests.test_dashboard_pages import assert_clean, open_app, texts

# page -> (widget kind, key, a value that is not the default) for every control that changes the page's view
PAGE_CONTROLS = {
    "shapes": [("slider", "shapes_row", 3)],
    "identity": [("slider", "identity_n", 5), ("slider", "identity_d", 2), ("slider", "identity_h", 7),
                 ("toggle", "identity_f64", True)],
    "inside": [("text_input", "text", "the time machine"), ("slider", "inside_unit", 4)],
    "generate": [("text_input", "prefix", "the time"), ("slider", "generate_length", 120),
                 ("slider", "generate_temperature", 0.5), ("number_input", "generate_seed", 7)],
}
CASES = [(page, *control) for page, controls in PAGE_CONTROLS.items() for control in controls]


def url_text(value) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


@pytest.mark.parametrize("page,kind,key,value", CASES, ids=[f"{c[0]}-{c[2]}" for c in CASES])
def test_a_page_control_opens_from_the_url_and_writes_it_back(page, kind, key, value):
    """URL -> widget here; widget -> URL is the browser's half of the binding, which the widget's
    query_param_key asks for (the browser test checks it for the sidebar)."""
    at = open_app(page, hidden=16, **{key: url_text(value)})
    assert_clean(at)
    widget = getattr(at, kind)(key=key)
    assert widget.value == value  # the link opens the view it names
    assert widget.proto.query_param_key == key  # and a change goes back to the URL under the same name
    default = open_app(page, hidden=16)
    assert getattr(default, kind)(key=key).value != value  # the value came from the URL, not the default


@pytest.mark.parametrize("page,query,named,used,value", [
    ("data", {"hidden": "5000"}, "hidden=5000", "hidden = 512 instead", 512),
    ("data", {"batch": "abc"}, "batch=abc", "batch = 32 instead", 32),
    ("data", {"corpus": "nonsense"}, "corpus=nonsense", "corpus = time_machine (The Time Machine (H. G. Wells))",
     "time_machine"),
    ("identity", {"identity_n": "99"}, "identity_n=99", "identity_n = 3 instead", 3),
    ("generate", {"generate_temperature": "9"}, "generate_temperature=9", "generate_temperature = 1.0 instead", 1.0),
    ("data", {"mode": "evil"}, "mode=evil", "mode = lab instead", "lab"),
], ids=["hidden", "batch", "corpus", "identity_n", "temperature", "mode"])
def test_a_bad_url_value_is_named_with_what_is_used_instead(page, query, named, used, value):
    at = open_app(page, **query)
    assert_clean(at)
    warning = texts(at.warning)
    assert f"`{named}`" in warning and used in warning
    assert at.session_state[named.split("=")[0]] == value  # and the setting holds the value named


def test_good_url_values_give_no_warning():
    at = open_app("identity", identity_n="5", hidden="64", batch="8")
    assert_clean(at)
    assert "The link's" not in texts(at.warning)


def test_lecture_mode_puts_the_page_settings_inline_and_leaves_the_sidebar_empty():
    at = open_app("training", mode="lecture", hidden="256", lang="zh")
    assert_clean(at)
    assert not at.sidebar.slider and not at.sidebar.selectbox  # no settings in the sidebar
    assert at.slider(key="hidden").value == 256  # inline, bound to the URL as in the sidebar
    assert [b.label for b in at.button][:2] == ["", ""]  # previous and next page (icons)
    assert "开始" in [b.label for b in at.button]
    at.button(key="page_previous").click().run()  # the previous page, still in lecture mode
    assert_clean(at)
    assert at.title[0].value.startswith("4 · ") and at.query_params.get("mode") in ("lecture", ["lecture"])


def test_identity_in_lecture_mode_shows_only_the_seed_as_its_setting():
    at = open_app("identity", mode="lecture")
    assert_clean(at)
    labels = [e.label for e in at.expander]
    assert labels[:2] == ["Settings of this page", "Used by other pages"]
    assert at.number_input(key="seed") and at.slider(key="hidden")  # hidden is there, under other pages


def test_the_toolbar_turns_pages_and_keeps_the_settings():
    at = open_app("data", hidden="64")
    at.button(key="page_next").click().run()
    assert_clean(at)
    assert at.title[0].value.startswith("2 · ")
    assert at.slider(key="hidden").value == 64
    assert "<b>S</b> Start" in texts(at.get("html"))


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_home_and_data_open_the_chinese_demo_in_one_click_and_say_what_it_is(lang):
    from urllib.parse import parse_qs, urlsplit

    from dashboard.i18n import t

    for page in ("home", "data"):
        at = open_app(page, lang=lang, hidden=16)
        assert_clean(at)
        links = [e.proto for e in at.get("link_button")]
        demo = next(p for p in links if p.label == t("demo.zh_open", lang))
        url = urlsplit(demo.url)
        assert url.path == "/data" and parse_qs(url.query) == {"corpus": ["chinese_numbers"], "clean": ["keep"],
                                                                 "lang": [lang]}
        assert t("demo.zh_about", lang) in texts(at.caption)
    opened = open_app("data", **{k: v[0] for k, v in parse_qs(url.query).items()})
    assert_clean(opened)
    assert opened.sidebar.selectbox(key="corpus").value == "chinese_numbers"
    assert "二十" in texts(opened.get("code"))  # the Chinese text itself, not the Time Machine
    assert not [e for e in opened.get("link_button") if e.proto.label == t("demo.zh_open", lang)]


def test_choices_read_in_the_pages_language_while_the_url_keeps_their_identifiers():
    """A link must open in either language: ?lang=zh&token=word, never ?lang=简体中文 or ?token=单词."""
    at = open_app("data", lang="en", partition="random")
    assert_clean(at)
    at.selectbox(key="lang").set_value("zh").run()
    assert at.query_params["lang"] in ("zh", ["zh"])
    token = at.radio(key="token")
    assert token.options == ["字符", "单词"] and token.value == "char"
    token.set_value("word").run()
    assert at.query_params["token"] in ("word", ["word"])
    assert at.query_params["partition"] in ("random", ["random"])  # from the link, kept as it was
    assert "《时间机器》（H. G. 威尔斯）" in at.selectbox(key="corpus").options
    at.button(key="page_next").click().run()  # a page turn keeps every choice
    assert_clean(at)
    assert at.radio(key="token").value == "word" and at.radio(key="partition").value == "random"
    assert at.title[0].value.startswith("2 · ") and not at.warning  # in Chinese, no bad-URL warning


def view_link(at) -> str:
    """The toolbar's "Link to this view" (the server's address is unknown here: it starts with the page's path)."""
    return next(c.value for c in at.code if c.value.startswith("/"))


def link_params(at) -> dict[str, str]:
    from urllib.parse import parse_qs, urlsplit

    return {k: v[0] for k, v in parse_qs(urlsplit(view_link(at)).query).items()}


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_the_language_stays_in_the_url_even_when_it_is_the_browsers(lang):
    """The default language is the browser's: a link without ?lang= opens a zh view in English elsewhere."""
    at = open_app("data", lang=lang)  # no browser locale here: English is this browser's language
    assert_clean(at)
    assert at.query_params["lang"] in (lang, [lang]) and link_params(at)["lang"] == lang
    at.button(key="page_next").click().run()
    assert_clean(at)
    assert at.query_params["lang"] in (lang, [lang]) and link_params(at)["lang"] == lang
    plain = open_app("shapes")  # no ?lang= at all: the language in use is written into the URL
    assert plain.query_params["lang"] in ("en", ["en"]) and link_params(plain)["lang"] == "en"


# (page, its own parameters, the button that turns the page, the page it turns to)
TURNS = [
    ("shapes", {"shapes_row": "3"}, "page_next", "unrolled"),
    ("unrolled", {"unrolled_model": "lesson", "unrolled_text": "hello", "t": "3"}, "page_next", "identity"),
    ("identity", {"identity_n": "5", "identity_f64": "true"}, "page_next", "training"),
    ("generate", {"prefix": "the time", "generate_length": "120"}, "page_next", "exercises"),
    ("exercises", {"exercise": "clip", "variation": "off"}, "page_previous", "generate"),
]


@pytest.mark.parametrize("page,own,button,turned", TURNS, ids=[t[0] for t in TURNS])
def test_a_page_turn_leaves_the_last_pages_own_parameters_behind(page, own, button, turned):
    from dashboard.pages import PAGES

    at = open_app(page, hidden="16", **own)
    assert_clean(at)
    assert set(own) <= set(link_params(at)), view_link(at)  # this page's link names its own view
    at.button(key=button).click().run()
    assert_clean(at)
    assert not set(own) & set(at.query_params), dict(at.query_params)  # none of them is the next page's
    link = link_params(at)
    assert not set(own) & set(link), view_link(at)
    assert link["hidden"] == "16" and link.get("lang") == "en"  # the sidebar's settings are shared by every page
    assert at.title[0].value.startswith(f"{list(PAGES).index(turned)} · ")  # the page turned to


def test_the_model_and_checkpoint_shown_are_shared_by_inside_and_generate():
    """By design one model choice and one scrubber (with one Play) serve Inside, Generate and the unrolled page."""
    at = open_app("inside", model="reference", epoch="5", text="the time", hidden="16")
    assert_clean(at)
    assert at.session_state["epoch"] == 5
    at.button(key="page_next").click().run()  # Generate
    assert_clean(at)
    assert at.session_state["epoch"] == 5 and at.radio(key="model").value == "reference"
    link = link_params(at)
    assert link["epoch"] == "5" and "text" not in link and "text" not in at.query_params


def test_in_lecture_mode_the_upload_is_asked_for_where_it_is_not_in_a_sidebar():
    """Lecture mode has no sidebar: the upload's note names the corpus setting, which is there in both modes."""
    for mode in ("lab", "lecture"):
        at = open_app("home", corpus="upload", mode=mode)  # Home says why the corpus asked for is not in use
        assert_clean(at)
        said = texts(at.info) + texts(at.warning) + texts(at.sidebar.warning)
        assert "choose a text file of at most 5 MB under Corpus" in said and "in the sidebar" not in said, said

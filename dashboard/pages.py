"""The pages: one list (url path -> file, icon) shared by the app and its tests, their titles, the
run's language and mode (read before the navigation is drawn), the toolbar above every page (previous / next,
lab or lecture mode, link to this view, keys).
"""
from __future__ import annotations

import streamlit as st

from . import i18n
from .i18n import t
from .layout import url_choice
from .settings import BOUND_KEYS, CHOICE_KEYS, URL_SPECS, foreign_params

# url_path -> (file, icon); titles and help texts are the catalogue's nav.<page>.title / nav.<page>.help
PAGES = {
    "": ("views/home.py", ":material/home:"),
    "data": ("views/data.py", ":material/dataset:"),
    "shapes": ("views/shapes.py", ":material/view_in_ar:"),
    "unrolled": ("views/unrolled.py", ":material/linear_scale:"),
    "identity": ("views/identity.py", ":material/join:"),
    "training": ("views/training.py", ":material/model_training:"),
    "inside": ("views/inside.py", ":material/biotech:"),
    "generate": ("views/generate.py", ":material/edit_note:"),
    "exercises": ("views/exercises.py", ":material/science:"),
}


def page_title(path: str) -> str:
    """A page's title in the run's language ('' is Home)."""
    return t(f"nav.{path or 'home'}.title")


def page_help(path: str) -> str:
    """A page's one-line description in the run's language."""
    return t(f"nav.{path or 'home'}.help")


def language() -> str:
    """This run's language: the sidebar's choice, else ?lang=, else the browser's locale (st.context.locale).

    Read before the navigation and the sidebar are drawn, so every word of the run is in one language.
    """
    chosen = st.session_state.get("lang") or st.query_params.get("lang")
    if chosen not in i18n.LANGS:
        chosen = i18n.from_locale(getattr(st.context, "locale", None))
    st.session_state[i18n.SESSION_KEY] = chosen
    return chosen


def pages() -> list:
    """One st.Page per file in dashboard/views/, Home first and default."""
    return [st.Page(file, title=page_title(path), icon=icon, help=page_help(path), url_path=path or None,
                    default=path == "")
            for path, (file, icon) in PAGES.items()]


# Keyboard shortcuts (st.button(shortcut=...)); Streamlit keeps R (rerun) and C (clear cache) for itself.
KEYS = {"start": "S", "stop": "X", "previous": "P", "next": "N"}


def lecture_mode() -> bool:
    """``?mode=lecture``: navigation on top, no sidebar, larger type, each page's settings inline.

    Read before the navigation is drawn: the mode control's value once it exists, else the URL's.
    """
    mode = st.session_state.get("mode") or st.query_params.get("mode")
    return mode == "lecture"


def view_link(page: str) -> str:
    """The address of this exact view: the page, the URL's parameters and every bound setting as it is now."""
    from urllib.parse import urlencode

    foreign = foreign_params(page)  # another page's control (a row, an exercise) is not part of this view
    params = {k: v for k, v in st.query_params.to_dict().items() if k not in foreign}
    for key in sorted(BOUND_KEYS - foreign):
        if key in st.session_state and st.session_state[key] is not None:
            value = st.session_state[key]
            default = URL_SPECS.get(key, (None, None, object()))[2]
            if value != default or key in params:
                params[key] = str(value).lower() if isinstance(value, bool) else str(value)
    query = urlencode(params)
    return f"{_root()}/{page}" + (f"?{query}" if query else "")


def _root() -> str:
    """The server's address as the browser sees it ('' when unknown: a link relative to the server)."""
    from urllib.parse import urlsplit

    base = urlsplit(getattr(st.context, "url", None) or "")
    return f"{base.scheme}://{base.netloc}" if base.netloc else ""


# The built-in Chinese text (the lesson itself, in d2l-zh too, trains on The Time Machine): every character kept.
CHINESE_DEMO = {"corpus": "chinese_numbers", "clean": "keep"}


def chinese_demo_link() -> str:
    """The Data page on the built-in Chinese corpus, in this run's language (and lecture mode, when on)."""
    from urllib.parse import urlencode

    params = {**CHINESE_DEMO, "lang": i18n.current(), **({"mode": "lecture"} if lecture_mode() else {})}
    return f"{_root()}/data?{urlencode(params)}"


def chinese_demo(where=st) -> None:
    """The Chinese demo one click away: a sentence on what it is and the link that opens it."""
    box = where.container(horizontal=True, vertical_alignment="center")
    box.link_button(t("demo.zh_open"), chinese_demo_link(), icon=":material/translate:")
    box.caption(t("demo.zh_about"))


def drop_foreign_params(page: str) -> None:
    """Take other pages' parameters out of this page's URL (a page turn by the navigation or the browser's history
    brings them along): the address bar and a copied link name this page's view only."""
    from streamlit.errors import StreamlitAPIException

    for key in foreign_params(page) & set(st.query_params.keys()):
        try:
            del st.query_params[key]
        except StreamlitAPIException:  # bound to a widget of this run: not another page's after all
            pass


def switch_to(path: str) -> None:
    """Open another page, keeping the URL's shared parameters (bound ones follow their widgets; the named choices
    go along by hand: the run that switches ends before their widgets are drawn, and their state with it), not
    this page's own (settings.PAGE_PARAMS), except those the next page shares."""
    from streamlit.errors import StreamlitAPIException

    foreign = foreign_params(path)
    keep = {k: v for k, v in st.query_params.to_dict().items()
            if (k not in BOUND_KEYS or k in CHOICE_KEYS) and k not in foreign}
    try:
        st.switch_page(PAGES[path][0], query_params=keep)
    except StreamlitAPIException:  # a parameter bound by a widget this module does not know
        st.switch_page(PAGES[path][0], query_params={})


def toolbar(page: str) -> None:
    """Above every page: previous and next page (keys P and N), the mode (lab or lecture), a link to this
    exact view, and the list of keys."""
    order = list(PAGES)
    i = order.index(page) if page in order else 0
    before = order[i - 1] if i > 0 else None
    after = order[i + 1] if i + 1 < len(order) else None
    c = st.columns([1, 1, 4, 1.3, 5], vertical_alignment="center")
    if c[0].button("", icon=":material/arrow_back:", key="page_previous", disabled=before is None,
                   shortcut=KEYS["previous"], help=t("toolbar.previous", title=page_title(before or ""))):
        switch_to(before)
    if c[1].button("", icon=":material/arrow_forward:", key="page_next", disabled=after is None,
                   shortcut=KEYS["next"], help=t("toolbar.next", title=page_title(after or ""))):
        switch_to(after)
    url_choice(c[2], "segmented_control", t("toolbar.mode"), ["lab", "lecture"], "mode", "lab",
               lambda mode: t(f"choice.mode.{mode}"), label_visibility="collapsed", help=t("toolbar.mode_help"))
    with c[3].popover("", icon=":material/link:", help=t("toolbar.link")):
        st.code(view_link(page), language=None, wrap_lines=True)
        st.caption(t("toolbar.link_help"))
    c[4].html(f'<div class="rnnlab-keys">{t("toolbar.keys_html", **KEYS)}</div>')  # styled in layout.STYLE

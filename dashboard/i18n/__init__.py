"""Two languages for every word: 简体中文 and English.

The catalogues are ``dashboard/i18n/<lang>.json``: one JSON object per language, message id -> text, with
``{name}`` fields filled by :func:`t` (``str.format``). A translator edits one file; tests check that both
have the same ids and the same fields. Technical terms follow d2l-zh (词元, 词表, 独热编码, 隐状态, 小批量,
梯度裁剪, 困惑度, 顺序分区, 随机采样).

No Streamlit calls here beyond reading the session's language, so chart builders and explain.py can use it.
"""
from __future__ import annotations

import json
import re
import string
from functools import lru_cache
from pathlib import Path

HERE = Path(__file__).resolve().parent
LANGS = {"en": "English", "zh": "简体中文"}
DEFAULT = "en"
SESSION_KEY = "_lang_in_use"  # st.session_state key the sidebar sets each run


@lru_cache(maxsize=None)
def catalogue(lang: str) -> dict[str, str]:
    """Message id -> text for one language."""
    with open(HERE / f"{lang}.json", encoding="utf-8") as f:
        return json.load(f)


def fields(text: str) -> set[str]:
    """The ``{name}`` fields of a message."""
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def from_locale(locale: str | None) -> str:
    """The language for a browser locale ('zh-CN', 'zh-Hans-TW' -> 'zh'; anything else -> 'en')."""
    return "zh" if (locale or "").lower().startswith("zh") else DEFAULT


def current() -> str:
    """The language of the script run in progress (English outside one: tests, scripts)."""
    try:
        from streamlit.runtime.scriptrunner import get_script_run_ctx

        ctx = get_script_run_ctx(suppress_warning=True)
    except Exception:  # noqa: BLE001  no Streamlit runtime: plain English
        return DEFAULT
    if ctx is None:
        return DEFAULT
    import streamlit as st

    lang = st.session_state.get(SESSION_KEY, DEFAULT)
    return lang if lang in LANGS else DEFAULT


# English nouns counted by a number in a message ("{epoch} epochs"): with a count of 1 they read in the singular
# ("1 epoch", "1 hidden unit"); Chinese has no plural.
SINGULAR = {"epochs": "epoch", "steps": "step", "units": "unit", "tokens": "token", "minibatches": "minibatch",
            "checkpoints": "checkpoint", "runs": "run", "characters": "character", "seconds": "second",
            "rows": "row", "words": "word", "times": "time"}
ONE = re.compile(r"(?<![\d.,/−-])1 ((?:hidden |time )?)(" + "|".join(SINGULAR) + r")\b")


def singular_for_one(text: str) -> str:
    """'1 epochs' -> '1 epoch' (not '21 epochs', '0.1 seconds', '10,001 tokens' or '1/5 epochs')."""
    return ONE.sub(lambda m: f"1 {m.group(1)}{SINGULAR[m.group(2)]}", text)


def t(key: str, lang: str | None = None, /, **fmt) -> str:
    """The message `key` in `lang` (default: the run's language), its ``{fields}`` filled from `fmt` (in English,
    a noun counted by 1 in the singular)."""
    lang = lang or current()
    text = catalogue(lang).get(key)
    if text is None:
        text = catalogue(DEFAULT)[key]  # a KeyError here is a programming error: the id does not exist
    if not fmt:
        return text
    text = text.format(**fmt)
    return singular_for_one(text) if lang == "en" else text


def sentences(*parts: str, lang: str | None = None) -> str:
    """Sentences run on as the language writes them: a space after an English full stop, none after '。'."""
    return ("" if (lang or current()) == "zh" else " ").join(p for p in parts if p)


def error_text(exc: BaseException, lang: str | None = None, /) -> str:
    """A user-caused error in `lang`: its catalogue message ``error.<key>`` filled with its values (rnn_core's
    ``UserError``), else its own first line (an error with no message id)."""
    key = getattr(exc, "key", None)
    if key:
        values = dict(getattr(exc, "values", {}))
        if "setting" in values:  # a setting's name, said in the language too
            values["setting"] = t(f"error.setting.{values['setting']}", lang)
        return t(f"error.{key}", lang, **values)
    text = str(exc).strip()
    return text.splitlines()[0] if text else exc.__class__.__name__

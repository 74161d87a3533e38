"""The sidebar's settings: their schema, the lesson's values, the URL parameters and what each page uses.

One field per URL query parameter (``/shapes?batch=8&steps=10&hidden=64``); the sidebar draws them, and a
URL value outside ``URL_SPECS`` is named in a warning.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass

import torch

import rnn_core
from rnn_core import corpus as rc_corpus
from rnn_core import settings_schema as schema

from . import i18n
from .i18n import t

MAX_TOKENS = schema.LESSON.max_tokens  # the lesson's load_data_time_machine keeps the first 10,000 tokens

FALLBACK_CORPUS = "toy_english"

CORPUS_CHOICES = list(schema.CORPUS_CHOICES)

CORPUS_TITLES = {"time_machine": "The Time Machine (H. G. Wells)", "upload": "your uploaded text",
                 **{k: v[0] for k, v in rc_corpus.BUILTIN_CORPORA.items()}}

USER_ERRORS = (rnn_core.CorpusError, rnn_core.SettingsError, rnn_core.DeviceError, rnn_core.DivergenceError)


@dataclass(frozen=True)
class Settings:
    """The sidebar's values: one field per URL query parameter (defaults: rnn_core.settings_schema's)."""

    corpus: str = schema.LESSON.corpus
    token: str = schema.LESSON.token
    clean: str = schema.LESSON.clean  # "lesson": a-z and space, lower case; "keep": every character (Unicode)
    batch: int = schema.LESSON.batch
    steps: int = schema.LESSON.steps
    hidden: int = schema.LESSON.hidden
    lr: float = schema.LESSON.lr
    epochs: int = schema.LESSON.epochs
    clip: float | None = schema.LESSON.clip  # gradient clipping threshold theta; None: off
    partition: str = schema.LESSON.partition
    device: str = schema.LESSON.device
    seed: int = schema.LESSON.seed
    engine: str = schema.LESSON.engine
    upload_id: str | None = None  # file_id of the uploaded file, when corpus == "upload"

    @property
    def use_random_iter(self) -> bool:
        return self.partition == "random"


LESSON = Settings()  # the lesson's settings: 32, 35, 512, lr 1, theta 1, 500 epochs


def share_the_cpu() -> int:
    """Let torch use half the cores (at least one): the browser and the server need the rest.

    On a 2-core machine two intra-op threads fighting the browser for the cores make an epoch 10x
    slower, not 2x faster; one thread keeps training and every page's reruns steady.
    """
    threads = max(1, min(4, (os.cpu_count() or 2) // 2))
    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
    return threads


CLIP_CHOICES = list(schema.CLIP_CHOICES)


def parse_clip(text: str | None) -> tuple[float | None, str | None]:
    """The clipping threshold θ from the sidebar's text: (θ or None for off, a warning when it was unusable)."""
    text = (text or "1").strip().lower()
    if text == "off":
        return None, None
    try:
        theta = float(text)
    except ValueError:
        theta = -1.0
    if not (0 < theta < float("inf")):
        return LESSON.clip, t("sidebar.clip_bad", value=repr(text), theta=f"{LESSON.clip:g}")
    return theta, None


TEXT_MAX_CHARS = schema.TEXT_MAX_CHARS  # the text boxes' max_chars (Inside's text, Generate's prefix)

# Every URL parameter a widget reads that can hold a bad value: (kind, allowed, default shown).
# kind "int"/"float": allowed is (low, high); "choice": the options; "bool": a toggle's true/false;
# "clip": "off" or a positive number; "text": allowed is (0, longest). The lesson's settings and Generate's and
# Identity's controls come from rnn_core.settings_schema (as do their widgets' ranges: schema.widget_args).
URL_SPECS = {
    **schema.url_specs(),
    "lang": ("choice", tuple(i18n.LANGS), None), "mode": ("choice", ("lecture", "lab"), "lab"),
    "text": ("text", (0, TEXT_MAX_CHARS), None), "prefix": ("text", (0, TEXT_MAX_CHARS), None),
}

# How a number widget shows its value (its format=); other numbers show as plain integers or Python's repr
URL_FORMATS = {f.metadata["url"]: f.metadata["format"] for f in schema.schema_fields()
               if f.metadata["url"] and f.metadata["format"]}
# A slider's step where it shows only values on that grid (temperature 0.15 would show as 0.1 and be used as 0.15)
URL_GRID = {"generate_temperature": schema.by_url("generate_temperature").metadata["step"]}

SIDEBAR_KEYS = ("lang", "mode", "corpus", "token", "clean", "batch", "steps", "hidden", "partition", "lr", "epochs",
                "clip", "device", "engine", "seed")
# The URL parameters of a page's own widgets that the sidebar checks for it (the pages check the others)
PAGE_URL_KEYS = {"identity": ("identity_f64",), "inside": ("text",), "generate": ("prefix",)}


def _number(raw: str) -> float | None:
    """A finite number from a URL's text as Streamlit's bound widgets read it (float()), else None."""
    try:
        value = float(raw)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def url_value(key: str, raw: str) -> tuple[bool, object]:
    """How the widget bound to ``?key=`` is to read `raw`: (True, its value) when it is a value the widget takes
    as it is, else (False, the value used instead): the default, the slider's nearest value, a text cut to the
    box's length. Streamlit itself would drop a bad value silently or read 7.9 as 7."""
    kind, allowed, default = URL_SPECS[key]
    if kind == "choice":
        return (True, raw) if raw in allowed else (False, default)
    if kind == "bool":
        return (True, raw.lower() == "true") if raw.lower() in allowed else (False, default)
    if kind == "clip":
        text = raw.strip().lower()
        theta = _number(text)
        return (True, raw) if text == "off" or (theta is not None and theta > 0) else (False, default)
    if kind == "text":
        return (True, raw) if len(raw) <= allowed[1] else (False, raw[:allowed[1]])
    value = _number(raw)
    if value is None or not allowed[0] <= value <= allowed[1]:
        return False, default
    if kind == "int":
        return (True, int(value)) if value == int(value) else (False, default)
    if key in URL_GRID:
        on_grid = round(round(value / URL_GRID[key]) * URL_GRID[key], 10)
        if abs(on_grid - value) > 1e-9 and allowed[0] <= on_grid <= allowed[1]:  # 0.30000000000000004 is 0.3
            return False, on_grid  # between two of the slider's values: the nearest, as the slider shows it
    return True, value


def url_problem(key: str, raw: str) -> bool:
    """True when `raw` is not a value the widget bound to ``?key=`` takes as it is."""
    return not url_value(key, raw)[0]


def index_value(raw: str, size: int, default: int) -> tuple[bool, int]:
    """``url_value`` for a slider over the indices 0..size-1 (a row, a hidden unit): (True, the index) or
    (False, `default`)."""
    value = _number(raw)
    if value is None or value != int(value) or not 0 <= value <= max(size - 1, 0):
        return False, default
    return True, int(value)


def url_shown(key: str, value) -> str:
    """A number or switch as its widget shows it (lr 0.5, temperature 1.0, a toggle's true/false)."""
    if isinstance(value, bool):
        return str(value).lower()
    if key in URL_FORMATS and isinstance(value, (int, float)):
        return URL_FORMATS[key] % value
    return str(value)


OPTION_CAPTIONS = {key: schema.by_url(key).metadata["choices"] for key in ("token", "clean", "partition", "device")}

# The sidebar settings each page's views depend on (url_path -> setting keys); the others are drawn under
# "Used by other pages", so a slider that would change nothing here is not offered as if it did.
CORPUS_KEYS = ("corpus", "token", "clean")

USES = {
    "": (*CORPUS_KEYS, "device"),
    "data": (*CORPUS_KEYS, "batch", "steps", "partition", "seed"),
    "shapes": (*CORPUS_KEYS, "batch", "steps", "hidden", "partition", "seed"),
    "unrolled": ("seed",),  # its untrained model's seed; its other models bring their own settings
    "identity": ("seed",),
    "training": (*CORPUS_KEYS, "batch", "steps", "hidden", "partition", "lr", "epochs", "clip", "engine", "device",
                 "seed"),
    "inside": (*CORPUS_KEYS, "hidden", "seed"),
    "generate": (*CORPUS_KEYS, "hidden", "seed"),
}

# The choices shown by name in the page's language (layout.url_choice): the app keeps them in the URL itself
CHOICE_KEYS = {"lang", "mode", "corpus", "token", "clean", "partition", "device", "model"}
# Kept in the URL even at its default: the language's default is the browser's, so a link without it opens a
# zh view in English on another browser
ALWAYS_IN_URL = {"lang"}

# The URL parameters of a page's own controls (url_path -> keys). A page's URL carries only its own and the
# shared ones (the sidebar's settings, lang, mode, run): a page turn or "Link to this view" drops the others.
# Shared by design: `t` (the step) between the unrolled page and Inside; `model` and `epoch` (the model shown
# and its checkpoint, one scrubber with one Play) between Inside, Generate and the unrolled page.
PAGE_PARAMS = {
    "shapes": ("shapes_row",),
    "unrolled": ("unrolled_model", "unrolled_text", "t", "epoch"),
    "identity": ("identity_n", "identity_d", "identity_h", "identity_f64"),
    "inside": ("text", "inside_unit", "t", "model", "epoch"),
    "generate": ("prefix", "generate_length", "generate_temperature", "generate_seed", "model", "epoch"),
    "exercises": ("exercise", "variation"),
}


PAGES_PARAMS = frozenset(key for keys in PAGE_PARAMS.values() for key in keys)  # every page's own parameters


def foreign_params(page: str) -> set[str]:
    """The URL parameters of other pages' controls that `page` has no control for."""
    return PAGES_PARAMS - set(PAGE_PARAMS.get(page, ()))

# Every URL parameter a widget reads; the ones not in CHOICE_KEYS are bound to their widgets (Streamlit refuses
# to set these directly, and keeps them itself)
BOUND_KEYS = {*URL_SPECS, "clip", "text", "prefix", "model", "epoch", "identity_f64", "inside_unit", "shapes_row",
              "t", "unrolled_text"}

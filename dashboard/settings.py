"""The sidebar's settings: their schema, the lesson's values, the URL parameters and what each page uses.

One field per URL query parameter (``/shapes?batch=8&steps=10&hidden=64``); the sidebar draws them, and a
URL value outside ``URL_SPECS`` is named in a warning.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch

import rnn_core
from rnn_core import corpus as rc_corpus
from rnn_core.corpus import CLEANINGS
from rnn_core.engines import DEFAULT_ENGINE, ENGINES

from . import i18n
from .i18n import t

MAX_TOKENS = 10_000  # the lesson's load_data_time_machine keeps the first 10,000 tokens

FALLBACK_CORPUS = "toy_english"

CORPUS_CHOICES = ["time_machine", *rc_corpus.BUILTIN_CORPORA, "upload"]

CORPUS_TITLES = {"time_machine": "The Time Machine (H. G. Wells)", "upload": "your uploaded text",
                 **{k: v[0] for k, v in rc_corpus.BUILTIN_CORPORA.items()}}

USER_ERRORS = (rnn_core.CorpusError, rnn_core.SettingsError, rnn_core.DeviceError, rnn_core.DivergenceError)


@dataclass(frozen=True)
class Settings:
    """The sidebar's values: one field per URL query parameter."""

    corpus: str = "time_machine"
    token: str = "char"
    clean: str = "lesson"  # "lesson": a-z and space, lower case; "keep": every character (Chinese, Unicode)
    batch: int = 32
    steps: int = 35
    hidden: int = 512
    lr: float = 1.0
    epochs: int = 500
    clip: float | None = 1.0  # gradient clipping threshold theta; None: off
    partition: str = "sequential"
    device: str = "auto"
    seed: int = 0
    engine: str = DEFAULT_ENGINE
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


def engine_names() -> list[str]:
    """Engines rnn_core offers, the default first."""
    return [DEFAULT_ENGINE, *[e for e in ENGINES if e != DEFAULT_ENGINE]]


CLIP_CHOICES = ["off", "0.01", "0.1", "0.5", "1", "2", "5", "10", "100", "1000"]


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


# Every URL parameter a widget is bound to that can hold a bad value: (kind, allowed, default shown).
# kind "int"/"float": allowed is (low, high); "choice": allowed is the options.
URL_SPECS = {
    "batch": ("int", (1, 128), LESSON.batch), "steps": ("int", (1, 100), LESSON.steps),
    "hidden": ("int", (1, 1024), LESSON.hidden), "lr": ("float", (0.001, 100.0), LESSON.lr),
    "epochs": ("int", (1, 10_000), LESSON.epochs), "seed": ("int", (0, 2**31 - 1), LESSON.seed),
    "corpus": ("choice", tuple(CORPUS_CHOICES), LESSON.corpus), "token": ("choice", ("char", "word"), "char"),
    "clean": ("choice", CLEANINGS, "lesson"), "partition": ("choice", ("sequential", "random"), "sequential"),
    "device": ("choice", ("auto", "cpu", "cuda"), "auto"), "engine": ("choice", tuple(engine_names()), LESSON.engine),
    "lang": ("choice", tuple(i18n.LANGS), None), "mode": ("choice", ("lecture", "lab"), "lab"),
    "identity_n": ("int", (1, 12), 3), "identity_d": ("int", (1, 12), 1), "identity_h": ("int", (1, 12), 4),
    "generate_length": ("int", (10, 500), 50), "generate_temperature": ("float", (0.1, 3.0), 1.0),
    "generate_seed": ("int", (0, 2**31 - 1), LESSON.seed),
}

SIDEBAR_KEYS = ("lang", "mode", "corpus", "token", "clean", "batch", "steps", "hidden", "partition", "lr", "epochs",
                "device", "engine", "seed")


def url_problem(key: str, raw: str) -> bool:
    """True when `raw` is not a value the widget bound to ``?key=`` accepts (Streamlit would drop it silently)."""
    kind, allowed, _ = URL_SPECS[key]
    if kind == "choice":
        return raw not in allowed
    try:
        value = float(raw)
    except ValueError:
        return True
    if kind == "int" and value != int(value):
        return True
    return not allowed[0] <= value <= allowed[1]


OPTION_CAPTIONS = {"token": ("char", "word"), "clean": CLEANINGS, "partition": ("sequential", "random"),
                   "device": ("auto", "cpu", "cuda")}

# The sidebar settings each page's views depend on (url_path -> setting keys); the others are drawn under
# "Used by other pages", so a slider that would change nothing here is not offered as if it did.
CORPUS_KEYS = ("corpus", "token", "clean")

USES = {
    "": (*CORPUS_KEYS, "device"),
    "data": (*CORPUS_KEYS, "batch", "steps", "partition", "seed"),
    "shapes": (*CORPUS_KEYS, "batch", "steps", "hidden", "partition", "seed"),
    "identity": ("seed",),
    "training": (*CORPUS_KEYS, "batch", "steps", "hidden", "partition", "lr", "epochs", "clip", "engine", "device",
                 "seed"),
    "inside": (*CORPUS_KEYS, "hidden", "seed"),
    "generate": (*CORPUS_KEYS, "hidden", "seed"),
}

# The choices shown by name in the page's language (layout.url_choice): the app keeps them in the URL itself
CHOICE_KEYS = {"lang", "mode", "corpus", "token", "clean", "partition", "device", "model"}
# Every URL parameter a widget reads; the ones not in CHOICE_KEYS are bound to their widgets (Streamlit refuses
# to set these directly, and keeps them itself)
BOUND_KEYS = {*URL_SPECS, "clip", "text", "prefix", "model", "epoch", "identity_f64", "inside_unit", "shapes_row"}

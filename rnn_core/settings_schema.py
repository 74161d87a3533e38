"""The lesson's settings, declared once: each field's default, its widget range or choices, its URL key, its CLI
flag and its help id, as ``dataclasses.field(metadata=...)``.

From it come ``python -m rnn_core.train``'s flags (:func:`add_arguments`), the dashboard's URL specs
(:func:`url_specs`) and its widgets' ranges (:func:`widget_args`). ``RunSettings`` (what a run is saved with)
keeps its own fields and order: run.json and checkpoints are read by name, and the tests hold its defaults to
these.

metadata keys: ``kind`` ("int" | "float" | "choice" | "clip" | "text" | "bool"); ``range`` (low, high) of the
widget and the URL; ``choices`` (the widget's options); ``step`` and ``format`` (the widget's); ``url`` (the
query parameter, None: not in the URL); ``cli`` (the flag's argparse keywords, with ``flag``; None: no flag);
``help`` (the widget's help message id).
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass, field, fields

from .corpus import BUILTIN_CORPORA, CLEANINGS
from .engines import DEFAULT_ENGINE, ENGINES
from .model import ACTIVATIONS, INPUTS
from .training import parse_predict

CORPUS_CHOICES = ("time_machine", *BUILTIN_CORPORA, "upload")
CLIP_CHOICES = ("off", "0.01", "0.1", "0.5", "1", "2", "5", "10", "100", "1000")
HIDDEN = 512  # the lesson's num_hiddens
SEED_MAX = 2**31 - 1  # the widgets' seeds (the CLI's take up to 2**63-1: guards.SEEDS)


def engine_names() -> list[str]:
    """Engines rnn_core offers, the default first (the widget's order)."""
    return [DEFAULT_ENGINE, *[e for e in ENGINES if e != DEFAULT_ENGINE]]


def clip_value(text: str) -> float | None:
    """--clip: a positive number, or 'off' (None: no clipping)."""
    if text.strip().lower() == "off":
        return None
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid clip value {text!r}: a positive number or 'off'") from None


def predict_value(text: str) -> str:
    """--predict: checked by ``training.parse_predict``."""
    try:
        parse_predict(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text.strip().lower()


def setting(default, kind: str, *, range: tuple | None = None, choices: tuple | None = None, url: str | None = None,
            cli: dict | None = None, help: str | None = None, step=None, format: str | None = None):
    """A schema field: ``default`` and its metadata (see the module's docstring)."""
    meta = {"kind": kind, "range": range, "choices": choices, "url": url, "cli": cli, "help": help, "step": step,
            "format": format}
    return field(default=default, metadata=meta)


@dataclass(frozen=True)
class LessonSettings:
    """The lesson's settings (d2l 8.5: 32, 35, 512, lr 1, theta 1, 500 epochs) and how each is set."""

    corpus: str = setting("time_machine", "choice", choices=CORPUS_CHOICES, url="corpus", help="sidebar.corpus_help",
                          cli={"flag": "--corpus", "help": "time_machine | a file path | a built-in name"})
    token: str = setting("char", "choice", choices=("char", "word"), url="token",
                         cli={"flag": "--token", "choices": ["char", "word"]})
    clean: str = setting("lesson", "choice", choices=CLEANINGS, url="clean", help="sidebar.clean_help",
                         cli={"flag": "--clean", "choices": list(CLEANINGS),
                              "help": "lesson: a-z and space, lower case (the lesson's); keep: every character "
                                      "(NFKC, whitespace collapsed), for Chinese or other Unicode texts"})
    max_tokens: int = setting(10_000, "int", cli={"flag": "--max-tokens", "type": int,
                                                  "help": "use the first N tokens (<=0: all)"})
    batch: int = setting(32, "int", range=(1, 128), url="batch", help="sidebar.batch_help",
                         cli={"flag": "--batch-size", "type": int})
    steps: int = setting(35, "int", range=(1, 100), url="steps", help="sidebar.steps_help",
                         cli={"flag": "--num-steps", "type": int})
    hidden: int = setting(HIDDEN, "int", range=(1, 1024), url="hidden", help="sidebar.hidden_help",
                          cli={"flag": "--hidden", "type": int, "default": None,
                               "help": f"hidden units (default {HIDDEN}; with --load, the file's)"})
    epochs: int = setting(500, "int", range=(1, 10_000), step=10, url="epochs", cli={"flag": "--epochs", "type": int})
    lr: float = setting(1.0, "float", range=(0.001, 100.0), step=0.1, format="%g", url="lr",
                        cli={"flag": "--lr", "type": float})
    clip: float | None = setting(1.0, "clip", choices=CLIP_CHOICES, url="clip", help="sidebar.clip_help",
                                 cli={"flag": "--clip", "type": clip_value,
                                      "help": "gradient clipping threshold theta, or 'off'"})
    partition: str = setting("sequential", "choice", choices=("sequential", "random"), url="partition",
                             help="sidebar.partition_help",
                             cli={"flag": "--random-iter", "action": "store_true", "default": False,
                                  "help": "random partitioning (default: sequential)"})
    device: str = setting("auto", "choice", choices=("auto", "cpu", "cuda"), url="device",
                          cli={"flag": "--device", "help": "auto | cpu | cuda | mps"})
    engine: str = setting(DEFAULT_ENGINE, "choice", choices=tuple(engine_names()), url="engine",
                          help="sidebar.engine_help", cli={"flag": "--engine", "choices": sorted(ENGINES)})
    seed: int = setting(0, "int", range=(0, SEED_MAX), step=1, url="seed",
                        cli={"flag": "--seed", "type": int, "help": "0 to 2**63-1"})
    prefix: str = setting("time traveller", "text", cli={"flag": "--prefix"})
    # The lesson's exercises (rnn_core.variants)
    activation: str = setting("tanh", "choice", choices=tuple(ACTIVATIONS),
                              cli={"flag": "--activation", "choices": list(ACTIVATIONS),
                                   "help": "the hidden layer's nonlinearity"})
    input: str = setting("onehot", "choice", choices=INPUTS,
                         cli={"flag": "--input", "choices": list(INPUTS),
                              "help": "one-hot inputs (the lesson's) or a learnable embedding (the lesson engine)"})
    embed: int = setting(0, "int", cli={"flag": "--embed", "type": int,
                                        "help": "the embedding's size (0: the vocabulary's, as one-hot)"})
    detach: bool = setting(True, "bool", cli={"flag": "--no-detach", "action": "store_true", "default": False,
                                              "help": "sequential partitioning without detaching the state: BPTT "
                                                      "across an epoch's minibatches (the lesson engine)"})
    predict: str = setting("greedy", "text", cli={"flag": "--predict", "type": predict_value,
                                                  "help": "samples: greedy | sample:T (temperature T) | "
                                                          "sharpen:ALPHA (P^alpha renormalised)"})
    heldout: str = setting("", "text", cli={"flag": "--heldout",
                                            "help": "score each epoch on a text never trained on: rest (the corpus "
                                                    "after --max-tokens), builtin:NAME, or a file path"})


TEXT_MAX_CHARS = 200  # the text boxes' max_chars (Inside's text, Generate's prefix)


@dataclass(frozen=True)
class GenerateSettings:
    """The Generate page's own controls (the prefix is a text box of :data:`TEXT_MAX_CHARS`)."""

    length: int = setting(50, "int", range=(10, 500), step=10, url="generate_length")
    temperature: float = setting(1.0, "float", range=(0.1, 3.0), step=0.1, format="%.1f", url="generate_temperature")
    seed: int = setting(0, "int", range=(0, SEED_MAX), url="generate_seed")


@dataclass(frozen=True)
class IdentitySettings:
    """The concatenation identity page's controls: the sizes n, d, h and float64."""

    n: int = setting(3, "int", range=(1, 12), url="identity_n")
    d: int = setting(1, "int", range=(1, 12), url="identity_d")
    h: int = setting(4, "int", range=(1, 12), url="identity_h")
    f64: bool = setting(False, "bool", choices=("true", "false"), url="identity_f64", help="identity.f64_help")


LESSON = LessonSettings()
SCHEMAS = (LessonSettings, GenerateSettings, IdentitySettings)


def schema_fields(*schemas):
    """Every field of ``schemas`` (default: all of them)."""
    return [f for schema in (schemas or SCHEMAS) for f in fields(schema)]


def by_url(key: str):
    """The field whose URL parameter is ``key``."""
    return _BY_URL[key]


def choices(name: str) -> tuple:
    """The choices of the LessonSettings field ``name``."""
    return next(f for f in fields(LessonSettings) if f.name == name).metadata["choices"]


def cli_default(f):
    """A field's flag's default: the flag's own (``--hidden``: None, a switch: False), else the field's."""
    return f.metadata["cli"].get("default", f.default)


def add_arguments(p: argparse.ArgumentParser, *names: str) -> None:
    """Add the flags of the LessonSettings fields ``names``, in that order, to ``p``."""
    known = {f.name: f for f in fields(LessonSettings)}
    for name in names:
        f = known[name]
        kwargs = {k: v for k, v in f.metadata["cli"].items() if k != "flag"}
        kwargs["default"] = cli_default(f)
        p.add_argument(f.metadata["cli"]["flag"], **kwargs)


def url_default(f):
    """The default a URL spec names: the clip's as its text ('1'), else the field's."""
    return f"{f.default:g}" if f.metadata["kind"] == "clip" else f.default


def url_specs() -> dict[str, tuple]:
    """{URL key: (kind, allowed, default)} for every field with a URL parameter: allowed is (low, high) for
    numbers, else the choices."""
    return {f.metadata["url"]: (f.metadata["kind"], f.metadata["range"] or f.metadata["choices"], url_default(f))
            for f in schema_fields() if f.metadata["url"]}


def widget_args(key: str, **override) -> dict:
    """A number widget's keywords (min_value, max_value, value, step, format) for the field at URL ``key``."""
    f = by_url(key)
    lo, hi = f.metadata["range"]
    args = {"min_value": lo, "max_value": hi, "value": f.default}
    args.update({k: f.metadata[k] for k in ("step", "format") if f.metadata[k] is not None})
    return {**args, **override}


_BY_URL = {f.metadata["url"]: f for f in schema_fields() if f.metadata["url"]}  # the sidebar asks ~20 times a run

"""Numbers, settings and runs as the pages write them: perplexities, durations, the settings line, tables."""
from __future__ import annotations

import math
import re
import unicodedata

import pandas as pd

import rnn_core
import rnn_core.runs
from rnn_core.engines import ENGINES  # each named by the catalogue's settings.engine.<name>

from .corpora import corpus_title, visible_spaces
from .i18n import t


def fmt_ppl(perplexity: float) -> str:
    """A perplexity for display: two decimals, or scientific notation when it is huge."""
    return f"{perplexity:.2f}" if perplexity < 1e5 else f"{perplexity:.3g}"


SUPERSCRIPT = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")
FROM_SUPERSCRIPT = str.maketrans("⁻⁰¹²³⁴⁵⁶⁷⁸⁹", "-0123456789")
NUMBER = r"[-+]?\d+(?:\.\d+)?(?:×10[⁻⁰¹²³⁴⁵⁶⁷⁸⁹]+)?|-?∞"  # what num() writes (but its "–" for no number)


def num(x: float | None, digits: int = 2) -> str:
    """A number to ``digits`` significant digits, without trailing zeros: 0.54, 12, or 2.1×10⁻³ when below 0.01 or
    from 10,000 up; ∞ for an infinite one, '–' for none (None or nan). :func:`parse_num` reads it back."""
    if x is None or math.isnan(x := float(x)):
        return "–"
    if math.isinf(x):
        return "∞" if x > 0 else "-∞"
    if x == 0:
        return "0"
    if 0.01 <= abs(x) < 10_000:
        decimals = max(0, digits - 1 - math.floor(math.log10(abs(x))))
        out = f"{x:.{decimals}f}"
        # rounding may add a digit (9.96 -> 10.0): write it again from the rounded value
        return _no_trailing_zeros(f"{float(out):.{max(0, digits - 1 - math.floor(math.log10(abs(float(out)))))}f}")
    mantissa, exponent = f"{x:.{digits - 1}e}".split("e")
    return f"{_no_trailing_zeros(mantissa)}×10{str(int(exponent)).translate(SUPERSCRIPT)}"


def _no_trailing_zeros(text: str) -> str:
    """'4.50' -> '4.5', '60.0' -> '60' (a whole number reads as one)."""
    return text.rstrip("0").rstrip(".") if "." in text else text


def parse_num(text: str) -> float:
    """The value of a number written by :func:`num` (nan for its '–')."""
    if text in ("∞", "-∞", "–"):
        return {"∞": math.inf, "-∞": -math.inf, "–": math.nan}[text]
    if "×10" in text:
        mantissa, exponent = text.split("×10")
        return float(mantissa) * 10.0 ** int(exponent.translate(FROM_SUPERSCRIPT))
    return float(text)


def numbers(sentence: str) -> list[float]:
    """Every number in a sentence, in order (as :func:`num` writes them)."""
    return [parse_num(m) for m in re.findall(NUMBER, sentence)]


def fmt_seconds(seconds: float) -> str:
    """'42 s', '3 min 05 s'."""
    seconds = max(0, round(seconds))
    return f"{seconds} s" if seconds < 60 else f"{seconds // 60} min {seconds % 60:02d} s"


def fmt_setting(value) -> str:
    """A setting's value as the sidebar shows it (clipping off reads 'off', in the page's language)."""
    return t("settings.clip_off") if value is None else f"{value:g}" if isinstance(value, float) else str(value)


def describe_settings(rs: rnn_core.runs.RunSettings, vocab_size: int) -> str:
    """One sentence of a run's settings (the Training page's settings line), its words in the page's language."""
    theta = t("settings.no_clip") if rs.clip is None else t("settings.theta", theta=f"{rs.clip:g}")
    token = t(f"choice.token.{rs.token}") if rs.token in ("char", "word") else rs.token
    engine = t(f"settings.engine.{rs.engine}") if rs.engine in ENGINES else rs.engine
    return t("settings.line", corpus=corpus_title(rs.corpus), token=token, V=vocab_size, batch=rs.batch,
             steps=rs.steps, hidden=rs.hidden, lr=f"{rs.lr:g}", theta=theta, epochs=f"{rs.epochs:,}",
             partition=t(f"partition.{rs.partition}"), engine=engine, seed=rs.seed)


# What each row of the shape trace (rnn_core.shape_trace, one row per tensor by name) is, by its catalogue id
# shapes.f.<id>: rnn_core writes it in English; the page says it in its language
SHAPE_NOTES = {"X": "indices", "X.T": "transpose", "one_hot(X.T)": "one_hot", "X_t": "x_t", "H_{t-1}": "h_prev",
               "X_t W_xh": "input", "H_{t-1} W_hh": "recurrent", "H_t": "h_t", "O_t": "o_t", "outputs": "outputs",
               "H": "state", "y": "targets", "loss": "loss",
               **{name: "parameter" for name in rnn_core.model.PARAM_NAMES}}


def shape_rows(trace: pd.DataFrame) -> pd.DataFrame:
    """The shape table as the page shows it: each row's formula column in the page's language (code and formulas
    stay as they are)."""
    out = trace.copy()
    out["formula"] = [t(f"shapes.f.{SHAPE_NOTES[name]}") if name in SHAPE_NOTES else formula
                      for name, formula in zip(out["name"], out["formula"])]
    return out


def display_width(text: str) -> int:
    """Columns `text` takes in a monospaced font: a wide (Chinese) character two, any other one."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def pad_left(text: str, width: int) -> str:
    """`text` right-aligned in `width` columns of a monospaced font (str.rjust counts a Chinese character once)."""
    return " " * max(0, width - display_width(text)) + text


def samples_frame(history: pd.DataFrame) -> pd.DataFrame:
    """Epoch, perplexity (as text: huge values in scientific notation) and the sample, newest first."""
    rows = history.loc[history["sample"].notna(), ["epoch", "perplexity", "sample"]].iloc[::-1]
    return pd.DataFrame({"epoch": rows["epoch"].astype(int).to_numpy(),
                         "perplexity": [fmt_ppl(p) for p in rows["perplexity"]],
                         "sample": [visible_spaces(t) for t in rows["sample"]]})


def decay_frame(diagnostics) -> pd.DataFrame:
    """A run's gradient-flow curves by checkpoint epoch: columns epoch, d, mean (for
    training_charts.decay_curves_chart)."""
    rows = [(g["epoch"], d, v) for g in diagnostics for d, v in enumerate(g["decay"])]
    return pd.DataFrame(rows, columns=["epoch", "d", "mean"])


def spectrum_frame(diagnostics) -> pd.DataFrame:
    """ρ(W_hh) and σ_max(W_hh) by checkpoint epoch (for training_charts.spectrum_chart)."""
    return pd.DataFrame({"epoch": [g["epoch"] for g in diagnostics], "radius": [g["radius"] for g in diagnostics],
                         "sigma_max": [g["singular"][0] for g in diagnostics]})


def runs_frame(views: list) -> pd.DataFrame:
    """One row per run: id, status, epochs, size, perplexity (as text)."""
    return pd.DataFrame({
        "run": [v.id for v in views],
        "status": [v.status for v in views],
        "epochs": [f"{v.epoch}/{v.target}" for v in views],
        "hidden": [v.settings.hidden for v in views],
        "corpus": [corpus_title(v.settings.corpus) for v in views],
        "perplexity": [fmt_ppl(v.last["perplexity"]) if v.last else "–" for v in views],
    })

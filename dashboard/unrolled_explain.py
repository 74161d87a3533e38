"""Sentences for the unrolled page, made from the numbers it draws (``rnn_core.unrolled.Unrolled``).

Pure functions, no Streamlit; numbers written with ``formatting.num`` so that a test reads them back with
``formatting.numbers`` and holds each sentence to the numbers it states.
"""
from __future__ import annotations

from rnn_core.unrolled import Unrolled

from .chart_base import show_token
from .formatting import num
from .i18n import t


def step(u: Unrolled, s: int) -> str:
    """What step s reads, its largest unit, and what it predicts against the true next token."""
    row = u.H[s - 1]
    unit = int(row.abs().argmax())
    predicted = int(u.predicted[s - 1])
    right = predicted == int(u.target_index[s - 1])
    values = dict(t=s, token=show_token(u.inputs[s - 1]), index=int(u.index[s - 1]), unit=unit,
                  h=num(float(row[unit])), target=show_token(u.targets[s - 1]), p=num(u.p_true(s)),
                  loss=num(float(u.loss[s - 1])), predicted=show_token(u.tokens[predicted]),
                  p_pred=num(float(u.P[s - 1, predicted])))
    verdict = t("unrolled.explain.right" if right else "unrolled.explain.wrong", **values)
    return t("unrolled.explain.step", verdict=verdict, **values)


def backward(u: Unrolled, s: int) -> str:
    """How much of ℓ_s reaches H_s and H_1, and the mean factor per step back between them."""
    row = u.gradient_row(s)
    if s == 1:
        return t("unrolled.explain.back_one", g=num(row[0]))
    d = s - 1
    ratio = row[0] / row[-1] if row[-1] > 0 else float("nan")
    return t("unrolled.explain.back", t=s, g=num(row[-1]), d=d, g1=num(row[0]), ratio=num(ratio),
             factor=num(ratio ** (1 / d)))


def units(u: Unrolled, s: int, shown: list[int]) -> str:
    """For a model larger than the picture: which units are shown, and why."""
    return t("unrolled.explain.units", hidden=u.hidden, k=len(shown), t=s, units=", ".join(map(str, shown)))

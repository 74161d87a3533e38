"""Sentences for the Inside page made from the numbers it shows (no claim that the numbers do not make).

Pure functions: rnn_core results in, Markdown strings out (no Streamlit), in the run's language (the
sentences are the catalogue's explain.* messages; English outside a Streamlit run). Numbers are written with
``formatting.num``, which ``parse_num`` reads back, so a test can check every number a sentence states.
"""
from __future__ import annotations

import math

import pandas as pd

from rnn_core.gradflow import GradientFlow, Spectrum
from rnn_core.inside import Surprise
from rnn_core.units import CHAR_FEATURES, LONG_WORD

from .formatting import num
from .i18n import t

def _steps(d: int) -> str:
    return t("explain.steps_one" if d == 1 else "explain.steps_many", d=d)


def feature_label(name: str, labels: dict[str, str]) -> str:
    """A text feature's description (rnn_core.units) in the run's language."""
    level = "char" if labels is CHAR_FEATURES or labels == CHAR_FEATURES else "word"
    key = f"units.{level}.{name}"
    return t(key, n=LONG_WORD) if name in labels else name


TWIN_NAMES = {"outputs O (steps, vocab)": "explain.twin.outputs", "final state H_T (1, hidden)": "explain.twin.state",
              "loss": "explain.twin.loss"}


def twin_name(name: str) -> str:
    """What a row of the twin check compares, in the page's language (a gradient is named by its formula, ∂ℓ/∂W,
    beside the nn.RNN parameter it is compared with, as the code names it)."""
    if name in TWIN_NAMES:
        return t(TWIN_NAMES[name])
    return name.replace("∂loss/", "∂ℓ/").replace("  vs  ", f"  {t('explain.twin.vs')}  ")


def distances(steps: int) -> list[int]:
    """The distances the sentences talk about: 1, 10 and the longest there is."""
    return sorted({d for d in (1, 10, steps - 1) if 0 < d < steps})


def gradient_flow(flow: GradientFlow) -> list[str]:
    """What the decay curve shows, in numbers: size at the step itself, d steps back, the fitted factor."""
    if flow.steps < 2:
        return [t("explain.flow.one_step")]
    out = [t("explain.flow.at_step", v=num(flow.curve[0]), n=flow.steps)]
    for d in distances(flow.steps):
        r = flow.ratio(d)
        size = t("explain.flow.of_size" if r < 1 else "explain.flow.times_size", r=num(r))
        out.append(t("explain.flow.back", steps=_steps(d), d=d, size=size))
    f = flow.factor
    if math.isfinite(f) and f > 0:
        if abs(math.log10(f)) < 1e-3:
            trend = t("explain.flow.same")
        else:
            every = 1 / abs(math.log10(f))
            trend = t("explain.flow.shrinks" if f < 1 else "explain.flow.grows", every=num(every))
        out.append(t("explain.flow.fitted", f=num(f), trend=trend))
    return out


def spectrum(flow: GradientFlow, spec: Spectrum) -> list[str]:
    """How σ_max(W_hh), ρ(W_hh) and tanh′ bound or allow the flow, and the one-step factor measured."""
    sigma, rho, tp = spec.sigma_max, spec.radius, flow.max_tanh_prime
    bound = sigma * tp
    out = [t("explain.spec.first", rho=num(rho, 3), sigma=num(sigma, 3), tp=num(tp, 3))]
    if bound < 1:
        d = max(distances(max(flow.steps, 2)))
        out.append(t("explain.spec.vanish", b=num(bound, 3), steps=_steps(d), bd=num(bound ** d)))
    else:
        out.append(t("explain.spec.no_force", b=num(bound, 3)))
        out.append(t("explain.spec.rho_big" if rho > 1 else "explain.spec.rho_small", rho=num(rho, 3)))
    if math.isfinite(flow.max_step_factor):
        out.append(t("explain.spec.measured", m=num(flow.max_step_factor, 3), b=num(bound, 3)))
    return out


def unit(finder: pd.DataFrame, correlations: pd.Series, unit_index: int, labels: dict[str, str],
         n_tokens: int) -> str:
    """Which feature the chosen unit follows most closely (r from its row of correlations)."""
    if correlations.abs().max() == 0:
        return t("explain.unit.flat", u=unit_index, n=n_tokens)
    name = correlations.abs().idxmax()
    r = float(correlations[name])
    best = finder.iloc[0]
    key = "explain.unit.best" if int(best["unit"]) == unit_index and best["feature"] == name else "explain.unit.follows"
    return t(key, u=unit_index, feature=feature_label(name, labels), r=num(r)) + t("explain.unit.over", n=n_tokens)


def surprise(s: Surprise, vocab_size: int) -> str:
    """Perplexity on the text and its most surprising token."""
    worst = int(s.surprisal.argmax())
    sep = "" if all(len(tok) == 1 for tok in s.tokens) else " "  # characters or words
    before = sep.join(s.tokens[max(0, worst - (9 if sep == "" else 3)):worst + 1])
    return t("explain.surprise", ppl=num(s.perplexity, 3), n=len(s.surprisal), V=vocab_size, token=s.tokens[worst + 1],
             before=before, s=num(float(s.surprisal[worst]), 3))


def top_k(frame: pd.DataFrame) -> str:
    """How often the true token was the first choice, and in the top k."""
    n = len(frame)
    k = sum(1 for c in frame.columns if c.startswith("p#"))
    first = int((frame["rank"] == 1).sum())
    in_k = int((frame["rank"] <= k).sum())
    return t("explain.top_k", first=first, n=n, k=k, in_k=in_k, median=num(float(frame["rank"].median())))


def twin(diffs: pd.DataFrame) -> str:
    """The largest difference between the scratch model and its nn.RNN twin."""
    worst = diffs.loc[diffs["max |difference|"].idxmax()]
    value = float(worst["max |difference|"])
    # float32 keeps ~7 digits; 1e-5 of the values' size leaves room for rounding summed over a few steps
    rounding = (diffs["max |difference|"] <= 1e-5 * diffs["largest |value|"].clip(lower=1.0)).all()
    verdict = t("explain.twin.rounding" if rounding else "explain.twin.more")
    return t("explain.twin", value=num(value), compared=twin_name(worst["compared"]), verdict=verdict)


def training_flow(diagnostics: list[dict]) -> list[str]:
    """How the gradient flow and W_hh's spectrum changed between the first and the last checkpoint measured."""
    if not diagnostics:
        return []
    first, last = diagnostics[0], diagnostics[-1]
    steps = len(first["decay"])
    d = min(10, steps - 1)
    out = []
    if d > 0 and first["decay"][0] > 0 and last["decay"][0] > 0:
        r0, r1 = first["decay"][d] / first["decay"][0], last["decay"][d] / last["decay"][0]
        if first is last:
            out.append(t("explain.train.one", steps=_steps(d), r0=num(r0), e0=first["epoch"]))
        else:
            out.append(t("explain.train.two", steps=_steps(d), r0=num(r0), e0=first["epoch"], r1=num(r1),
                         e1=last["epoch"]))
    rho0, rho1 = first["radius"], last["radius"]
    s0, s1 = first["singular"][0], last["singular"][0]
    if first is last:
        out.append(t("explain.train.spec_one", rho=num(rho0, 3), s=num(s0, 3), e=first["epoch"]))
    else:
        out.append(t("explain.train.spec_two", rho0=num(rho0, 3), rho1=num(rho1, 3), s0=num(s0, 3), s1=num(s1, 3),
                     e0=first["epoch"], e1=last["epoch"]))
    return out

"""Sentences for the Inside page made from the numbers it shows (no claim that the numbers do not make).

Pure functions: rnn_core results in, Markdown strings out (no Streamlit). Numbers are written with
:func:`num`, which :func:`parse_num` reads back, so a test can check every number a sentence states.
"""
from __future__ import annotations

import math
import re

import pandas as pd

from rnn_core.gradflow import GradientFlow, Spectrum
from rnn_core.inside import Surprise

SUPERSCRIPT = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")
FROM_SUPERSCRIPT = str.maketrans("⁻⁰¹²³⁴⁵⁶⁷⁸⁹", "-0123456789")
NUMBER = r"[-+]?\d+(?:\.\d+)?(?:×10[⁻⁰¹²³⁴⁵⁶⁷⁸⁹]+)?"  # what num() writes


def num(x: float, digits: int = 2) -> str:
    """A number with `digits` significant digits: 0.54, 12, or 2.1×10⁻³ when below 0.01 or from 10,000 up."""
    x = float(x)
    if not math.isfinite(x):
        return str(x)
    if x == 0:
        return "0"
    if 0.01 <= abs(x) < 10_000:
        decimals = max(0, digits - 1 - math.floor(math.log10(abs(x))))
        out = f"{x:.{decimals}f}"
        # rounding may add a digit (9.96 -> 10.0): write it again from the rounded value
        return f"{float(out):.{max(0, digits - 1 - math.floor(math.log10(abs(float(out)))))}f}"
    mantissa, exponent = f"{x:.{digits - 1}e}".split("e")
    return f"{mantissa}×10{str(int(exponent)).translate(SUPERSCRIPT)}"


def parse_num(text: str) -> float:
    """The value of a number written by :func:`num`."""
    if "×10" in text:
        mantissa, exponent = text.split("×10")
        return float(mantissa) * 10.0 ** int(exponent.translate(FROM_SUPERSCRIPT))
    return float(text)


def numbers(sentence: str) -> list[float]:
    """Every number in a sentence, in order (as :func:`num` writes them)."""
    return [parse_num(m) for m in re.findall(NUMBER, sentence)]


def _steps(d: int) -> str:
    return f"{d} step{'s' if d != 1 else ''}"


def distances(steps: int) -> list[int]:
    """The distances the sentences talk about: 1, 10 and the longest there is."""
    return sorted({d for d in (1, 10, steps - 1) if 0 < d < steps})


def gradient_flow(flow: GradientFlow) -> list[str]:
    """What the decay curve shows, in numbers: size at the step itself, d steps back, the fitted factor."""
    if flow.steps < 2:
        return ["With one step there is nothing to flow back through: type a longer string."]
    out = [f"At the step itself the gradient ‖∂ℓ_t/∂H_t‖ is {num(flow.curve[0])} on average "
           f"(over the {flow.steps} steps t)."]
    for d in distances(flow.steps):
        r = flow.ratio(d)
        size = f"{num(r)} of its size" if r < 1 else f"{num(r)} times its size"
        out.append(f"**{_steps(d)} back** the mean gradient ‖∂ℓ_t/∂H_(t−{d})‖ is **{size}** at the step itself.")
    f = flow.factor
    if math.isfinite(f) and f > 0:
        if abs(math.log10(f)) < 1e-3:
            trend = "it keeps about the same size"
        else:
            every = 1 / abs(math.log10(f))
            trend = f"it {'shrinks' if f < 1 else 'grows'} 10× every {num(every)} steps"
        out.append(f"Fitted over all distances, each step back multiplies the mean gradient by about "
                   f"**{num(f)}**: {trend}.")
    return out


def spectrum(flow: GradientFlow, spec: Spectrum) -> list[str]:
    """How σ_max(W_hh), ρ(W_hh) and tanh′ bound or allow the flow, and the one-step factor measured."""
    sigma, rho, tp = spec.sigma_max, spec.radius, flow.max_tanh_prime
    bound = sigma * tp
    out = [f"W_hh has spectral radius ρ = **{num(rho, 3)}** and largest singular value σ_max = **{num(sigma, 3)}**; "
           f"on this string tanh′ = 1 − H² is at most {num(tp, 3)} (it is never above 1)."]
    if bound < 1:
        d = max(distances(max(flow.steps, 2)))
        out.append(
            f"One step back multiplies the gradient by diag(tanh′) W_hhᵀ, whose norm is at most "
            f"σ_max · max tanh′ = **{num(bound, 3)} < 1**: the gradient **must vanish**, at least as fast as "
            f"{num(bound, 3)}^d ({_steps(d)} back: at most {num(bound ** d)} of its size at the step itself).")
    else:
        out.append(f"σ_max · max tanh′ = **{num(bound, 3)} ≥ 1**: this bound does not force the gradient to vanish.")
        if rho > 1:
            out.append(f"ρ = {num(rho, 3)} > 1: the powers W_hh^d grow like ρ^d, so through units that are not "
                       f"saturated (tanh′ near 1) the gradient can grow step after step and explode; clipping at θ "
                       f"caps the size of each update, not this growth.")
        else:
            out.append(f"ρ = {num(rho, 3)} ≤ 1: the powers W_hh^d do not grow exponentially, but the Jacobians "
                       f"diag(tanh′_s) W_hhᵀ change from step to step, so their products can still grow for a while.")
    if math.isfinite(flow.max_step_factor):
        out.append(f"Measured on this string, the largest one-step factor ‖∂ℓ_t/∂H_(s−1)‖ / ‖∂ℓ_t/∂H_s‖ is "
                   f"{num(flow.max_step_factor, 3)} (the bound: {num(bound, 3)}).")
    return out


def unit(finder: pd.DataFrame, correlations: pd.Series, unit_index: int, labels: dict[str, str],
         n_tokens: int) -> str:
    """Which feature the chosen unit follows most closely (r from its row of correlations)."""
    if correlations.abs().max() == 0:
        return f"Unit {unit_index} does not vary with any feature on these {n_tokens} tokens (r = 0)."
    name = correlations.abs().idxmax()
    r = float(correlations[name])
    best = finder.iloc[0]
    lead = (f"Unit {unit_index} is the best match for “{labels.get(name, name)}” (r = {num(r)})"
            if int(best["unit"]) == unit_index and best["feature"] == name else
            f"Unit {unit_index} follows “{labels.get(name, name)}” most closely (r = {num(r)})")
    return lead + f", over {n_tokens} tokens of the passage."


def surprise(s: Surprise, vocab_size: int) -> str:
    """Perplexity on the text and its most surprising token."""
    worst = int(s.surprisal.argmax())
    sep = "" if all(len(t) == 1 for t in s.tokens) else " "  # characters or words
    before = sep.join(s.tokens[max(0, worst - (9 if sep == "" else 3)):worst + 1])
    return (f"Perplexity **{num(s.perplexity, 3)}** on these {len(s.surprisal)} predictions (uniform guessing: "
            f"{vocab_size}). Most surprising: “{s.tokens[worst + 1]}” after “{before}” "
            f"(−log p = {num(float(s.surprisal[worst]), 3)}).")


def top_k(frame: pd.DataFrame) -> str:
    """How often the true token was the first choice, and in the top k."""
    n = len(frame)
    k = sum(1 for c in frame.columns if c.startswith("p#"))
    first = int((frame["rank"] == 1).sum())
    in_k = int((frame["rank"] <= k).sum())
    return (f"The true next token was the model's first choice at {first} of {n} steps and among its top {k} "
            f"at {in_k}; its median rank is {num(float(frame['rank'].median()))}.")


def twin(diffs: pd.DataFrame) -> str:
    """The largest difference between the scratch model and its nn.RNN twin."""
    worst = diffs.loc[diffs["max |difference|"].idxmax()]
    value = float(worst["max |difference|"])
    # float32 keeps ~7 digits; 1e-5 of the values' size leaves room for rounding summed over a few steps
    rounding = (diffs["max |difference|"] <= 1e-5 * diffs["largest |value|"].clip(lower=1.0)).all()
    verdict = ("float32 rounding: the two compute the same function" if rounding else
               "more than float32 rounding explains")
    return f"Largest difference: **{num(value)}** ({worst['compared']}), {verdict}."


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
        when = (f"at epoch {first['epoch']}" if first is last else
                f"at epoch {first['epoch']} it was **{num(r0)}** of its size at the step itself; at epoch "
                f"{last['epoch']} it is")
        if first is last:
            out.append(f"{_steps(d)} back, the gradient of a step's loss is **{num(r0)}** of its size at the step "
                       f"itself ({when}).")
        else:
            out.append(f"{_steps(d)} back, the gradient of a step's loss: {when} **{num(r1)}**.")
    rho0, rho1 = first["radius"], last["radius"]
    s0, s1 = first["singular"][0], last["singular"][0]
    if first is last:
        out.append(f"W_hh: spectral radius ρ = {num(rho0, 3)}, σ_max = {num(s0, 3)} (epoch {first['epoch']}).")
    else:
        out.append(f"W_hh's spectral radius ρ went from {num(rho0, 3)} to {num(rho1, 3)} and its largest singular "
                   f"value σ_max from {num(s0, 3)} to {num(s1, 3)} (epochs {first['epoch']} to {last['epoch']}).")
    return out

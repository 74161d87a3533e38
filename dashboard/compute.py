"""The pages' computations, cached: shape traces, the identity, inspections, gradient flow, hidden units,
surprise, the nn.RNN twin, generation. Each calls rnn_core and returns arrays or DataFrames for
``dashboard.charts``; pure results are cached with ``st.cache_data``, models with ``st.cache_resource``.
"""
from __future__ import annotations

import math
import threading
from collections import OrderedDict

import numpy as np
import pandas as pd
import streamlit as st
import torch

import rnn_core
import rnn_core.gradflow
import rnn_core.inside
from rnn_core import units
from rnn_core.model import device_label, lesson_shape_checks, shape_trace
from rnn_core.generation import sharpen
from rnn_core.training import MAX_LOSS
from rnn_core.vocab import is_char_vocab

from .corpora import corpus_info, split_text
from .i18n import error_text, t
from .settings import LESSON, Settings


def warm_up() -> None:
    """Fill the shared caches a first visit needs: the lesson's corpus tokenized, the device probed (Home)
    and the untrained model at the lesson's size (Inside, Generate).

    Called once in a background thread at server start (dashboard/Home.py), while the browser loads.
    """
    info = corpus_info(LESSON)
    untrained_model(info.key, len(info.vocab), LESSON.hidden, LESSON.seed)
    resolve_device(LESSON)


@st.cache_data(max_entries=64, show_spinner=False)
def shape_table(vocab_size: int, batch: int, steps: int, hidden: int, seed: int,
                steps_listed: int = 2) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(trace, checks): the shape trace of one forward pass on the CPU and the lesson's two checks."""
    trace = shape_trace(vocab_size, batch, steps, hidden, device="cpu", seed=seed, max_steps_listed=steps_listed)
    checks = lesson_shape_checks(trace, vocab_size, batch, steps, hidden)
    return trace, checks


def printable_trace(trace: pd.DataFrame) -> pd.DataFrame:
    """The trace with shapes as text (Arrow cannot hold tuples of varying length)."""
    out = trace.copy()
    out["step"] = out["step"].map(lambda s: "" if pd.isna(s) else f"t={int(s)}")
    out["shape"] = out["shape"].map(lambda s: str(tuple(s)))
    return out[["step", "name", "shape", "formula", "dtype"]]


@st.cache_data(max_entries=64, show_spinner=False)
def identity(n: int, d: int, h: int, seed: int, float64: bool = False) -> dict[str, np.ndarray | float]:
    """Both sides of X W_xh + H W_hh = [X | H] [W_xh ; W_hh] as arrays, and their max |difference|."""
    r = rnn_core.concat_identity(n, d, h, seed, torch.float64 if float64 else torch.float32)
    arrays = {k: getattr(r, k).numpy() for k in ("X", "H", "W_xh", "W_hh", "XH", "W", "separate", "concatenated")}
    arrays["difference"] = arrays["separate"].astype(np.float64) - arrays["concatenated"].astype(np.float64)
    arrays["max_abs_diff"] = r.max_abs_diff
    arrays["eps"] = float(torch.finfo(r.X.dtype).eps)
    return arrays


def resolve_device(settings: Settings) -> tuple[torch.device, str | None]:
    """The device the settings ask for, or the best one present plus the reason it was not used."""
    try:
        return rnn_core.resolve_device(settings.device), None
    except rnn_core.DeviceError as exc:
        return rnn_core.default_device(), error_text(exc)


def describe_device(device: torch.device) -> str:
    """'CUDA: NVIDIA H100 ...' or 'CPU (2 threads)'."""
    label = device_label(device)
    threads = torch.get_num_threads()
    if device.type != "cpu":
        return label
    return t("device.cpu_thread" if threads == 1 else "device.cpu_threads", label=label, threads=threads)


@st.cache_resource(max_entries=8, show_spinner=False)
def untrained_model(vocab_key: tuple, vocab_size: int, hidden: int, seed: int):
    """A freshly initialised scratch model on the CPU (same seed, same weights)."""
    return rnn_core.make_model("lesson", vocab_size, hidden, "cpu", seed=seed)


@st.cache_data(max_entries=32, show_spinner=False)
def inspect(_net, _vocab, model_key: tuple, text: str) -> dict:
    """Per-step hidden states, probabilities, losses and gradient norms for `text`."""
    tokens = split_text(_vocab, text)
    ins = rnn_core.inspect_sequence(_net, _vocab, tokens)
    return {"steps": ins.steps_frame(), "hidden": ins.hidden.numpy(), "probs": ins.probs.numpy(),
            "tokens": list(_vocab.idx_to_token)}


def mean_loss(steps: pd.DataFrame) -> tuple[float, float]:
    """(mean loss, perplexity) over the steps of one string."""
    loss = float(steps["loss"].mean())
    return loss, math.exp(min(loss, MAX_LOSS))


_FLOWS: OrderedDict[tuple[str, int], dict] = OrderedDict()  # (run id, epoch) -> probe summary, newest use last
_FLOWS_LOCK = threading.Lock()
FLOWS_KEPT = 512


def checkpoint_flows(run, epochs, new_at_most: int | None = None) -> list[dict]:
    """Gradient flow and W_hh's spectrum of saved epochs on the run's probe minibatch: {epoch, decay, radius,
    singular} per epoch, computed once per checkpoint (training never pays for them), in the order of `epochs`.

    ``new_at_most``: how many not computed yet this call may compute (None: all); the list then ends before the
    first epoch left for a later call. A class that presses Start together reaches checkpoints 1, 2, 5, 10, 20
    and 50 within seconds: computed all at once, every session's next script run took ~50 ms more at the same
    moment, and slider moves waited on each other's runs."""
    if run.probe is None:
        return []
    flows = []
    for epoch in epochs:
        key = (run.id, epoch)
        with _FLOWS_LOCK:
            summary = _FLOWS.get(key)
            if summary is not None:
                _FLOWS.move_to_end(key)
        if summary is None:
            if new_at_most is not None and new_at_most <= 0:
                break
            X, Y = run.probe
            summary = rnn_core.gradflow.probe_summary(run.checkpoint(epoch), X, Y, run.settings.activation)
            new_at_most = None if new_at_most is None else new_at_most - 1
            with _FLOWS_LOCK:
                _FLOWS[key] = summary
                while len(_FLOWS) > FLOWS_KEPT:
                    _FLOWS.popitem(last=False)
        flows.append({"epoch": epoch, **summary})
    return flows


@st.cache_data(max_entries=64, show_spinner=False)
def continuation(_net, _vocab, model_key: tuple, prefix: str, num_preds: int, temperature: float,
                 seed: int) -> str:
    """The prefix continued by `num_preds` tokens: greedy at temperature 0, else sampled."""
    return rnn_core.generate(prefix, num_preds, _net, _vocab, temperature=temperature, seed=seed)


@st.cache_data(max_entries=64, show_spinner=False)
def next_tokens(_net, _vocab, model_key: tuple, prefix: str, temperatures: tuple[float, ...]) -> pd.DataFrame:
    """Cached :func:`next_token_distribution`."""
    return next_token_distribution(_net, _vocab, prefix, temperatures)


def next_token_distribution(net, vocab: rnn_core.Vocab, prefix: str,
                            temperatures: tuple[float, ...]) -> pd.DataFrame:
    """p(next token | prefix) at each temperature: softmax(O / T) = p^(1/T) renormalised."""
    tokens = split_text(vocab, prefix) or [vocab.idx_to_token[1]]
    # inspect_sequence predicts the token after each input; a dummy last token makes the prefix all input
    probs = rnn_core.inspect_sequence(net, vocab, tokens + [tokens[-1]]).probs[-1].double()
    frames = []
    for T in temperatures:
        p = sharpen(probs, 1.0 / T)
        frames.append(pd.DataFrame({"token": vocab.idx_to_token, "temperature": T, "p": p.numpy()}))
    return pd.concat(frames, ignore_index=True)


@st.cache_data(max_entries=32, show_spinner=False)
def gradient_flow(_net, _vocab, model_key: tuple, text: str):
    """rnn_core.gradflow.gradient_flow of `text` (one backward sweep for all loss steps)."""
    tokens = split_text(_vocab, text)
    return rnn_core.gradflow.gradient_flow(_net, _vocab[tokens], tokens)


@st.cache_data(max_entries=16, show_spinner=False)
def w_hh_spectrum(_net, model_key: tuple, k: int = 8):
    """Spectral radius and top-k singular values of W_hh."""
    return rnn_core.gradflow.spectrum(_net, k)


@st.cache_data(max_entries=16, show_spinner=False)
def hidden_units(_net, _vocab, model_key: tuple, text: str) -> dict:
    """Over a passage: activations (steps, units), text features, the unit finder, the best unit and a
    clustering order of the units."""
    inside = rnn_core.inside
    tokens = split_text(_vocab, text)
    chars = is_char_vocab(_vocab)
    hidden = inside.hidden_states(inside.float_params(_net), torch.tensor(_vocab[tokens])[None],
                                  activation=inside.activation_of(_net))[0].numpy()  # (steps, units)
    features = units.text_features(tokens, chars)
    labels = units.CHAR_FEATURES if chars else units.WORD_FEATURES
    return {"tokens": tokens, "hidden": hidden, "features": features, "labels": labels,
            "correlations": units.correlations(hidden, features),
            "finder": units.unit_finder(hidden, features, labels), "best": units.best_unit(hidden, features),
            "order": units.cluster_order(hidden)}


@st.cache_data(max_entries=32, show_spinner=False)
def surprise(_net, _vocab, model_key: tuple, text: str, k: int = 5) -> dict:
    """Surprisal per token, perplexity and the top-k table of `text`."""
    tokens = split_text(_vocab, text)
    s = rnn_core.inside.surprise(_net, _vocab, tokens)
    return {"surprise": s, "top_k": rnn_core.inside.top_k_frame(s.probs, tokens, _vocab, k)}


@st.cache_data(max_entries=32, show_spinner=False)
def twin(_net, _vocab, model_key: tuple, text: str) -> pd.DataFrame:
    """Max |difference| between the model and its nn.RNN twin on `text`: outputs, state, loss, gradients."""
    return rnn_core.inside.twin_differences(_net, _vocab, split_text(_vocab, text))

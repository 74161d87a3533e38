"""What the pages compute, cached: corpus resolution with fallback, loaders, shape traces, inspections.

Pages call these and hand the results to ``dashboard.charts``. Pure results are cached with
``st.cache_data``; tokenized corpora and untrained models (immutable here) with ``st.cache_resource``.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import streamlit as st
import torch

import rnn_core
import rnn_core.gradflow
import rnn_core.runs
from rnn_core import corpus as rc_corpus
from rnn_core import vocab as rc_vocab
from rnn_core.vocab import is_char_vocab
from rnn_core.engines import DEFAULT_ENGINE, ENGINES
from rnn_core.model import device_label, lesson_shape_checks, shape_trace

from .i18n import error_text, t

MAX_TOKENS = 10_000  # the lesson's load_data_time_machine keeps the first 10,000 tokens
FALLBACK_CORPUS = "toy_english"
CORPUS_CHOICES = ["time_machine", *rc_corpus.BUILTIN_CORPORA, "upload"]
CORPUS_TITLES = {"time_machine": "The Time Machine (H. G. Wells)", "upload": "your uploaded text",
                 **{k: v[0] for k, v in rc_corpus.BUILTIN_CORPORA.items()}}


def corpus_display(name: str) -> str:
    """A corpus's name as a run keeps it (a key or its English title) in the run's language."""
    key = name if name in CORPUS_TITLES else next((k for k, v in CORPUS_TITLES.items() if v == name), None)
    return t(f"corpus.{key}.title") if key else name


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


def warm_up() -> None:
    """Fill the shared caches a first visit needs: the lesson's corpus tokenized, the device probed (Home)
    and the untrained model at the lesson's size (Inside, Generate).

    Called once in a background thread at server start (dashboard/Home.py), while the browser loads.
    """
    info = corpus_info(LESSON)
    untrained_model(info.key, len(info.vocab), LESSON.hidden, LESSON.seed)
    resolve_device(LESSON)


def engine_names() -> list[str]:
    """Engines rnn_core offers, the default first."""
    return [DEFAULT_ENGINE, *[e for e in ENGINES if e != DEFAULT_ENGINE]]


# ---------------------------------------------------------------- corpus

@dataclass
class CorpusInfo:
    """The tokenized corpus a page works on, and where it came from."""

    tc: rnn_core.data.TokenizedCorpus
    requested: str
    used: str  # "time_machine" | a built-in name | "upload"
    note: str  # where the text came from
    fallback_reason: str | None = None  # why `used` differs from `requested`
    warnings: list[str] = field(default_factory=list)
    error: str | None = None  # a user-caused problem (a bad upload), said in one sentence

    @property
    def vocab(self) -> rnn_core.Vocab:
        return self.tc.vocab

    @property
    def key(self) -> tuple:
        """Identifies the tokenized corpus, for caches that take the corpus unhashed."""
        return (self.used, self.tc.source.name, self.tc.source.note, len(self.tc.corpus), len(self.vocab),
                tuple(self.vocab.idx_to_token[:10]))

    @property
    def title(self) -> str:
        return CORPUS_TITLES.get(self.used, self.used)


@st.cache_resource(ttl=600, show_spinner=False)
def time_machine_lines() -> tuple[rnn_core.Corpus | None, str | rnn_core.CorpusError]:
    """The Time Machine if present or downloadable (tried once per 10 minutes) and where it came from, else
    (None, the CorpusError that says why)."""
    status = rc_corpus.time_machine_status()
    try:
        if status != "present":
            rc_corpus.download_time_machine(timeout=5.0)
        corpus = rc_corpus.read_time_machine(download=False)
    except rnn_core.CorpusError as exc:
        return None, exc
    return corpus, ("found in data/ (SHA-1 verified)" if status == "present" else "downloaded and SHA-1 verified")


@st.cache_resource(max_entries=16, show_spinner=False)
def _tokenized(kind: str, token: str, seed: int, upload_id: str | None,
               _payload: bytes | None = None, _name: str = "upload",
               clean: str = "lesson") -> tuple[rnn_core.data.TokenizedCorpus, list[str]]:
    """Tokenize a corpus source (cached per source, token type, seed, uploaded file and cleaning)."""
    if kind == "upload":
        corpus = rc_corpus.corpus_from_text(_payload, _name)
    elif kind == "time_machine":
        corpus, why = time_machine_lines()
        if corpus is None:
            raise rnn_core.CorpusError(str(why), why.key, **why.values)
    else:
        corpus = rc_corpus.builtin_corpus(kind, seed=seed)
    tc = rnn_core.tokenize_corpus(corpus, token, MAX_TOKENS, clean=clean)
    return tc, list(corpus.warnings)


def corpus_info(settings: Settings, upload: tuple[str, str, bytes] | None = None,
                previous: CorpusInfo | None = None) -> CorpusInfo:
    """The corpus the settings ask for; the Time Machine, then the built-in corpus, when that fails.

    An upload that is missing or refused leaves `previous` (the session's last good corpus) in use.
    """
    requested = settings.corpus if settings.corpus in CORPUS_CHOICES else "time_machine"
    clean = settings.clean if settings.clean in rc_corpus.CLEANINGS else "lesson"
    reason = error = None
    if requested == "upload":
        if upload is None:
            reason = t("sidebar.upload_none")
        else:
            file_id, name, payload = upload
            try:
                tc, warnings = _tokenized("upload", settings.token, 0, file_id, payload, name, clean)
                need = rnn_core.data.min_tokens_for(settings.batch, settings.steps, settings.use_random_iter)
                if len(tc.corpus) < need:
                    raise rnn_core.CorpusError(
                        f"{name} has {len(tc.corpus):,} {settings.token} tokens, but one minibatch of "
                        f"{settings.batch} x {settings.steps} needs at least {need:,}: lower the batch size "
                        f"or the time steps, or upload a longer text.", "upload_too_short", name=name,
                        tokens=f"{len(tc.corpus):,}", token=settings.token, batch=settings.batch,
                        steps=settings.steps, need=f"{need:,}")
                return CorpusInfo(tc, requested, "upload", f"uploaded file {name}", None, warnings)
            except rnn_core.CorpusError as exc:
                error = error_text(exc)
                reason = t("sidebar.upload_refused_reason")
        if previous is not None:
            return CorpusInfo(previous.tc, requested, previous.used, previous.note, reason, previous.warnings,
                              error)
    candidates = ([requested] if requested != "upload" else []) + ["time_machine", FALLBACK_CORPUS]
    for kind in dict.fromkeys(candidates):
        try:
            seed = settings.seed if kind in rc_corpus.BUILTIN_CORPORA else 0  # only generated texts have one
            tc, warnings = _tokenized(kind, settings.token, seed, None, clean=clean)
        except rnn_core.CorpusError as exc:
            reason = reason or error_text(exc)
            continue
        note = time_machine_lines()[1] if kind == "time_machine" else tc.source.note
        return CorpusInfo(tc, requested, kind, note, reason if kind != requested else None, warnings, error)
    raise rnn_core.CorpusError(reason or "No corpus could be loaded.", None if reason else "no_corpus")


def vocab_frame(info: CorpusInfo) -> pd.DataFrame:
    """Vocabulary table: index, token, count (counts over the tokens used)."""
    return info.vocab.to_frame()


def first_tokens(info: CorpusInfo, n: int = 200) -> str:
    """The first `n` tokens as text."""
    tokens = info.vocab.to_tokens(info.tc.corpus[:n])
    return join_tokens(info, tokens)


def join_tokens(info_or_vocab, tokens: list[str]) -> str:
    """Tokens back to text: concatenated for characters, space-separated for words."""
    vocab = info_or_vocab.vocab if isinstance(info_or_vocab, CorpusInfo) else info_or_vocab
    return rc_vocab.join_tokens(vocab, tokens)


split_text = rc_vocab.split_text  # text to tokens the way the vocabulary was built


def make_loader(info: CorpusInfo, settings: Settings):
    """A loader over the corpus (CorpusError when the corpus is too short for one minibatch)."""
    return rnn_core.make_loader(info.tc, settings.batch, settings.steps, settings.use_random_iter,
                                seed=settings.seed)


@st.cache_data(max_entries=64, show_spinner=False)
def minibatch_positions(_info: CorpusInfo, key: tuple, batch: int, steps: int, seed: int,
                        max_batches: int = 300) -> dict[str, pd.DataFrame]:
    """Start/stop positions of the first epoch's minibatches (up to `max_batches`), sequential and random."""
    out = {}
    for partition in ("sequential", "random"):
        loader = rnn_core.make_loader(_info.tc, batch, steps, partition == "random", seed=seed)
        out[partition] = loader.positions(epochs=1, max_batches=max_batches, seed=seed)
    return out


def first_minibatch(info: CorpusInfo, settings: Settings) -> tuple[torch.Tensor, torch.Tensor]:
    """The first (X, Y) the training loop would see: (batch, steps) each."""
    return next(iter(make_loader(info, settings)))


def xy_frame(info: CorpusInfo, X: torch.Tensor, Y: torch.Tensor, rows: int = 8) -> pd.DataFrame:
    """The first rows of X and Y as text, one batch row per line."""
    vocab = info.vocab
    return pd.DataFrame({
        "row": range(min(rows, X.shape[0])),
        "X (input)": [join_tokens(vocab, vocab.to_tokens(x)) for x in X[:rows]],
        "Y (target = X shifted by one)": [join_tokens(vocab, vocab.to_tokens(y)) for y in Y[:rows]],
    })


# ---------------------------------------------------------------- one-hot & shapes

def one_hot_rows(X: torch.Tensor, vocab_size: int, row: int) -> np.ndarray:
    """one_hot(X.T)[:, row, :]: the (steps, vocab) one-hot matrix of one batch row."""
    one_hot = torch.nn.functional.one_hot(X.T, vocab_size)  # (steps, batch, vocab)
    return one_hot[:, row, :].numpy()


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


# ---------------------------------------------------------------- concat identity

@st.cache_data(max_entries=64, show_spinner=False)
def identity(n: int, d: int, h: int, seed: int, float64: bool = False) -> dict[str, np.ndarray | float]:
    """Both sides of X W_xh + H W_hh = [X | H] [W_xh ; W_hh] as arrays, and their max |difference|."""
    r = rnn_core.concat_identity(n, d, h, seed, torch.float64 if float64 else torch.float32)
    arrays = {k: getattr(r, k).numpy() for k in ("X", "H", "W_xh", "W_hh", "XH", "W", "separate", "concatenated")}
    arrays["difference"] = arrays["separate"].astype(np.float64) - arrays["concatenated"].astype(np.float64)
    arrays["max_abs_diff"] = r.max_abs_diff
    arrays["eps"] = float(torch.finfo(r.X.dtype).eps)
    return arrays


# ---------------------------------------------------------------- devices and models

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


def most_active_unit(hidden: np.ndarray) -> int:
    """The hidden unit whose activation varies most over the steps (a good first one to look at)."""
    return int(np.argmax(hidden.std(axis=0)))


def display_tokens(vocab: rnn_core.Vocab, tokens: list[str]) -> list[str]:
    """Tokens for running text: characters as they are, words followed by a space."""
    return list(tokens) if is_char_vocab(vocab) else [t + " " for t in tokens]


def mean_loss(steps: pd.DataFrame) -> tuple[float, float]:
    """(mean loss, perplexity) over the steps of one string."""
    loss = float(steps["loss"].mean())
    return loss, math.exp(min(loss, 700.0))


def fmt_ppl(perplexity: float) -> str:
    """A perplexity for display: two decimals, or scientific notation when it is huge."""
    return f"{perplexity:.2f}" if perplexity < 1e5 else f"{perplexity:.3g}"


def fmt_num(x: float | None) -> str:
    """A number for display: three decimals, scientific notation when very large or small, '–' for none."""
    if x is None:
        return "–"
    return f"{x:.3f}" if x == 0 or 1e-3 <= abs(x) < 1e5 else f"{x:.3g}"


def fmt_seconds(seconds: float) -> str:
    """'42 s', '3 min 05 s'."""
    seconds = max(0, round(seconds))
    return f"{seconds} s" if seconds < 60 else f"{seconds // 60} min {seconds % 60:02d} s"


def fmt_setting(value) -> str:
    """A setting's value as the sidebar shows it (clipping off reads 'off')."""
    return "off" if value is None else f"{value:g}" if isinstance(value, float) else str(value)


def describe_settings(rs: rnn_core.runs.RunSettings, vocab_size: int) -> str:
    """One sentence of a run's settings (the Training page's settings line)."""
    theta = "off" if rs.clip is None else f"{rs.clip:g}"
    return t("settings.line", corpus=corpus_display(rs.corpus), token=rs.token, V=vocab_size, batch=rs.batch,
             steps=rs.steps, hidden=rs.hidden, lr=f"{rs.lr:g}", theta=theta, epochs=f"{rs.epochs:,}",
             partition=t(f"partition.{rs.partition}"), engine=rs.engine, seed=rs.seed)


def samples_frame(history: pd.DataFrame) -> pd.DataFrame:
    """Epoch, perplexity (as text: huge values in scientific notation) and the sample, newest first."""
    rows = history.loc[history["sample"].notna(), ["epoch", "perplexity", "sample"]].iloc[::-1]
    return pd.DataFrame({"epoch": rows["epoch"].astype(int).to_numpy(),
                         "perplexity": [fmt_ppl(p) for p in rows["perplexity"]],
                         "sample": [visible_spaces(t) for t in rows["sample"]]})


@st.cache_data(max_entries=512, show_spinner=False)
def _probe_summary(run_id: str, epoch: int, _run) -> dict:
    X, Y = _run.probe
    return rnn_core.gradflow.probe_summary(_run.checkpoint(epoch), X, Y, _run.settings.activation)


def checkpoint_flows(run, epochs) -> list[dict]:
    """Gradient flow and W_hh's spectrum of each saved epoch on the run's probe minibatch: {epoch, decay,
    radius, singular} per epoch, computed once per checkpoint (training never pays for them)."""
    if run.probe is None:
        return []
    return [{"epoch": e, **_probe_summary(run.id, e, run)} for e in epochs]


def decay_frame(diagnostics) -> pd.DataFrame:
    """A run's gradient-flow curves by checkpoint epoch: columns epoch, d, mean (for charts.decay_curves_chart)."""
    rows = [(g["epoch"], d, v) for g in diagnostics for d, v in enumerate(g["decay"])]
    return pd.DataFrame(rows, columns=["epoch", "d", "mean"])


def spectrum_frame(diagnostics) -> pd.DataFrame:
    """ρ(W_hh) and σ_max(W_hh) by checkpoint epoch (for charts.spectrum_chart)."""
    return pd.DataFrame({"epoch": [g["epoch"] for g in diagnostics], "radius": [g["radius"] for g in diagnostics],
                         "sigma_max": [g["singular"][0] for g in diagnostics]})


def runs_frame(views: list) -> pd.DataFrame:
    """One row per run: id, status, epochs, size, perplexity (as text)."""
    return pd.DataFrame({
        "run": [v.id for v in views],
        "status": [v.status for v in views],
        "epochs": [f"{v.epoch}/{v.target}" for v in views],
        "hidden": [v.settings.hidden for v in views],
        "corpus": [corpus_display(v.settings.corpus) for v in views],
        "perplexity": [fmt_ppl(v.last["perplexity"]) if v.last else "–" for v in views],
    })


@st.cache_data(max_entries=64, show_spinner=False)
def continuation(_net, _vocab, model_key: tuple, prefix: str, num_preds: int, temperature: float,
                 seed: int) -> str:
    """The prefix continued by `num_preds` tokens: greedy at temperature 0, else sampled."""
    return rnn_core.generate(prefix, num_preds, _net, _vocab, temperature=temperature, seed=seed)


@st.cache_data(max_entries=64, show_spinner=False)
def next_tokens(_net, _vocab, model_key: tuple, prefix: str, temperatures: tuple[float, ...]) -> pd.DataFrame:
    """Cached :func:`next_token_distribution`."""
    return next_token_distribution(_net, _vocab, prefix, temperatures)


def unknown_tokens(vocab: rnn_core.Vocab, text: str) -> list[str]:
    """Tokens of `text` that the vocabulary does not have (they read as <unk>)."""
    return sorted({t for t in split_text(vocab, text) if t not in vocab.token_to_idx})


def next_token_distribution(net, vocab: rnn_core.Vocab, prefix: str,
                            temperatures: tuple[float, ...]) -> pd.DataFrame:
    """p(next token | prefix) at each temperature: softmax(O / T) = p^(1/T) renormalised."""
    tokens = split_text(vocab, prefix) or [vocab.idx_to_token[1]]
    # inspect_sequence predicts the token after each input; a dummy last token makes the prefix all input
    probs = rnn_core.inspect_sequence(net, vocab, tokens + [tokens[-1]]).probs[-1].double()
    frames = []
    for t in temperatures:
        p = probs ** (1.0 / t)
        p = p / p.sum()
        frames.append(pd.DataFrame({"token": vocab.idx_to_token, "temperature": t, "p": p.numpy()}))
    return pd.concat(frames, ignore_index=True)


def visible_spaces(text: str) -> str:
    """Trailing spaces shown as '␣' (an early model often predicts nothing but spaces)."""
    stripped = text.rstrip(" ")
    return stripped + "␣" * (len(text) - len(stripped))


def default_text(info: CorpusInfo, n_chars: int = 40) -> str:
    """A stretch of the corpus to inspect: its first `n_chars` characters (whole words for word tokens)."""
    tokens = info.vocab.to_tokens(info.tc.corpus[:200])
    if is_char_vocab(info.vocab):
        return "".join(tokens)[:n_chars]
    return " ".join(tokens[:8])


def default_prefix(info: CorpusInfo) -> str:
    """The lesson's prefix for the Time Machine, else the corpus's first two words."""
    if info.used == "time_machine":
        return "time traveller"
    words = first_tokens(info, 200).split()
    if words and is_char_vocab(info.vocab) and len(words[0]) > 12:  # a text without spaces (Chinese)
        return words[0][:4]
    return " ".join(words[:2]) if words else info.vocab.idx_to_token[1]


# ---------------------------------------------------------------- Inside: gradient flow, units, surprise, twin

def passage(info: CorpusInfo, n_chars: int = 400) -> str:
    """A longer stretch of the corpus for the hidden units and surprise: its first `n_chars` characters
    (the first n_chars / 5 words for word tokens)."""
    if is_char_vocab(info.vocab):
        return "".join(info.vocab.to_tokens(info.tc.corpus[:n_chars]))
    return " ".join(info.vocab.to_tokens(info.tc.corpus[:n_chars // 5]))


@st.cache_data(max_entries=32, show_spinner=False)
def gradient_flow(_net, _vocab, model_key: tuple, text: str):
    """rnn_core.gradflow.gradient_flow of `text` (one backward sweep for all loss steps)."""
    from rnn_core.gradflow import gradient_flow as flow

    tokens = split_text(_vocab, text)
    return flow(_net, _vocab[tokens], tokens)


@st.cache_data(max_entries=16, show_spinner=False)
def w_hh_spectrum(_net, model_key: tuple, k: int = 8):
    """Spectral radius and top-k singular values of W_hh."""
    from rnn_core.gradflow import spectrum

    return spectrum(_net, k)


@st.cache_data(max_entries=16, show_spinner=False)
def hidden_units(_net, _vocab, model_key: tuple, text: str) -> dict:
    """Over a passage: activations (steps, units), text features, the unit finder, the best unit and a
    clustering order of the units."""
    from rnn_core import units
    from rnn_core.inside import activation_of, float_params, hidden_states

    tokens = split_text(_vocab, text)
    chars = is_char_vocab(_vocab)
    hidden = hidden_states(float_params(_net), torch.tensor(_vocab[tokens])[None],
                           activation=activation_of(_net))[0].numpy()  # (steps, units)
    features = units.text_features(tokens, chars)
    labels = units.CHAR_FEATURES if chars else units.WORD_FEATURES
    return {"tokens": tokens, "hidden": hidden, "features": features, "labels": labels,
            "correlations": units.correlations(hidden, features),
            "finder": units.unit_finder(hidden, features, labels), "best": units.best_unit(hidden, features),
            "order": units.cluster_order(hidden)}


@st.cache_data(max_entries=32, show_spinner=False)
def surprise(_net, _vocab, model_key: tuple, text: str, k: int = 5) -> dict:
    """Surprisal per token, perplexity and the top-k table of `text`."""
    from rnn_core.inside import surprise as surprise_of, top_k_frame

    tokens = split_text(_vocab, text)
    s = surprise_of(_net, _vocab, tokens)
    return {"surprise": s, "top_k": top_k_frame(s.probs, tokens, _vocab, k)}


@st.cache_data(max_entries=32, show_spinner=False)
def twin(_net, _vocab, model_key: tuple, text: str) -> pd.DataFrame:
    """Max |difference| between the model and its nn.RNN twin on `text`: outputs, state, loss, gradients."""
    from rnn_core.inside import twin_differences

    return twin_differences(_net, _vocab, split_text(_vocab, text))

"""The corpus a page works on: resolution with fallback (Time Machine, built-in, upload), cached, and the
token views the pages show (first tokens, minibatches, default texts).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import streamlit as st
import torch

import rnn_core
from rnn_core import corpus as rc_corpus
from rnn_core import vocab as rc_vocab
from rnn_core.vocab import is_char_vocab

from .i18n import error_text, t
from .settings import CORPUS_CHOICES, CORPUS_TITLES, FALLBACK_CORPUS, MAX_TOKENS, Settings


def corpus_title(name: str) -> str:
    """A corpus's title in the run's language, from its key or its English title (exercise pairs trained before
    their runs kept the key hold ``CorpusInfo.title``)."""
    key = name if name in CORPUS_TITLES else next((k for k, v in CORPUS_TITLES.items() if v == name), None)
    return t(f"corpus.{key}.title") if key else name


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


def _tokenized(kind: str, token: str, seed: int, upload_id: str | None,
               _payload: bytes | None = None, _name: str = "upload",
               clean: str = "lesson") -> tuple[rnn_core.data.TokenizedCorpus, list[str]]:
    """Tokenize a corpus source (cached per source, token type, seed, uploaded file and cleaning)."""
    if kind == "upload":
        return _tokenized_upload(token, upload_id, _payload, _name, clean)
    return _tokenized_source(kind, token, seed, clean)


# Every script run of every session asks for its corpus (the sidebar's), so a session whose entry was dropped
# tokenizes again on each run: a class of 20 with seeds of their own, on 16 entries, spent a tenth of the
# server's time so. A generated text's entry is ~0.2 MiB; an upload's holds up to 5 MiB of text, hence fewer.
@st.cache_resource(max_entries=16, show_spinner=False)
def _tokenized_upload(token: str, upload_id: str | None, _payload: bytes | None, _name: str,
                      clean: str) -> tuple[rnn_core.data.TokenizedCorpus, list[str]]:
    return _tokenize(rc_corpus.corpus_from_text(_payload, _name), token, clean)


@st.cache_resource(max_entries=256, show_spinner=False)
def _tokenized_source(kind: str, token: str, seed: int,
                      clean: str) -> tuple[rnn_core.data.TokenizedCorpus, list[str]]:
    if kind == "time_machine":
        corpus, why = time_machine_lines()
        if corpus is None:
            raise rnn_core.CorpusError(str(why), why.key, **why.values)
    else:
        corpus = rc_corpus.builtin_corpus(kind, seed=seed)
    return _tokenize(corpus, token, clean)


def _tokenize(corpus: rnn_core.Corpus, token: str, clean: str) -> tuple[rnn_core.data.TokenizedCorpus, list[str]]:
    return rnn_core.tokenize_corpus(corpus, token, MAX_TOKENS, clean=clean), list(corpus.warnings)


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
            reason = t("sidebar.upload_none", mb=upload_cap_mb())
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


def upload_cap_mb() -> str:
    """The upload size cap in MB, as the uploader and Streamlit count them (2**20 bytes)."""
    return f"{rc_corpus.MAX_CORPUS_BYTES / 2**20:g}"


def upload_encoding_caption(info: CorpusInfo) -> str | None:
    """Which file the uploaded corpus in use came from and the encoding it was read in; None for other corpora."""
    source = info.tc.source
    if info.used != "upload" or not source.encoding:
        return None
    return t("sidebar.upload_encoding", name=source.name, encoding=source.encoding)


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


def one_hot_rows(X: torch.Tensor, vocab_size: int, row: int) -> np.ndarray:
    """one_hot(X.T)[:, row, :]: the (steps, vocab) one-hot matrix of one batch row."""
    one_hot = torch.nn.functional.one_hot(X.T, vocab_size)  # (steps, batch, vocab)
    return one_hot[:, row, :].numpy()


def display_tokens(vocab: rnn_core.Vocab, tokens: list[str]) -> list[str]:
    """Tokens for running text: characters as they are, words followed by a space."""
    return list(tokens) if is_char_vocab(vocab) else [t + " " for t in tokens]


def unknown_tokens(vocab: rnn_core.Vocab, text: str) -> list[str]:
    """Tokens of `text` that the vocabulary does not have (they read as <unk>)."""
    return sorted({t for t in split_text(vocab, text) if t not in vocab.token_to_idx})


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


def passage(info: CorpusInfo, n_chars: int = 400) -> str:
    """A longer stretch of the corpus for the hidden units and surprise: its first `n_chars` characters
    (the first n_chars / 5 words for word tokens)."""
    if is_char_vocab(info.vocab):
        return "".join(info.vocab.to_tokens(info.tc.corpus[:n_chars]))
    return " ".join(info.vocab.to_tokens(info.tc.corpus[:n_chars // 5]))

"""Tokens and vocabulary, with the interface of the lesson's ``d2l.Vocab`` (d2l 8.2)."""
from __future__ import annotations

import collections
from collections.abc import Iterable, Sequence

import pandas as pd

UNK = "<unk>"


def tokenize(lines: Sequence[str], token: str = "word") -> list[list[str]]:
    """Split each line into word or char tokens, as the lesson does."""
    if token == "word":
        return [line.split() for line in lines]
    if token == "char":
        return [list(line) for line in lines]
    raise ValueError(f"Unknown token type {token!r}: use 'char' or 'word'.")


def count_corpus(tokens: Iterable) -> collections.Counter:
    """Count token frequencies over a flat or nested (per-line) token list."""
    tokens = list(tokens)
    if len(tokens) == 0 or isinstance(tokens[0], list):
        tokens = [tok for line in tokens for tok in line]
    return collections.Counter(tokens)


class Vocab:
    """Token <-> index map; ``<unk>`` is 0, then reserved tokens, then tokens by descending frequency."""

    def __init__(self, tokens: Iterable | None = None, min_freq: int = 0,
                 reserved_tokens: Sequence[str] | None = None):
        tokens = [] if tokens is None else tokens
        reserved_tokens = list(reserved_tokens or [])
        self.min_freq = min_freq
        self.reserved_tokens = reserved_tokens
        counter = count_corpus(tokens)
        # sorted() is stable, so ties keep first-seen order exactly as in the lesson.
        self._token_freqs = sorted(counter.items(), key=lambda x: x[1], reverse=True)
        self.idx_to_token = [UNK] + reserved_tokens
        self.token_to_idx = {token: idx for idx, token in enumerate(self.idx_to_token)}
        for token, freq in self._token_freqs:
            if freq < min_freq:
                break
            if token not in self.token_to_idx:
                self.idx_to_token.append(token)
                self.token_to_idx[token] = len(self.idx_to_token) - 1
        self._counter = counter

    def __len__(self) -> int:
        return len(self.idx_to_token)

    def __getitem__(self, tokens):
        if not isinstance(tokens, (list, tuple)):
            return self.token_to_idx.get(tokens, self.unk)
        return [self.__getitem__(token) for token in tokens]

    def to_tokens(self, indices):
        """Index or list of indices back to tokens."""
        if hasattr(indices, "tolist"):
            indices = indices.tolist()
        if not isinstance(indices, (list, tuple)):
            return self.idx_to_token[indices]
        return [self.idx_to_token[int(index)] for index in indices]

    @property
    def unk(self) -> int:
        return 0

    @property
    def token_freqs(self) -> list[tuple[str, int]]:
        return self._token_freqs

    def to_frame(self) -> pd.DataFrame:
        """One row per token: index, token, count (0 for <unk> and reserved tokens)."""
        return pd.DataFrame({
            "index": range(len(self)),
            "token": self.idx_to_token,
            "count": [self._counter.get(tok, 0) for tok in self.idx_to_token],
        })

    def to_dict(self) -> dict:
        """Plain data for checkpoints."""
        return {"idx_to_token": list(self.idx_to_token), "min_freq": self.min_freq,
                "reserved_tokens": list(self.reserved_tokens),
                "token_freqs": [[t, int(c)] for t, c in self._token_freqs]}

    @classmethod
    def from_dict(cls, d: dict) -> "Vocab":
        """Rebuild a vocabulary saved with :meth:`to_dict`."""
        vocab = cls(min_freq=d["min_freq"], reserved_tokens=d["reserved_tokens"])
        vocab.idx_to_token = list(d["idx_to_token"])
        vocab.token_to_idx = {tok: i for i, tok in enumerate(vocab.idx_to_token)}
        vocab._token_freqs = [tuple(x) for x in d["token_freqs"]]
        vocab._counter = collections.Counter(dict(vocab._token_freqs))
        return vocab

    def __repr__(self) -> str:
        shown = ", ".join(f'"{t}"' for t in self.idx_to_token[:5])
        more = ", ..." if len(self) > 5 else ""
        return f"<Vocab with {len(self)} tokens: {shown}{more}>"


def is_char_vocab(vocab: Vocab) -> bool:
    """True when every token (but <unk>) is one character."""
    return all(len(t) == 1 for t in vocab.idx_to_token[1:])


def split_text(vocab: Vocab, text: str) -> list[str]:
    """Text to tokens the way the vocabulary was built (characters or words)."""
    return list(text) if is_char_vocab(vocab) else text.split()


def join_tokens(vocab: Vocab, tokens: list[str]) -> str:
    """Tokens back to text: concatenated for characters, space-separated for words."""
    return "".join(tokens) if is_char_vocab(vocab) else " ".join(tokens)

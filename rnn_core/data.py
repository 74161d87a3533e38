"""Minibatches of token sequences, with the lesson's two partitionings (d2l 8.3).

Both partitionings are computed as *start positions* in the corpus first; ``X`` and ``Y`` are then
gathered from those positions. The same positions feed the dashboard's minibatch map, so what is drawn
is exactly what is trained on.
"""
from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass

import pandas as pd
import torch

from .corpus import Corpus, CorpusError, clean_lines, load_corpus
from .vocab import Vocab, tokenize


def random_starts(num_tokens: int, batch_size: int, num_steps: int, rng: random.Random) -> list[list[int]]:
    """Start positions per minibatch for random partitioning (d2l ``seq_data_iter_random``)."""
    # A random offset in [0, num_steps - 1], so every epoch cuts the corpus differently.
    offset = rng.randint(0, num_steps - 1)
    num_subseqs = (num_tokens - offset - 1) // num_steps  # -1: Y needs one token past X
    initial_indices = list(range(0, num_subseqs * num_steps, num_steps))
    rng.shuffle(initial_indices)
    num_batches = num_subseqs // batch_size
    return [[offset + i for i in initial_indices[b * batch_size:(b + 1) * batch_size]]
            for b in range(num_batches)]


def sequential_starts(num_tokens: int, batch_size: int, num_steps: int, rng: random.Random) -> list[list[int]]:
    """Start positions per minibatch for sequential partitioning (d2l ``seq_data_iter_sequential``)."""
    offset = rng.randint(0, num_steps)
    usable = ((num_tokens - offset - 1) // batch_size) * batch_size
    row_len = usable // batch_size  # each batch row reads one contiguous stretch of row_len tokens
    num_batches = row_len // num_steps
    return [[offset + row * row_len + b * num_steps for row in range(batch_size)] for b in range(num_batches)]


def num_minibatches(num_tokens: int, batch_size: int, num_steps: int, use_random_iter: bool) -> int:
    """Minibatches per epoch that every random offset allows (the largest offset gives the fewest)."""
    if use_random_iter:
        return max(0, (num_tokens - (num_steps - 1) - 1) // num_steps // batch_size)
    usable = ((num_tokens - num_steps - 1) // batch_size) * batch_size
    return max(0, usable // batch_size // num_steps)


def min_tokens_for(batch_size: int, num_steps: int, use_random_iter: bool = False) -> int:
    """Smallest corpus that gives at least one minibatch at every offset."""
    if use_random_iter:
        return batch_size * num_steps + num_steps
    return batch_size * num_steps + num_steps + 1


def tokens_per_epoch(num_tokens: int, batch_size: int, num_steps: int, use_random_iter: bool = False) -> int:
    """Tokens one epoch trains on (its minibatches times batch_size x num_steps), counted without a loader;
    CorpusError when the sizes are below 1 or the corpus is too short for one minibatch."""
    if batch_size < 1 or num_steps < 1:
        raise CorpusError("Batch size and number of steps must be at least 1.", "loader_sizes")
    if (n := num_minibatches(num_tokens, batch_size, num_steps, use_random_iter)) == 0:
        need = min_tokens_for(batch_size, num_steps, use_random_iter)
        raise CorpusError(
            f"The corpus has {num_tokens:,} tokens, too few for one minibatch of {batch_size}x{num_steps} "
            f"(needs {need:,}): lower the batch size or the number of steps, or use a longer text.",
            "corpus_too_short", tokens=f"{num_tokens:,}", batch=batch_size, steps=num_steps, need=f"{need:,}")
    return n * batch_size * num_steps


class SeqDataLoader:
    """Iterates ``X, Y`` of shape (batch_size, num_steps); ``Y`` is ``X`` shifted one token ahead.

    Every epoch draws a new random offset (and order, for random partitioning) from its own seeded
    ``random.Random``, so two loaders with the same seed yield the same minibatches. Each epoch yields
    :func:`num_minibatches` batches; at the lesson's settings that is every batch the lesson yields.
    """

    def __init__(self, corpus: list[int] | torch.Tensor, batch_size: int, num_steps: int,
                 use_random_iter: bool = False, seed: int | None = None, name: str = "TimeMachineLoader"):
        self.corpus = torch.as_tensor(corpus, dtype=torch.long)
        self.batch_size, self.num_steps = int(batch_size), int(num_steps)
        self.use_random_iter = use_random_iter
        self.rng = random.Random(seed)
        self.name = name
        self.preview_tokens: list[str] = []  # first tokens, for the repr
        tokens_per_epoch(len(self.corpus), self.batch_size, self.num_steps, use_random_iter)  # CorpusError: none

    def __len__(self) -> int:
        return num_minibatches(len(self.corpus), self.batch_size, self.num_steps, self.use_random_iter)

    def epoch_starts(self) -> list[list[int]]:
        """Draw the next epoch's start positions (advances the loader's random state)."""
        fn = random_starts if self.use_random_iter else sequential_starts
        return fn(len(self.corpus), self.batch_size, self.num_steps, self.rng)[:len(self)]

    def gather(self, starts: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        """X, Y (batch, steps) read from the given start positions."""
        idx = torch.as_tensor(starts)[:, None] + torch.arange(self.num_steps)  # (batch, steps)
        return self.corpus[idx], self.corpus[idx + 1]

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for starts in self.epoch_starts():
            yield self.gather(starts)

    def positions(self, epochs: int = 1, max_batches: int | None = None, seed: int | None = None) -> pd.DataFrame:
        """Which corpus positions fill each batch row: one row per (epoch, minibatch, batch row).

        Uses a fresh RNG (``seed``, default: this loader's construction is not disturbed).
        """
        fn = random_starts if self.use_random_iter else sequential_starts
        rng = random.Random(seed)
        rows = []
        for epoch in range(epochs):
            batches = fn(len(self.corpus), self.batch_size, self.num_steps, rng)[:len(self)]
            for b, starts in enumerate(batches[:max_batches]):
                for row, start in enumerate(starts):
                    rows.append((epoch, b, row, start, start + self.num_steps))
        frame = pd.DataFrame(rows, columns=["epoch", "minibatch", "row", "start", "stop"])
        frame.insert(0, "partition", "random" if self.use_random_iter else "sequential")
        return frame

    def __repr__(self) -> str:
        shown = ", ".join(f'"{t}"' for t in self.preview_tokens)
        return f"<{self.name} with {len(self.corpus)} corpus: {shown}, ...>"


@dataclass
class TokenizedCorpus:
    """A corpus as token indices plus its vocabulary."""

    corpus: list[int]
    vocab: Vocab
    source: Corpus
    num_tokens_total: int  # before max_tokens truncation


def tokenize_corpus(source: Corpus, token_type: str = "char", max_tokens: int = -1, min_freq: int = 0,
                    keep_case: bool = False, keep_punct: bool | None = None, clean: str = "lesson") -> TokenizedCorpus:
    """Clean, tokenize and index a corpus; lines are concatenated as in the lesson.

    ``clean``: "lesson" (a-z and space, lower case; a generated corpus keeps its own characters) or "keep"
    (every character, NFKC, whitespace collapsed: Chinese and other Unicode texts at character level).
    """
    keep_punct = source.keep_punct if keep_punct is None else keep_punct
    lines = clean_lines(source.lines, keep_case=keep_case, keep_punct=keep_punct, mode=clean)
    tokens = tokenize(lines, token_type)
    vocab = Vocab(tokens, min_freq=min_freq)
    corpus = [vocab[token] for line in tokens for token in line]
    if not corpus:
        hint = ("use a text with letters in it" if clean == "keep" else
                "its characters are outside a-z: choose the cleaning 'keep' (every character) to train on it")
        raise CorpusError(f"{source.name} has no tokens after cleaning: {hint}.",
                          "no_tokens_keep" if clean == "keep" else "no_tokens_lesson", name=source.name)
    total = len(corpus)
    if max_tokens > 0:
        corpus = corpus[:max_tokens]
    return TokenizedCorpus(corpus, vocab, source, total)


def load_corpus_time_machine(max_tokens: int = -1, token_type: str = "char") -> tuple[list[int], Vocab]:
    """Token indices and vocabulary of the Time Machine (d2l ``load_corpus_time_machine``)."""
    tc = tokenize_corpus(load_corpus("time_machine"), token_type, max_tokens)
    return tc.corpus, tc.vocab


def make_loader(tc: TokenizedCorpus, batch_size: int, num_steps: int, use_random_iter: bool = False,
                seed: int | None = None) -> SeqDataLoader:
    """A loader over a tokenized corpus."""
    name = "TimeMachineLoader" if tc.source.source == "time_machine" else "SeqDataLoader"
    loader = SeqDataLoader(tc.corpus, batch_size, num_steps, use_random_iter, seed, name)
    loader.preview_tokens = tc.vocab.to_tokens(tc.corpus[:5])
    return loader


def load_data(source="time_machine", batch_size: int = 32, num_steps: int = 35, token_type: str = "char",
              use_random_iter: bool = False, max_tokens: int = 10_000, seed: int | None = None,
              corpus_seed: int = 0) -> tuple[SeqDataLoader, Vocab]:
    """(loader, vocab) for any corpus source ('time_machine', built-in name, path or bytes)."""
    tc = tokenize_corpus(load_corpus(source, seed=corpus_seed), token_type, max_tokens)
    return make_loader(tc, batch_size, num_steps, use_random_iter, seed), tc.vocab


def load_data_time_machine(batch_size: int = 32, num_steps: int = 35, token_type: str = "char",
                           use_random_iter: bool = False, max_tokens: int = 10_000,
                           seed: int | None = None) -> tuple[SeqDataLoader, Vocab]:
    """The lesson's call: ``train_iter, vocab = load_data_time_machine(32, 35)``."""
    return load_data("time_machine", batch_size, num_steps, token_type, use_random_iter, max_tokens, seed)

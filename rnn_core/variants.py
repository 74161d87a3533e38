"""The lesson's exercises (d2l 8.5) as switches of a run, one each, and the held-out text a run is scored on.

=============  ==============================  =================================================================
switch         values (lesson's first)         where
=============  ==============================  =================================================================
activation     tanh | relu                     ``model.RNN``, ``fast.FastRNN`` (Python path), ``TorchRNN``
clip           theta | None (off)              ``training.grad_clipping``
input          onehot | embedding (E: V x e)   ``model.RNN`` (lesson engine)
detach         True | False                    ``training.Trainer`` (lesson engine): no detach carries the graph
                                               across an epoch's minibatches, the state fresh each epoch
predict        greedy | sample:T | sharpen:a   ``training.generate`` (samples), ``training.sharpen`` = P^a / sum
heldout        "" | rest | builtin:NAME |      perplexity on a text never trained on, every epoch
               upload:NAME                     (``training.evaluate``)
=============  ==============================  =================================================================

An engine without a switch falls back to the lesson engine (``engines.engine_for``); the run's settings then
name the engine that trained it. Held-out texts are mapped into the training vocabulary (tokens it lacks
become ``<unk>``) and cut to :data:`HELDOUT_MAX_TOKENS`, so scoring one costs less than a third of an epoch.
"""
from __future__ import annotations

import argparse

from . import settings_schema
from .corpus import BUILTIN_CORPORA, Corpus, CorpusError, builtin_corpus, corpus_from_text
from .data import TokenizedCorpus, tokenize_corpus
from .vocab import Vocab

HELDOUT_MAX_TOKENS = 5_000


def tokens_in_vocab(source: Corpus, vocab: Vocab, token: str = "char", max_tokens: int = HELDOUT_MAX_TOKENS,
                    skip: int = 0) -> list[int]:
    """A corpus's tokens (after ``skip`` of them, at most ``max_tokens``) as indices of ``vocab`` (unknown: <unk>)."""
    tc = tokenize_corpus(source, token)
    end = skip + max_tokens if max_tokens > 0 else None
    return [int(i) for i in vocab[tc.vocab.to_tokens(tc.corpus[skip:end])]]


def heldout_tokens(spec: str, tc: TokenizedCorpus, token: str = "char", seed: int = 0,
                   text: str | bytes | None = None, max_tokens: int = HELDOUT_MAX_TOKENS) -> list[int]:
    """The held-out text named by ``spec``, as indices of the training vocabulary (``[]`` for "").

    "rest": the same source after the tokens trained on (another part of the book); "builtin:NAME": a built-in
    corpus; "upload:NAME": ``text`` (an uploaded file's content). ValueError, in one sentence, otherwise.
    """
    kind, _, name = (spec or "").partition(":")
    if not kind:
        return []
    if kind == "rest":
        if tc.num_tokens_total <= len(tc.corpus):
            raise CorpusError(f"The whole of {tc.source.name} is trained on: nothing is left to hold out. "
                              "Train on fewer tokens or hold out another text.", "heldout_all_trained",
                              name=tc.source.name)
        tokens = tokens_in_vocab(tc.source, tc.vocab, token, max_tokens, skip=len(tc.corpus))
    elif kind == "builtin":
        if name not in BUILTIN_CORPORA:
            raise CorpusError(f"Unknown built-in corpus {name!r}: choose one of {', '.join(BUILTIN_CORPORA)}.",
                              "heldout_unknown_builtin", name=name, choices=", ".join(BUILTIN_CORPORA))
        tokens = tokens_in_vocab(builtin_corpus(name, seed=seed), tc.vocab, token, max_tokens)
    elif kind == "upload":
        if text is None:
            raise CorpusError("A held-out upload needs its text.", "heldout_no_text")
        tokens = tokens_in_vocab(corpus_from_text(text, name or "upload"), tc.vocab, token, max_tokens)
    else:
        raise CorpusError(f"Unknown held-out text {spec!r}: rest, builtin:NAME or upload:NAME.", "heldout_unknown",
                          spec=spec)
    if len(tokens) < 2:
        raise CorpusError(f"The held-out text {spec!r} has fewer than 2 tokens.", "heldout_short", spec=spec)
    return tokens


def heldout_batch(num_tokens: int, batch: int, steps: int) -> tuple[int, int]:
    """(batch, steps) for scoring ``num_tokens`` held-out tokens: the run's, made smaller for a short text."""
    steps = max(1, min(steps, (num_tokens - 1) // 2))
    batch = max(1, min(batch, (num_tokens - 1) // steps))
    return batch, steps


# ---------------------------------------------------------------- the CLI's flags

def add_arguments(p: argparse.ArgumentParser) -> None:
    """The switches as flags of ``python -m rnn_core.train`` (declared in ``settings_schema``)."""
    settings_schema.add_arguments(p, "activation", "input", "embed", "detach", "predict", "heldout")


def settings_from_args(args: argparse.Namespace) -> dict:
    """RunSettings fields from the flags (a file path for --heldout becomes "upload:<path>")."""
    heldout = args.heldout
    if heldout and heldout != "rest" and not heldout.startswith(("builtin:", "upload:")):
        heldout = f"upload:{heldout}"
    return {"activation": args.activation, "input": args.input, "embed": args.embed,
            "detach": not args.no_detach, "predict": args.predict, "heldout": heldout}

"""Engines: implementations of the same RNN with the same parameters and the same loss.

- ``lesson``: the scratch model exactly as students read it (one-hot, a Python loop over time).
- ``torch``: ``nn.RNN`` + ``nn.Linear`` (cuDNN on a GPU), the framework twin.
- ``fast``: the scratch model with a row gather for the one-hot matmul and backpropagation through time
  written by hand (``rnn_core.fast``); on CUDA the whole training step is one CUDA graph. The default.
"""
from __future__ import annotations

from .fast import FastRNN
from .model import RNN, TorchRNN, resolve_device

ENGINES = {"lesson": RNN, "torch": TorchRNN, "fast": FastRNN}
DEFAULT_ENGINE = "fast"


def make_model(engine: str, vocab_size: int, num_hiddens: int, device=None, seed: int | None = None):
    """A fresh model of the named engine; the same seed gives the same initial weights in every engine."""
    if engine not in ENGINES:
        raise ValueError(f"Unknown engine {engine!r}: choose one of {', '.join(ENGINES)}.")
    return ENGINES[engine](vocab_size, num_hiddens, resolve_device(device), seed=seed)

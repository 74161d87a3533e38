"""Engines: implementations of the same RNN with the same parameters and the same loss.

- ``lesson``: the scratch model exactly as students read it (one-hot, a Python loop over time).
- ``torch``: ``nn.RNN`` + ``nn.Linear`` (cuDNN on a GPU), the framework twin.
"""
from __future__ import annotations

from .model import RNN, TorchRNN, resolve_device

ENGINES = {"lesson": RNN, "torch": TorchRNN}
DEFAULT_ENGINE = "lesson"


def make_model(engine: str, vocab_size: int, num_hiddens: int, device=None, seed: int | None = None):
    """A fresh model of the named engine; the same seed gives the same initial weights in every engine."""
    if engine not in ENGINES:
        raise ValueError(f"Unknown engine {engine!r}: choose one of {', '.join(ENGINES)}.")
    return ENGINES[engine](vocab_size, num_hiddens, resolve_device(device), seed=seed)

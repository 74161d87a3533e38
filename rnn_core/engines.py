"""Engines: implementations of the same RNN with the same parameters and the same loss.

- ``lesson``: the scratch model exactly as students read it (one-hot, a Python loop over time).
- ``torch``: ``nn.RNN`` + ``nn.Linear`` (cuDNN on a GPU), the framework twin.
- ``fast``: the scratch model with a row gather for the one-hot matmul and backpropagation through time
  written by hand (``rnn_core.fast``); on CUDA the whole training step is one CUDA graph. The default.

Variants (the lesson's exercises): every engine has tanh and ReLU. An embedding input and training without
detaching the state between minibatches exist in the lesson engine only (the fast engine's hand-written
backward frees its activations after one pass; ``nn.RNN`` takes its weights in place, which SGD changes
under a graph kept for later): :func:`engine_for` then picks ``lesson``, and so does :func:`make_model`.
"""
from __future__ import annotations

from .fast import FastRNN
from .model import ACTIVATIONS, INPUTS, RNN, TorchRNN, resolve_device

ENGINES = {"lesson": RNN, "torch": TorchRNN, "fast": FastRNN}
DEFAULT_ENGINE = "fast"


def engine_for(engine: str, activation: str = "tanh", input: str = "onehot", detach: bool = True) -> str:
    """The engine that runs these switches: ``engine`` where it has them, else ``lesson`` (which has all)."""
    if engine not in ENGINES:
        raise ValueError(f"Unknown engine {engine!r}: choose one of {', '.join(ENGINES)}.")
    if activation not in ACTIVATIONS:
        raise ValueError(f"Unknown activation {activation!r}: {' or '.join(ACTIVATIONS)}.")
    if input not in INPUTS:
        raise ValueError(f"Unknown input {input!r}: {' or '.join(INPUTS)}.")
    return engine if input == "onehot" and detach else "lesson"


def make_model(engine: str, vocab_size: int, num_hiddens: int, device=None, seed: int | None = None, *,
               activation: str = "tanh", input: str = "onehot", embed: int = 0, detach: bool = True):
    """A fresh model of the named engine; the same seed gives the same initial weights in every engine.

    With a switch the engine lacks (:func:`engine_for`), the lesson engine's model is returned.
    """
    engine = engine_for(engine, activation, input, detach)
    device = resolve_device(device)
    if engine == "lesson":
        return RNN(vocab_size, num_hiddens, device, seed=seed, activation=activation, input=input, embed=embed)
    return ENGINES[engine](vocab_size, num_hiddens, device, seed=seed, activation=activation)

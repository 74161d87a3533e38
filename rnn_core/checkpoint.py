"""Checkpoints: parameters (formula names) + vocabulary + config, loaded with ``weights_only=True``."""
from __future__ import annotations

from pathlib import Path

import torch

from .inspection import formula_params
from .vocab import Vocab

FORMAT = "rnn-lab/1"


def save_checkpoint(path: str | Path, net, vocab: Vocab, config: dict | None = None) -> Path:
    """Write the model's parameters, its vocabulary and a plain config dict."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "format": FORMAT,
        "params": {k: v.detach().cpu().contiguous() for k, v in formula_params(net).items()},
        "vocab": vocab.to_dict(),
        "config": dict(config or {}),
        "num_hiddens": int(net.num_hiddens),
    }
    torch.save(payload, path)
    return path


def load_checkpoint(path: str | Path, device=None, engine: str = "lesson"):
    """(net, vocab, config) from a checkpoint; only tensors and plain data are unpickled."""
    from .engines import make_model  # local: engines imports model code that imports this package

    payload = torch.load(Path(path), map_location="cpu", weights_only=True)
    if payload.get("format") != FORMAT:
        raise ValueError(f"{path} is not an RNN Lab checkpoint.")
    vocab = Vocab.from_dict(payload["vocab"])
    net = make_model(engine, len(vocab), payload["num_hiddens"], device)
    net.load_formula_params(payload["params"])
    return net, vocab, payload["config"]

"""Checkpoints: parameters (formula names) + vocabulary + config, loaded with ``weights_only=True``.

One format for every producer: ``python -m rnn_core.train --save``, the run store's per-epoch checkpoints and
the dashboard's download, so a file from any of them loads in all the others. A file that is not one (or is
damaged) is refused with a :class:`CheckpointError` before anything else changes.
"""
from __future__ import annotations

import io
import os
import tempfile
from pathlib import Path

import torch

from .errors import UserError
from .model import ALL_PARAM_NAMES, PARAM_NAMES, formula_params
from .vocab import Vocab

FORMAT = "rnn-lab/1"
MAX_HIDDEN = 4096  # larger than any model the settings allow: a bigger tensor is not one of ours


_UMASK = os.umask(0)
os.umask(_UMASK)


class CheckpointError(UserError, ValueError):
    """A file that is not a valid RNN Lab checkpoint; says why in one sentence."""


def checkpoint_payload(params: dict[str, torch.Tensor], vocab: Vocab, config: dict | None = None) -> dict:
    """The saved dict: format tag, CPU float32 parameters in formula layout (E too with an embedding), vocabulary,
    plain config."""
    return {
        "format": FORMAT,
        "params": {k: params[k].detach().to("cpu", torch.float32).contiguous() for k in ALL_PARAM_NAMES
                   if k in params},
        "vocab": vocab.to_dict(),
        "config": dict(config or {}),
        "num_hiddens": int(params["W_hh"].shape[0]),
    }


def write_atomic(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` through a temporary file and a rename: readers never see half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o666 & ~_UMASK)  # as open() would have made it (mkstemp makes it private)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def payload_bytes(payload: dict) -> bytes:
    """A payload serialised as ``torch.save`` writes it."""
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    return buffer.getvalue()


def save_checkpoint(path: str | Path, net, vocab: Vocab, config: dict | None = None) -> Path:
    """Write the model's parameters, its vocabulary and a plain config dict (atomically)."""
    return write_atomic(path, payload_bytes(checkpoint_payload(formula_params(net), vocab, config)))


def read_checkpoint(source: str | Path | bytes, name: str | None = None) -> tuple[dict[str, torch.Tensor], Vocab, dict]:
    """(params, vocab, config) from a file path or its bytes, validated; CheckpointError otherwise."""
    name = name or (Path(source).name if not isinstance(source, bytes) else "the file")
    try:
        payload = torch.load(io.BytesIO(source) if isinstance(source, bytes) else Path(source),
                             map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise CheckpointError(f"{name} does not exist.", "checkpoint_missing", name=name) from None
    except Exception:  # noqa: BLE001  pickle, zip or torch errors all mean the same to the user
        raise CheckpointError(f"{name} is not an RNN Lab checkpoint: it could not be read as one.",
                              "checkpoint_unreadable", name=name) from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{name} is not an RNN Lab checkpoint (no '{FORMAT}' format tag).",
                              "checkpoint_no_format", name=name, format=FORMAT)
    params, config = payload.get("params"), payload.get("config", {})
    if not isinstance(params, dict) or set(params) - {"E"} != set(PARAM_NAMES) \
            or not all(isinstance(v, torch.Tensor) and v.is_floating_point() for v in params.values()):
        raise CheckpointError(f"{name} does not hold the five parameters {', '.join(PARAM_NAMES)}.",
                              "checkpoint_params", name=name, params=", ".join(PARAM_NAMES))
    try:
        vocab = Vocab.from_dict(payload["vocab"])
    except Exception:  # noqa: BLE001
        raise CheckpointError(f"{name} has no readable vocabulary.", "checkpoint_vocab", name=name) from None
    V, h = len(vocab), params["W_hh"].shape[0] if params["W_hh"].dim() == 2 else -1
    # An embedding E (V, e) makes W_xh (e, h).
    e = params["E"].shape[1] if "E" in params and params["E"].dim() == 2 else V
    expected = {"W_xh": (e, h), "W_hh": (h, h), "b_h": (h,), "W_hq": (h, V), "b_q": (V,)}
    if "E" in params:
        expected["E"] = (V, e)
    wrong = [f"{k} {tuple(params[k].shape)} (expected {shape})" for k, shape in expected.items()
             if tuple(params[k].shape) != shape]
    if wrong or not 1 <= h <= MAX_HIDDEN:
        raise CheckpointError(f"{name} has parameters of the wrong shape for its vocabulary of {V}: "
                              f"{'; '.join(wrong) or f'{h} hidden units'}.",
                              "checkpoint_shapes" if wrong else "checkpoint_hidden", name=name, V=V,
                              wrong="; ".join(wrong), hidden=h)
    if not all(torch.isfinite(v).all() for v in params.values()):
        raise CheckpointError(f"{name} has non-finite parameters (NaN or infinity): it is from a run that blew up.",
                              "checkpoint_nonfinite", name=name)
    if not isinstance(config, dict):
        raise CheckpointError(f"{name} has a damaged config.", "checkpoint_config", name=name)
    return {k: params[k].float() for k in ALL_PARAM_NAMES if k in params}, vocab, config


def model_switches(params: dict, config: dict) -> dict:
    """make_model's switches for a checkpoint: its activation (config) and embedding (an E among its tensors)."""
    switches = {"activation": config.get("activation", "tanh") if config.get("activation") in ("tanh", "relu")
                else "tanh"}
    if "E" in params:
        switches.update(input="embedding", embed=int(params["E"].shape[1]))
    return switches


def load_checkpoint(path: str | Path | bytes, device=None, engine: str = "lesson"):
    """(net, vocab, config) from a checkpoint; only tensors and plain data are unpickled."""
    from .engines import make_model  # local: engines imports model code that imports this package

    params, vocab, config = read_checkpoint(path)
    net = make_model(engine, len(vocab), params["W_hh"].shape[0], device, **model_switches(params, config))
    net.load_formula_params(params)
    return net, vocab, config


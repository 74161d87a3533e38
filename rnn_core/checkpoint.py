"""Checkpoints: parameters (formula names) + vocabulary + config, loaded with ``weights_only=True``.

One format for every producer: ``python -m rnn_core.train --save``, the run store's per-epoch checkpoints and
the dashboard's download, so a file from any of them loads in all the others. A file that is not one (or is
damaged) is refused with a :class:`CheckpointError` before anything else changes.
"""
from __future__ import annotations

import io
import math
import os
import tempfile
from pathlib import Path

import torch

from .engines import make_model
from .errors import UserError
from .model import ALL_PARAM_NAMES, PARAM_NAMES, formula_params
from .vocab import Vocab

FORMAT = "rnn-lab/1"
MAX_HIDDEN = 4096  # larger than any model the settings allow: a bigger tensor is not one of ours


_UMASK = os.umask(0)
os.umask(_UMASK)


class CheckpointError(UserError, ValueError):
    """A saved file (a checkpoint, or a run's run.json) that cannot be used; says why in one sentence."""


# ---------------------------------------------------------------- values read back from a file
# Each check returns the value as the program uses it, or raises a CheckpointError naming the file (``source``),
# the field and the value found: a crafted or damaged file is refused in one sentence, never read as a wrong type.

MAX_SHOWN = 40  # characters of a bad value quoted in a message


def shown(value) -> str:
    """A value as a message quotes it: its repr, cut to MAX_SHOWN characters."""
    text = repr(value)
    return text if len(text) <= MAX_SHOWN else text[:MAX_SHOWN - 3] + "..."


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def check_int(source: str, field: str, value, lo: int, hi: int) -> int:
    """``value`` as a whole number from ``lo`` to ``hi`` (a float with no fraction counts)."""
    if _is_number(value) and isinstance(value, float) and value.is_integer():
        value = int(value)
    if not (isinstance(value, int) and not isinstance(value, bool) and lo <= value <= hi):
        raise CheckpointError(f"{source}: {field} must be a whole number from {lo:,} to {hi:,} (got {shown(value)}).",
                              "field_whole_number", source=source, field=field, value=shown(value),
                              lo=f"{lo:,}", hi=f"{hi:,}")
    return value


def check_positive(source: str, field: str, value) -> float:
    """``value`` as a finite number above 0."""
    if not (_is_number(value) and math.isfinite(value) and value > 0):
        raise CheckpointError(f"{source}: {field} must be a finite number above 0 (got {shown(value)}).",
                              "field_positive", source=source, field=field, value=shown(value))
    return float(value)


def check_at_least(source: str, field: str, value, lo: float) -> float:
    """``value`` as a finite number of at least ``lo``."""
    if not (_is_number(value) and math.isfinite(value) and value >= lo):
        raise CheckpointError(f"{source}: {field} must be a finite number of at least {lo:g} (got {shown(value)}).",
                              "field_at_least", source=source, field=field, value=shown(value), lo=f"{lo:g}")
    return float(value)


def check_choice(source: str, field: str, value, choices) -> str:
    """``value`` as one of ``choices``."""
    if not (isinstance(value, str) and value in choices):
        raise CheckpointError(f"{source}: {field} must be one of {', '.join(choices)} (got {shown(value)}).",
                              "field_choice", source=source, field=field, value=shown(value),
                              choices=", ".join(choices))
    return value


def check_text(source: str, field: str, value) -> str:
    """``value`` as text."""
    if not isinstance(value, str):
        raise CheckpointError(f"{source}: {field} must be text (got {shown(value)}).",
                              "field_text", source=source, field=field, value=shown(value))
    return value


def check_bool(source: str, field: str, value) -> bool:
    """``value`` as true or false."""
    if not isinstance(value, bool):
        raise CheckpointError(f"{source}: {field} must be true or false (got {shown(value)}).",
                              "field_bool", source=source, field=field, value=shown(value))
    return value


def damaged(source: str, field: str) -> CheckpointError:
    """The error for a part of a file that is not what it should be (a list, a table): raise it."""
    return CheckpointError(f"{source}: {field} is damaged.", "field_damaged", source=source, field=field)


def check_vocab(source: str, d) -> Vocab:
    """A vocabulary saved with ``Vocab.to_dict``: distinct text tokens, each with a whole-number count."""
    tokens = d.get("idx_to_token") if isinstance(d, dict) else None
    reserved = d.get("reserved_tokens", []) if isinstance(d, dict) else None
    freqs = d.get("token_freqs", []) if isinstance(d, dict) else None
    if not (isinstance(tokens, list) and tokens and all(isinstance(x, str) for x in tokens)
            and len(set(tokens)) == len(tokens)
            and isinstance(reserved, list) and all(isinstance(x, str) for x in reserved)
            and isinstance(freqs, list) and all(isinstance(x, (list, tuple)) and len(x) == 2
                                                and isinstance(x[0], str) and isinstance(x[1], int)
                                                and not isinstance(x[1], bool) for x in freqs)):
        raise damaged(source, "vocab")
    check_int(source, "vocab.min_freq", d.get("min_freq", 0), 0, 2 ** 62)
    return Vocab.from_dict({**d, "reserved_tokens": reserved, "token_freqs": freqs})


def check_config(source: str, config) -> dict:
    """A checkpoint's config with every known field checked: the run settings (RunSettings' types and ranges),
    ``epoch`` (a whole number, 0 for an untrained model) and ``perplexity`` (at least 1, or null)."""
    from .runs import MAX_EPOCHS, RunSettings  # local: runs imports this module

    if not isinstance(config, dict):
        raise damaged(source, "config")
    settings = RunSettings.from_dict(config, source)
    checked = {k: getattr(settings, k) for k in config if k in RunSettings.__dataclass_fields__}
    if "epoch" in config:
        checked["epoch"] = check_int(source, "epoch", config["epoch"], 0, MAX_EPOCHS)
    if config.get("perplexity") is not None:
        checked["perplexity"] = check_at_least(source, "perplexity", config["perplexity"], 1.0)
    return {**config, **checked}


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
        vocab = check_vocab(name, payload.get("vocab"))
    except CheckpointError:
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
    return {k: params[k].float() for k in ALL_PARAM_NAMES if k in params}, vocab, check_config(name, config)


def model_switches(params: dict, config: dict) -> dict:
    """make_model's switches for a checkpoint: its activation (config) and embedding (an E among its tensors)."""
    switches = {"activation": config.get("activation", "tanh") if config.get("activation") in ("tanh", "relu")
                else "tanh"}
    if "E" in params:
        switches.update(input="embedding", embed=int(params["E"].shape[1]))
    return switches


def load_checkpoint(path: str | Path | bytes, device=None, engine: str = "lesson"):
    """(net, vocab, config) from a checkpoint; only tensors and plain data are unpickled."""

    params, vocab, config = read_checkpoint(path)
    net = make_model(engine, len(vocab), params["W_hh"].shape[0], device, **model_switches(params, config))
    net.load_formula_params(params)
    return net, vocab, config


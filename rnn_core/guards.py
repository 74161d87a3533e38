"""Settings checks before any work: sizes in range, memory and time per epoch estimated, not discovered.

A user-caused problem raises :class:`SettingsError` with one sentence that says what to change.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch

from .errors import UserError

# Hard bounds on what the app and CLI accept; beyond them a run is refused before allocating.
LIMITS = {
    "batch_size": (1, 1024),
    "num_steps": (1, 1000),
    "num_hiddens": (1, 4096),
    "num_epochs": (1, 100_000),
    "embed": (0, 20_000),  # an embedding's size (0: the vocabulary's); as wide as the largest vocabulary
    "seed": (0, 2**63 - 1),  # a signed 64-bit number, which torch.manual_seed, random and numpy all take
}
MAX_VOCAB = 20_000  # word vocabularies above this are refused (raise min_freq or use chars)
MAX_LR = float(torch.finfo(torch.float32).max)  # the weights are float32: a larger lr cannot even be multiplied in
BYTES_PER_FLOAT = 4
# Copies of the parameters held while training: the parameters, their gradients, the trainer's snapshot
# for divergence, the run's CPU copy of the last epoch's model.
PARAM_COPIES = 4
# Rough sustained float32 throughput used for time estimates, by device type (FLOP/s), and the fixed
# cost of one time step (Python loop, kernel launches), measured on a 2-core CPU with the lesson engine.
ASSUMED_FLOPS = {"cpu": 50e9, "cuda": 5e12, "mps": 1e12}
SECONDS_PER_STEP = {"cpu": 150e-6, "cuda": 60e-6, "mps": 100e-6}


class SettingsError(UserError, ValueError):
    """Settings that cannot run; the message says what to change."""


@dataclass
class Estimate:
    """What a configuration will cost."""

    param_bytes: int
    activation_bytes: int  # per minibatch, forward + saved-for-backward
    flops_per_token: float  # forward + backward
    tokens_per_epoch: int
    seconds_per_epoch: float

    @property
    def total_bytes(self) -> int:
        return self.param_bytes + self.activation_bytes


def estimate(vocab_size: int, batch_size: int, num_steps: int, num_hiddens: int, num_tokens: int,
             device_type: str = "cpu", *, input: str = "onehot", embed: int = 0, detach: bool = True) -> Estimate:
    """Memory and time for one epoch of the lesson's training loop.

    Every parameter is counted: with ``input="embedding"`` the embedding E (V, e) and a W_xh of (e, h),
    e = ``embed`` or V. Without detaching (``detach=False``) the graph of a whole epoch is kept, so the
    activations of every minibatch in it are held at once.
    """
    V, h = vocab_size, num_hiddens
    e = (embed or V) if input == "embedding" else 0
    x = e or V  # the input's width: an embedding's size, else the one-hot's
    n_params = x * h + h * h + h + h * V + V + V * e  # W_xh, W_hh, b_h, W_hq, b_q, E
    param_bytes = PARAM_COPIES * n_params * BYTES_PER_FLOAT
    # per step: the input (b, x), X W_xh, H W_hh, their sum, H (b,h) each, O (b,V); then softmax and its grad
    activation_bytes = num_steps * batch_size * (5 * h + 3 * V + x) * BYTES_PER_FLOAT
    flops_per_token = 3 * 2 * (x * h + h * h + h * V)  # forward matmuls (E's rows are a lookup), backward twice that
    tokens_per_epoch = max(0, (num_tokens // (batch_size * num_steps)) * batch_size * num_steps)
    steps_per_epoch = tokens_per_epoch // batch_size
    if not detach:
        activation_bytes *= max(1, steps_per_epoch // num_steps)  # one graph across the epoch's minibatches
    seconds = (tokens_per_epoch * flops_per_token / ASSUMED_FLOPS.get(device_type, 50e9)
               + steps_per_epoch * SECONDS_PER_STEP.get(device_type, 150e-6))
    return Estimate(param_bytes, activation_bytes, flops_per_token, tokens_per_epoch, seconds)


def available_memory(device: torch.device | None = None) -> int:
    """Bytes free on the device (host RAM for the CPU)."""
    if device is not None and device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free)
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return 4 * 1024 ** 3


def check_range(name: str, value, label: str | None = None) -> None:
    """Refuse a value outside LIMITS[name]."""
    lo, hi = LIMITS[name]
    if not isinstance(value, (int,)) or isinstance(value, bool) or not lo <= value <= hi:
        raise SettingsError(f"{label or name.replace('_', ' ')} must be a whole number from {lo} to {hi:,} (got {value}).",
                            "out_of_range", setting=name, lo=lo, hi=f"{hi:,}", value=value)


def check_settings(vocab_size: int, batch_size: int, num_steps: int, num_hiddens: int, num_tokens: int,
                   num_epochs: int = 1, lr: float = 1.0, theta: float | None = 1.0, device: torch.device | None = None,
                   memory_fraction: float = 0.5, *, input: str = "onehot", embed: int = 0,
                   detach: bool = True) -> Estimate:
    """Refuse settings that cannot run; return the estimate for those that can (the switches as in RunSettings)."""
    check_range("batch_size", batch_size, "Batch size")
    check_range("num_steps", num_steps, "Number of steps")
    check_range("num_hiddens", num_hiddens, "Hidden size")
    check_range("num_epochs", num_epochs, "Number of epochs")
    check_range("embed", embed, "Embedding size")
    if not (lr > 0 and lr < float("inf")):
        raise SettingsError(f"The learning rate must be a positive number (got {lr}).", "bad_lr", lr=lr)
    if lr > MAX_LR:
        raise SettingsError(f"The learning rate {lr:g} is too large: use at most {MAX_LR:.4g}, the largest float32 "
                            "number.", "lr_too_large", lr=f"{lr:g}", max=f"{MAX_LR:.4g}")
    if theta is not None and not (theta > 0 and theta < float("inf")):
        raise SettingsError(f"The clipping threshold theta must be a positive number or off (got {theta}).",
                            "bad_theta", theta=theta)
    if vocab_size > MAX_VOCAB:
        raise SettingsError(f"The vocabulary has {vocab_size:,} tokens (limit {MAX_VOCAB:,}): use char tokens "
                            f"or a higher minimum frequency.", "vocab_too_large", size=f"{vocab_size:,}",
                            limit=f"{MAX_VOCAB:,}")
    est = estimate(vocab_size, batch_size, num_steps, num_hiddens, num_tokens,
                   device.type if device is not None else "cpu", input=input, embed=embed, detach=detach)
    budget = available_memory(device) * memory_fraction
    if est.total_bytes > budget:
        raise SettingsError(f"These settings need about {est.total_bytes / 2**30:.1f} GiB but only "
                            f"{budget / 2**30:.1f} GiB can be used: lower the batch size, steps or hidden size.",
                            "too_much_memory", need=f"{est.total_bytes / 2**30:.1f}", budget=f"{budget / 2**30:.1f}")
    return est

"""The recurrence unrolled: every number of one pass over a short text, time step by time step.

For tokens x_1..x_{T+1} the model reads x_1..x_T and predicts x_2..x_{T+1}. At step t = 1..T, with H_0 = 0:

    X_t W_xh          row x_t of W_xh: the one-hot row X_t picks it               (h,)
    H_{t-1} W_hh      what the state carries from the steps before                (h,)
    Z_t = X_t W_xh + H_{t-1} W_hh + b_h                                           (h,)
    H_t = φ(Z_t)      tanh (the lesson's), or ReLU (its exercise)                 (h,)
    O_t = H_t W_hq + b_q,   P_t = softmax(O_t),   ℓ_t = −log P_t[x_{t+1}]         (V,)

H_t and O_t are ``model.rnn_step`` and ``model.rnn_output`` themselves; the three terms of Z_t are the same
sums in the same order, kept apart to be shown. The backward numbers G[t, s] = ‖∂ℓ_t/∂H_s‖ are
``gradflow.flow_matrices``'.

The tiny reference model (8 hidden units, every number fits on a screen) is shipped in
``data/reference/unrolled/tiny/``; ``python -m rnn_core.unrolled --force`` makes it again.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch

from .gradflow import flow_matrices
from .model import ACTIVATIONS, PARAM_NAMES, float_params, get_rnn_params, rnn_output, rnn_step
from .runs import META, REFERENCE_ROOT, Run, RunStore
from .vocab import Vocab

TINY_ROOT = REFERENCE_ROOT / "unrolled"  # not data/reference/ itself: the lesson's run stays the only one listed
TINY_ID = "tiny"
# The tiny model: the lesson's settings but 8 hidden units and 200 epochs (perplexity ~9: it learns which
# letter tends to follow which), the fast engine on one thread so that a rerun repeats it on one machine.
TINY_ARGS = ("--hidden", "8", "--epochs", "200", "--seed", "0", "--engine", "fast", "--threads", "1")


@dataclass
class Unrolled:
    """Every number of one pass over a text; row t−1 of each (T, ...) tensor is step t (t = 1..T)."""

    inputs: list[str]  # x_1..x_T
    targets: list[str]  # x_2..x_{T+1}, the true next tokens
    index: torch.Tensor  # (T,): x_t's row of the one-hot matrix (its vocabulary index)
    target_index: torch.Tensor  # (T,)
    XW: torch.Tensor  # (T, h): X_t W_xh
    HW: torch.Tensor  # (T, h): H_{t-1} W_hh (zeros at t = 1)
    b_h: torch.Tensor  # (h,)
    Z: torch.Tensor  # (T, h): the pre-activation X_t W_xh + H_{t-1} W_hh + b_h
    H: torch.Tensor  # (T, h): H_t = φ(Z_t)
    O: torch.Tensor  # (T, V): O_t = H_t W_hq + b_q
    P: torch.Tensor  # (T, V): softmax(O_t)
    loss: torch.Tensor  # (T,): ℓ_t = −log P_t[x_{t+1}]
    grad: torch.Tensor  # (T, T) float64: G[t−1, s−1] = ‖∂ℓ_t/∂H_s‖ for s ≤ t, NaN above the diagonal
    params: dict[str, torch.Tensor]  # W_xh (V, h), W_hh (h, h), b_h (h,), W_hq (h, V), b_q (V,)
    tokens: list[str]  # the vocabulary, by index
    activation: str  # "tanh" | "relu"

    @property
    def steps(self) -> int:
        return len(self.inputs)

    @property
    def hidden(self) -> int:
        return self.H.shape[1]

    @property
    def predicted(self) -> torch.Tensor:
        """(T,): the most likely next token's index at each step."""
        return self.P.argmax(dim=1)

    def p_true(self, t: int) -> float:
        """P_t[x_{t+1}]: the probability step t gave the true next token."""
        return float(self.P[t - 1, self.target_index[t - 1]])

    def top_tokens(self, t: int, k: int = 3) -> list[tuple[str, float]]:
        """The k most likely next tokens at step t with their probabilities, most likely first."""
        p, i = self.P[t - 1].topk(min(k, self.P.shape[1]))
        return [(self.tokens[j], float(q)) for j, q in zip(i.tolist(), p.tolist())]

    def top_units(self, t: int, k: int) -> list[int]:
        """The k units with the largest |H_t| at step t, in unit order (all of them when h ≤ k)."""
        if self.hidden <= k:
            return list(range(self.hidden))
        return sorted(self.H[t - 1].abs().topk(k).indices.tolist())

    def gradient_row(self, t: int) -> list[float]:
        """‖∂ℓ_t/∂H_s‖ for s = 1..t: how much of step t's loss reaches each earlier state."""
        return self.grad[t - 1, :t].tolist()


@torch.no_grad()
def unroll(net_or_params, vocab: Vocab, tokens: list[str], activation: str | None = None,
           dtype: torch.dtype = torch.float32) -> Unrolled:
    """The unrolled numbers of ``tokens`` (at least two) for a model or its parameter dict (float_params).

    ``activation`` defaults to the model's (a bare dict is the lesson's tanh). An embedding model is read
    as the one-hot model with W_xh = E W_xh, as every view of the model does (``model.float_params``).
    """
    if len(tokens) < 2:
        raise ValueError("Give at least two tokens: the model predicts each next one.")
    activation = activation or getattr(net_or_params, "activation", "tanh")
    if activation not in ACTIVATIONS:
        raise ValueError(f"Unknown activation {activation!r}: {' or '.join(ACTIVATIONS)}.")
    p = {k: v.to(dtype) for k, v in float_params(net_or_params).items()}
    W_xh, W_hh, b_h, W_hq, b_q = (p[k] for k in ("W_xh", "W_hh", "b_h", "W_hq", "b_q"))
    idx = torch.tensor(vocab[list(tokens)])  # (T+1,)
    x, y = idx[:-1], idx[1:]
    H = torch.zeros(1, W_hh.shape[0], dtype=dtype)  # H_0 (1, h)
    XW, HW, Z, Hs = [], [], [], []
    for t in range(len(x)):
        XW.append(W_xh[x[t:t + 1]])  # (1, h): one_hot(x_t) @ W_xh is this row, bit for bit
        HW.append(torch.mm(H, W_hh))  # (1, h)
        Z.append(XW[-1] + HW[-1] + b_h)  # rnn_step's sum, in its order
        H = rnn_step(x[t:t + 1], H, W_xh, W_hh, b_h, activation)  # (1, h): the lesson's step itself
        Hs.append(H)
    H_all = torch.cat(Hs)  # (T, h)
    O = rnn_output(H_all, W_hq, b_q)  # (T, V)
    log_p = torch.log_softmax(O, dim=1)
    G, _ = flow_matrices(p, x[None], y[None], activation=activation)  # (1, T, T)
    return Unrolled(list(tokens[:-1]), list(tokens[1:]), x, y, torch.cat(XW), torch.cat(HW), b_h.clone(),
                    torch.cat(Z), H_all, O, log_p.exp(), -log_p[torch.arange(len(y)), y], G[0], p,
                    list(vocab.idx_to_token), activation)


def untrained_params(vocab_size: int, hidden: int, seed: int) -> dict[str, torch.Tensor]:
    """A fresh model's parameters, as the trainer draws them from ``seed`` (weights ~ N(0, 0.01²), biases 0)."""
    params = get_rnn_params(vocab_size, hidden, "cpu", torch.Generator().manual_seed(seed))
    return {name: p.detach() for name, p in zip(PARAM_NAMES, params)}


# ---------------------------------------------------------------- the tiny reference model

def tiny_run(root: Path = TINY_ROOT) -> Run | None:
    """The shipped tiny model's run, read only (None when it is not there or cannot be read)."""
    return RunStore(reference_root=root).load(TINY_ID)


def make_tiny(out: Path = TINY_ROOT / TINY_ID, force: bool = False) -> dict:
    """Train the tiny model into ``out`` (its name is the run's id) with this project's trainer, evaluate its last
    checkpoint on the corpus and mark it a reference run; the summary. ``out`` is replaced only with ``force``."""
    from .reference import evaluate_run
    from .train import parse_args, run

    out = Path(out).expanduser().absolute()
    if out.exists() and any(out.iterdir()) and not force:
        raise FileExistsError(f"{out} is not empty: add --force to replace it.")
    out.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=".tiny-", dir=out.parent))  # no run id: never listed as a run
    try:
        run(parse_args(["--run-dir", str(scratch), "--run-id", out.name, "--quiet", *TINY_ARGS]))
        store = RunStore(scratch, reference_root=None, max_bytes=1 << 62)
        made = store.load(out.name)
        made.origin = "reference"
        made.extra["eval_perplexity"] = evaluate_run(made)
        made.extra["command"] = "python -m rnn_core.unrolled --force"
        store.save_meta(made)
        built = scratch / out.name
        for f in built.iterdir():  # only the run's own files: not its lock
            if not (f.name == META or (f.name.startswith("ckpt-") and f.suffix == ".pt")):
                f.unlink()
        if out.exists():
            os.replace(out, scratch / "previous")  # removed with the scratch directory
        os.replace(built, out)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return {"out": str(out), "eval_perplexity": made.extra["eval_perplexity"], "checkpoints": made.checkpoints}


def main(argv=None) -> int:
    """``python -m rnn_core.unrolled [--out DIR] [--force]``: make the tiny reference model."""
    p = argparse.ArgumentParser(prog="python -m rnn_core.unrolled",
                                description="Train the tiny model (8 hidden units) that the unrolled page shows. "
                                            f"The shipped one, {TINY_ROOT / TINY_ID}, is replaced only with --force.")
    p.add_argument("--out", default=str(TINY_ROOT / TINY_ID), metavar="DIR")
    p.add_argument("--force", action="store_true", help="replace what DIR holds")
    args = p.parse_args(argv)
    try:
        print(json.dumps(make_tiny(Path(args.out), args.force)))
    except FileExistsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

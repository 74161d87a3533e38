"""Inside the RNN: per-timestep hidden states, output probabilities, losses and gradients through time.

For an input string x_1..x_T the model reads x_1..x_{T-1} and predicts x_2..x_T. Everything is computed
with the lesson's step (``model.rnn_step``, ``model.rnn_output``) from the model's parameters in formula
layout, so it works for every engine.
"""
from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
import torch
from torch.nn import functional as F

from .model import activation_of, float_params, rnn_output, rnn_step
from .vocab import Vocab


@dataclass
class Inspection:
    """Per-step views of one pass over a string."""

    inputs: list[str]  # x_1..x_{T-1}
    targets: list[str]  # x_2..x_T, the true next tokens
    hidden: torch.Tensor  # (steps, hidden): H_t
    probs: torch.Tensor  # (steps, vocab): softmax(O_t)
    loss: torch.Tensor  # (steps,): -log p(target_t)
    grad_norm: torch.Tensor  # (steps,): ||d mean_loss / d H_t||
    vocab: Vocab

    def steps_frame(self) -> pd.DataFrame:
        """One row per step t = 1..T (step t reads x_t and predicts x_{t+1}, as the unrolled picture counts):
        input, target, top prediction, p(target), loss, gradient norm."""
        top = self.probs.argmax(dim=1)
        target_idx = torch.tensor(self.vocab[self.targets])
        return pd.DataFrame({
            "step": range(1, len(self.inputs) + 1),
            "input": self.inputs,
            "target": self.targets,
            "predicted": self.vocab.to_tokens(top),
            "p_target": self.probs[torch.arange(len(self.targets)), target_idx].tolist(),
            "p_predicted": self.probs.max(dim=1).values.tolist(),
            "loss": self.loss.tolist(),
            "grad_norm": self.grad_norm.tolist(),
        })


@torch.enable_grad()
def inspect_sequence(net, vocab: Vocab, tokens: list[str]) -> Inspection:
    """Run the recurrence over ``tokens`` (at least two) keeping every H_t and its gradient."""
    if len(tokens) < 2:
        raise ValueError("Give at least two tokens: the model predicts each next one.")
    # Leaf copies that require grad, so H_t.grad is defined (even inside an outer no_grad).
    p = {k: v.requires_grad_() for k, v in float_params(net).items()}  # an embedding folded into W_xh
    idx = torch.tensor(vocab[list(tokens)])
    x, y = idx[:-1], idx[1:]
    X = F.one_hot(x, len(vocab)).float()  # (steps, vocab)
    H = torch.zeros(1, p["W_hh"].shape[0])
    hs, outputs = [], []
    for X_t in X:
        H = rnn_step(X_t[None], H, p["W_xh"], p["W_hh"], p["b_h"], activation_of(net))  # (1, hidden)
        H.retain_grad()
        hs.append(H)
        outputs.append(rnn_output(H, p["W_hq"], p["b_q"]))  # (1, vocab)
    O = torch.cat(outputs)  # (steps, vocab)
    losses = F.cross_entropy(O, y, reduction="none")
    losses.mean().backward()
    return Inspection(
        inputs=list(tokens[:-1]), targets=list(tokens[1:]),
        hidden=torch.cat(hs).detach(), probs=torch.softmax(O.detach(), dim=1), loss=losses.detach(),
        grad_norm=torch.stack([h.grad.norm() for h in hs]), vocab=vocab)

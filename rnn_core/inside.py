"""Inside the RNN, fast views without autograd: hidden states, surprise, top-k predictions, and the
``torch.nn.RNN`` twin of the model checked live.

All take the model's parameters in formula layout (``formula_params``), so they work for every engine,
and copy them to the CPU in float32: the model itself (possibly training) is never touched.
"""
from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
import torch
from torch.nn import functional as F

from .model import PARAM_NAMES, TorchRNN, activation_of, float_params, rnn_forward, rnn_output, rnn_step
from .vocab import Vocab


@torch.no_grad()
def hidden_states(p: dict[str, torch.Tensor], X: torch.Tensor, H0: torch.Tensor | None = None,
                  activation: str = "tanh") -> torch.Tensor:
    """H_1..H_T for token ids X (batch, steps): (batch, steps, h), by the lesson's step (``model.rnn_step``) on
    the ids, so the same bits as the lesson model on one-hot inputs."""
    batch, steps = X.shape
    H = torch.zeros(batch, p["W_hh"].shape[0], dtype=p["W_hh"].dtype) if H0 is None else H0.to(p["W_hh"])
    out = torch.empty(batch, steps, H.shape[1], dtype=H.dtype)
    for t in range(steps):
        H = rnn_step(X[:, t], H, p["W_xh"], p["W_hh"], p["b_h"], activation)  # (batch, h)
        out[:, t] = H
    return out


@dataclass
class Surprise:
    """How surprised the model is by each token of a text: −log p(true next | prefix)."""

    tokens: list[str]  # x_1..x_{T+1}; the first has no prediction (nothing comes before it)
    surprisal: torch.Tensor  # (T,): −log p(x_{t+1} | x_1..x_t), in nats
    hidden: torch.Tensor  # (T, h): H_t after reading x_t
    probs: torch.Tensor  # (T, V): p(· | x_1..x_t)

    @property
    def perplexity(self) -> float:
        """exp(mean surprisal): the model's perplexity on this text."""
        return float(torch.exp(self.surprisal.double().mean()))


@torch.no_grad()
def surprise(net, vocab: Vocab, tokens: list[str]) -> Surprise:
    """Per-token surprisal and perplexity of ``tokens`` (at least two), from the zero state."""
    if len(tokens) < 2:
        raise ValueError("Give at least two tokens: the model predicts each next one.")
    p = float_params(net)
    idx = torch.tensor(vocab[list(tokens)])
    H = hidden_states(p, idx[None, :-1], activation=activation_of(net))[0]  # (T, h)
    log_p = torch.log_softmax(rnn_output(H, p["W_hq"], p["b_q"]), dim=1)  # (T, V)
    nll = -log_p[torch.arange(len(idx) - 1), idx[1:]]
    return Surprise(list(tokens), nll, H, log_p.exp())


def target_ranks(probs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Rank of each true token among the model's predictions: 1 + how many tokens are strictly more likely."""
    p_true = probs.gather(1, targets[:, None])  # (T, 1)
    return 1 + (probs > p_true).sum(dim=1)


def top_k_frame(probs: torch.Tensor, tokens: list[str], vocab: Vocab, k: int = 5) -> pd.DataFrame:
    """Per step the k most likely next tokens with their probabilities, the true one's probability and rank.

    probs (T, V) are the predictions after reading tokens[0..T-1]; the frame counts steps t = 1..T (step t reads
    tokens[t - 1], the t-th token, and its truth is tokens[t]).
    """
    k = min(k, probs.shape[1])
    targets = torch.tensor(vocab[list(tokens[1:])])
    top_p, top_i = probs.topk(k, dim=1)  # (T, k), most likely first
    frame = pd.DataFrame({
        "step": range(1, len(targets) + 1), "input": list(tokens[:-1]), "true next": list(tokens[1:]),
        "p(true)": probs.gather(1, targets[:, None])[:, 0].tolist(),
        "rank": target_ranks(probs, targets).tolist(),
    })
    for j in range(k):
        frame[f"#{j + 1}"] = vocab.to_tokens(top_i[:, j].tolist())
        frame[f"p#{j + 1}"] = top_p[:, j].tolist()
    return frame


def twin_differences(net, vocab: Vocab, tokens: list[str]) -> pd.DataFrame:
    """The model's weights in ``torch.nn.RNN`` + ``nn.Linear`` against the lesson's scratch recurrence on one
    string: max |difference| of the outputs, the final state, the loss and every gradient.

    Both run in float32 from copies of the parameters (the model itself is not touched).
    """
    if len(tokens) < 2:
        raise ValueError("Give at least two tokens: the model predicts each next one.")
    p = float_params(net)
    V, h = p["W_xh"].shape
    idx = torch.tensor(vocab[list(tokens)])
    X, y = idx[None, :-1], idx[1:]  # (1, T) inputs, (T,) targets
    with torch.enable_grad():
        scratch = [p[name].clone().requires_grad_() for name in PARAM_NAMES]
        state = (torch.zeros(1, h),)
        out_s, (H_s,) = rnn_forward(F.one_hot(X.T, V).float(), state, scratch, activation_of(net))  # (T, V), (1, h)
        loss_s = F.cross_entropy(out_s, y)
        loss_s.backward()
        twin = TorchRNN(V, h, "cpu", activation=activation_of(net))
        twin.load_scratch(scratch)
        out_t, (H_t,) = twin(X, state)
        loss_t = F.cross_entropy(out_t, y)
        loss_t.backward()
    W_xh, W_hh, b_h, W_hq, b_q = (q.grad for q in scratch)
    rows = [
        ("outputs O (steps, vocab)", out_s, out_t),
        ("final state H_T (1, hidden)", H_s, H_t),
        ("loss", loss_s, loss_t),
        ("∂loss/∂W_xh  vs  weight_ih_l0ᵀ", W_xh, twin.rnn.weight_ih_l0.grad.T),
        ("∂loss/∂W_hh  vs  weight_hh_l0ᵀ", W_hh, twin.rnn.weight_hh_l0.grad.T),
        ("∂loss/∂b_h  vs  bias_ih_l0", b_h, twin.rnn.bias_ih_l0.grad),
        ("∂loss/∂b_h  vs  bias_hh_l0", b_h, twin.rnn.bias_hh_l0.grad),
        ("∂loss/∂W_hq  vs  linear.weightᵀ", W_hq, twin.linear.weight.grad.T),
        ("∂loss/∂b_q  vs  linear.bias", b_q, twin.linear.bias.grad),
    ]
    return pd.DataFrame([{"compared": name, "shape": str(tuple(a.shape)),
                          "largest |value|": float(a.detach().abs().max()),
                          "max |difference|": float((a.detach() - b.detach()).abs().max())}
                         for name, a, b in rows])

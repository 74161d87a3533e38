"""Text generation (d2l 8.5 ``predict_ch8``): continue a prefix greedily, by sampling at a temperature T
(softmax(O / T) = p^(1/T) renormalised) or from the sharpened distribution P^alpha.
"""
from __future__ import annotations

import math

import torch
from torch.nn import functional as F

from .vocab import Vocab, join_tokens, split_text


PREDICT_MODES = ("greedy", "sample", "sharpen")


def parse_predict(spec: str) -> tuple[str, float]:
    """"greedy" | "sample:T" | "sharpen:alpha" (or "sample", "sharpen": T = 1, alpha = 2) -> (mode, value).

    ValueError, in one sentence, for anything else.
    """
    mode, _, value = str(spec).strip().lower().partition(":")
    default = {"greedy": 0.0, "sample": 1.0, "sharpen": 2.0}
    if mode not in default:
        raise ValueError(f"Unknown prediction {spec!r}: greedy, sample:T (temperature T) or sharpen:alpha.")
    try:
        x = float(value) if value else default[mode]
    except ValueError:
        raise ValueError(f"Prediction {spec!r}: the number after ':' must be a number.") from None
    if mode != "greedy" and not x > 0:
        raise ValueError(f"Prediction {spec!r}: the temperature or alpha must be above 0.")
    return mode, x


def sharpen(probs: torch.Tensor, alpha: float) -> torch.Tensor:
    """P^alpha renormalised over the last axis (alpha > 1 sharpens, < 1 flattens; alpha = inf: greedy's one-hot).

    Computed from log P, so large alpha neither underflows nor overflows.
    """
    if math.isinf(alpha):
        return F.one_hot(probs.argmax(dim=-1), probs.shape[-1]).to(probs.dtype)
    return torch.softmax(alpha * torch.log(probs.clamp_min(torch.finfo(probs.dtype).tiny)), dim=-1)


def next_distribution(logits: torch.Tensor, mode: str = "greedy", value: float = 0.0) -> torch.Tensor:
    """The distribution the next token is drawn from: greedy (one-hot at the argmax), sample (softmax of
    logits / T) or sharpen (softmax(logits)^alpha renormalised), over the last axis."""
    if mode == "greedy":
        return F.one_hot(logits.argmax(dim=-1), logits.shape[-1]).to(torch.float32)
    if mode == "sample":
        return torch.softmax(logits.float() / value, dim=-1)
    if mode == "sharpen":
        return sharpen(torch.softmax(logits.float(), dim=-1), value)
    raise ValueError(f"Unknown prediction mode {mode!r}: {', '.join(PREDICT_MODES)}.")


@torch.no_grad()
def generate(prefix: str, num_preds: int, net, vocab: Vocab, device=None, temperature: float = 0.0,
             seed: int | None = None, predict: str | None = None) -> str:
    """Continue ``prefix`` by ``num_preds`` tokens: greedy when temperature is 0, else sampled from
    softmax(logits / temperature). ``predict`` ("greedy" | "sample:T" | "sharpen:alpha", see
    :func:`parse_predict`) overrides ``temperature``."""
    device = device or net.device
    if predict is not None:
        mode, value = parse_predict(predict)
    else:
        mode, value = ("greedy", 0.0) if temperature <= 0 else ("sample", temperature)
    tokens = split_text(vocab, prefix) or [vocab.idx_to_token[1]]
    outputs = vocab[tokens]
    state = net.begin_state(batch_size=1, device=device)
    # Warm the state on the whole prefix at once (same result as one step at a time).
    y, state = net(torch.tensor([outputs], device=device), state)
    logits = y[-1:]
    g = torch.Generator(device="cpu").manual_seed(seed) if seed is not None else None
    for _ in range(num_preds):
        if mode == "greedy":
            nxt = int(logits.argmax(dim=1))
        else:
            probs = next_distribution(logits.float().cpu(), mode, value)
            nxt = int(torch.multinomial(probs, 1, generator=g))
        outputs.append(nxt)
        logits, state = net(torch.tensor([[nxt]], device=device), state)
    return join_tokens(vocab, vocab.to_tokens(outputs))


def predict(prefix: str, num_preds: int, net, vocab: Vocab, device=None) -> str:
    """The lesson's ``predict_ch8``: greedy continuation of ``prefix``."""
    return generate(prefix, num_preds, net, vocab, device)


predict_ch8 = predict

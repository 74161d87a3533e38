"""Gradient flow through time: how far back the loss at one step reaches, and what W_hh says about it.

For a string the model reads x_1..x_T and predicts x_2..x_{T+1}; ℓ_t is the cross-entropy at step t. The
gradient-flow matrix is

    G[t, s] = ‖∂ℓ_t / ∂H_s‖   for s ≤ t      (H_s reaches ℓ_t only through H_{s+1}, ..., H_t)

and one step back in time is one Jacobian (row vectors, as in the lesson's ``H @ W_hh``):

    ∂ℓ_t/∂H_{s-1} = (∂ℓ_t/∂H_s ⊙ tanh'_s) W_hhᵀ,      tanh'_s = 1 − H_s²  (the derivative at step s)

so ‖∂ℓ_t/∂H_{s-1}‖ ≤ σ_max(W_hh) · max tanh'_s · ‖∂ℓ_t/∂H_s‖. All T rows (one per loss step t) are
carried back together in one (T × h) matrix: one sweep of T matrix products (T × h)·(h × h), instead of
T separate backward passes.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch.nn import functional as F

from .inside import float_params as _params
from .inside import activation_of, hidden_states
from .model import rnn_output


@torch.no_grad()
def flow_matrices(p: dict[str, torch.Tensor], X: torch.Tensor, Y: torch.Tensor,
                  H0: torch.Tensor | None = None, activation: str = "tanh") -> tuple[torch.Tensor, torch.Tensor]:
    """(G, H): G (batch, steps, steps) with G[b, t, s] = ‖∂ℓ_t/∂H_s‖ for s ≤ t (NaN above the diagonal),
    and the hidden states H (batch, steps, h), for inputs X and targets Y (batch, steps) of token ids.

    One backward sweep: D (batch, steps, h) holds ∂ℓ_t/∂H_s for every loss step t at once (rows t < s are
    zero, since ℓ_t does not depend on later states), and each step back multiplies it by tanh'_s and W_hhᵀ.
    """
    batch, steps = X.shape
    H = hidden_states(p, X, H0, activation)  # (batch, steps, h)
    O = rnn_output(H, p["W_hq"], p["b_q"])  # (batch, steps, V)
    dO = torch.softmax(O, dim=-1) - F.one_hot(Y, O.shape[-1]).to(O)  # ∂ℓ_t/∂O_t (batch, steps, V)
    dH = dO @ p["W_hq"].T  # ∂ℓ_t/∂H_t directly (batch, steps, h)
    tanh_prime = derivative(H, activation)  # φ'(z_s) from H_s (batch, steps, h)
    W_hh_T = p["W_hh"].T
    # Each row of D is kept at unit norm and its size carried as a float64 log: an untrained model's
    # gradients fall by ~4x a step, below float32's range (1e-38) ~60 steps back.
    G = torch.full((batch, steps, steps), math.nan, dtype=torch.float64)
    D = torch.zeros_like(dH)  # row t: ∂ℓ_t/∂H_s at the current s, divided by exp(log_size[t])
    log_size = torch.zeros(batch, steps, dtype=torch.float64)
    for s in range(steps - 1, -1, -1):
        D[:, s] = dH[:, s]  # ℓ_s enters at its own step; the rows t > s came back from later steps
        norm = torch.linalg.vector_norm(D[:, s:], dim=-1, dtype=torch.float64)  # (batch, steps−s)
        G[:, s:, s] = torch.exp(log_size[:, s:]) * norm
        if s:
            safe = torch.where(norm > 0, norm, 1.0)
            log_size[:, s:] += torch.log(safe)
            # one step back for the rows that exist (t ≥ s): (batch·(steps−s), h) · (h, h)
            D[:, s:] = (D[:, s:] * (tanh_prime[:, s, None] / safe[..., None].to(D))) @ W_hh_T
    return G, H


def derivative(H: torch.Tensor, activation: str = "tanh") -> torch.Tensor:
    """φ'(z) read from H = φ(z): 1 − H² for tanh, 1[H > 0] for ReLU."""
    return 1 - H * H if activation == "tanh" else (H > 0).to(H.dtype)


def by_distance(G: torch.Tensor) -> torch.Tensor:
    """The mean of G[..., t, t − d] over all t (and batch rows), for d = 0..steps−1: (steps,)."""
    steps = G.shape[-1]
    return torch.stack([torch.diagonal(G, offset=-d, dim1=-2, dim2=-1).mean() for d in range(steps)])


def fitted_factor(curve: torch.Tensor) -> float:
    """Per-step factor of a decay curve: 10**slope of the least-squares line through log10 curve[d] against d
    (over the positive, finite values); NaN with fewer than two."""
    c = curve.double()
    d = torch.arange(len(c), dtype=torch.float64)
    keep = torch.isfinite(c) & (c > 0)
    if int(keep.sum()) < 2:
        return math.nan
    x, y = d[keep], torch.log10(c[keep])
    slope = ((x - x.mean()) * (y - y.mean())).sum() / ((x - x.mean()) ** 2).sum()
    return float(10 ** slope)


@dataclass
class GradientFlow:
    """The gradient-flow view of one string."""

    inputs: list[str]  # x_1..x_T, what each H_t has just read
    targets: list[str]  # x_2..x_{T+1}, what ℓ_t scores
    matrix: torch.Tensor  # (steps, steps): G[t, s] = ‖∂ℓ_t/∂H_s‖, s ≤ t; NaN above the diagonal
    curve: torch.Tensor  # (steps,): mean of G[t, t − d] over t, by distance d = t − s
    factor: float  # fitted per-step factor of the curve (< 1: it shrinks going back); NaN for one step
    max_step_factor: float  # largest measured G[t, s−1] / G[t, s]: one step back, at most this much
    max_tanh_prime: float  # max over steps and units of 1 − H_s² (≤ 1)

    @property
    def steps(self) -> int:
        return len(self.curve)

    def ratio(self, d: int) -> float:
        """curve[d] / curve[0]: the mean gradient d steps back relative to the mean at the step itself."""
        return float(self.curve[d] / self.curve[0])

    def bound(self, per_step: float) -> torch.Tensor:
        """(steps,): per_step**d · mean over t ≥ d of G[t, t], an upper bound of curve[d] when every step back
        multiplies a gradient's norm by at most per_step (e.g. σ_max(W_hh) · max tanh')."""
        diag = torch.diagonal(self.matrix)  # G[t, t]
        return torch.stack([per_step ** d * diag[d:].mean() for d in range(self.steps)])


def _max_step_factor(G: torch.Tensor) -> float:
    """max over t, s of G[t, s−1] / G[t, s] (pairs where both exist and G[t, s] > 0)."""
    if G.shape[-1] < 2:
        return math.nan
    back, here = G[..., :, :-1], G[..., :, 1:]  # G[t, s−1] and G[t, s]
    ok = torch.isfinite(back) & torch.isfinite(here) & (here > 0)
    return float((back[ok] / here[ok]).max()) if bool(ok.any()) else math.nan


def gradient_flow(net, idx: list[int] | torch.Tensor, tokens: list[str] | None = None,
                  dtype: torch.dtype = torch.float32) -> GradientFlow:
    """The gradient-flow matrix, decay curve and per-step factors of one sequence of token ids (at least two)."""
    idx = torch.as_tensor(idx, dtype=torch.long)
    if len(idx) < 2:
        raise ValueError("Give at least two tokens: the model predicts each next one.")
    p = {k: v.to(dtype) for k, v in _params(net).items()}
    G, H = flow_matrices(p, idx[None, :-1], idx[None, 1:], activation=activation_of(net))
    G = G[0]
    tokens = tokens if tokens is not None else [str(int(i)) for i in idx]
    curve = by_distance(G)
    return GradientFlow(list(tokens[:-1]), list(tokens[1:]), G, curve, fitted_factor(curve),
                        _max_step_factor(G), float(derivative(H, activation_of(net)).max()))


def decay_curve(net, X: torch.Tensor, Y: torch.Tensor | None = None, state: torch.Tensor | None = None,
                max_rows: int | None = 8, activation: str | None = None) -> torch.Tensor:
    """Mean ‖∂ℓ_t/∂H_{t−d}‖ by distance d = 0..steps−1 over a minibatch X (batch, steps) of token ids: (steps,).

    Without Y the minibatch predicts itself: inputs X[:, :-1], targets X[:, 1:] (steps−1 values); pass the
    loader's Y to score every step. ``state`` is H_0 (batch, h), zeros by default. Only the first ``max_rows``
    rows are used (None: all): the sweep costs about batch·steps²·h²/2 multiply-adds, ~0.06 s for 8 × 35 at
    h = 512 on one CPU thread.
    """
    X = torch.as_tensor(X).long().cpu()
    if Y is None:
        X, Y = X[:, :-1], X[:, 1:]
    Y = torch.as_tensor(Y).long().cpu()
    if max_rows is not None:
        X, Y = X[:max_rows], Y[:max_rows]
        state = None if state is None else state[:max_rows]
    H0 = None if state is None else state.detach().float().cpu()
    G, _ = flow_matrices(_params(net), X, Y, H0, activation or activation_of(net))
    return by_distance(G)


@dataclass
class Spectrum:
    """What W_hh alone says about gradients through time."""

    radius: float  # ρ(W_hh) = max |λ|: ‖W_hh^d‖ grows or shrinks like ρ^d for large d
    singular: torch.Tensor  # (k,): the largest singular values, descending; singular[0] = σ_max = ‖W_hh‖₂

    @property
    def sigma_max(self) -> float:
        return float(self.singular[0])


def spectrum(net, k: int = 8) -> Spectrum:
    """Spectral radius (eigenvalues in float32: 0.16 s at h = 512, against 0.4 s in float64) and top-k singular
    values (float64) of W_hh."""
    W_hh = _params(net)["W_hh"]  # (h, h), float32
    try:
        radius = float(torch.linalg.eigvals(W_hh).abs().max())
    except torch.linalg.LinAlgError:  # e.g. many repeated eigenvalues; numpy's LAPACK call copes (but slower)
        radius = float(np.abs(np.linalg.eigvals(W_hh.double().numpy())).max())
    return Spectrum(radius, torch.linalg.svdvals(W_hh.double())[:k])


def probe_summary(params: dict[str, torch.Tensor], X: torch.Tensor, Y: torch.Tensor,
                  activation: str = "tanh") -> dict:
    """What one checkpoint does with a run's probe minibatch (X, Y): the decay curve (mean ‖∂ℓ_t/∂H_(t−d)‖ by
    d, first 8 rows) and W_hh's spectral radius and top singular values, as plain data."""
    spec = spectrum(params, k=4)
    return {"decay": [float(v) for v in decay_curve(params, X, Y, activation=activation)], "radius": spec.radius,
            "singular": [float(v) for v in spec.singular]}

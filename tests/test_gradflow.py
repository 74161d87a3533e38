"""Gradient flow through time (one backward sweep) against autograd, the decay curve, W_hh's spectrum."""
import math

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from rnn_core.fast import FastRNN
from rnn_core.gradflow import by_distance, decay_curve, fitted_factor, gradient_flow, spectrum
from rnn_core.model import formula_params
from rnn_core.model import RNN, TorchRNN, rnn_step

V, h = 10, 16


def model(scale_hh: float = 1.0, seed: int = 0, cls=RNN):
    """A small model; scale_hh > 1 makes W_hh large enough for gradients to grow going back."""
    net = cls(V, h, "cpu", seed=seed)
    with torch.no_grad():
        for p in net.params:
            p.mul_(30.0)  # weights ~ N(0, 0.3²): unsaturated, varied tanh'
        net.params[1].mul_(scale_hh)
        net.params[2].normal_(0, 0.3, generator=torch.Generator().manual_seed(seed))  # b_h
    return net


def autograd_matrix(net, idx: torch.Tensor, H0: torch.Tensor | None = None,
                    dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """G[t, s] = ‖∂ℓ_t/∂H_s‖ from one autograd backward pass per loss step t."""
    p = {k: v.to(dtype).requires_grad_() for k, v in formula_params(net).items()}
    x, y = idx[:-1], idx[1:]
    T = len(x)
    H = torch.zeros(1, h, dtype=dtype) if H0 is None else H0.to(dtype)[None]
    hs = []
    for s in range(T):
        H = rnn_step(F.one_hot(x[s], V).to(dtype)[None], H, p["W_xh"], p["W_hh"], p["b_h"])  # (1, h)
        H.retain_grad()
        hs.append(H)
    G = torch.full((T, T), math.nan, dtype=torch.float64)  # norms in float64, like the sweep's
    for t in range(T):
        loss_t = F.cross_entropy(hs[t] @ p["W_hq"] + p["b_q"], y[t:t + 1])
        grads = torch.autograd.grad(loss_t, hs[:t + 1], retain_graph=True)
        G[t, :t + 1] = torch.stack([g.double().norm() for g in grads])
    return G


@pytest.mark.parametrize("scale_hh", [0.3, 3.0], ids=["vanishing", "growing"])
def test_one_sweep_equals_autograd_per_step(scale_hh):
    net = model(scale_hh)
    idx = torch.randint(0, V, (14,), generator=torch.Generator().manual_seed(1))
    # float32: the sweep and autograd's backward round differently (the forward steps are the same bits);
    # near-saturated units amplify that going back, up to ~1.4e-5 relative in the growing case
    for dtype, rtol in [(torch.float64, 1e-10), (torch.float32, 5e-5)]:
        ref = autograd_matrix(net, idx, dtype=dtype)
        flow = gradient_flow(net, idx, dtype=dtype)
        lower = torch.tril(torch.ones(13, 13, dtype=torch.bool))
        assert torch.isnan(flow.matrix[~lower]).all()
        assert torch.allclose(flow.matrix[lower], ref[lower], rtol=rtol, atol=0)
    # the two regimes really differ: one shrinks going back, the other grows
    assert (flow.factor < 1) == (scale_hh < 1)


def test_tiny_gradients_do_not_underflow_in_float32():
    net = RNN(V, 64, "cpu", seed=0)  # untrained: ~0.1x per step back, below 1e-38 after 40 steps
    idx = torch.randint(0, V, (80,), generator=torch.Generator().manual_seed(0))
    flow = gradient_flow(net, idx)
    assert (flow.curve > 0).all() and float(flow.curve[-1]) < 1e-40
    assert flow.factor < 0.5


def test_curve_is_the_mean_by_distance_and_the_bound_holds():
    net = model(1.5)
    idx = torch.randint(0, V, (20,), generator=torch.Generator().manual_seed(2))
    flow = gradient_flow(net, idx, dtype=torch.float64)
    G = flow.matrix.numpy()
    for d in (0, 3, 18):
        assert flow.curve[d].item() == pytest.approx(np.mean([G[t, t - d] for t in range(d, 19)]), rel=1e-12)
    spec = spectrum(net)
    per_step = spec.sigma_max * flow.max_tanh_prime
    assert flow.max_step_factor <= per_step * (1 + 1e-9)
    assert (flow.curve <= flow.bound(per_step) * (1 + 1e-9)).all()
    ratios = G[:, :-1] / G[:, 1:]  # G[t, s-1] / G[t, s]
    assert flow.max_step_factor == pytest.approx(np.nanmax(ratios), rel=1e-12)


def test_fitted_factor_of_a_geometric_curve():
    curve = torch.tensor([2.0 * 0.3 ** d for d in range(12)], dtype=torch.float64)
    assert fitted_factor(curve) == pytest.approx(0.3, rel=1e-9)
    assert math.isnan(fitted_factor(torch.tensor([1.0])))


def test_decay_curve_of_a_minibatch_is_the_mean_over_its_rows():
    net = model(1.0)
    X = torch.randint(0, V, (5, 9), generator=torch.Generator().manual_seed(3))
    state = torch.randn(5, h, generator=torch.Generator().manual_seed(4)) * 0.5
    curve = decay_curve(net, X, state=state, max_rows=None)
    assert curve.shape == (8,)  # 9 tokens: 8 predictions
    per_row = torch.stack([autograd_matrix(net, X[b], state[b]) for b in range(5)])
    assert torch.allclose(curve.double(), by_distance(per_row), rtol=1e-5)
    # with explicit targets every column is scored; max_rows keeps the first rows
    Y = torch.randint(0, V, (5, 9), generator=torch.Generator().manual_seed(5))
    assert decay_curve(net, X, Y).shape == (9,)
    first_two = decay_curve(net, X, state=state, max_rows=2)
    assert torch.allclose(first_two.double(), by_distance(per_row[:2]), rtol=1e-5)


@pytest.mark.parametrize("cls", [RNN, TorchRNN, FastRNN])
def test_every_engine_gives_the_same_flow(cls):
    idx = torch.randint(0, V, (10,), generator=torch.Generator().manual_seed(6))
    base = gradient_flow(model(), idx).matrix
    assert torch.allclose(gradient_flow(model(cls=cls), idx).matrix, base, rtol=1e-5, equal_nan=True)


def test_spectrum_against_numpy_and_a_planted_matrix():
    net = model(1.0)
    W = formula_params(net)["W_hh"].double().numpy()
    spec = spectrum(net, k=4)
    assert spec.radius == pytest.approx(np.abs(np.linalg.eigvals(W)).max(), rel=1e-5)  # float32 eigenvalues
    assert spec.singular.tolist() == pytest.approx(np.linalg.svd(W, compute_uv=False)[:4].tolist(), rel=1e-9)
    assert spec.sigma_max == pytest.approx(np.linalg.norm(W, 2), rel=1e-9)
    with torch.no_grad():
        net.params[1].copy_(torch.tensor([[0.0, 2.0], [0.125, 0.0]]).repeat_interleave(8, 0).repeat_interleave(8, 1) / 8)
    # a block matrix [[0, 2], [1/8, 0]] ⊗ ones(8, 8)/8: eigenvalues ±sqrt(2 · 1/8) = ±0.5, norm 2
    spec = spectrum(net)
    assert spec.radius == pytest.approx(0.5, rel=1e-5) and spec.sigma_max == pytest.approx(2.0, rel=1e-9)

"""The scratch RNN: the lesson's shapes, its fixed defects, and equivalence with torch.nn.RNN."""
import pytest
import torch
from torch.nn import functional as F

import rnn_core
from rnn_core.inside import float_params, hidden_states
from rnn_core.inspection import inspect_sequence
from rnn_core.model import (RNN, TorchRNN, init_rnn_state, lesson_shape_checks, resolve_device, rnn_output, rnn_step,
                            shape_trace)
from rnn_core.vocab import Vocab


def test_one_hot_of_transpose_puts_time_first():
    X = torch.arange(10).reshape((2, 5))
    assert F.one_hot(X.T, 28).shape == (5, 2, 28)


def test_lesson_shapes(time_machine):
    train_iter, vocab = rnn_core.load_data_time_machine(32, 35)
    X, _ = next(iter(train_iter))
    net = rnn_core.RNNModelScratch(len(vocab), 512, rnn_core.try_gpu(), rnn_core.get_params,
                                   rnn_core.init_rnn_state, rnn_core.rnn)
    state = net.begin_state(X.shape[0], rnn_core.try_gpu())
    Y, new_state = net(X.to(rnn_core.try_gpu()), state)
    assert Y.shape == (1120, 28)
    assert len(new_state) == 1 and new_state[0].shape == (32, 512)


def test_state_is_a_tuple_that_can_be_fed_back():
    state = init_rnn_state(3, 8, "cpu")
    assert isinstance(state, tuple) and state[0].shape == (3, 8)
    net = RNN(5, 8, "cpu", seed=0)
    X = torch.randint(0, 5, (3, 4))
    out1, state1 = net(X, state)
    out2, state2 = net(X, state1)  # the lesson's bare-tensor state could not do this
    assert out2.shape == (12, 5) and isinstance(state2, tuple)
    assert not torch.equal(out1, out2)


def test_params_shapes_init_and_seed():
    W_xh, W_hh, b_h, W_hq, b_q = RNN(28, 64, "cpu", seed=0).params
    assert (W_xh.shape, W_hh.shape, b_h.shape, W_hq.shape, b_q.shape) == ((28, 64), (64, 64), (64,), (64, 28), (28,))
    assert torch.all(b_h == 0) and torch.all(b_q == 0)
    big = RNN(28, 512, "cpu", seed=0).params[1]
    assert abs(big.std().item() - 0.01) < 5e-4  # N(0, 0.01^2)
    assert torch.equal(RNN(28, 64, "cpu", seed=3).params[0], RNN(28, 64, "cpu", seed=3).params[0])


def test_device_defaults_to_what_exists():
    assert rnn_core.default_device().type in {"cpu", "cuda", "mps"}
    assert resolve_device("auto") == rnn_core.default_device()
    assert RNN(4, 4).device == rnn_core.default_device()
    with pytest.raises(rnn_core.DeviceError, match="Unknown device"):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(rnn_core.DeviceError, match="no CUDA GPU"):
            resolve_device("cuda")


def test_bias_b_h_is_in_the_recurrence():
    net = RNN(4, 3, "cpu", seed=0)
    X = torch.tensor([[1]])
    H0 = torch.zeros(1, 3)
    W_xh, W_hh, b_h, W_hq, b_q = net.params
    with torch.no_grad():
        b_h.fill_(0.5)
        _, (H,) = net(X, (H0,))
        expected = torch.tanh(W_xh[1] + b_h)  # one-hot row of W_xh, plus b_h
    assert torch.allclose(H[0], expected)


def trained_looking(V=12, h=16, seed=0):
    """A model whose weights and biases are all of order 1, so every term of the step counts."""
    net = RNN(V, h, "cpu", seed=seed)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in net.params:
            p.copy_(torch.randn(p.shape, generator=g) * 0.5)
    return net


@pytest.mark.parametrize("activation", ["tanh", "relu"])
def test_the_step_function_is_the_formula(activation):
    W_xh, W_hh, b_h, W_hq, b_q = (p.detach().double() for p in trained_looking().params)
    g = torch.Generator().manual_seed(1)
    x = torch.randint(0, 12, (5,), generator=g)
    H = torch.randn(5, 16, generator=g, dtype=torch.float64)
    X_t = F.one_hot(x, 12).double()
    phi = {"tanh": torch.tanh, "relu": torch.relu}[activation]
    expected = phi(torch.stack([W_xh[x[b]] + H[b] @ W_hh + b_h for b in range(5)]))  # one batch row at a time
    assert torch.allclose(rnn_step(X_t, H, W_xh, W_hh, b_h, activation), expected, rtol=1e-12, atol=1e-12)
    # token ids read the rows of W_xh: the same bits as the one-hot product
    assert torch.equal(rnn_step(x, H, W_xh, W_hh, b_h, activation), rnn_step(X_t, H, W_xh, W_hh, b_h, activation))
    assert torch.allclose(rnn_output(H, W_hq, b_q), H @ W_hq + b_q[None])


def test_the_lesson_model_is_the_step_function_over_time():
    net = trained_looking()
    X = torch.randint(0, 12, (3, 7), generator=torch.Generator().manual_seed(2))
    H0 = torch.randn(3, 16, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        out, (H_T,) = net(X, (H0,))
        W_xh, W_hh, b_h, W_hq, b_q = net.params
        H, outputs = H0, []
        for t in range(7):
            H = rnn_step(X[:, t], H, W_xh, W_hh, b_h)
            outputs.append(rnn_output(H, W_hq, b_q))
    assert torch.equal(out, torch.cat(outputs)) and torch.equal(H_T, H)


def test_the_inside_views_step_like_the_lesson_model_to_the_bit():
    net = trained_looking()
    vocab = Vocab(list("abcdefghijk"))
    tokens = list("abcabcddkjihgf")
    X = torch.tensor(vocab[tokens])[None]
    with torch.no_grad():
        out, _ = net(X[:, :-1], net.begin_state(1))
    states = hidden_states(float_params(net), X[:, :-1])[0]  # (steps, h)
    ins = inspect_sequence(net, vocab, tokens)
    assert torch.equal(ins.hidden, states)
    assert torch.equal(ins.probs, torch.softmax(out, dim=1))
    for t in range(1, len(tokens)):  # each prefix's last state is the lesson model's new state
        with torch.no_grad():
            _, (H,) = net(X[:, :t], net.begin_state(1))
        assert torch.equal(states[t - 1], H[0])


def test_scratch_and_nn_rnn_agree():
    V, h, batch, steps = 28, 64, 8, 12
    scratch = RNN(V, h, "cpu", seed=1)
    twin = TorchRNN(V, h, "cpu")
    twin.load_scratch(scratch.params)
    g = torch.Generator().manual_seed(0)
    X = torch.randint(0, V, (batch, steps), generator=g)
    y = torch.randint(0, V, (batch, steps), generator=g).T.reshape(-1)
    H0 = torch.randn(batch, h, generator=g) * 0.1
    out_s, (H_s,) = scratch(X, (H0,))
    out_t, (H_t,) = twin(X, (H0,))
    assert torch.allclose(out_s, out_t, atol=1e-5)
    assert torch.allclose(H_s, H_t, atol=1e-5)
    loss_s, loss_t = F.cross_entropy(out_s, y), F.cross_entropy(out_t, y)
    assert abs(loss_s.item() - loss_t.item()) < 1e-5
    loss_s.backward()
    loss_t.backward()
    W_xh, W_hh, b_h, W_hq, b_q = scratch.params
    assert torch.allclose(W_xh.grad, twin.rnn.weight_ih_l0.grad.T, atol=1e-5)
    assert torch.allclose(W_hh.grad, twin.rnn.weight_hh_l0.grad.T, atol=1e-5)
    assert torch.allclose(b_h.grad, twin.rnn.bias_ih_l0.grad, atol=1e-5)
    assert torch.allclose(b_h.grad, twin.rnn.bias_hh_l0.grad, atol=1e-5)
    assert torch.allclose(W_hq.grad, twin.linear.weight.grad.T, atol=1e-5)
    assert torch.allclose(b_q.grad, twin.linear.bias.grad, atol=1e-5)


def test_same_seed_same_init_across_engines():
    scratch, twin = RNN(10, 16, "cpu", seed=5), TorchRNN(10, 16, "cpu", seed=5)
    assert torch.equal(scratch.params[1].detach(), twin.scratch_state_dict()["W_hh"])


def test_shape_trace_follows_the_sliders():
    trace = shape_trace(28, 32, 35, 512, "cpu", max_steps_listed=2)
    shapes = dict(zip(trace["name"], trace["shape"]))
    assert shapes["X"] == (32, 35) and shapes["X.T"] == (35, 32)
    assert shapes["one_hot(X.T)"] == (35, 32, 28)
    assert shapes["X_t W_xh"] == (32, 512) and shapes["O_t"] == (32, 28)
    assert shapes["outputs"] == (1120, 28) and shapes["H"] == (32, 512) and shapes["loss"] == ()
    assert set(trace.columns) == {"step", "name", "formula", "shape", "dtype", "device"}
    assert set(trace["step"].dropna()) == {0, 1}
    checks = lesson_shape_checks(trace, 28, 32, 35, 512)
    assert checks["passed"].all()
    small = shape_trace(28, 4, 5, 16, "cpu")
    assert dict(zip(small["name"], small["shape"]))["outputs"] == (20, 28)
    assert not lesson_shape_checks(small, 28, 32, 35, 512)["passed"].any()


@pytest.mark.parametrize("n,d,h", [(3, 1, 4), (32, 28, 512)])
def test_concat_identity(n, d, h):
    ident = rnn_core.concat_identity(n, d, h, seed=0)
    assert ident.XH.shape == (n, d + h) and ident.W.shape == (d + h, h)
    assert ident.separate.shape == ident.concatenated.shape == (n, h)
    assert ident.max_abs_diff < 1e-3 * max(1.0, ident.separate.abs().max().item())
    # the sums run in a different order: equal up to float32 rounding
    assert torch.allclose(ident.separate, ident.concatenated, rtol=1e-5, atol=1e-4)
    exact = rnn_core.concat_identity(n, d, h, seed=0, dtype=torch.float64)
    assert exact.max_abs_diff < 1e-9

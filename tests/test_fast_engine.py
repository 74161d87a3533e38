"""The fast engine computes the lesson's model: same loss, same gradients, same training curve."""
import math
import os
import shutil
import threading

import pytest
import torch
from torch.nn import functional as F

from rnn_core import fast as fast_engine
from rnn_core.checkpoint import load_checkpoint, save_checkpoint
from rnn_core.data import load_data
from rnn_core.engines import DEFAULT_ENGINE, ENGINES, make_model
from rnn_core.fast import CudaGraphStep, FastRNN, KernelBuild
from rnn_core.model import formula_params
from rnn_core.model import PARAM_NAMES, RNN, rnn_forward
from rnn_core.training import DivergenceError, Trainer, predict

V = 28


def twins(num_hiddens=64, seed=0):
    """The reference, rnn_core's lesson model (``model.rnn_forward``: ``model.rnn_step`` over time, autograd for
    the gradients), and a fast model holding the same parameters, large enough for large gradients.

    W_hh has spectral radius about 0.8: a chaotic recurrence (radius > 1) would amplify float rounding
    over 35 steps, and any two correct implementations would then differ.
    """
    lesson = make_model("lesson", V, num_hiddens, "cpu", seed=seed)
    assert isinstance(lesson, RNN) and lesson.forward_fn is rnn_forward
    fast = make_model("fast", V, num_hiddens, "cpu", seed=seed)
    g = torch.Generator().manual_seed(seed + 1)
    scales = (0.5, 0.8 / num_hiddens ** 0.5, 0.1, 0.3, 0.1)  # W_xh, W_hh, b_h, W_hq, b_q
    with torch.no_grad():
        for p, q, scale in zip(lesson.params, fast.params, scales):
            r = torch.randn(p.shape, generator=g) * scale
            p.copy_(r)
            q.copy_(r)
    return lesson, fast


def loss_and_grads(net, X, Y, H0, state_weight=0.0):
    """Cross-entropy of one minibatch from state H0 (plus a term on the new state); loss, grads, dH0."""
    H0 = H0.clone().requires_grad_(True)
    y_hat, (H,) = net(X, (H0,))
    loss = F.cross_entropy(y_hat, Y.T.reshape(-1)) + state_weight * (H ** 2).sum()
    loss.backward()
    grads = [p.grad.clone() for p in net.params]
    for p in net.params:
        p.grad = None
    return loss.detach(), grads, H0.grad, y_hat.detach(), H.detach()


@pytest.fixture(scope="module")
def kernels():
    """The C++ kernels, built once (the first build takes ~30 s; later runs load torch's cached module).

    Skipped where they cannot be built: no C++ compiler or no ninja. With both present a failed build is a
    failure, with the compiler's message.
    """
    if os.environ.get("RNN_LAB_NO_EXT") == "1":
        pytest.skip("RNN_LAB_NO_EXT=1 turns the C++ kernels off")
    from torch.utils.cpp_extension import is_ninja_available
    compiler = os.environ.get("CXX", "c++")
    if shutil.which(compiler) is None or not is_ninja_available():
        missing = "ninja" if shutil.which(compiler) else compiler
        pytest.skip(f"the C++ kernels cannot be built here: no {missing}")
    module = fast_engine.kernels(block=True)
    assert module is not None, fast_engine.kernel_status()
    return module


@pytest.fixture(params=["python", "cpp"])
def path(request, monkeypatch):
    """Run the test on the fast engine's Python path, then on its C++ kernels (CPU)."""
    if request.param == "python":
        monkeypatch.setenv("RNN_LAB_NO_EXT", "1")
    else:
        request.getfixturevalue("kernels")
    return request.param


@pytest.mark.parametrize("batch", [8, 5])
def test_nan_propagates_like_the_lesson(path, batch):
    """A NaN reaches the same outputs and states as in the lesson, never clamped to a finite value."""
    lesson, fast = twins(num_hiddens=16)
    X = torch.randint(0, V, (batch, 5), generator=torch.Generator().manual_seed(0))
    H0 = torch.zeros(batch, 16)
    H0[2, 3] = float("nan")
    with torch.no_grad():
        out_a, (H_a,) = lesson(X, (H0,))
        out_b, (H_b,) = fast(X, (H0,))
    assert out_b.isnan().any() and torch.equal(out_a.isnan(), out_b.isnan())
    assert torch.equal(H_a.isnan(), H_b.isnan())


def test_a_blown_up_run_stops(time_machine, path):
    """lr 1000 with theta 1000 blows up in the first epoch (lesson and both paths, seeds 0-7): it must stop.

    (At lr 100 the epoch in which the loss passes 700 nats depends on float rounding: the run is chaotic,
    and any two implementations, the lesson's included, differ there for some seeds.)
    """
    loader, vocab = load_data("time_machine", 32, 35, seed=0)
    net = make_model("fast", len(vocab), 16, "cpu", seed=0)
    trainer = Trainer(net, loader, vocab, lr=1000.0, theta=1000.0, sample_every=0)
    with pytest.raises(DivergenceError):
        for _ in trainer.epochs(3):
            pass


def test_registered_as_default():
    assert ENGINES["fast"] is FastRNN and DEFAULT_ENGINE == "fast"
    net = make_model("fast", V, 16, "cpu", seed=0)
    assert net.engine == "fast" and net.vocab_size == V and net.num_hiddens == 16
    assert net.device == torch.device("cpu") and net.train_step is None  # CPU: the Trainer runs the step


def test_same_params_layout_and_init_as_lesson():
    lesson, fast = make_model("lesson", V, 32, "cpu", seed=3), make_model("fast", V, 32, "cpu", seed=3)
    for p, q in zip(lesson.params, fast.params):
        assert p.shape == q.shape and q.is_leaf and q.requires_grad
        assert torch.equal(p, q)
    assert list(formula_params(fast)) == list(PARAM_NAMES)


@pytest.mark.parametrize("num_hiddens, state_weight", [(64, 0.0), (64, 0.1), (512, 0.0)])
def test_loss_and_gradients_equal_autograd_on_lesson(num_hiddens, state_weight, path):
    lesson, fast = twins(num_hiddens)
    g = torch.Generator().manual_seed(7)
    batch, steps = 5, 35
    X1, Y1, X2, Y2 = (torch.randint(0, V, (batch, steps), generator=g) for _ in range(4))
    zero, = lesson.begin_state(batch)
    # First minibatch from the zero state; the second from the state it carried (detached, as in training).
    *_, H_lesson = loss_and_grads(lesson, X1, Y1, zero)
    *_, H_fast = loss_and_grads(fast, X1, Y1, zero)
    assert torch.allclose(H_lesson, H_fast, rtol=0, atol=1e-5)
    loss_a, grads_a, dH0_a, out_a, Hn_a = loss_and_grads(lesson, X2, Y2, H_lesson, state_weight)
    loss_b, grads_b, dH0_b, out_b, Hn_b = loss_and_grads(fast, X2, Y2, H_lesson, state_weight)
    assert abs(loss_a.item() - loss_b.item()) < 1e-5
    assert torch.allclose(out_a, out_b, atol=1e-5) and torch.allclose(Hn_a, Hn_b, atol=1e-5)
    for name, ga, gb in zip(PARAM_NAMES, grads_a, grads_b):
        assert ga.abs().max() > 1e-4, name  # the comparison means something
        assert torch.allclose(ga, gb, rtol=0, atol=1e-5), (name, (ga - gb).abs().max().item())
    assert torch.allclose(dH0_a, dH0_b, rtol=0, atol=1e-5)


def test_repeated_tokens_accumulate_in_W_xh_gradient(path):
    lesson, fast = twins(num_hiddens=16)
    X = torch.full((3, 6), 4)  # one token everywhere: its row of W_xh gets every step's gradient
    Y = torch.randint(0, V, (3, 6), generator=torch.Generator().manual_seed(0))
    zero, = lesson.begin_state(3)
    _, grads_a, *_ = loss_and_grads(lesson, X, Y, zero)
    _, grads_b, *_ = loss_and_grads(fast, X, Y, zero)
    assert torch.allclose(grads_a[0], grads_b[0], atol=1e-6)
    assert grads_b[0][5].abs().max() == 0


def test_one_step_and_no_grad_forward(path):
    lesson, fast = twins(num_hiddens=16)
    X = torch.randint(0, V, (1, 1))
    with torch.no_grad():
        out_a, (H_a,) = lesson(X, lesson.begin_state(1))
        out_b, (H_b,) = fast(X, fast.begin_state(1))
    assert out_b.shape == (1, V) and H_b.shape == (1, 16)
    assert torch.allclose(out_a, out_b, atol=1e-6) and torch.allclose(H_a, H_b, atol=1e-6)


def train(engine, epochs, num_hiddens=64, batch_size=32, use_random_iter=False, seed=0):
    loader, vocab = load_data("time_machine", batch_size, 35, use_random_iter=use_random_iter, seed=seed)
    net = make_model(engine, len(vocab), num_hiddens, "cpu", seed=seed)
    trainer = Trainer(net, loader, vocab, lr=1.0, theta=1.0, sample_every=0)
    for _ in trainer.epochs(epochs):
        pass
    return trainer, net, vocab


def test_twenty_epochs_end_at_the_same_perplexity(time_machine, path):
    lesson, net_a, vocab = train("lesson", 20)
    fast, net_b, _ = train("fast", 20)
    ppl_a, ppl_b = lesson.history[-1].perplexity, fast.history[-1].perplexity
    assert ppl_a < 0.8 * V  # it learned something
    assert abs(ppl_b - ppl_a) / ppl_a < 0.01, (ppl_a, ppl_b)
    for a, b in zip(lesson.history, fast.history):
        assert math.isclose(a.loss, b.loss, rel_tol=1e-3)
        assert math.isclose(a.clip_fraction, b.clip_fraction)
    assert predict("time traveller", 20, net_b, vocab).startswith("time traveller")


def test_random_partitioning_trains_the_same(time_machine):
    lesson, *_ = train("lesson", 2, num_hiddens=32, use_random_iter=True)
    fast, *_ = train("fast", 2, num_hiddens=32, use_random_iter=True)
    assert math.isclose(lesson.history[-1].loss, fast.history[-1].loss, rel_tol=1e-4)


def test_whole_step_hook_gives_the_same_training():
    """The Trainer's whole-step path (the CUDA graph's body, run eagerly here) equals its own loop."""
    loop, _, _ = train_builtin(None)
    hooked, _, _ = train_builtin("eager")
    for a, b in zip(loop.history, hooked.history):
        assert math.isclose(a.loss, b.loss, rel_tol=1e-6) and math.isclose(a.grad_norm, b.grad_norm, rel_tol=1e-5)


def train_builtin(step, epochs=2):
    loader, vocab = load_data("counting", 8, 10, seed=0)
    net = make_model("fast", len(vocab), 32, "cpu", seed=0)
    if step == "eager":
        net.train_step = CudaGraphStep(net)
        net.train_step.eager = True
    trainer = Trainer(net, loader, vocab, lr=1.0, theta=1.0, sample_every=0)
    for _ in trainer.epochs(epochs):
        pass
    return trainer, net, vocab


def test_checkpoint_round_trip_between_engines(tmp_path):
    trainer, net, vocab = train_builtin(None, epochs=1)
    path = save_checkpoint(tmp_path / "fast.pt", net, vocab)
    lesson, _, _ = load_checkpoint(path, engine="lesson")
    fast, _, _ = load_checkpoint(path, engine="fast")
    X = torch.randint(0, len(vocab), (2, 5))
    with torch.no_grad():
        out_a, _ = lesson(X, lesson.begin_state(2))
        out_b, _ = fast(X, fast.begin_state(2))
    assert torch.allclose(out_a, out_b, atol=1e-5)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU: the CUDA-graph training step is not run")
def test_cuda_graph_step_equals_eager_loop():
    device = torch.device("cuda")
    loader, vocab = load_data("counting", 32, 35, seed=0)
    results = []
    for graphed in (False, True):
        loader.rng.seed(0)
        net = make_model("fast", len(vocab), 128, device, seed=0)
        assert isinstance(net.train_step, CudaGraphStep)
        if not graphed:
            net.train_step = None  # the Trainer's own eager loop
        trainer = Trainer(net, loader, vocab, sample_every=0)
        for _ in trainer.epochs(3):
            pass
        results.append((trainer.history, [p.detach().cpu() for p in net.params]))
    assert not net.train_step.eager and len(net.train_step.graphs) == 1  # captured once, replayed
    (hist_a, params_a), (hist_b, params_b) = results
    for a, b in zip(hist_a, hist_b):
        assert math.isclose(a.loss, b.loss, rel_tol=1e-4)
    for p, q in zip(params_a, params_b):
        assert torch.allclose(p, q, atol=1e-4)


def test_backward_through_two_pending_minibatches(path):
    """Two forwards before one backward (state not detached): reused buffers must not clobber the first."""
    lesson, fast = twins(num_hiddens=32)
    g = torch.Generator().manual_seed(3)
    X1, Y1, X2, Y2 = (torch.randint(0, V, (4, 9), generator=g) for _ in range(4))
    for net in (fast, fast, lesson):  # fast twice: the second run reuses pooled buffers
        y1, state = net(X1, net.begin_state(4))
        y2, _ = net(X2, state)
        loss = F.cross_entropy(y1, Y1.T.reshape(-1)) + F.cross_entropy(y2, Y2.T.reshape(-1))
        loss.backward()
        net.grads = [p.grad.clone() for p in net.params]
        for p in net.params:
            p.grad = None
    for ga, gb in zip(lesson.grads, fast.grads):
        assert torch.allclose(ga, gb, rtol=0, atol=1e-5)


def test_second_backward_through_the_same_pass_is_refused(path):
    _, fast = twins(num_hiddens=8)
    X = torch.randint(0, V, (2, 3))
    y_hat, _ = fast(X, fast.begin_state(2))
    y_hat.sum().backward(retain_graph=True)
    with pytest.raises(RuntimeError, match="once per forward"):
        y_hat.sum().backward()


def test_gradient_through_the_new_state_alone(path):
    lesson, fast = twins(num_hiddens=16)
    X = torch.randint(0, V, (3, 5), generator=torch.Generator().manual_seed(1))
    for net in (lesson, fast):
        _, (H,) = net(X, net.begin_state(3))
        (H ** 2).sum().backward()
        net.grads = [torch.zeros_like(p) if p.grad is None else p.grad.clone() for p in net.params]
    for ga, gb in zip(lesson.grads, fast.grads):
        assert torch.allclose(ga, gb, rtol=0, atol=1e-6)


# ---------------------------------------------------------------- the C++ kernels (CPU)

def lesson_python_and_cpp(num_hiddens, batch, steps, threads, seed=0):
    """Loss, outputs, new state, dH0 and all gradients of one minibatch from a non-zero state: by the lesson
    model (the reference), by the fast engine's Python path and by its C++ kernels.

    The loss has a term on the new state, so a gradient flows into it too; scaled by the state's size so
    the loss stays ~10 (float32 holds a loss of ~400 to only ~3e-5).
    """
    state_weight = 10 / (batch * num_hiddens)
    lesson, net = twins(num_hiddens, seed)
    g = torch.Generator().manual_seed(seed + 2)
    X, Y = (torch.randint(0, V, (batch, steps), generator=g) for _ in range(2))
    H0 = torch.randn((batch, num_hiddens), generator=g).tanh()
    results = []
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        for model, use_kernels in ((lesson, None), (net, False), (net, True)):
            if use_kernels is not None:
                model.use_kernels = use_kernels
            loss, grads, dH0, out, H = loss_and_grads(model, X, Y, H0, state_weight)
            results.append({"loss": loss, "out": out, "H": H, "dH0": dH0, **dict(zip(PARAM_NAMES, grads))})
    finally:
        torch.set_num_threads(before)
    return results


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("num_hiddens, batch, steps", [
    (512, 32, 35),  # the lesson's size: 16-column tiles, 512 = 85 blocks of 6 rows + 2
    (100, 24, 9),   # a tile of 8 columns after one of 16; 100 = 16 blocks of 6 + 4
    (64, 5, 35),    # batch not a multiple of 8: the same loop in C++ with ATen matmuls
    (16, 8, 1),     # one step
])
def test_cpp_kernels_equal_python_path_and_lesson(kernels, num_hiddens, batch, steps, threads):
    lesson, python, cpp = lesson_python_and_cpp(num_hiddens, batch, steps, threads)
    for first, second in ((lesson, python), (lesson, cpp), (python, cpp)):
        assert abs(first["loss"].item() - second["loss"].item()) < 1e-5
        assert torch.allclose(first["out"], second["out"], atol=1e-5)
        for name in ("H", "dH0", *PARAM_NAMES):  # the new state, the gradient reaching H0 and every gradient
            a, b = first[name], second[name]
            assert a.abs().max() > 1e-4, name  # the comparison means something
            assert torch.allclose(a, b, rtol=0, atol=1e-5), (name, (a - b).abs().max().item())


@pytest.mark.parametrize("num_hiddens, batch, steps", [
    (64, 24, 35),   # 3 groups of 8 columns: 2 threads take 8 and 16, 3 threads 8 each
    (100, 40, 9),   # 5 groups: 2 threads take 16 and 24, 3 threads 8, 16 and 16
    (512, 32, 35),  # the lesson's size: 4 groups, 3 threads take 8, 8 and 16
    (16, 8, 5),     # 1 group: one thread works, whatever the count
])
def test_threads_split_the_batch_alike(kernels, num_hiddens, batch, steps):
    """The C++ kernels split the batch over the threads (each thread runs its own sequences through every
    step): 1, 2 and 3 threads give the lesson's loss, state and gradients, and each other's."""
    by_threads = {n: lesson_python_and_cpp(num_hiddens, batch, steps, n) for n in (1, 2, 3)}
    for n, (lesson, _, cpp) in by_threads.items():
        one = by_threads[1][2]
        assert abs(lesson["loss"].item() - cpp["loss"].item()) < 1e-5, n
        assert abs(one["loss"].item() - cpp["loss"].item()) < 1e-6, n
        assert torch.allclose(lesson["out"], cpp["out"], atol=1e-5), n
        for name in ("H", "dH0", *PARAM_NAMES):
            assert cpp[name].abs().max() > 1e-4, name  # the comparison means something
            assert torch.allclose(lesson[name], cpp[name], rtol=0, atol=1e-5), (n, name)
            assert torch.allclose(one[name], cpp[name], rtol=0, atol=1e-6), (n, name)


@pytest.fixture
def fresh_kernels(monkeypatch):
    """The kernels' build as in a new process (the process's own is put back afterwards)."""
    previous = fast_engine.reset_kernels()
    monkeypatch.delenv("RNN_LAB_NO_EXT", raising=False)
    yield monkeypatch
    fast_engine.reset_kernels(previous)


def test_failed_build_warns_once_and_runs_the_python_path(fresh_kernels, tmp_path):
    fresh_kernels.setenv("TORCH_EXTENSIONS_DIR", str(tmp_path))  # nothing cached there
    fresh_kernels.setenv("CXX", str(tmp_path / "no-such-compiler"))
    with pytest.warns(RuntimeWarning, match="could not be built"):
        assert fast_engine.kernels(block=True) is None
    assert fast_engine.kernels(block=True) is None  # no second try
    assert "not available" in fast_engine.kernel_status()
    lesson, fast_net = twins(16)
    X = torch.randint(0, V, (3, 5), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        out_a, _ = lesson(X, lesson.begin_state(3))
        out_b, _ = fast_net(X, fast_net.begin_state(3))
    assert torch.allclose(out_a, out_b, atol=1e-6)


def test_background_build_never_blocks(fresh_kernels):
    release = threading.Event()

    def slow_compile(announce=None):  # stands in for the compiler
        release.wait(10)
        return "built"

    fast_engine.reset_kernels(KernelBuild(compile=slow_compile))
    # a call that waited for the build would get "built" (the build ends only when released, at most 10 s)
    assert fast_engine.kernels(block=False) is None  # the build started in the background
    assert fast_engine.kernels(block=False) is None  # still running: not a second one
    release.set()
    assert fast_engine.kernels(block=True) == "built"  # waits for the build in progress
    assert fast_engine.kernel_status() == "C++ kernels in use"


def test_no_ext_turns_the_kernels_off(fresh_kernels):
    fresh_kernels.setenv("RNN_LAB_NO_EXT", "1")
    fast_engine.reset_kernels(KernelBuild(compile=lambda announce=None: pytest.fail("built despite the switch")))
    assert fast_engine.kernels(block=True) is None and "RNN_LAB_NO_EXT" in fast_engine.kernel_status()

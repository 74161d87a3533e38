"""The lesson's exercises as switches (rnn_core.variants): ReLU, a learnable embedding and training without
detach match autograd on the lesson's model; an identity embedding is one-hot; P^alpha sums to 1 and tends
to greedy; an A/B pair differing in nothing trains identically; step mode is one step of the trainer."""
import json
import math

import pytest
import torch
from torch.nn import functional as F

import rnn_core
import rnn_core.train
from rnn_core.checkpoint import checkpoint_payload, load_checkpoint, payload_bytes, read_checkpoint
from rnn_core.engines import engine_for, make_model
from rnn_core.model import RNN, TorchRNN, formula_params
from rnn_core.runs import Run, RunSettings
from rnn_core.training import Trainer, generate, next_distribution, parse_predict, sharpen
from rnn_core.variants import heldout_tokens

V, H, B, T = 12, 16, 4, 7
SMALL = RunSettings(corpus="counting", batch=8, steps=10, hidden=16, epochs=3, engine="fast", device="cpu",
                    prefix="a", seed=3)


@pytest.fixture(scope="module")
def counting():
    # The fast engine's C++ kernels settled first (built, loaded, or not available): a run that starts on the
    # Python path and finds the kernels ready halfway differs from one that had them all along in the last bits.
    rnn_core.fast.kernels(block=True)
    return rnn_core.tokenize_corpus(rnn_core.builtin_corpus("counting", seed=0, n_chars=3000), "char")


def tokens(seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, V, (B, T), generator=g), torch.randint(0, V, (B, T), generator=g)


def loss_and_grads(net, X, Y, H0=None):
    """Outputs, new state, loss and d loss / d (each formula parameter) of one forward and backward."""
    for p in net.params:
        p.grad = None
    state = (H0.clone(),) if H0 is not None else net.begin_state(B)
    out, (Hn,) = net(X, state)
    loss = F.cross_entropy(out, Y.T.reshape(-1)) + Hn.square().sum() * 0.1  # the state's gradient counts too
    loss.backward()
    if isinstance(net, TorchRNN):
        grads = {"W_xh": net.rnn.weight_ih_l0.grad.T, "W_hh": net.rnn.weight_hh_l0.grad.T,
                 "b_h": net.rnn.bias_ih_l0.grad, "W_hq": net.linear.weight.grad.T, "b_q": net.linear.bias.grad}
    else:
        grads = dict(zip(rnn_core.model.ALL_PARAM_NAMES, (p.grad for p in net.params)))
    return out.detach(), Hn.detach(), loss.detach(), grads


def assert_close(a, b, tol=1e-5):
    assert torch.allclose(a, b, atol=tol, rtol=0), float((a - b).abs().max())


# ---------------------------------------------------------------- ReLU

@pytest.mark.parametrize("engine", ["fast", "torch"])
def test_relu_forward_and_backward_match_autograd_on_the_lesson_model(engine):
    lesson = RNN(V, H, "cpu", seed=1, activation="relu")
    other = make_model(engine, V, H, "cpu", seed=1, activation="relu")
    assert other.engine == engine and other.activation == "relu"
    with torch.no_grad():  # larger weights, so many units are cut at 0 (the test would pass on tanh otherwise)
        for p in lesson.params:
            p.mul_(30)
        other.load_formula_params(formula_params(lesson))
    X, Y = tokens()
    H0 = torch.randn(B, H)
    o1, h1, l1, g1 = loss_and_grads(lesson, X, Y, H0)
    o2, h2, l2, g2 = loss_and_grads(other, X, Y, H0)
    assert 0.1 < float((h1 == 0).float().mean()) < 0.9  # ReLU is active and cutting
    assert_close(o1, o2), assert_close(h1, h2), assert_close(l1, l2)
    for k in rnn_core.model.PARAM_NAMES:
        assert_close(g1[k], g2[k])
    # and it is not tanh
    tanh = RNN(V, H, "cpu", seed=1)
    tanh.load_formula_params(formula_params(lesson))
    assert not torch.allclose(tanh(X, (H0,))[0], o1, atol=1e-3)


# ---------------------------------------------------------------- embedding

def test_identity_embedding_equals_one_hot_exactly():
    onehot = RNN(V, H, "cpu", seed=2)
    embedded = RNN(V, H, "cpu", seed=2, input="embedding", embed_init="identity")
    assert torch.equal(embedded.params[5], torch.eye(V))
    for a, b in zip(onehot.params, embedded.params):  # same seed: the same five parameters
        assert torch.equal(a, b)
    X, Y = tokens()
    o1, h1, l1, g1 = loss_and_grads(onehot, X, Y)
    o2, h2, l2, g2 = loss_and_grads(embedded, X, Y)
    assert torch.equal(o1, o2) and torch.equal(h1, h2) and torch.equal(l1, l2)
    for k in rnn_core.model.PARAM_NAMES:
        assert torch.equal(g1[k], g2[k])


def test_learnable_embedding_matches_autograd_of_one_hot_with_E_W_xh():
    """X_t E W_xh is one-hot with W = E W_xh: outputs equal, dW_xh = E^T dW and dE = dW W_xh^T."""
    embedded = RNN(V, H, "cpu", seed=4, input="embedding", embed=5)
    W_xh, W_hh, b_h, W_hq, b_q, E = embedded.params
    assert E.shape == (V, 5) and W_xh.shape == (5, H)
    onehot = RNN(V, H, "cpu", seed=4)
    onehot.load_formula_params({**formula_params(embedded), "W_xh": (E @ W_xh).detach()})
    X, Y = tokens(1)
    o1, h1, l1, g1 = loss_and_grads(onehot, X, Y)
    o2, h2, l2, g2 = loss_and_grads(embedded, X, Y)
    assert_close(o1, o2), assert_close(h1, h2), assert_close(l1, l2)
    for k in ("W_hh", "b_h", "W_hq", "b_q"):
        assert_close(g1[k], g2[k])
    assert_close(E.detach().T @ g1["W_xh"], g2["W_xh"])
    assert_close(g1["W_xh"] @ W_xh.detach().T, g2["E"])


def test_engines_fall_back_to_the_lesson_engine_for_switches_they_lack(counting):
    assert engine_for("fast", activation="relu") == "fast"
    assert engine_for("fast", input="embedding") == "lesson"
    assert engine_for("torch", detach=False) == "lesson"
    assert make_model("fast", V, H, "cpu", input="embedding").engine == "lesson"
    with pytest.raises(ValueError):
        engine_for("fast", activation="sigmoid")
    run = Run.create(RunSettings(**{**SMALL.__dict__, "detach": False}), counting)
    assert run.settings.engine == "lesson" and run.trainer.net.engine == "lesson"
    with pytest.raises(ValueError, match="lesson engine"):
        Trainer(make_model("fast", V, H, "cpu"), run.trainer.loader, counting.vocab, detach=False)


def test_embedding_checkpoint_round_trip(counting):
    net = make_model("lesson", len(counting.vocab), 8, "cpu", seed=0, input="embedding", embed=6,
                     activation="relu")
    payload = checkpoint_payload(formula_params(net), counting.vocab, {"activation": "relu"})
    blob = payload_bytes(payload)
    params, vocab, config = read_checkpoint(blob)
    assert set(params) == {"W_xh", "W_hh", "b_h", "W_hq", "b_q", "E"} and params["E"].shape == (len(vocab), 6)
    loaded, _, _ = load_checkpoint(blob)
    assert loaded.input == "embedding" and loaded.activation == "relu"
    X = torch.randint(0, len(vocab), (2, 5))
    with torch.no_grad():
        assert torch.equal(loaded(X, loaded.begin_state(2))[0], net(X, net.begin_state(2))[0])


# ---------------------------------------------------------------- no detach

def test_no_detach_backpropagates_across_minibatches_as_autograd_does(counting):
    """Two minibatches of an epoch with clipping off: the second step's gradient reaches the first minibatch
    through the state, at the parameters the first ran with."""
    loader = rnn_core.make_loader(counting, 4, 6, seed=0)
    net = make_model("fast", len(counting.vocab), 8, "cpu", seed=5, detach=False)
    assert net.engine == "lesson"
    lr = 0.5
    p0 = [p.detach().clone() for p in net.params]
    trainer = Trainer(net, loader, counting.vocab, lr=lr, theta=None, sample_every=0, detach=False)
    first, second = trainer.step(), trainer.step()
    assert not first.attached or first.graph_batches == 1
    assert second.attached and second.graph_batches == 2
    (X1, Y1), (X2, Y2) = (first.X, first.Y), (second.X, second.Y)

    # the same two steps by autograd, parameters as leaves at each step
    a = [p.clone().requires_grad_() for p in p0]
    ref = RNN(len(counting.vocab), 8, "cpu")
    ref.params = a
    out1, H1 = ref(X1, ref.begin_state(4))
    F.cross_entropy(out1, Y1.T.reshape(-1)).backward(retain_graph=True)
    b = [(p - lr * p.grad).detach().requires_grad_() for p in a]
    for p in a:
        p.grad = None
    ref.params = b
    out2, _ = ref(X2, H1)  # H1 still attached to a
    F.cross_entropy(out2, Y2.T.reshape(-1)).backward()
    expected = [pb - lr * ((pa.grad if pa.grad is not None else 0) + pb.grad) for pa, pb in zip(a, b)]
    assert a[1].grad is not None and float(a[1].grad.abs().sum()) > 0  # W_hh at the first minibatch
    for got, want in zip(net.params, expected):
        assert_close(got.detach(), want.detach())
    # with detach, the second step would not see the first minibatch: a different result
    cut = [pb - lr * pb.grad for pb in b]
    assert any(not torch.allclose(got.detach(), c.detach(), atol=1e-7) for got, c in zip(net.params, cut))


def test_no_detach_epoch_trains_and_resets_the_state_each_epoch(counting):
    run = Run.create(RunSettings(**{**SMALL.__dict__, "detach": False, "epochs": 2}), counting)
    run.resume()
    while run.advance(1.0):
        pass
    view = run.view()
    assert view.status == "done" and view.epoch == 2 and math.isfinite(view.last["loss"])
    step = run.trainer.step()
    assert step.batch == 0 and step.graph_batches == 1  # a new epoch starts from a fresh state


# ---------------------------------------------------------------- prediction

def test_sharpened_distribution_sums_to_one_and_tends_to_greedy():
    logits = torch.randn(5, V, generator=torch.Generator().manual_seed(0))
    P = torch.softmax(logits, -1)
    for alpha in (0.5, 1.0, 2.0, 10.0, 1e4, math.inf):
        Q = sharpen(P, alpha)
        assert_close(Q.sum(-1), torch.ones(5), 1e-6)
        assert (Q >= 0).all()
    assert_close(sharpen(P, 1.0), P, 1e-6)
    greedy = next_distribution(logits, "greedy")
    assert torch.equal(sharpen(P, math.inf), greedy)
    assert_close(sharpen(P, 1e4), greedy, 1e-6)
    assert_close(next_distribution(logits, "sharpen", 3.0), next_distribution(logits, "sample", 1 / 3), 1e-6)
    # sharpening moves mass to the most likely token
    assert (sharpen(P, 4.0).max(-1).values > P.max(-1).values).all()


def test_generation_modes(counting):
    net = make_model("lesson", len(counting.vocab), 16, "cpu", seed=0)
    greedy = generate("a b", 30, net, counting.vocab)
    assert generate("a b", 30, net, counting.vocab, predict="sharpen:inf") == greedy
    assert generate("a b", 30, net, counting.vocab, predict="sample:1", seed=1) == \
        generate("a b", 30, net, counting.vocab, predict="sample:1", seed=1)
    assert generate("a b", 30, net, counting.vocab, predict="sample:5", seed=1) != greedy
    assert parse_predict("sharpen:4") == ("sharpen", 4.0) and parse_predict("greedy") == ("greedy", 0.0)
    for bad in ("beam", "sample:x", "sharpen:0"):
        with pytest.raises(ValueError):
            parse_predict(bad)


# ---------------------------------------------------------------- A/B runs

def train(settings, tc, **kwargs):
    run = Run.create(settings, tc, **kwargs)
    run.resume()
    while run.advance(1.0):
        pass
    return run.view()


def curves(view):
    return [(r["loss"], r["grad_norm"], r["clip_fraction"], r["sample"], r["heldout_perplexity"]) for r in view.records]


def test_an_ab_pair_with_identical_switches_gives_identical_curves(counting):
    s = RunSettings(**{**SMALL.__dict__, "activation": "relu", "heldout": "builtin:toy_english"})
    a, b = train(s, counting), train(s, counting)
    assert a.epoch == b.epoch == 3 and curves(a) == curves(b)
    assert a.last["heldout_perplexity"] > 1
    c = train(RunSettings(**{**s.__dict__, "activation": "tanh"}), counting)  # one switch: other curves
    assert curves(c) != curves(a)


def test_heldout_text_is_scored_and_never_trained_on(counting):
    held = heldout_tokens("builtin:toy_english", counting, "char")
    assert len(held) > 100 and max(held) < len(counting.vocab)
    with_held = train(SMALL, counting, heldout=held)
    without = train(SMALL, counting)
    assert [r["loss"] for r in with_held.records] == [r["loss"] for r in without.records]
    assert all(r["heldout_perplexity"] > 0 for r in with_held.records)
    assert all(r.get("heldout_perplexity") is None for r in without.records)
    with pytest.raises(ValueError):
        heldout_tokens("nowhere", counting)
    whole = rnn_core.tokenize_corpus(rnn_core.builtin_corpus("counting", seed=0, n_chars=3000), "char")
    with pytest.raises(ValueError, match="nothing is left"):
        heldout_tokens("rest", whole)
    part = rnn_core.tokenize_corpus(rnn_core.builtin_corpus("counting", seed=0, n_chars=3000), "char", 1000)
    assert heldout_tokens("rest", part)[:50] == whole.corpus[1000:1050]


def test_old_settings_and_checkpoints_without_the_switches_still_load():
    old = {"corpus": "x", "token": "char", "batch": 32, "steps": 35, "hidden": 64, "lr": 1.0, "epochs": 5,
           "clip": 1.0, "partition": "sequential", "engine": "fast", "device": "cpu", "seed": 0,
           "prefix": "time traveller"}
    s = RunSettings.from_dict(old)
    assert (s.activation, s.input, s.embed, s.detach, s.predict, s.heldout) == ("tanh", "onehot", 0, True,
                                                                                 "greedy", "")
    assert RunSettings.from_dict(json.loads(json.dumps(s.__dict__))) == s


# ---------------------------------------------------------------- step mode

@pytest.mark.parametrize("engine", ["lesson", "fast"])
def test_step_mode_equals_one_trainer_step(counting, engine):
    def trainer():
        net = make_model(engine, len(counting.vocab), 16, "cpu", seed=7)
        return Trainer(net, rnn_core.make_loader(counting, 8, 10, seed=1), counting.vocab, lr=2.0, theta=0.05,
                       sample_every=0)

    stepped, plain = trainer(), trainer()
    before = {k: v.clone() for k, v in formula_params(stepped.net).items()}
    reports = [stepped.step() for _ in range(3)]
    for _ in range(3):
        assert plain.train_for(0.0) is None
    for k, v in formula_params(stepped.net).items():
        assert torch.equal(v, formula_params(plain.net)[k])
    first = reports[0]
    X, Y = next(iter(rnn_core.make_loader(counting, 8, 10, seed=1)))
    assert torch.equal(first.X, X) and torch.equal(first.Y, Y)
    assert first.losses.shape == (8, 10) and abs(float(first.losses.mean()) - first.loss) < 1e-5
    assert first.grad_norm > 0.05 and abs(first.clipped_norm - 0.05) < 1e-5  # clipped to theta
    # the first step's update sizes, from the parameters before it and after it (a fresh trainer's one step)
    one = trainer()
    one.train_for(0.0)
    after = formula_params(one.net)
    assert set(first.update_ratio) == {"W_xh", "W_hh", "b_h", "W_hq", "b_q"}
    for k, w in before.items():
        if k in ("b_h", "b_q"):  # biases start at 0: a change from 0 is an infinite ratio
            assert first.update_ratio[k] == math.inf
        else:
            want = float(torch.linalg.vector_norm(after[k] - w) / torch.linalg.vector_norm(w))
            assert want > 0 and abs(first.update_ratio[k] - want) < 1e-6 * max(1.0, want)
    assert [r.batch for r in reports] == [0, 1, 2] and not first.attached
    assert first.state.shape == (8, 16)
    assert stepped.batches_done == plain.batches_done == 3


def test_step_mode_ends_an_epoch_with_its_record(counting):
    net = make_model("fast", len(counting.vocab), 8, "cpu", seed=0)
    loader = rnn_core.make_loader(counting, 8, 10)
    trainer = Trainer(net, loader, counting.vocab, sample_every=0)
    reports = [trainer.step() for _ in range(len(loader))]
    assert all(r.record is None for r in reports[:-1])
    assert reports[-1].record is not None and reports[-1].record.epoch == 1 and trainer.epoch == 1
    assert trainer.step().epoch == 2


# ---------------------------------------------------------------- the CLI

def test_cli_flags_for_the_switches(capsys):
    assert rnn_core.train.main(
        # 1,000 tokens: without detach, each minibatch backpropagates through all the epoch's earlier ones
        ["--corpus", "counting", "--max-tokens", "1000", "--epochs", "1", "--hidden", "8", "--batch-size", "8",
         "--num-steps", "10", "--quiet", "--prefix", "a", "--activation", "relu", "--input", "embedding",
         "--no-detach", "--predict", "sample:0.5", "--heldout", "builtin:toy_english"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["engine_used"] == "lesson" and summary["activation"] == "relu" and summary["detach"] is False
    assert summary["heldout_perplexity"] > 1
    assert rnn_core.train.main(["--predict", "beam"]) == 2
    assert "beam" in capsys.readouterr().err

"""Training, clipping, divergence, generation, inspection and checkpoints."""
import json
import math

import pytest
import torch

import rnn_core
from rnn_core.data import load_data
from rnn_core.model import RNN
from rnn_core.training import DivergenceError, Trainer, generate, grad_clipping


def small_run(epochs=30, seed=0, lr=1.0, theta=1.0, source="counting", random_iter=False, hidden=32):
    loader, vocab = load_data(source, batch_size=16, num_steps=10, use_random_iter=random_iter,
                              max_tokens=4000, seed=seed)
    net = RNN(len(vocab), hidden, "cpu", seed=seed)
    trainer = Trainer(net, loader, vocab, lr=lr, theta=theta, sample_every=10, prefix="a b")
    return trainer, list(trainer.epochs(epochs))


@pytest.mark.parametrize("random_iter", [False, True])
def test_training_lowers_perplexity(random_iter):
    trainer, records = small_run(random_iter=random_iter)
    assert records[-1].perplexity < 0.6 * records[0].perplexity
    assert records[-1].perplexity < 4.0  # counting is easy; uniform guessing is ~10
    assert [r.epoch for r in trainer.history] == list(range(1, 31))
    assert all(math.isclose(r.perplexity, math.exp(r.loss), rel_tol=1e-9) for r in records)
    assert all(r.tokens_per_s > 0 and 0 <= r.clip_fraction <= 1 and r.grad_norm > 0 for r in records)
    assert records[0].sample is not None and records[9].sample is not None and records[1].sample is None


def test_training_is_reproducible():
    _, a = small_run(epochs=5, seed=3, random_iter=True)
    _, b = small_run(epochs=5, seed=3, random_iter=True)
    assert [r.loss for r in a] == [r.loss for r in b]


def test_gradient_clipping_exact():
    net = RNN(6, 5, "cpu", seed=0)
    for scale, theta in [(100.0, 1.0), (1e-3, 1.0)]:
        grads = [torch.randn_like(p) * scale for p in net.params]
        for p, g in zip(net.params, grads):
            p.grad = g.clone()
        before = torch.sqrt(sum((g ** 2).sum() for g in grads))
        norm = grad_clipping(net, theta)
        assert torch.isclose(norm, before)
        after = torch.sqrt(sum((p.grad ** 2).sum() for p in net.params))
        if before > theta:
            assert torch.isclose(after, torch.tensor(theta))
            for p, g in zip(net.params, grads):  # direction kept
                assert torch.allclose(p.grad, g * theta / before)
        else:
            for p, g in zip(net.params, grads):
                assert torch.equal(p.grad, g)


def test_divergence_stops_and_keeps_last_finite_model():
    loader, vocab = load_data("toy_english", batch_size=8, num_steps=10, max_tokens=3000, seed=0)
    net = RNN(len(vocab), 16, "cpu", seed=0)
    trainer = Trainer(net, loader, vocab, lr=1.0, sample_every=0)
    trainer.train_epoch()
    good = [p.detach().clone() for p in net.params]
    trainer.lr = float("inf")
    with pytest.raises(DivergenceError, match="non-finite.*epoch 2"):
        trainer.train_epoch()
    assert trainer.epoch == 1 and len(trainer.history) == 1
    for p, g in zip(net.params, good):
        assert torch.equal(p.detach(), g)


def test_generation_greedy_and_sampled():
    trainer, _ = small_run(epochs=40)
    net, vocab = trainer.net, trainer.vocab
    greedy = generate("a b", 20, net, vocab)
    assert greedy.startswith("a b") and len(greedy) == 23
    assert greedy == rnn_core.predict("a b", 20, net, vocab)
    assert set(greedy) <= set(vocab.idx_to_token)
    hot1 = generate("a b", 20, net, vocab, temperature=1.0, seed=1)
    assert hot1 == generate("a b", 20, net, vocab, temperature=1.0, seed=1)
    samples = {generate("a b", 20, net, vocab, temperature=5.0, seed=s) for s in range(5)}
    assert len(samples) > 1  # a high temperature samples different continuations


def test_prefix_at_once_equals_step_by_step():
    net = RNN(10, 8, "cpu", seed=0)
    X = torch.randint(0, 10, (1, 6))
    out_all, (H_all,) = net(X, net.begin_state(1))
    state = net.begin_state(1)
    for t in range(6):
        out_t, state = net(X[:, t:t + 1], state)
    assert torch.allclose(out_all[-1:], out_t, atol=1e-6) and torch.allclose(H_all, state[0], atol=1e-6)


def test_inspection_matches_autograd():
    trainer, _ = small_run(epochs=10)
    net, vocab = trainer.net, trainer.vocab
    text = list("a bb ccc dddd")
    ins = rnn_core.inspect_sequence(net, vocab, text)
    T = len(text) - 1
    assert ins.hidden.shape == (T, 32) and ins.probs.shape == (T, len(vocab))
    assert torch.allclose(ins.probs.sum(1), torch.ones(T), atol=1e-5)
    # per-step loss equals the model's own cross-entropy on the same input
    with torch.no_grad():
        out, _ = net(torch.tensor([vocab[text[:-1]]]), net.begin_state(1))
    expected = torch.nn.functional.cross_entropy(out, torch.tensor(vocab[text[1:]]), reduction="none")
    assert torch.allclose(ins.loss, expected, atol=1e-5)
    # the last step's gradient is the direct one: W_hq (softmax - onehot) / T, through nothing else
    p_last = ins.probs[-1].clone()
    p_last[vocab[text[-1]]] -= 1
    direct = (net.params[3].detach() @ p_last) / T
    assert torch.isclose(ins.grad_norm[-1], direct.norm(), atol=1e-6)
    frame = ins.steps_frame()
    assert list(frame["input"]) == text[:-1] and list(frame["target"]) == text[1:]


def test_checkpoint_round_trip(tmp_path):
    trainer, _ = small_run(epochs=3)
    path = rnn_core.save_checkpoint(tmp_path / "m.pt", trainer.net, trainer.vocab, {"lr": 1.0, "hidden": 32})
    net2, vocab2, config = rnn_core.load_checkpoint(path, "cpu")
    assert vocab2.idx_to_token == trainer.vocab.idx_to_token and config == {"lr": 1.0, "hidden": 32}
    for a, b in zip(trainer.net.params, net2.params):
        assert torch.equal(a.detach(), b.detach())
    assert generate("a b", 15, net2, vocab2) == generate("a b", 15, trainer.net, trainer.vocab)
    twin, _, _ = rnn_core.load_checkpoint(path, "cpu", engine="torch")
    X = torch.randint(0, len(vocab2), (2, 5))
    assert torch.allclose(twin(X, twin.begin_state(2))[0], net2(X, net2.begin_state(2))[0], atol=1e-5)


def test_training_in_chunks_equals_whole_epochs():
    whole, records = small_run(epochs=3, seed=2)
    chunked, _ = small_run(epochs=0, seed=2)
    partial = chunked.train_for(0.0)  # one minibatch, then the budget is spent
    assert partial is None and chunked.epoch == 0 and 0 < chunked.epoch_fraction < 1
    done = []
    while len(done) < 3:
        record = chunked.train_for(0.0)
        if record is not None:
            done.append(record)
    assert [r.loss for r in done] == [r.loss for r in records]
    assert chunked.epoch_fraction == 0.0


def test_a_blown_up_finite_loss_counts_as_divergence():
    # lr 100 with theta 1000: the loss grows to ~1e30 nats, finite in float32 but exp() of it is not
    with pytest.raises(DivergenceError, match="perplexity overflowed"):
        small_run(epochs=5, lr=100.0, theta=1000.0, source="counting")


def test_the_epoch_that_blows_up_is_on_the_error_minibatch_by_minibatch():
    loader, vocab = load_data("toy_english", batch_size=8, num_steps=10, max_tokens=3000, seed=0)
    net = RNN(len(vocab), 16, "cpu", seed=0)
    trainer = Trainer(net, loader, vocab, lr=1.0, sample_every=0)
    trainer.train_epoch()
    trainer.lr = float("inf")
    with pytest.raises(DivergenceError) as caught:
        trainer.train_epoch()
    record = caught.value.record
    assert record is not None and record.diverged and record.epoch == 2
    assert trainer.epoch == 1 and not trainer.history[0].diverged  # not in the history: the model is epoch 1's
    assert len(record.batch_losses) == len(record.batch_grad_norms) == len(loader)  # the chunk ran to the end
    assert math.isfinite(record.batch_losses[0])  # the first step of lr inf is taken after its loss
    assert not all(math.isfinite(x) for x in record.batch_losses + record.batch_grad_norms)
    assert not math.isfinite(record.loss) and not math.isfinite(record.perplexity)


def test_a_loss_stuck_above_the_bound_hands_over_its_last_epoch_whole():
    loader, vocab = load_data("counting", batch_size=16, num_steps=10, max_tokens=4000, seed=0)
    trainer = Trainer(RNN(len(vocab), 32, "cpu", seed=0), loader, vocab, lr=1.0, sample_every=0)
    trainer.train_epoch()
    trainer._blowup_loss = 0.0  # every epoch from here on counts as worse than guessing
    with pytest.raises(DivergenceError, match="for 3 epochs") as caught:
        trainer.epochs(5).__next__(), trainer.train_epoch(), trainer.train_epoch()
    record = caught.value.record
    assert record is trainer.history[-1] and record.epoch == 4 and not record.diverged  # a whole epoch
    assert len(record.batch_losses) == len(loader) and all(math.isfinite(x) for x in record.batch_losses)


def test_non_finite_numbers_are_written_as_strict_json_and_read_back():
    from rnn_core.training import from_json_safe, json_safe, records_from_json
    record = {"epoch": 3, "loss": math.inf, "sample": "nan", "batch_grad_norms": [1.0, math.inf, -math.inf, math.nan],
              "diverged": True}
    text = json.dumps(json_safe(record), allow_nan=False)  # raises on a bare inf/nan
    back = records_from_json([json.loads(text)])[0]
    assert back["loss"] == math.inf and back["sample"] == "nan"
    assert back["batch_grad_norms"][:3] == [1.0, math.inf, -math.inf] and math.isnan(back["batch_grad_norms"][3])
    assert records_from_json([{"epoch": 1, "loss": "inf"}]) == [{"epoch": 1, "loss": "inf"}]  # only diverged ones
    assert from_json_safe(json_safe([0.5])) == [0.5]


def test_a_run_keeps_the_epoch_that_blew_up_marked_diverged_and_every_reader_takes_it(tmp_path):
    from dashboard import layout, runs as ui_runs, training_charts
    from rnn_core.runs import Run, RunSettings, RunStore
    tc = rnn_core.tokenize_corpus(rnn_core.builtin_corpus("counting", seed=0, n_chars=3000), "char")
    store = RunStore(tmp_path, reference_root=None)
    settings = RunSettings(corpus="counting", batch=8, steps=10, hidden=16, epochs=10, engine="fast", device="cpu",
                           prefix="one", clip=None)
    run = Run.create(settings, tc, store=store)
    train_for = run.trainer.train_for

    def blow_up_after_epoch_2(budget_s):  # every chunk from epoch 3 on trains at an infinite learning rate
        if run.trainer.epoch >= 2:
            run.trainer.lr = math.inf
        return train_for(budget_s)

    run.trainer.train_for = blow_up_after_epoch_2
    run.resume()
    while run.advance(1.0):
        pass
    view = run.view()
    assert view.status == "diverged" and view.good_epoch == 2
    assert [r["epoch"] for r in view.records] == [1, 2, 3] and [r["diverged"] for r in view.records] == [0, 0, 1]
    last = view.records[-1]
    assert not all(math.isfinite(g) for g in last["batch_grad_norms"]) and last["perplexity"] == math.inf
    # run.json stays strict JSON and reads back with the inf/nan
    text = (tmp_path / run.id / "run.json").read_text()
    json.loads(text, parse_constant=lambda c: pytest.fail(f"run.json holds a bare {c}"))
    back = store.read(run.id).view()
    assert back.records[-1]["diverged"] is True and back.records[-1]["perplexity"] == math.inf
    assert [math.isfinite(g) for g in back.records[-1]["batch_grad_norms"]] == [
        math.isfinite(g) for g in last["batch_grad_norms"]]
    # the readers: perplexity, pace, the Training page's curves and figures, playback's curve, the error sentence
    for v in (view, back):
        assert v.perplexity_at(2) == v.records[1]["perplexity"] and v.perplexity_at(3) == math.inf
        assert v.eta_s is None and v.tokens_per_s >= 0
        frame = v.frame()
        assert list(frame["diverged"]) == [False, False, True]
        for fig in (training_charts.training_curves(frame, v.vocab_size, v.target),
                    training_charts.gradient_chart(frame, v.settings.clip, v.target),
                    training_charts.perplexity_marker(frame, v.good_epoch, list(v.checkpoints))):
            json.loads(fig.to_json(), parse_constant=lambda c: pytest.fail(f"a chart holds a bare {c}"))
        assert ui_runs.figures(v)[0] == 3
        assert "epoch 2" in layout.run_error(v)
    assert run.latest()[0] == 2 and view.checkpoints[-1] == 2  # the model kept is epoch 2's
    # continued after the blow-up: epoch 3 is trained again and replaces the diverged record
    del run.trainer.train_for  # the trainer's own method again
    run.trainer.lr = 1.0
    run.resume()
    while run.advance(1.0) and run.epoch < 4:
        pass
    run.request_stop()
    records = run.view().records
    assert [r["epoch"] for r in records[:4]] == [1, 2, 3, 4] and not any(r["diverged"] for r in records)

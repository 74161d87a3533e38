"""The lesson's code (rnn_core.d2l_code, d2l 8.5 as written) run as a notebook, with ``rnn_core`` in place of
``d2l``, and the same model as rnn_core's library form.

Only the epoch count (500 -> 3) and the report interval (10 -> 1) are lowered, to keep the suite fast.
"""
import ast
import contextlib
import io
import re

import torch
from torch.nn import functional as F

import rnn_core
from rnn_core import d2l_code
from rnn_core.compat import Animator
from rnn_core.model import rnn_forward

LOWERED = {  # cell -> (the lesson's line, what this test runs instead)
    "train": ("num_epochs, lr = 500, 1", "num_epochs, lr = 3, 1"),
    "train_ch8": ("if (epoch + 1) % 10 == 0:", "if (epoch + 1) % 1 == 0:"),
}


def run_cell(source: str, namespace: dict, name: str):
    """Run a cell as a notebook does: every statement, and the value of a last bare expression (else None)."""
    tree = ast.parse(source)
    last = tree.body.pop() if tree.body and isinstance(tree.body[-1], ast.Expr) else None
    exec(compile(tree, f"<cell {name}>", "exec"), namespace)
    if last is not None:
        return eval(compile(ast.Expression(last.value), f"<cell {name}>", "eval"), namespace)
    return None


class KeptAnimator(Animator):
    """d2l.Animator that remembers every instance, so the test can read the curves train_ch8 drew."""

    made: list["KeptAnimator"] = []

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        KeptAnimator.made.append(self)


def test_the_lesson_runs_as_a_notebook_against_rnn_core(time_machine, monkeypatch):
    monkeypatch.setattr(rnn_core, "Animator", KeptAnimator)
    monkeypatch.setattr(KeptAnimator, "made", [])
    namespace: dict = {"__name__": "lesson"}
    outputs, printed = {}, io.StringIO()
    with contextlib.redirect_stdout(printed):
        for name, source in d2l_code.cells().items():
            if name in LOWERED:
                lesson_line, lowered = LOWERED[name]
                assert source.count(lesson_line) == 1, (name, lesson_line)
                source = source.replace(lesson_line, lowered)
            outputs[name] = run_cell(source, namespace, name)
            if name == "identity":  # its names are taken again by later cells
                X, W_xh, H, W_hh = (namespace[k] for k in ("X", "W_xh", "H", "W_hh"))
    assert namespace["d2l"] is rnn_core
    assert outputs["one_hot"] == (5, 2, 28)
    assert outputs["check_shapes"] == ((10, 28), 1, (2, 512))
    untrained = outputs["predict"]  # 10 tokens after the prefix; an untrained model may predict '<unk>'
    assert untrained.startswith("time traveller ") and len(untrained[15:].replace("<unk>", "?")) == 10
    assert torch.allclose(outputs["identity"], X @ W_xh + H @ W_hh, atol=1e-5)  # [X | H] [W_xh; W_hh]
    sequential, random_iter = KeptAnimator.made
    for animator in (sequential, random_iter):
        frame = animator.frame()
        assert list(frame["epoch"]) == [1.0, 2.0, 3.0]
        assert frame["perplexity"].iloc[-1] < frame["perplexity"].iloc[0] < 28
    reports = re.findall(r"perplexity ([\d.]+), [\d.]+ tokens/sec", printed.getvalue())
    assert len(reports) == 2 and float(reports[0]) < 28


def test_the_lessons_data_iterators_pair_each_token_with_the_next():
    corpus = list(range(100))
    for iterate in (d2l_code.seq_data_iter_random, d2l_code.seq_data_iter_sequential):
        batches = list(iterate(corpus, batch_size=2, num_steps=5))
        assert batches
        for X, Y in batches:
            assert X.shape == Y.shape == (2, 5) and torch.equal(Y, X + 1)


def test_the_lessons_rnn_computes_what_rnn_core_s_model_does_to_the_bit():
    net = rnn_core.RNN(28, 32, "cpu", seed=0)
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in net.params:  # every term of the step counts, the biases too
            p.copy_(torch.randn(p.shape, generator=g) * 0.3)
    inputs = F.one_hot(torch.randint(0, 28, (7, 4), generator=g), 28).float()  # (steps, batch, V)
    state = (torch.randn(4, 32, generator=g),)
    out_lesson, (H_lesson,) = d2l_code.rnn(inputs, state, net.params)
    out_core, (H_core,) = rnn_forward(inputs, state, net.params)
    assert torch.equal(out_lesson, out_core) and torch.equal(H_lesson, H_core)
    (out_lesson.sum() + H_lesson.sum()).backward()
    lesson_grads = [p.grad.clone() for p in net.params]
    for p in net.params:
        p.grad = None
    (out_core.sum() + H_core.sum()).backward()
    for a, p in zip(lesson_grads, net.params):
        assert torch.equal(a, p.grad)


def test_the_lessons_definitions_and_rnn_core_s_mix():
    """The lesson's model class takes rnn_core's functions, and rnn_core's class takes the lesson's."""
    X = torch.randint(0, 28, (2, 5))
    for cls, get_params, init_state, forward_fn in [
        (d2l_code.RNNModelScratch, rnn_core.get_params, rnn_core.init_rnn_state, rnn_core.rnn),
        (rnn_core.RNNModelScratch, d2l_code.get_params, d2l_code.init_rnn_state, d2l_code.rnn),
    ]:
        net = cls(28, 16, "cpu", get_params, init_state, forward_fn)
        Y, state = net(X, net.begin_state(2, "cpu"))
        assert Y.shape == (10, 28) and isinstance(state, tuple) and state[0].shape == (2, 16), cls


def test_lesson_calls_with_rnn_core_functions(time_machine):
    """The same calls with rnn_core's own get_params / init_rnn_state / rnn / RNNModelScratch."""
    import rnn_core as d2l

    train_iter, vocab = d2l.load_data_time_machine(32, 35)
    net = d2l.RNNModelScratch(len(vocab), 64, d2l.try_gpu(), d2l.get_params, d2l.init_rnn_state, d2l.rnn)
    with contextlib.redirect_stdout(io.StringIO()) as printed:
        trainer = d2l.train_ch8(net, train_iter, vocab, 1, 2, d2l.try_gpu())
    assert len(trainer.history) == 2 and "tokens/sec" in printed.getvalue()

"""The Inside page's sentences state the numbers it computed: each number is parsed back and compared."""
import math
import re

import pytest
import torch

from dashboard import explain, formatting
from rnn_core.data import load_data
from rnn_core.gradflow import gradient_flow, spectrum
from rnn_core.inside import surprise, top_k_frame, twin_differences
from rnn_core.model import RNN
from rnn_core.training import Trainer

NUM = formatting.NUMBER


@pytest.fixture(scope="module")
def trained():
    """A small model trained a few epochs on the built-in Toy English corpus, and a string of it."""
    loader, vocab = load_data("toy_english", batch_size=16, num_steps=20, max_tokens=4000, seed=0)
    net = RNN(len(vocab), 48, "cpu", seed=0)
    records = list(Trainer(net, loader, vocab, lr=1.0, sample_every=0).epochs(8))
    assert records[-1].perplexity < 0.8 * records[0].perplexity  # it did learn something
    tokens = vocab.to_tokens(loader.corpus[100:140])
    return net, vocab, tokens


@pytest.fixture(scope="module")
def untrained():
    loader, vocab = load_data("toy_english", batch_size=16, num_steps=20, max_tokens=4000, seed=0)
    return RNN(len(vocab), 48, "cpu", seed=0), vocab, vocab.to_tokens(loader.corpus[100:140])


def stated(text: str, value: float, digits: int = 2) -> None:
    """`text` is `value` written with `digits` significant digits, and parses back to it within that rounding."""
    assert text == formatting.num(value, digits), (text, value)
    assert formatting.parse_num(text) == pytest.approx(value, rel=0.5 * 10 ** (1 - digits) + 1e-12)


def test_num_writes_and_parse_num_reads():
    for x, text in [(0.5432, "0.54"), (12.3, "12"), (0.002049, "2×10⁻³"), (3.4e-7, "3.4×10⁻⁷"),
                    (9.96, "10"), (123456.0, "1.2×10⁵"), (1.0, "1"), (0.0, "0")]:
        assert formatting.num(x) == text
        assert formatting.parse_num(text) == pytest.approx(x, rel=0.05, abs=1e-12)
    assert formatting.numbers("a 0.54 b 2×10⁻³ c") == [0.54, 0.002]


def check_flow_sentences(flow):
    sentences = explain.gradient_flow(flow)
    first = re.fullmatch(rf"At the step itself the gradient ‖∂ℓ_t/∂H_t‖ is ({NUM}) on average "
                         rf"\(over the (\d+) steps t\)\.", sentences[0])
    assert first, sentences[0]
    stated(first[1], float(flow.curve[0]))
    assert int(first[2]) == flow.steps
    back = [re.fullmatch(rf"\*\*(\d+) steps? back\*\* the mean gradient ‖∂ℓ_t/∂H_\(t−(\d+)\)‖ is "
                         rf"\*\*({NUM}) (of its size|times its size)\*\* at the step itself\.", s)
            for s in sentences[1:-1]]
    assert all(back) and [int(m[1]) for m in back] == explain.distances(flow.steps) == [1, 10, flow.steps - 1]
    for m in back:
        d = int(m[1])
        assert int(m[2]) == d
        ratio = float(flow.curve[d] / flow.curve[0])
        stated(m[3], ratio)
        assert (m[4] == "of its size") == (ratio < 1)
    fit = re.fullmatch(rf"Fitted over all distances, each step back multiplies the mean gradient by about "
                       rf"\*\*({NUM})\*\*: it (shrinks|grows) 10× every ({NUM}) steps\.", sentences[-1])
    assert fit, sentences[-1]
    stated(fit[1], flow.factor)
    assert (fit[2] == "shrinks") == (flow.factor < 1)
    stated(fit[3], 1 / abs(math.log10(flow.factor)))
    return sentences


def check_spectrum_sentences(flow, spec):
    sentences = explain.spectrum(flow, spec)
    head = re.fullmatch(rf"W_hh has spectral radius ρ = \*\*({NUM})\*\* and largest singular value σ_max = "
                        rf"\*\*({NUM})\*\*; on this string tanh′ = 1 − H² is at most ({NUM}) \(it is never above 1\)\.",
                        sentences[0])
    assert head, sentences[0]
    stated(head[1], spec.radius, 3)
    stated(head[2], spec.sigma_max, 3)
    stated(head[3], flow.max_tanh_prime, 3)
    bound = spec.sigma_max * flow.max_tanh_prime
    measured = re.fullmatch(rf"Measured on this string, the largest one-step factor .* is ({NUM}) "
                            rf"\(the bound: ({NUM})\)\.", sentences[-1])
    assert measured, sentences[-1]
    stated(measured[1], flow.max_step_factor, 3)
    stated(measured[2], bound, 3)
    assert flow.max_step_factor <= bound * (1 + 1e-9)  # what the sentence implies
    text = " ".join(sentences)
    if bound < 1:
        m = re.search(rf"σ_max · max tanh′ = \*\*({NUM}) < 1\*\*: the gradient \*\*must vanish\*\*, at least as fast "
                      rf"as ({NUM})\^d \((\d+) steps back: at most ({NUM}) of its size at the step itself\)", text)
        assert m, text
        stated(m[1], bound, 3)
        d = int(m[3])
        stated(m[4], bound ** d)
        G = flow.matrix
        worst = max(float(G[t, t - d] / G[t, t]) for t in range(d, flow.steps))
        assert worst <= formatting.parse_num(m[4]) * 1.05  # the claim holds for every pair d steps apart
        assert "explode" not in text
    else:
        assert f"σ_max · max tanh′ = **{formatting.num(bound, 3)} ≥ 1**" in text and "must vanish" not in text
        assert ("explode" in text) == (spec.radius > 1)
    return sentences


def test_sentences_of_an_untrained_model(untrained):
    net, vocab, tokens = untrained
    flow = gradient_flow(net, vocab[tokens], tokens)
    sentences = check_flow_sentences(flow)
    assert "shrinks" in sentences[-1]
    check_spectrum_sentences(flow, spectrum(net))
    assert spectrum(net).sigma_max < 1  # so the "must vanish" branch was the one checked


def test_sentences_of_a_trained_model(trained):
    net, vocab, tokens = trained
    flow = gradient_flow(net, vocab[tokens], tokens)
    check_flow_sentences(flow)
    check_spectrum_sentences(flow, spectrum(net))


@pytest.mark.parametrize("block", [[[0.0, 2.0], [0.72, 0.0]], [[0.0, 3.0], [0.0, 0.0]]],
                         ids=["radius-1.2-norm-2", "radius-0-norm-3"])
def test_sentences_when_the_bound_allows_growth(untrained, block):
    net, vocab, tokens = untrained
    with torch.no_grad():  # W_hh = block ⊗ ones(24, 24) / 24: ρ = 1.2 or 0, σ_max = 2 or 3
        net.params[1].copy_(torch.tensor(block).repeat_interleave(24, 0).repeat_interleave(24, 1) / 24)
    spec = spectrum(net)
    flow = gradient_flow(net, vocab[tokens], tokens)
    assert spec.sigma_max * flow.max_tanh_prime >= 1
    check_flow_sentences(flow)
    sentences = check_spectrum_sentences(flow, spec)
    text = " ".join(sentences)
    if block[1][0]:
        assert spec.radius == pytest.approx(1.2) and "ρ = 1.2 > 1: the powers W_hh^d grow like ρ^d" in text
    else:
        assert spec.radius < 1e-6 and "≤ 1: the powers W_hh^d do not grow exponentially" in text


def test_surprise_top_k_and_twin_sentences(trained):
    net, vocab, tokens = trained
    s = surprise(net, vocab, tokens)
    m = re.fullmatch(rf"Perplexity \*\*({NUM})\*\* on these (\d+) predictions \(uniform guessing: (\d+)\)\. "
                     rf"Most surprising: “(.)” after “(.*)” \(−log p = ({NUM})\)\.", explain.surprise(s, len(vocab)))
    assert m
    stated(m[1], s.perplexity, 3)
    assert int(m[2]) == len(tokens) - 1 and int(m[3]) == len(vocab)
    worst = int(s.surprisal.argmax())
    assert m[4] == tokens[worst + 1] and "".join(tokens[:worst + 1]).endswith(m[5])
    stated(m[6], float(s.surprisal.max()), 3)

    frame = top_k_frame(s.probs, tokens, vocab, k=5)
    m = re.fullmatch(rf"The true next token was the model's first choice at (\d+) of (\d+) steps and among its top "
                     rf"5 at (\d+); its median rank is ({NUM})\.", explain.top_k(frame))
    assert m
    ranks = frame["rank"]
    assert (int(m[1]), int(m[2]), int(m[3])) == (int((ranks == 1).sum()), len(frame), int((ranks <= 5).sum()))
    stated(m[4], float(ranks.median()))

    diffs = twin_differences(net, vocab, tokens)
    m = re.fullmatch(rf"Largest difference: \*\*({NUM})\*\* \((.*)\), float32 rounding: the two compute the same "
                     rf"function\.", explain.twin(diffs))
    assert m
    stated(m[1], float(diffs["max |difference|"].max()))

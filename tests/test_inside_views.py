"""Inside the RNN's views: text features, the unit finder, the unit order, surprise, top-k, the nn.RNN twin."""
import math

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from rnn_core import units
from rnn_core.fast import FastRNN
from rnn_core.inside import surprise, target_ranks, top_k_frame, twin_differences
from rnn_core.inspection import inspect_sequence
from rnn_core.model import RNN, TorchRNN
from rnn_core.vocab import Vocab

TEXT = "the time traveller for so it will be convenient to speak of him was expounding a recondite matter"
VOCAB = Vocab(list(TEXT))


def test_text_features_by_hand():
    f = units.text_features(list("an ox  jumps!"))
    assert f["space"].tolist() == [0, 0, 1, 0, 0, 1, 1, 0, 0, 0, 0, 0, 0]
    assert f["word_start"].tolist() == [1, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0]
    assert f["word_end"].tolist() == [0, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1, 0]
    assert f["vowel"].tolist() == [1, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0]
    assert f["position"].tolist() == [1, 2, 0, 1, 2, 0, 0, 1, 2, 3, 4, 5, 0]
    assert f["long_word"].tolist() == [0] * 13
    assert units.text_features(list("a recondite"))["long_word"].tolist() == [0, 0] + [1] * 9
    words = units.text_features(["expounding", "a", "the", "other"], char_level=False)
    assert words["long_word"].tolist() == [1, 0, 0, 0] and words["short_word"].tolist() == [0, 1, 1, 0]
    assert words["vowel"].tolist() == [1, 1, 0, 1]
    assert list(f.columns) == list(units.CHAR_FEATURES) and list(words.columns) == list(units.WORD_FEATURES)


def test_correlations_are_pearson_and_constants_are_zero():
    rng = np.random.default_rng(0)
    hidden = rng.normal(size=(50, 4))
    hidden[:, 2] = 0.3  # a constant unit
    f = units.text_features(list("the cat sat on the mat and it was not a dog but a c"[:50]))
    r = units.correlations(hidden, f)
    assert r.loc[0, "vowel"] == pytest.approx(np.corrcoef(hidden[:, 0], f["vowel"])[0, 1], abs=1e-12)
    assert (r.loc[2] == 0).all() and (r["long_word"] == 0).all()  # no word of 7+ letters


@pytest.mark.parametrize("n", [1, 2, 3, 7, 64])
def test_cluster_order_is_a_permutation(n):
    rng = np.random.default_rng(n)
    hidden = rng.normal(size=(30, n))
    if n > 3:
        hidden[:, 1] = 0.0  # constant units are placed too
        hidden[:, 5] = 0.0
    order = units.cluster_order(hidden)
    assert sorted(order.tolist()) == list(range(n))


def test_cluster_order_puts_alike_units_together():
    rng = np.random.default_rng(1)
    sources = rng.normal(size=(200, 3))
    group = rng.permutation(np.arange(30) % 3)  # unit i follows source group[i], plus noise
    hidden = sources[:, group] + 0.2 * rng.normal(size=(200, 30))
    labels = group[units.cluster_order(hidden)]
    assert int((labels[1:] != labels[:-1]).sum()) == 2  # three contiguous blocks


def planted_model(unit: int = 3, hidden: int = 16, seed: int = 0) -> RNN:
    """An RNN whose unit `unit` is +tanh(3) ≈ 1 after a space and −tanh(3) after any other character."""
    net = RNN(len(VOCAB), hidden, "cpu", seed=seed)
    W_xh, W_hh = net.params[0], net.params[1]
    with torch.no_grad():
        W_xh.mul_(20)  # the other units respond to characters at random (|W| ~ 0.2)
        W_xh[:, unit] = -3.0
        W_xh[VOCAB[" "], unit] = 3.0
        W_hh[:, unit] = 0.0  # so unit 3 follows the input alone
    return net


def test_the_unit_finder_finds_a_planted_space_unit():
    from rnn_core.inside import float_params, hidden_states

    net = planted_model(unit=3)
    tokens = list(TEXT)
    hidden = hidden_states(float_params(net), torch.tensor(VOCAB[tokens])[None])[0].numpy()
    f = units.text_features(tokens)
    finder = units.unit_finder(hidden, f, units.CHAR_FEATURES)
    top = finder.iloc[0]
    assert (top["feature"], top["unit"]) == ("space", 3) and top["r"] > 0.999
    assert top["label"] == units.CHAR_FEATURES["space"]
    assert finder["abs_r"].is_monotonic_decreasing and set(finder["feature"]) == set(units.CHAR_FEATURES)
    assert units.best_unit(hidden, f) == 3


def test_surprise_matches_the_autograd_inspection():
    net = planted_model()
    tokens = list(TEXT[:40])
    s = surprise(net, VOCAB, tokens)
    ins = inspect_sequence(net, VOCAB, tokens)
    assert torch.allclose(s.surprisal, ins.loss, atol=1e-5)
    assert torch.allclose(s.hidden, ins.hidden, atol=1e-6)
    assert s.perplexity == pytest.approx(math.exp(ins.loss.double().mean()), rel=1e-5)
    assert s.tokens == tokens and len(s.surprisal) == 39


def test_top_k_and_rank_against_a_brute_force_sort():
    g = torch.Generator().manual_seed(0)
    probs = torch.softmax(torch.randn(30, len(VOCAB), generator=g) * 3, dim=1)
    tokens = [VOCAB.idx_to_token[i] for i in torch.randint(1, len(VOCAB), (31,), generator=g)]
    frame = top_k_frame(probs, tokens, VOCAB, k=5)
    for t in range(30):
        ranked = sorted(range(len(VOCAB)), key=lambda i: -probs[t, i].item())  # brute force, most likely first
        truth = VOCAB[tokens[t + 1]]
        assert frame.loc[t, "rank"] == ranked.index(truth) + 1
        assert frame.loc[t, "p(true)"] == pytest.approx(probs[t, truth].item())
        assert [frame.loc[t, f"#{j}"] for j in range(1, 6)] == [VOCAB.idx_to_token[i] for i in ranked[:5]]
        assert [frame.loc[t, f"p#{j}"] for j in range(1, 6)] == pytest.approx([probs[t, i].item() for i in ranked[:5]])
        assert (frame.loc[t, "input"], frame.loc[t, "true next"]) == (tokens[t], tokens[t + 1])
    assert (frame["rank"] == 1).any() and (frame["rank"] > 5).any()  # both cases were checked


def test_rank_counts_only_strictly_more_likely_tokens():
    probs = torch.tensor([[0.25, 0.25, 0.5], [0.1, 0.2, 0.7]])
    assert target_ranks(probs, torch.tensor([1, 0])).tolist() == [2, 3]


@pytest.mark.parametrize("cls", [RNN, TorchRNN, FastRNN])
def test_the_nn_rnn_twin_agrees(cls):
    net = cls(len(VOCAB), 32, "cpu", seed=1)
    with torch.no_grad():
        for p in net.params:
            p.mul_(20)  # weights ~ N(0, 0.2²): gradients of a useful size (at 0.4² the dynamics are chaotic and
            # float32 rounding grows to 1e-3 over 35 steps in either implementation)
    diffs = twin_differences(net, VOCAB, list(TEXT[:35]))
    assert len(diffs) == 9 and {"loss", "final state H_T (1, hidden)"} <= set(diffs["compared"])
    assert (diffs["max |difference|"] < 1e-5).all()
    assert (diffs["largest |value|"] > 1e-4).all()  # the gradients compared are not zero



@pytest.mark.parametrize("switches", [{"activation": "relu"}, {"input": "embedding", "embed": 8}])
def test_the_inside_views_of_a_relu_or_embedding_model_are_that_models_own(switches):
    """Probabilities, the one-sweep gradient flow and the twin follow the model's φ and its input."""
    from rnn_core.gradflow import gradient_flow
    from rnn_core.model import ALL_PARAM_NAMES, rnn_step

    vocab = Vocab(list("the time machine"))
    net = RNN(len(vocab), 12, "cpu", seed=3, **switches)
    with torch.no_grad():  # weights large enough that ReLU units are both on and off
        for p in net.params:
            p.mul_(30)
    tokens = list("the time")
    idx = torch.tensor(vocab[tokens])
    with torch.no_grad():
        out, _ = net(idx[None, :-1], net.begin_state(1))  # the model's own forward pass: (steps, V)
    assert torch.allclose(surprise(net, vocab, tokens).probs, torch.softmax(out, dim=1), atol=1e-6)
    assert torch.allclose(inspect_sequence(net, vocab, tokens).probs, torch.softmax(out, dim=1), atol=1e-6)
    # the one sweep against autograd through the model's own step, for every (t, s)
    G = gradient_flow(net, idx).matrix
    p = {k: v.detach().clone().requires_grad_() for k, v in zip(ALL_PARAM_NAMES, net.params)}
    H, hs = torch.zeros(1, 12), []
    for x in idx[:-1]:
        X_t = p["E"][x][None] if "E" in p else F.one_hot(x, len(vocab)).float()[None]
        H = rnn_step(X_t, H, p["W_xh"], p["W_hh"], p["b_h"], switches.get("activation", "tanh"))
        hs.append(H)
    for t in range(len(hs)):
        loss = F.cross_entropy(hs[t] @ p["W_hq"] + p["b_q"], idx[t + 1:t + 2])
        grads = torch.autograd.grad(loss, hs[:t + 1], retain_graph=True)
        assert torch.allclose(G[t, :t + 1].float(), torch.stack([g.norm() for g in grads]), rtol=1e-4, atol=1e-12)
    assert twin_differences(net, vocab, tokens).iloc[:, -1].max() < 1e-4


def test_the_shown_tables_write_a_space_as_a_visible_mark_and_keep_their_column_ids():
    import pandas as pd

    from dashboard import inside_tables

    frame = pd.DataFrame({"step": [1, 2], "input": [" ", "a"], "true next": ["a", " "], "p(true)": [0.5, 0.2],
                          "rank": [1, 3], "#1": [" ", "b"], "p#1": [0.5, 0.4]})
    shown = inside_tables.top_k_table(frame)
    assert list(shown.columns) == list(frame.columns) and frame.loc[0, "input"] == " "  # a copy
    assert shown["input"].tolist() == ["␣", "a"] and shown["true next"].tolist() == ["a", "␣"]
    assert shown["#1"].tolist() == ["␣", "b"] and shown["p#1"].tolist() == [0.5, 0.4]
    steps = pd.DataFrame({"step": [1], "input": [" "], "target": ["t"], "predicted": [" "], "loss": [0.1]})
    assert inside_tables.steps_table(steps).iloc[0].tolist() == [1, "␣", "t", "␣", 0.1]

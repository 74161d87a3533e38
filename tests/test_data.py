"""Vocabulary and minibatches with the lesson's semantics."""
import random

import pytest
import torch

import rnn_core
from rnn_core.corpus import CorpusError
from rnn_core.data import (SeqDataLoader, min_tokens_for, num_minibatches, random_starts, sequential_starts)
from rnn_core.vocab import Vocab, tokenize


def test_vocab_interface():
    vocab = Vocab(tokenize(["the cat", "the hat"], "char"), reserved_tokens=["<pad>"])
    assert vocab.idx_to_token[:3] == ["<unk>", "<pad>", "t"]
    assert vocab["t"] == 2 and vocab["?"] == 0
    assert vocab[["t", "h"]] == [2, vocab.token_to_idx["h"]]
    assert vocab.to_tokens([2, 0]) == ["t", "<unk>"]
    assert vocab.token_freqs[0] == ("t", 4)
    assert list(vocab.to_frame().columns) == ["index", "token", "count"]
    assert Vocab.from_dict(vocab.to_dict()).idx_to_token == vocab.idx_to_token
    rare = Vocab(tokenize(["aab"], "char"), min_freq=2)
    assert rare.idx_to_token == ["<unk>", "a"] and rare.min_freq == 2


def test_lesson_loader(time_machine):
    train_iter, vocab = rnn_core.load_data_time_machine(32, 35)
    assert repr(vocab) == '<Vocab with 28 tokens: "<unk>", " ", "e", "t", "a", ...>'
    assert repr(train_iter) == '<TimeMachineLoader with 10000 corpus: "t", "h", "e", " ", "t", ...>'
    assert train_iter.batch_size == 32 and train_iter.num_steps == 35
    batches = list(train_iter)
    assert len(batches) == len(train_iter) == 8
    for X, Y in batches:
        assert X.shape == Y.shape == (32, 35)
        assert torch.equal(X[:, 1:], Y[:, :-1])  # Y is X shifted by one token


@pytest.mark.parametrize("use_random_iter", [False, True])
def test_y_is_next_token_in_corpus(use_random_iter):
    corpus = list(range(1000))
    loader = SeqDataLoader(corpus, 4, 7, use_random_iter, seed=3)
    for X, Y in loader:
        assert torch.equal(Y, X + 1)  # the corpus is 0..999, so the next token is X + 1


def test_sequential_partition_properties():
    n, b, s = 1000, 4, 7
    for seed in range(20):
        rng = random.Random(seed)
        batches = sequential_starts(n, b, s, rng)
        offset = batches[0][0]
        assert 0 <= offset <= s
        row_len = batches[0][1] - batches[0][0]
        for i, starts in enumerate(batches):
            # row r continues exactly where it stopped in the previous minibatch
            assert starts == [offset + r * row_len + i * s for r in range(b)]
        covered = [p for starts in batches for st in starts for p in range(st, st + s)]
        assert len(covered) == len(set(covered))  # no overlap
        assert max(covered) + 1 < n  # Y's last token exists


def test_random_partition_properties():
    n, b, s = 1000, 4, 7
    offsets = set()
    for seed in range(30):
        batches = random_starts(n, b, s, random.Random(seed))
        starts = sorted(st for batch in batches for st in batch)
        offset = starts[0] % s
        offsets.add(offset)
        assert 0 <= offset < s
        assert all(st % s == offset for st in starts)  # aligned subsequences
        assert len(set(starts)) == len(starts)  # each used once: no overlap
        num_subseqs = (n - offset - 1) // s
        assert len(starts) == (num_subseqs // b) * b  # coverage: every full minibatch
    assert len(offsets) > 3  # the offset changes from epoch to epoch


def test_len_is_exact_every_epoch():
    for use_random_iter in (False, True):
        loader = SeqDataLoader(list(range(777)), 5, 9, use_random_iter, seed=0)
        for _ in range(10):
            assert len(list(loader)) == len(loader) == num_minibatches(777, 5, 9, use_random_iter)


def test_same_seed_same_batches():
    a = SeqDataLoader(list(range(500)), 4, 5, True, seed=7)
    b = SeqDataLoader(list(range(500)), 4, 5, True, seed=7)
    for (Xa, _), (Xb, _) in zip(a, b):
        assert torch.equal(Xa, Xb)


def test_positions_frame_matches_batches():
    loader = SeqDataLoader(list(range(600)), 4, 6, False, seed=0)
    frame = loader.positions(epochs=2, seed=11)
    assert list(frame.columns) == ["partition", "epoch", "minibatch", "row", "start", "stop"]
    assert len(frame) == 2 * len(loader) * 4
    replay = SeqDataLoader(list(range(600)), 4, 6, False, seed=11)
    X, _ = next(iter(replay))
    first = frame.query("epoch == 0 and minibatch == 0").sort_values("row")
    assert X[:, 0].tolist() == first["start"].tolist()


def test_too_short_corpus_refused_with_minimum():
    need = min_tokens_for(4, 10)
    SeqDataLoader(list(range(need)), 4, 10)
    with pytest.raises(CorpusError, match=f"needs {need}"):
        SeqDataLoader(list(range(need - 1)), 4, 10)

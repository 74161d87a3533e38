"""Corpus loading: the Time Machine facts, download checks, uploads, built-in corpora."""
import hashlib

import pytest

from rnn_core import corpus as C
from rnn_core.data import tokenize_corpus


def test_time_machine_lesson_numbers(time_machine):
    tc = tokenize_corpus(C.load_corpus(time_machine), "char")
    assert tc.num_tokens_total == 170_580
    assert len(tc.vocab) == 28
    assert tc.vocab.idx_to_token[:10] == ["<unk>", " ", "e", "t", "a", "i", "n", "o", "s", "h"]
    assert tc.vocab.to_tokens(tc.corpus[:10]) == list("the time m")


def test_time_machine_word_vocab(time_machine):
    tc = tokenize_corpus(C.load_corpus(time_machine), "word")
    assert tc.num_tokens_total == 32_775
    assert len(tc.vocab) == 4_580
    assert tc.vocab.idx_to_token[:10] == ["<unk>", "the", "i", "and", "of", "a", "to", "was", "in", "that"]


def test_lesson_cleaning():
    assert C.clean_line("The Time-Traveller, 1898!") == "the time traveller"
    assert C.clean_line("The Time-Traveller!", keep_case=True) == "The Time Traveller"
    assert C.clean_line("  (a)  b.", keep_punct=True) == "(a) b."


def test_download_verifies_sha1_and_writes_atomically(tmp_path, monkeypatch, time_machine):
    payload = C.time_machine_path().read_bytes()

    class Response:
        def __init__(self, data):
            self.data = data

        def read(self):
            return self.data

        def __enter__(self):
            return self

        def __exit__(self, *a):
            return False

    monkeypatch.setattr(C.urllib.request, "urlopen", lambda url, timeout: Response(payload))
    corpus = C.read_time_machine(tmp_path)
    assert corpus.note.startswith("downloaded")
    assert hashlib.sha1((tmp_path / "timemachine.txt").read_bytes()).hexdigest() == C.TIME_MACHINE_SHA1
    assert [p.name for p in tmp_path.iterdir()] == ["timemachine.txt"]  # no leftover temp file

    bad = tmp_path / "bad"
    monkeypatch.setattr(C.urllib.request, "urlopen", lambda url, timeout: Response(b"not the book"))
    with pytest.raises(C.CorpusError, match="SHA-1"):
        C.read_time_machine(bad)
    assert not (bad / "timemachine.txt").exists()


def test_offline_error_says_how_to_provide_the_file(tmp_path, monkeypatch):
    def offline(url, timeout):
        raise OSError("network unreachable")

    monkeypatch.setattr(C.urllib.request, "urlopen", offline)
    with pytest.raises(C.CorpusError, match="Copy timemachine.txt"):
        C.read_time_machine(tmp_path)
    with pytest.raises(C.CorpusError, match="missing"):
        C.read_time_machine(tmp_path, download=False)


def test_uploads_decode_and_refuse():
    corpus = C.corpus_from_text("hello world\nsecond line\n".encode())
    assert corpus.lines == ["hello world\n", "second line\n"] and corpus.encoding == "UTF-8"
    latin = C.corpus_from_text("caf\xe9 au lait".encode("latin-1"))
    assert latin.warnings and "Latin-1" in latin.warnings[0] and latin.encoding == "Latin-1"
    assert C.corpus_from_text("hello").encoding == ""  # a str was never bytes in any encoding
    with pytest.raises(C.CorpusError, match="empty"):
        C.corpus_from_text(b"")
    with pytest.raises(C.CorpusError, match="binary"):
        C.corpus_from_text(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    with pytest.raises(C.CorpusError, match="limit"):
        C.corpus_from_text(b"a" * (C.MAX_CORPUS_BYTES + 1))


def test_file_path(tmp_path):
    path = tmp_path / "t.txt"
    path.write_text("abc def\n")
    assert C.load_corpus(str(path)).lines == ["abc def\n"]
    with pytest.raises(C.CorpusError, match="No such file"):
        C.load_corpus(str(tmp_path / "missing.txt"))


@pytest.mark.parametrize("name", sorted(C.BUILTIN_CORPORA))
def test_builtin_corpora_deterministic(name):
    a, b, c = C.builtin_corpus(name, seed=1), C.builtin_corpus(name, seed=1), C.builtin_corpus(name, seed=2)
    assert a.lines == b.lines
    assert a.lines != c.lines
    assert sum(map(len, a.lines)) >= 20_000
    tc = tokenize_corpus(a, "char")
    assert 3 <= len(tc.vocab) <= 40


def test_parentheses_balanced_and_nested():
    for line in C.builtin_corpus("parentheses").lines[:200]:
        depth, max_depth = 0, 0
        for ch in line.strip():
            depth += 1 if ch == "(" else -1
            assert depth >= 0
            max_depth = max(max_depth, depth)
        assert depth == 0
        assert max_depth <= 6
    tc = tokenize_corpus(C.builtin_corpus("parentheses"), "char")
    assert set(tc.vocab.idx_to_token) == {"<unk>", "(", ")"}

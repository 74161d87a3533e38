"""Unicode texts: the cleaning option ('lesson' or 'keep'), the built-in Chinese corpus, a Chinese upload trains
under the same guards, and the CLI's --clean."""
import json

import pytest

from rnn_core import corpus as C
from rnn_core.data import make_loader, tokenize_corpus
from rnn_core.guards import check_settings
from rnn_core import make_model
from rnn_core.training import Trainer
from rnn_core.vocab import is_char_vocab
from tests.test_dashboard_pages import assert_clean, open_app, texts

CHINESE = ("循环神经网络读取文本，一次一个词元。它把读到的内容保存在隐状态中。\n"
           "ＡＢＣ　全角字母经过 NFKC 规范化。\n") * 30


def test_keep_cleaning_normalises_and_collapses_whitespace_only():
    assert C.clean_line("  Ｔｈｅ\tTime ，机器  ", mode="keep") == "The Time ,机器"
    assert C.clean_line("The Time-Machine!", mode="lesson") == "the time machine"
    with pytest.raises(C.CorpusError, match="cleaning"):
        C.clean_line("x", mode="nonsense")


def test_chinese_number_words():
    assert [C.chinese_number(n) for n in (0, 10, 12, 20, 105, 110, 1010, 20000, 10203)] == [
        "零", "十", "十二", "二十", "一百零五", "一百一十", "一千零一十", "二万", "一万零二百零三"]


def test_the_builtin_chinese_corpus_loads_at_char_level_with_either_cleaning():
    corpus = C.load_corpus("chinese_numbers", seed=3)
    assert corpus.lines == C.load_corpus("chinese_numbers", seed=3).lines  # deterministic per seed
    for clean in C.CLEANINGS:
        tc = tokenize_corpus(corpus, "char", clean=clean)
        assert is_char_vocab(tc.vocab)
        assert {"十", "加", "等", "于", "。"} <= set(tc.vocab.idx_to_token)
        assert len(tc.vocab) < 30  # ten digits, units and a few signs: structure a small RNN can learn


def test_a_chinese_text_is_refused_by_the_lesson_cleaning_with_the_way_out():
    with pytest.raises(C.CorpusError, match="keep"):
        tokenize_corpus(C.corpus_from_text("只有中文。".encode()), "char")


def test_a_chinese_text_trains_at_char_level_under_the_guards():
    tc = tokenize_corpus(C.corpus_from_text(CHINESE.encode(), "zh.txt"), "char", clean="keep")
    assert "隐" in tc.vocab.idx_to_token and "A" in tc.vocab.idx_to_token  # NFKC: full-width Ａ is A
    check_settings(len(tc.vocab), 4, 8, 32, len(tc.corpus))
    net = make_model("lesson", len(tc.vocab), 32, "cpu", seed=0)
    trainer = Trainer(net, make_loader(tc, 4, 8, seed=0), tc.vocab, lr=1.0, theta=1.0)
    first = trainer.train_epoch().perplexity
    for _ in range(4):
        last = trainer.train_epoch().perplexity
    assert last < first


def test_cli_trains_the_chinese_corpus_with_clean_keep(capsys):
    from rnn_core.train import main

    code = main(["--corpus", "chinese_numbers", "--clean", "keep", "--epochs", "2", "--hidden", "16",
                 "--batch-size", "4", "--num-steps", "8", "--max-tokens", "2000", "--quiet", "--prefix", "二十"])
    assert code == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["clean"] == "keep" and summary["sample"].startswith("二十") and summary["vocab_size"] < 30


def test_a_unicode_upload_is_used_and_trains_on_the_training_page():
    at = open_app("training", corpus="upload", clean="keep", batch=4, steps=8, hidden=16, epochs=2)
    at.sidebar.file_uploader[0].upload("zh.txt", CHINESE.encode(), "text/plain").run()
    assert_clean(at)
    assert not at.sidebar.error
    start = next(b for b in at.button if b.label == "Start")
    assert not start.disabled
    start.click().run()
    from dashboard import runs

    run = runs.registry().get(at.session_state["run_id"])
    assert run.wait(120).status == "done" and run.epoch == 2 and "隐" in run.vocab.idx_to_token


def test_the_lesson_cleaning_refuses_a_chinese_upload_and_names_the_option():
    at = open_app("data", corpus="upload", batch=4, steps=8)
    at.sidebar.file_uploader[0].upload("zh.txt", CHINESE.replace("ＡＢＣ", "").replace("NFKC", "").encode(),
                                       "text/plain").run()
    assert_clean(at)
    assert "keep" in texts(at.sidebar.error)

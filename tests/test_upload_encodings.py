"""Text files decoded as what they are: UTF-8 (with or without a BOM), UTF-16 and UTF-32 with a BOM, GBK/GB18030,
Big5, Latin-1 last with a warning; binary and over-size files refused in one sentence. Each reading names its
encoding, and the sidebar says it beside the upload."""
import pytest

from rnn_core import corpus as C
from rnn_core.data import tokenize_corpus
from rnn_core.variants import heldout_tokens
from tests.test_dashboard_pages import assert_clean, open_app, texts

# Real sentences, as a Chinese Windows user saves them: simplified in GBK, traditional in Big5.
SIMPLIFIED = [
    "床前明月光，疑是地上霜。举头望明月，低头思故乡。",
    "循环神经网络读取文本，一次一个词元。",
    "它把读到的内容保存在隐状态中。",
    "我们今天学习循环神经网络。",
    "梯度裁剪防止梯度爆炸。",
    "困惑度越低，模型越好。",
    "“你好，”他说，“今天天气很好！”",
    "人工智能正在改变世界。",
    "这是一个用简体中文写成的文本文件，保存时使用了GBK编码。",
    "时间旅行者向我们解释一个深奥的问题。",
]
TRADITIONAL = [
    "床前明月光，疑是地上霜。舉頭望明月，低頭思故鄉。",
    "循環神經網路讀取文本，一次一個詞元。",
    "它把讀到的內容保存在隱狀態中。",
    "我們今天學習循環神經網路。",
    "「你好，」他說，「今天天氣很好！」",
    "人工智慧正在改變世界。深度學習是機器學習的一個分支。",
    "這是一個用繁體中文寫成的文字檔，儲存時使用了Big5編碼。",
    "在資訊科技快速發展的今天，開發及測試軟體的速度是不容忽視的課題。",
    "時間旅行者向我們解釋一個深奧的問題。",
]
LESSON = "The Time Traveller (for so it will be convenient to speak of him) was expounding a recondite matter.\n"


def decoded(text: str, codec: str, name: str = "file.txt") -> C.Decoded:
    return C.decode_bytes(text.encode(codec), name)


@pytest.mark.parametrize("sentence", SIMPLIFIED)
def test_a_gbk_sentence_reads_as_gbk(sentence):
    got = decoded(sentence, "gbk")
    assert (got.encoding, got.text, got.warnings) == ("GBK", sentence, [])


@pytest.mark.parametrize("sentence", TRADITIONAL)
def test_a_big5_sentence_reads_as_big5(sentence):
    got = decoded(sentence, "big5")
    assert (got.encoding, got.text, got.warnings) == ("Big5", sentence, [])


def test_a_whole_gbk_file_is_not_latin1_mojibake():
    text = "\n".join(SIMPLIFIED) * 20
    got = decoded(text, "gbk")
    assert got.encoding == "GBK" and got.text == text
    assert "Ç" not in got.text and "Ã" not in got.text  # what Latin-1 made of it


def test_gb18030_beyond_gbk_reads_as_gb18030():
    text = "𠮷野家的牛肉饭很好吃。我们一起去吃吧😀\n" + SIMPLIFIED[0]  # 𠮷 and 😀: four-byte GB18030
    with pytest.raises(UnicodeEncodeError):
        text.encode("gbk")
    got = decoded(text, "gb18030")
    assert (got.encoding, got.text) == ("GB18030", text)


def test_every_six_character_stretch_of_the_sentences_reads_in_its_own_encoding():
    # Short texts are where GBK and Big5 overlap: each stretch of six characters still reads right.
    for sentences, codec, encoding in ((SIMPLIFIED, "gbk", "GBK"), (TRADITIONAL, "big5", "Big5")):
        stretches = {s[i:i + 6] for s in sentences for i in range(len(s) - 5)}
        wrong = [s for s in sorted(stretches) if decoded(s, codec).encoding != encoding]
        assert len(stretches) > 100 and not wrong, wrong


def test_a_tie_between_gbk_and_big5_goes_to_gbk():
    # 你好 in GBK is 斕疑 in Big5: both readings are common characters, and the rule picks GB18030's.
    assert b"\xc4\xe3\xba\xc3".decode("cp950") == "斕疑"
    assert decoded("你好", "gbk").encoding == "GBK"


@pytest.mark.parametrize("codec, encoding", [
    ("utf-8", "UTF-8"), ("utf-8-sig", "UTF-8 (BOM)"), ("utf-16", "UTF-16 LE (BOM)"),
    ("utf-32", "UTF-32 LE (BOM)"),
])
@pytest.mark.parametrize("text", [LESSON, SIMPLIFIED[0] + "\n", TRADITIONAL[0] + "\n"], ids=["en", "zh", "zh-tw"])
def test_unicode_encodings_read_as_themselves(codec, encoding, text):
    got = decoded(text * 5, codec)
    assert (got.encoding, got.text, got.warnings) == (encoding, text * 5, [])


@pytest.mark.parametrize("text", [LESSON, SIMPLIFIED[0] + "\n"], ids=["en", "zh"])
@pytest.mark.parametrize("codec, bom, encoding", [
    ("utf-16-le", b"\xff\xfe", "UTF-16 LE (BOM)"), ("utf-16-be", b"\xfe\xff", "UTF-16 BE (BOM)"),
    ("utf-32-be", b"\x00\x00\xfe\xff", "UTF-32 BE (BOM)"),
])
def test_utf16_with_a_bom_is_text_not_binary(codec, bom, encoding, text):
    payload = bom + (text * 5).encode(codec)
    assert b"\x00" in payload  # the NUL bytes that once made it "binary"
    got = C.decode_bytes(payload, "notepad.txt")
    assert (got.encoding, got.text) == (encoding, text * 5)


@pytest.mark.parametrize("codec, encoding", [("utf-16-le", "UTF-16 LE"), ("utf-16-be", "UTF-16 BE")])
def test_utf16_without_a_bom_is_read_by_its_byte_order(codec, encoding):
    text = (LESSON + SIMPLIFIED[2] + "一\n") * 3  # 一 is U+4E00: a NUL byte on the other side too
    got = decoded(text, codec)
    assert (got.encoding, got.text) == (encoding, text)


def test_latin1_is_the_last_resort_with_its_warning():
    text = "Größere Äpfel; l'élève a étudié la crème brûlée à l'école, où l'été était très chaud.\n" * 3
    got = decoded(text, "latin-1", "menu.txt")
    assert (got.encoding, got.text) == ("Latin-1", text)
    assert [w.key for w in got.warnings] == ["read_as_latin1"]
    assert got.warnings[0] == "menu.txt is not valid UTF-8; it was read as Latin-1, so some characters may differ."


@pytest.mark.parametrize("payload, key", [
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 4, "binary_nul"),
    (b"\x00\x01\x02" * 100, "binary_nul"),
    (b"\x00\x01binary" * 50, "binary_nul"),
    (b"\xff\xfe" + b"\x00\xd8" * 50, "binary_nul"),  # a UTF-16 mark before unpaired surrogates
    (b"\x01\x02\x03\x04abc" * 100, "binary_control"),
], ids=["png", "nul", "nul-text", "bad-utf16", "control"])
def test_binary_is_refused(payload, key):
    with pytest.raises(C.CorpusError) as caught:
        C.decode_bytes(payload, "x.bin")
    assert caught.value.key == key and str(caught.value).startswith("x.bin looks binary")


def test_a_file_over_the_cap_is_refused_naming_its_size_and_the_cap(tmp_path):
    with pytest.raises(C.CorpusError) as caught:
        C.decode_bytes(b"a" * (C.MAX_CORPUS_BYTES + 1), "big.txt")
    assert str(caught.value) == "big.txt is 5.1 MB; the limit is 5 MB."  # rounded up: never "5.0 of 5"
    assert caught.value.key == "file_too_large" and caught.value.values == {"name": "big.txt", "mb": "5.1",
                                                                            "limit": "5"}
    assert C.decode_bytes(b"a" * C.MAX_CORPUS_BYTES, "cap.txt").encoding == "UTF-8"  # the cap itself is allowed
    path = tmp_path / "huge.txt"
    with open(path, "wb") as f:
        f.truncate(12 * 2**20)  # sparse: refused by its size, never read
    with pytest.raises(C.CorpusError, match=r"^huge.txt is 12.0 MB; the limit is 5 MB\.$"):
        C.read_file(path)


def test_a_file_on_disk_and_a_held_out_upload_go_through_the_same_decoding(tmp_path):
    path = tmp_path / "zh_gbk.txt"
    text = "\n".join(SIMPLIFIED) * 10
    path.write_bytes(text.encode("gbk"))
    corpus = C.load_corpus(str(path))  # the CLI's --corpus FILE
    assert corpus.encoding == "GBK" and "".join(corpus.lines) == text
    tc = tokenize_corpus(C.corpus_from_text((LESSON * 20).encode("utf-8"), "lesson.txt"), "char")
    assert tc.source.encoding == "UTF-8"
    held = "the time traveller smiled and held up the lever\n" * 5
    from_utf16 = heldout_tokens("upload:held.txt", tc, "char", text=held.encode("utf-16"))  # Windows Notepad
    assert from_utf16 == heldout_tokens("upload:held.txt", tc, "char", text=held.encode("utf-8"))
    assert tc.vocab.to_tokens(from_utf16[:8]) == list("the time")


def test_decode_text_keeps_its_shape():
    assert C.decode_text("你好，世界。".encode("gbk"), "a.txt") == ("你好，世界。", [])

# ---------------------------------------------------------------- the page

def test_a_gbk_upload_trains_on_chinese_and_the_sidebar_names_the_encoding():
    at = open_app("data", corpus="upload", clean="keep", batch=4, steps=8)
    at.sidebar.file_uploader[0].upload("zh_gbk.txt", ("\n".join(SIMPLIFIED) * 10).encode("gbk"),
                                       "text/plain").run()
    assert_clean(at)
    assert not at.sidebar.error and not at.sidebar.warning
    assert "zh_gbk.txt was read as GBK." in texts(at.sidebar.caption)
    tokens = set(at.dataframe[0].value["token"])
    assert {"循", "环", "隐", "状", "态"} <= tokens and not tokens & set("ÇÃÂ")


def test_in_chinese_the_encoding_is_named_in_chinese():
    at = open_app("data", lang="zh", corpus="upload", clean="keep", batch=4, steps=8)
    at.sidebar.file_uploader[0].upload("zh_big5.txt", ("\n".join(TRADITIONAL) * 10).encode("big5"),
                                       "text/plain").run()
    assert_clean(at)
    assert "zh_big5.txt 按 Big5 编码读取。" in texts(at.sidebar.caption)
    assert {"隱", "狀", "態"} <= set(at.dataframe[0].value["token"])


def test_with_no_file_held_the_sidebar_names_the_cap_and_an_oversize_file_is_refused_by_size():
    at = open_app("data", corpus="upload")
    assert_clean(at)
    warning = texts(at.sidebar.warning)
    assert "at most 5 MB" in warning and "uploaded yet" not in warning  # true after Streamlit refused a big file
    at.sidebar.file_uploader[0].upload("big.txt", b"a" * (C.MAX_CORPUS_BYTES + 1), "text/plain").run()
    assert_clean(at)
    assert "big.txt is 5.1 MB; the limit is 5 MB." in texts(at.sidebar.error)

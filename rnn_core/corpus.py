"""Corpora: the lesson's Time Machine text, user files and uploads, and built-in generated texts.

The lesson (d2l 8.5, via 8.2) downloads ``timemachine.txt``, checks its SHA-1 and cleans each line with
``re.sub('[^A-Za-z]+', ' ', line).strip().lower()``. The built-in corpora need no file, are deterministic
per seed, and have structure a small RNN can learn and a student can see in the hidden units.
"""
from __future__ import annotations

import codecs
import hashlib
import math
import os
import random
import re
import tempfile
import unicodedata
import urllib.request
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from .errors import UserError, UserMessage

DATA_DIR = Path(__file__).resolve().parent.parent / "data"
TIME_MACHINE_FILE = "timemachine.txt"
TIME_MACHINE_URL = "http://d2l-data.s3-accelerate.amazonaws.com/timemachine.txt"
TIME_MACHINE_SHA1 = "090b5e7e70c295757f55df93cb0a180b9691891a"

# One place for the upload/file size cap (the dashboard and .streamlit/config.toml follow it).
MAX_CORPUS_BYTES = 5 * 1024 * 1024


class CorpusError(UserError, ValueError):
    """A corpus that cannot be used; the message says what to do."""


@dataclass
class Corpus:
    """Raw lines of a text plus where they came from."""

    name: str
    lines: list[str]
    source: str  # "time_machine" | "file" | "upload" | "builtin"
    note: str = ""  # human-readable origin, e.g. "downloaded and verified" or a decode warning
    warnings: list[str] = field(default_factory=list)
    keep_punct: bool = False  # default cleaning: True where punctuation is the content (parentheses)
    encoding: str = ""  # the encoding a file or upload was read in ("UTF-8", "GBK", ...); "" for other texts


# ---------------------------------------------------------------- cleaning

# "lesson": the lesson's a-z and space, lower case. "keep": every character (NFKC), whitespace collapsed,
# so a Chinese or other Unicode text trains at character level.
CLEANINGS = ("lesson", "keep")


def clean_line(line: str, keep_case: bool = False, keep_punct: bool = False, mode: str = "lesson") -> str:
    """The lesson's cleaning: non-letters become one space, strip, lowercase (each optional).

    ``mode="keep"``: NFKC-normalise, collapse whitespace to one space and strip; nothing else changes.
    """
    if mode == "keep":
        return re.sub(r"\s+", " ", unicodedata.normalize("NFKC", line)).strip()
    if mode != "lesson":
        raise CorpusError(f"Unknown cleaning {mode!r}: use one of {', '.join(CLEANINGS)}.", "unknown_cleaning",
                          mode=mode, choices=", ".join(CLEANINGS))
    if not keep_punct:
        line = re.sub("[^A-Za-z]+", " ", line)
    else:
        line = re.sub(r"\s+", " ", line)
    line = line.strip()
    return line if keep_case else line.lower()


def clean_lines(lines: list[str], keep_case: bool = False, keep_punct: bool = False,
                mode: str = "lesson") -> list[str]:
    """Clean every line as the lesson does (empty lines stay, as in the lesson)."""
    return [clean_line(line, keep_case, keep_punct, mode) for line in lines]


# ---------------------------------------------------------------- the Time Machine

def sha1_of(path: Path) -> str:
    """SHA-1 hex digest of a file."""
    h = hashlib.sha1()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def time_machine_path(data_dir: Path | str | None = None) -> Path:
    """Where the Time Machine text is expected: in ``data_dir``, else $RNN_LAB_DATA, else data/."""
    return Path(data_dir or os.environ.get("RNN_LAB_DATA") or DATA_DIR) / TIME_MACHINE_FILE


def time_machine_status(data_dir: Path | str | None = None) -> str:
    """'present' if a verified copy is on disk, 'corrupt' if the file is wrong, else 'missing'."""
    path = time_machine_path(data_dir)
    if not path.exists():
        return "missing"
    return "present" if sha1_of(path) == TIME_MACHINE_SHA1 else "corrupt"


def download_time_machine(data_dir: Path | str | None = None, url: str = TIME_MACHINE_URL,
                          timeout: float = 10.0) -> Path:
    """Download the lesson's file, check its SHA-1 and move it into place atomically."""
    path = time_machine_path(data_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            payload = response.read()
    except Exception as exc:  # any network failure reads the same to a user
        raise CorpusError(
            f"The Time Machine text is not in {path.parent} and could not be downloaded ({exc.__class__.__name__}). "
            f"Copy timemachine.txt (SHA-1 {TIME_MACHINE_SHA1}) into {path.parent}, or use a built-in corpus.",
            "time_machine_download", folder=str(path.parent), reason=exc.__class__.__name__, sha1=TIME_MACHINE_SHA1
        ) from None
    digest = hashlib.sha1(payload).hexdigest()
    if digest != TIME_MACHINE_SHA1:
        raise CorpusError(f"Downloaded timemachine.txt has SHA-1 {digest}, expected {TIME_MACHINE_SHA1}; not saved.",
                          "time_machine_sha1", digest=digest, sha1=TIME_MACHINE_SHA1)
    # Write beside the target, then rename: a reader never sees a half-written file.
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".part")
    with os.fdopen(fd, "wb") as f:
        f.write(payload)
    os.replace(tmp, path)
    return path


def read_time_machine(data_dir: Path | str | None = None, download: bool = True) -> Corpus:
    """The Time Machine's raw lines, downloading (with SHA-1 check) when absent."""
    path = time_machine_path(data_dir)
    status = time_machine_status(data_dir)
    note = "found in data/ (SHA-1 verified)"
    if status != "present":
        if not download:
            raise CorpusError(
                f"timemachine.txt is {status} in {path.parent}. Copy the lesson's file there "
                f"(SHA-1 {TIME_MACHINE_SHA1}) or use a built-in corpus.",
                "time_machine_missing" if status == "missing" else "time_machine_corrupt",
                folder=str(path.parent), sha1=TIME_MACHINE_SHA1
            )
        download_time_machine(data_dir)
        note = "downloaded and SHA-1 verified"
    with open(path, encoding="utf-8") as f:
        lines = f.readlines()
    return Corpus("time_machine", lines, "time_machine", note)


# ---------------------------------------------------------------- files and uploads

def _mb(n_bytes: int) -> str:
    """A size in MB as Streamlit counts them (2**20 bytes), rounded up: a file over the cap never reads as at it."""
    return f"{math.ceil(n_bytes * 10 / 2**20) / 10:.1f}"


def check_size(n_bytes: int, name: str = "upload") -> None:
    """Refuse a text over MAX_CORPUS_BYTES in one sentence that names its size and the cap."""
    if n_bytes > MAX_CORPUS_BYTES:
        limit = f"{MAX_CORPUS_BYTES / 2**20:g}"
        raise CorpusError(f"{name} is {_mb(n_bytes)} MB; the limit is {limit} MB.", "file_too_large", name=name,
                          mb=_mb(n_bytes), limit=limit)


# Byte-order marks, longest first: the UTF-32 LE mark begins with the UTF-16 LE one.
_BOMS = ((codecs.BOM_UTF32_LE, "utf-32-le", "UTF-32 LE (BOM)"), (codecs.BOM_UTF32_BE, "utf-32-be", "UTF-32 BE (BOM)"),
         (codecs.BOM_UTF8, "utf-8", "UTF-8 (BOM)"), (codecs.BOM_UTF16_LE, "utf-16-le", "UTF-16 LE (BOM)"),
         (codecs.BOM_UTF16_BE, "utf-16-be", "UTF-16 BE (BOM)"))
# Punctuation of Chinese text (CJK symbols and the full-width forms), common in either script.
_CJK_PUNCT = frozenset("，。、；：？！“”‘’（）《》〈〉「」『』【】〔〕—…·～　") | frozenset(map(chr, range(0xFF01, 0xFF5F)))
_SAMPLE_CHARS = 20_000  # enough text to judge an encoding by; the whole file is still decoded strictly


@lru_cache(maxsize=1 << 16)
def _common_in(char: str) -> tuple[bool, bool]:
    """Whether a character is common in simplified text (GB2312's hanzi) and in traditional text (Big5's
    frequently used hanzi, A440-C67E); ASCII, whitespace and CJK punctuation are common in both."""
    if char.isascii() or char.isspace() or char in _CJK_PUNCT:
        return True, True
    try:
        gb = char.encode("gb2312")
        simplified = len(gb) == 2 and gb[0] >= 0xB0  # rows B0-F7: the 6,763 hanzi; A1-A9 are symbols and kana
    except UnicodeEncodeError:
        simplified = False
    try:
        big5 = char.encode("big5")
        traditional = len(big5) == 2 and 0xA440 <= big5[0] << 8 | big5[1] <= 0xC67E
    except UnicodeEncodeError:
        traditional = False
    return simplified, traditional


def _rare(text: str) -> tuple[int, int]:
    """(characters that are rare in the text's own script, non-ASCII characters), over the text's first part.

    A text is simplified or traditional, so its rare characters are counted against whichever script fits it
    better. The right decoding of a Chinese text is made of common characters; a wrong one (GBK bytes read as
    Big5, or Big5 read as GBK) lands on rare hanzi, kana, bopomofo and private-use characters.
    """
    sample = text[:_SAMPLE_CHARS]
    not_simplified = not_traditional = non_ascii = 0
    for char in sample:
        simplified, traditional = _common_in(char)
        not_simplified += not simplified
        not_traditional += not traditional
        non_ascii += not (char.isascii() or char.isspace())
    return min(not_simplified, not_traditional), non_ascii


def _strict(payload: bytes, codec: str) -> str | None:
    try:
        return payload.decode(codec)
    except UnicodeDecodeError:
        return None


def _likeliest(candidates: list[tuple[str, str | None]]) -> tuple[str, str] | None:
    """The (encoding, text) whose text has the fewest rare characters, if at most half its non-ASCII characters
    are rare (a third at most); on a tie the earlier candidate."""
    best = None
    for label, text in candidates:
        if text is None:
            continue
        rare, non_ascii = _rare(text)
        if 3 * rare <= non_ascii and (best is None or rare < best[0]):
            best = (rare, label, text)
    return best[1:] if best else None


def _decoded_chinese(payload: bytes) -> tuple[str, str] | None:
    """GBK/GB18030 or Big5 (Windows code page 950), whichever reads as Chinese text; None when neither does.

    Rule: the reading with fewer rare characters wins; a tie goes to GB18030, the encoding of simplified-Chinese
    Windows. A text of a few hanzi can be common characters in both readings (Big5 "機器學習" reads as GBK
    "诀竟厩策"); from about six hanzi on, the wrong reading has rare ones.
    """
    gbk = _strict(payload, "gbk")  # GB18030's two-byte part (the same characters), named as Windows names it
    gb = ("GBK", gbk) if gbk is not None else ("GB18030", _strict(payload, "gb18030"))
    return _likeliest([gb, ("Big5", _strict(payload, "cp950"))])


def _decoded_utf16_without_bom(payload: bytes) -> tuple[str, str] | None:
    """UTF-16 without a byte-order mark, LE or BE, whichever reads as text; None when neither does."""
    if len(payload) % 2:
        return None
    candidates = []
    for codec, label in (("utf-16-le", "UTF-16 LE"), ("utf-16-be", "UTF-16 BE")):
        text = _strict(payload, codec)
        candidates.append((label, None if text is None or "\x00" in text or _mostly_control(text) else text))
    return _likeliest(candidates)


def _mostly_control(text: str) -> bool:
    """More than 5% control characters (other than line breaks and tabs) in the text's first 8,192."""
    control = sum(1 for c in text[:8192] if ord(c) < 32 and c not in "\n\r\t\f")
    return control > 0.05 * min(len(text), 8192)


@dataclass
class Decoded:
    """A text file's content and the encoding it was read in."""

    text: str
    encoding: str  # as a user knows it: "UTF-8", "UTF-8 (BOM)", "UTF-16 LE (BOM)", "GBK", "Big5", "Latin-1"
    warnings: list[str] = field(default_factory=list)


def decode_bytes(payload: bytes, name: str = "upload") -> Decoded:
    """Decode a text file as what it is; refuse one that is empty, over the size cap or binary.

    Tried in order: a byte-order mark (UTF-8, UTF-16, UTF-32); UTF-16 without one when the bytes hold NULs
    (otherwise NULs mean binary); strict UTF-8; GBK/GB18030 or Big5, whichever reads as common Chinese
    characters; Latin-1 last, with a warning, since it reads any bytes.
    """
    if len(payload) == 0:
        raise CorpusError(f"{name} is empty: choose a text file with at least a few hundred characters.", "empty_file",
                          name=name)
    check_size(len(payload), name)
    decoded = None
    for bom, codec, label in _BOMS:
        if payload.startswith(bom):
            text = _strict(payload[len(bom):], codec)
            if text is not None:
                decoded = Decoded(text, label)
            break
    if decoded is None and b"\x00" in payload:
        found = _decoded_utf16_without_bom(payload)
        if found is None:
            raise CorpusError(f"{name} looks binary (it contains NUL bytes): choose a plain-text file.", "binary_nul",
                              name=name)
        decoded = Decoded(found[1], found[0])
    if decoded is None:
        text = _strict(payload, "utf-8")
        decoded = Decoded(text, "UTF-8") if text is not None else None
    if decoded is None:
        found = _decoded_chinese(payload)
        decoded = Decoded(found[1], found[0]) if found else None
    if decoded is None:
        decoded = Decoded(payload.decode("latin-1"), "Latin-1", [UserMessage(
            f"{name} is not valid UTF-8; it was read as Latin-1, so some characters may differ.", "read_as_latin1",
            name=name)])
    if "\x00" in decoded.text or _mostly_control(decoded.text):
        raise CorpusError(f"{name} looks binary (many control characters): choose a plain-text file.",
                          "binary_control", name=name)
    return decoded


def decode_text(payload: bytes, name: str = "upload") -> tuple[str, list[str]]:
    """The text of a file's bytes and its warnings (:func:`decode_bytes` without the encoding's name)."""
    decoded = decode_bytes(payload, name)
    return decoded.text, decoded.warnings


def corpus_from_text(text: str | bytes, name: str = "upload") -> Corpus:
    """A corpus from raw text or bytes (e.g. an uploaded file), bytes decoded by :func:`decode_bytes`."""
    warnings: list[str] = []
    encoding = ""
    if isinstance(text, bytes):
        decoded = decode_bytes(text, name)
        text, encoding, warnings = decoded.text, decoded.encoding, decoded.warnings
    elif not text:
        raise CorpusError(f"{name} is empty: provide a text with at least a few hundred characters.", "empty_text",
                          name=name)
    return Corpus(name, text.splitlines(keepends=True), "upload", "uploaded text", warnings, encoding=encoding)


def read_file(path: Path | str) -> Corpus:
    """A corpus from a text file on disk."""
    path = Path(path)
    if not path.is_file():
        raise CorpusError(f"No such file: {path}. Give a path to a text file, 'time_machine' or a built-in name.",
                          "no_such_file", path=str(path))
    try:
        check_size(path.stat().st_size, path.name)  # before reading: a huge file is never read into memory
        payload = path.read_bytes()
    except OSError as exc:
        raise CorpusError(f"Cannot read {path}: {exc.strerror}.", "cannot_read", path=str(path),
                          reason=str(exc.strerror)) from None
    corpus = corpus_from_text(payload, path.name)
    corpus.source, corpus.note = "file", str(path)
    return corpus


# ---------------------------------------------------------------- built-in generated corpora

def _toy_english(rng: random.Random, n_chars: int) -> list[str]:
    """Sentences from a tiny grammar: subject verb object, with adjectives and conjunctions."""
    subjects = ["the time traveller", "the psychologist", "the medical man", "filby", "the young man",
                "the provincial mayor", "weena", "the morlock", "the machine", "my friend"]
    verbs = ["saw", "built", "followed", "watched", "carried", "remembered", "feared", "found", "held", "lost"]
    adjectives = ["small", "strange", "old", "bright", "silent", "green", "dark", "white", "great", "little"]
    objects = ["the lamp", "a flower", "the lever", "the fire", "a match", "the garden", "the sphinx",
               "the crystal bar", "the hall", "the future"]
    conj = ["and", "but", "while", "because"]
    lines, total = [], 0
    while total < n_chars:
        def clause():
            obj = rng.choice(objects)
            if rng.random() < 0.5:
                article, noun = obj.split(" ", 1)
                obj = f"{article} {rng.choice(adjectives)} {noun}"
            return f"{rng.choice(subjects)} {rng.choice(verbs)} {obj}"
        sentence = clause()
        if rng.random() < 0.4:
            sentence += f" {rng.choice(conj)} {clause()}"
        lines.append(sentence + "\n")
        total += len(sentence) + 1
    return lines


def _parentheses(rng: random.Random, n_chars: int, max_depth: int = 6) -> list[str]:
    """Balanced bracket strings; a unit that tracks nesting depth is the thing to look for."""
    lines, total = [], 0
    while total < n_chars:
        out, depth = [], 0
        length = rng.randint(10, 60)
        while len(out) < length or depth > 0:
            open_p = 0.0 if depth >= max_depth else (1.0 if depth == 0 else 0.5)
            if len(out) >= length:
                open_p = 0.0
            if rng.random() < open_p:
                out.append("(")
                depth += 1
            else:
                out.append(")")
                depth -= 1
        line = "".join(out)
        lines.append(line + "\n")
        total += len(line) + 1
    return lines


def _counting(rng: random.Random, n_chars: int) -> list[str]:
    """Periodic counting patterns like 'a bb ccc dddd': a unit that counts is the thing to look for."""
    letters = "abcdefgh"
    lines, total = [], 0
    while total < n_chars:
        start = rng.randrange(len(letters))
        n = rng.randint(3, len(letters))
        words = [letters[(start + k) % len(letters)] * (k + 1) for k in range(n)]
        line = " ".join(words)
        lines.append(line + "\n")
        total += len(line) + 1
    return lines


_DIGITS = "零一二三四五六七八九"


def chinese_number(n: int) -> str:
    """0..99999 in Chinese number words: 10 十, 12 十二, 105 一百零五, 1010 一千零一十, 20000 二万."""
    if n == 0:
        return _DIGITS[0]
    out, zero = "", False
    for value, unit in ((10000, "万"), (1000, "千"), (100, "百"), (10, "十"), (1, "")):
        digit = n // value % 10
        if digit == 0:
            zero = bool(out)  # a gap inside the number reads 零 once, before the next digit
            continue
        if zero:
            out += _DIGITS[0]
            zero = False
        out += ("" if (digit == 1 and unit == "十" and not out) else _DIGITS[digit]) + unit
    return out


def _chinese_numbers(rng: random.Random, n_chars: int) -> list[str]:
    """Chinese number words counting up ('二十八，二十九，三十。') and sums ('三加四等于七。'):
    a unit that knows the position inside a number, or the place of 十 and 百, is the thing to look for."""
    lines, total = [], 0
    while total < n_chars:
        if rng.random() < 0.6:
            start = rng.randint(1, 120)
            line = "，".join(chinese_number(start + k) for k in range(rng.randint(3, 7))) + "。"
        else:
            a, b = rng.randint(1, 50), rng.randint(1, 50)
            line = f"{chinese_number(a)}加{chinese_number(b)}等于{chinese_number(a + b)}。"
        lines.append(line + "\n")
        total += len(line) + 1
    return lines


BUILTIN_CORPORA = {
    "toy_english": ("Toy English", "sentences from a tiny grammar (subject, verb, adjective, object)", _toy_english),
    "parentheses": ("Balanced parentheses", "nested brackets up to depth 6: can a unit track depth?", _parentheses),
    "counting": ("Counting", "'a bb ccc dddd ...' patterns: can a unit count?", _counting),
    "chinese_numbers": ("中文数字 (Chinese numbers)",
                        "number words counting up and sums ('二十八，二十九，三十。', '三加四等于七。')",
                        _chinese_numbers),
}
# Generated texts whose every character is content: cleaned by collapsing whitespace only, never a-z.
KEEPS_EVERY_CHARACTER = {"parentheses", "chinese_numbers"}


def builtin_corpus(name: str, seed: int = 0, n_chars: int = 20_000) -> Corpus:
    """A generated corpus, identical for the same name, seed and length."""
    if name not in BUILTIN_CORPORA:
        raise CorpusError(f"Unknown built-in corpus {name!r}; choose one of {', '.join(BUILTIN_CORPORA)}.",
                          "unknown_builtin", name=name, choices=", ".join(BUILTIN_CORPORA))
    title, description, make = BUILTIN_CORPORA[name]
    lines = make(random.Random(seed), n_chars)
    return Corpus(name, lines, "builtin", f"{title}: {description} (seed {seed})",
                  keep_punct=name in KEEPS_EVERY_CHARACTER)


def load_corpus(source: str | Path | bytes = "time_machine", seed: int = 0, download: bool = True,
                data_dir: Path | str | None = None) -> Corpus:
    """Load raw lines from 'time_machine', a built-in name, a file path, or raw bytes."""
    if isinstance(source, bytes):
        return corpus_from_text(source)
    if source == "time_machine":
        return read_time_machine(data_dir, download=download)
    if source in BUILTIN_CORPORA:
        return builtin_corpus(str(source), seed=seed)
    return read_file(source)

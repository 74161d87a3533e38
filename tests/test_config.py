"""Classroom settings in .streamlit/config.toml agree with the code."""
import tomllib
from pathlib import Path

from rnn_core.corpus import MAX_CORPUS_BYTES

CONFIG = tomllib.loads((Path(__file__).resolve().parent.parent / ".streamlit" / "config.toml").read_text())


def test_the_server_accepts_exactly_the_uploads_rnn_core_reads():
    # a larger cap would let a file upload and then be refused as too large; a smaller one would refuse
    # files the CLI and the library take
    assert CONFIG["server"]["maxUploadSize"] * 2**20 == MAX_CORPUS_BYTES

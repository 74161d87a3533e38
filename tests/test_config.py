"""Classroom settings in .streamlit/config.toml agree with the code."""
import tomllib
from pathlib import Path

from rnn_core.corpus import MAX_CORPUS_BYTES

CONFIG = tomllib.loads((Path(__file__).resolve().parent.parent / ".streamlit" / "config.toml").read_text())


def test_upload_cap_is_the_one_in_rnn_core():
    assert CONFIG["server"]["maxUploadSize"] * 2**20 == MAX_CORPUS_BYTES


def test_classroom_safety_settings():
    assert CONFIG["client"]["showErrorDetails"] == "none"  # no tracebacks on the page
    assert CONFIG["client"]["toolbarMode"] == "minimal"
    assert CONFIG["server"]["enableXsrfProtection"] is True
    assert CONFIG["server"]["fileWatcherType"] == "none"  # the watcher trips over torch

"""Waiting on state in tests: poll a condition with a generous timeout and fail (never hang) when it stays false."""
from __future__ import annotations

import time

import pytest


def until(condition, timeout_s: float = 60.0, what: str = "the background run made no progress") -> None:
    """Wait until ``condition()`` is true (a background run's progress: no script runs meanwhile); pytest.fail
    with ``what`` after ``timeout_s`` seconds."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(what)
        time.sleep(0.05)

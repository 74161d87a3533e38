"""Shared fixtures: the Time Machine text is looked for in data/; in CI its absence is a failure."""
import os

import pytest

from rnn_core.corpus import time_machine_status


@pytest.fixture(scope="session")
def time_machine():
    """Skip (locally) or fail (CI=true) unless data/timemachine.txt is the lesson's verified file."""
    status = time_machine_status()
    if status != "present":
        message = (f"data/timemachine.txt is {status}: copy the lesson's file there "
                   "(.ci/run copies it from ../shared/data/)")
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return "time_machine"

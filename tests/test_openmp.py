"""rnn_core sets OpenMP's spin count before torch loads it, and keeps a value the environment gives."""
import os
import subprocess
import sys

import pytest

PROBE = "import rnn_core, os; print(os.environ.get('GOMP_SPINCOUNT'), rnn_core.openmp.applied)"


def spin_after_import(**env) -> str:
    clean = {k: v for k, v in os.environ.items() if k not in ("GOMP_SPINCOUNT", "OMP_WAIT_POLICY")}
    out = subprocess.run([sys.executable, "-c", PROBE], env={**clean, **env}, capture_output=True, text=True,
                         check=True)
    return out.stdout.strip()


@pytest.mark.parametrize("env, expected", [
    ({}, "1000 True"),  # set before torch loads: libgomp reads it
    ({"GOMP_SPINCOUNT": "300000"}, "300000 False"),  # the user's value is kept
    ({"OMP_WAIT_POLICY": "PASSIVE"}, "None False"),  # so is the user's policy
])
def test_spin_count_set_before_torch_unless_given(env, expected):
    assert spin_after_import(**env) == expected

"""OpenMP's waiting threads sleep soon instead of spinning: ``GOMP_SPINCOUNT=1000`` unless set already.

Imported first by ``rnn_core`` (before torch), because libgomp, torch's OpenMP runtime, reads its settings once
when torch loads it. By default a libgomp thread that waits for the others at the end of a parallel region
(every threaded matmul, reduction and the fast engine's kernels: about 10 per minibatch) spins for up to
300,000 rounds before it sleeps. Alone on its cores that is harmless; on a shared machine (a browser, a test
run, another server) the spinning threads take the cores from the very threads they wait for. Measured on 2
cores at load ~10, the fast engine with 2 threads trained at 3,500-6,400 tokens/s with the default and at
25,000-30,000 with 1,000 rounds (docs/performance.md). A value in the environment (``GOMP_SPINCOUNT``, or
``OMP_WAIT_POLICY``) is kept as it is: ``GOMP_SPINCOUNT=300000`` gives libgomp's default back.
"""
from __future__ import annotations

import os
import sys

SPIN_COUNT = "1000"  # rounds a waiting thread spins before it sleeps (libgomp's default: 300,000)

#: True when this process's OpenMP runtime takes the setting: torch was not loaded before rnn_core.
applied = False
if "GOMP_SPINCOUNT" not in os.environ and "OMP_WAIT_POLICY" not in os.environ:
    os.environ["GOMP_SPINCOUNT"] = SPIN_COUNT  # child processes (a benchmark's, a worker's) inherit it too
    applied = "torch" not in sys.modules

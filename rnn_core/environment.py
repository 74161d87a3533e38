"""The environment variables RNN Lab reads, parsed in one place.

====================== ===================================================== =============================
variable               what it sets                                          default
====================== ===================================================== =============================
RNN_LAB_RUNS           the run store's folder                                ``runs/`` in the repository
RNN_LAB_RUNS_MAX_MB    the run store's size cap, in MB (a positive number)   1024
RNN_LAB_TRAIN_THREADS  torch threads of each training turn (1 to 1024)       chosen per run
RNN_LAB_DATA           the folder that holds timemachine.txt                 ``data/``
RNN_LAB_NO_EXT         ``1`` turns the fast engine's C++ kernels off         on
RNN_LAB_EXERCISE_SIZES the exercise pairs' sizes, e.g. ``hidden=32,epochs=20`` the exercises' own
RNN_LAB_WORKERS        worker processes that train the runs: ``0`` trains in  ``auto``: sized to the machine
                       the server's process, ``auto`` or 1 to 256             (``rnn_core.workers``)
RNN_LAB_RAY_ADDRESS    a Ray cluster's address: each run a job there          unset: this machine
RNN_LAB_MAX_RUNS       runs training at once on the server (1 to 10000)      128
====================== ===================================================== =============================

A value that cannot be used never crashes a page or the CLI: :func:`read` uses the default instead and names
the value in one sentence (a :class:`~rnn_core.errors.UserMessage`); :func:`problems` adds what only the file
system can tell (a runs folder that cannot be written, a data folder that is a file). The dashboard says each
problem once when a session starts; the server's log has them too.
"""
from __future__ import annotations

import logging
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from .errors import UserMessage

log = logging.getLogger("rnn_lab.environment")

RUNS, RUNS_MAX_MB, TRAIN_THREADS = "RNN_LAB_RUNS", "RNN_LAB_RUNS_MAX_MB", "RNN_LAB_TRAIN_THREADS"
DATA, NO_EXT, EXERCISE_SIZES = "RNN_LAB_DATA", "RNN_LAB_NO_EXT", "RNN_LAB_EXERCISE_SIZES"
WORKERS, RAY_ADDRESS, MAX_RUNS = "RNN_LAB_WORKERS", "RNN_LAB_RAY_ADDRESS", "RNN_LAB_MAX_RUNS"
MAX_WORKERS = 256
# Runs training at once on one server (every session's; a session has its own cap of 3): a class of 60 on one
# server fits, each run's turns then shared out by the scheduler
DEFAULT_MAX_RUNS, MAX_MAX_RUNS = 128, 10_000
DEFAULT_RUNS_MAX_MB = 1024
MAX_THREADS = 1024
# The sizes an exercise pair may be given, with their bounds (rnn_core.guards.LIMITS' for the same settings)
SIZE_BOUNDS = {"hidden": (1, 4096), "epochs": (1, 100_000), "batch": (1, 1024), "steps": (1, 1000)}
MAX_SHOWN = 40  # characters of a bad value quoted in a message


@dataclass(frozen=True)
class Environment:
    """The parsed values (defaults where a variable is unset or bad) and the sentences about bad ones."""

    runs: Path | None = None  # None: the default folder
    runs_max_mb: float = DEFAULT_RUNS_MAX_MB
    train_threads: int | None = None  # None: chosen per run
    data: Path | None = None  # None: the default folder
    no_ext: bool = False
    exercise_sizes: tuple[tuple[str, int], ...] = ()  # (): the exercises' own sizes
    problems: tuple[UserMessage, ...] = ()
    workers: int | None = None  # None: auto (rnn_core.workers.default_workers); 0: in the server's process
    ray_address: str | None = None  # None: no Ray cluster
    max_runs: int = DEFAULT_MAX_RUNS  # runs training at once on the server (the schedulers' max_active)

    @property
    def runs_max_bytes(self) -> int:
        """The run store's size cap in bytes."""
        return max(1, int(self.runs_max_mb * (1 << 20)))


def _shown(value: str) -> str:
    return value if len(value) <= MAX_SHOWN else value[:MAX_SHOWN - 3] + "..."


def read(environ: Mapping[str, str] | None = None) -> Environment:
    """The RNN_LAB_* variables of ``environ`` (default: this process's), parsed; never raises."""
    env = os.environ if environ is None else environ
    problems: list[UserMessage] = []

    def raw(name: str) -> str | None:
        value = env.get(name)
        return value.strip() if value is not None and value.strip() else None

    runs = Path(raw(RUNS)) if raw(RUNS) else None

    runs_max_mb: float = DEFAULT_RUNS_MAX_MB
    if (value := raw(RUNS_MAX_MB)) is not None:
        try:
            mb = float(value)
        except ValueError:
            mb = math.nan
        if math.isfinite(mb) and mb > 0:
            runs_max_mb = mb
        else:
            problems.append(UserMessage(
                f"{RUNS_MAX_MB}={_shown(value)} is not a positive number of megabytes: the run store keeps up to "
                f"{DEFAULT_RUNS_MAX_MB} MB, the default.", "env_runs_max_mb", name=RUNS_MAX_MB, value=_shown(value),
                default=DEFAULT_RUNS_MAX_MB))

    # A whole number in a range, else the default (None) and a problem said with the variable's own message id
    def whole(name: str, lo: int, hi: int, key: str, sentence: str, accepted: tuple[str, ...] = (),
              **values) -> int | None:
        value = raw(name)
        if value is None or value.lower() in accepted:
            return None
        if (n := _whole(value, lo, hi)) is None:
            problems.append(UserMessage(f"{name}={_shown(value)} {sentence}", key, name=name, value=_shown(value),
                                        hi=hi, **values))
        return n

    train_threads = whole(TRAIN_THREADS, 1, MAX_THREADS, "env_train_threads",
                          f"is not a whole number from 1 to {MAX_THREADS}: each run's thread count is chosen as it "
                          "trains, the default.")

    data = Path(raw(DATA)) if raw(DATA) else None

    no_ext = False
    if (value := raw(NO_EXT)) is not None:
        no_ext = value == "1"
        if value not in ("0", "1"):
            problems.append(UserMessage(
                f"{NO_EXT}={_shown(value)} is neither 0 nor 1: the C++ kernels stay on (only 1 turns them off).",
                "env_no_ext", name=NO_EXT, value=_shown(value)))

    sizes = ()
    if (value := raw(EXERCISE_SIZES)) is not None:
        sizes = parse_sizes(value)
        if sizes is None:
            sizes = ()
            problems.append(UserMessage(
                f"{EXERCISE_SIZES}={_shown(value)} is not a list such as hidden=32,epochs=20 (keys "
                f"{', '.join(SIZE_BOUNDS)}, each a whole number within the app's limits): the exercises keep "
                "their own sizes.", "env_exercise_sizes", name=EXERCISE_SIZES, value=_shown(value),
                keys=", ".join(SIZE_BOUNDS)))

    workers = whole(WORKERS, 0, MAX_WORKERS, "env_workers",
                    f"is neither auto nor a whole number from 0 to {MAX_WORKERS}: the number of worker processes is "
                    "sized to the machine, the default.", accepted=("auto",))

    max_runs = whole(MAX_RUNS, 1, MAX_MAX_RUNS, "env_max_runs",
                     f"is not a whole number from 1 to {MAX_MAX_RUNS}: up to {DEFAULT_MAX_RUNS} runs train at once "
                     "on this server, the default.", default=DEFAULT_MAX_RUNS)

    return Environment(runs, runs_max_mb, train_threads, data, no_ext, sizes, tuple(problems), workers=workers,
                       ray_address=raw(RAY_ADDRESS), max_runs=max_runs or DEFAULT_MAX_RUNS)


def _whole(value: str, lo: int, hi: int) -> int | None:
    """A whole number from lo to hi written in digits, else None."""
    return int(value) if value.isdigit() and lo <= int(value) <= hi else None


def parse_sizes(spec: str) -> tuple[tuple[str, int], ...] | None:
    """``"hidden=32,epochs=20"`` as ``(("hidden", 32), ("epochs", 20))``; None when it is not such a list."""
    sizes = {}
    for part in spec.split(","):
        key, _, value = (x.strip() for x in part.partition("="))
        if key not in SIZE_BOUNDS or (size := _whole(value, *SIZE_BOUNDS[key])) is None:
            return None
        sizes[key] = size
    return tuple(sizes.items())


def problems(environ: Mapping[str, str] | None = None) -> list[UserMessage]:
    """Every problem with the environment: bad values (:func:`read`), then a runs folder that cannot be written
    and a data folder that is not a folder. Each is logged once per process."""
    from .runs import DEFAULT_ROOT, RunStore, RunStoreError  # local: the run store reads this module

    env = read(environ)
    found = list(env.problems)
    try:
        RunStore(env.runs or DEFAULT_ROOT, reference_root=None, max_bytes=env.runs_max_bytes).check()
    except RunStoreError as exc:
        found.append(UserMessage(str(exc), exc.key, **exc.values))
    if env.data is not None and env.data.exists() and not env.data.is_dir():
        found.append(UserMessage(
            f"{DATA}={env.data} is a file, not a folder: The Time Machine cannot be read from it.",
            "env_data_folder", name=DATA, value=str(env.data)))
    for problem in found:
        if problem not in _logged:
            _logged.add(problem)
            log.warning("%s", problem)
    return found


_logged: set[str] = set()

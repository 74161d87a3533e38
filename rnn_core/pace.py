"""How long a run has left: its own recent pace, blended with the pace measured before for the same settings.

A run's first epoch is no guide (thread probing, first-call costs, a page loading beside it: one run showed
13 min 35 s to go for a run that took 25 s in all), and a short window follows every busy moment. So the
estimate starts from a **prior**, the wall-clock seconds per token that earlier runs with the same cost
settings took (:func:`pace_key`: engine, hidden, batch, steps, vocabulary, activation, input, device), kept in
``pace.json`` in the run store, and moves to the run's own pace as the run's own time grows:

    s/epoch = w * own + (1 - w) * prior,     w = t_own / (t_own + PRIOR_WEIGHT_S)

where ``own`` is the run's wall-clock seconds per epoch over its recent epochs (the last quarter of the run so
far, at least ``WINDOW_MIN`` epochs, never its first), counting the epoch in progress, and ``t_own`` the run's
running time since the end of its first epoch. Without a prior the run's own pace is used alone; with
neither (no prior, and none of the second epoch done) there is no estimate: the first epoch alone is never
used. The thread count is not in the key: the scheduler picks it turn by turn, so it is part of the pace
measured.

Pure functions (:func:`own_pace`, :func:`blend`, :func:`eta_s`) take the records as plain data; :class:`Paces`
keeps the priors (in memory, and in each run store's ``pace.json``).
"""
from __future__ import annotations

import json
import math
import threading
import time
from pathlib import Path

WINDOW_MIN = 20  # epochs: the shortest window of the run's own pace once it has that many
PRIOR_WEIGHT_S = 2.0  # seconds of the run's own training that weigh as much as the prior
KEEP_RUNS = 5  # paces kept per key: the prior is their median
FILE = "pace.json"
MIN_EPOCHS = 3  # a run's pace is kept as a prior once it has this many epochs (its first left out)


def pace_key(engine: str, hidden: int, batch: int, steps: int, vocab_size: int, device: str,
             activation: str = "tanh", input: str = "onehot", embed: int = 0) -> str:
    """The settings that set the cost of a token, as one string (``engine`` the engine that runs them)."""
    return (f"engine={engine} hidden={hidden} batch={batch} steps={steps} vocab={vocab_size} device={device} "
            f"activation={activation} input={input} embed={embed}")


def view_key(view) -> str:
    """:func:`pace_key` of a run's view (``rnn_core.runs.RunView``)."""
    from .engines import engine_for
    s = view.settings
    engine = engine_for(s.engine, s.activation, s.input, s.detach)
    return pace_key(engine, s.hidden, s.batch, s.steps, view.vocab_size, view.device, s.activation, s.input,
                    s.embed if s.input == "embedding" else 0)


def own_pace(walls: list[float], wall_s: float, epoch_fraction: float) -> tuple[float, float] | None:
    """The run's own wall-clock seconds per epoch and the seconds of the run it rests on, or None.

    ``walls``: each finished epoch's wall-clock seconds at its end (running time, cumulative); ``wall_s``: the
    run's running time now; ``epoch_fraction``: how much of the epoch in progress is done. The first epoch
    is left out once another epoch (or part of one) follows it; the window is the last quarter of the epochs
    so far, at least ``WINDOW_MIN``. None before any of the second epoch is done.
    """
    n = len(walls)
    if n == 0 or n == 1 and epoch_fraction <= 0:
        return None  # the first epoch alone is no guide: it was 30x the later ones in a run on the page
    # the window: long enough to average out a busy moment, short enough to follow a lasting change such as
    # another run starting
    k = min(max(WINDOW_MIN, n // 4), n - 1)  # whole epochs in the window, after the first
    epochs = k + max(0.0, epoch_fraction)
    seconds = wall_s - walls[n - 1 - k]
    if epochs <= 0 or seconds <= 0:
        return walls[0], walls[0]
    return seconds / epochs, wall_s - walls[0]  # the pace of the window; the run's time after its first epoch


def blend(own: float | None, observed_s: float, prior: float | None, weight_s: float = PRIOR_WEIGHT_S):
    """Seconds per epoch: the run's own pace weighted by the seconds it covers, against the prior's
    ``weight_s``; either alone when the other is missing; None when both are."""
    if own is None:
        return prior
    if prior is None:
        return own
    w = observed_s / (observed_s + weight_s)
    return w * own + (1 - w) * prior


def eta_s(walls: list[float], wall_s: float, epoch_fraction: float, target: int,
          prior_s_per_epoch: float | None) -> float | None:
    """Wall-clock seconds to epoch ``target``, or None when nothing is known yet."""
    own = own_pace(walls, wall_s, epoch_fraction)
    per_epoch = blend(own[0] if own else None, own[1] if own else 0.0, prior_s_per_epoch)
    if per_epoch is None or not math.isfinite(per_epoch):
        return None
    return max(0.0, target - len(walls) - epoch_fraction) * per_epoch


def seconds_per_token(walls: list[float], tokens_per_epoch: int) -> float | None:
    """A finished or running run's pace after its first epoch, per token, to keep as a prior; None before
    ``MIN_EPOCHS`` epochs. A short run's pace is noisy, but the next run's own pace outweighs it within
    seconds (:func:`blend`), and until then it is all there is."""
    if len(walls) < MIN_EPOCHS or tokens_per_epoch <= 0 or walls[-1] <= walls[0]:
        return None
    return (walls[-1] - walls[0]) / ((len(walls) - 1) * tokens_per_epoch)


class Paces:
    """Measured paces by key: ``{key: {run_id: seconds per token}}``, the last ``KEEP_RUNS`` runs per key, kept
    per run store (in memory, and in the store's ``pace.json``; a damaged or unreadable file is ignored: it is a
    hint, never needed). A store's file holds only its own runs' paces; a prior draws on every store read."""

    def __init__(self):
        self.stores: dict[str, dict[str, dict[str, float]]] = {}  # root ("" for none) -> key -> run -> s/token
        self._read: dict[str, float] = {}  # root -> mtime of its pace.json when last read
        self._checked = 0.0  # time.monotonic() of the last refresh
        self._lock = threading.Lock()

    def prior(self, key: str, exclude: str | None = None) -> float | None:
        """Seconds per token for ``key``: the median of the kept runs other than ``exclude``, over every store."""
        with self._lock:
            runs = {run: v for store in self.stores.values() for run, v in store.get(key, {}).items()}
        values = sorted(v for run, v in runs.items() if run != exclude)
        if not values:
            return None
        mid = len(values) // 2
        return values[mid] if len(values) % 2 else (values[mid - 1] + values[mid]) / 2

    def read(self, root: str | Path | None) -> None:
        """Fold ``root``'s pace.json into memory: the first time, and again whenever the file changed (another
        process, e.g. a training worker, wrote it)."""
        if root is None:
            return
        path = Path(root) / FILE
        try:
            mtime = path.stat().st_mtime
        except OSError:
            self._read.setdefault(str(root), -1.0)
            return
        if self._read.get(str(root)) == mtime:
            return
        self._read[str(root)] = mtime
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            return
        if not isinstance(data, dict):
            return
        with self._lock:
            store = self.stores.setdefault(str(root), {})
            for key, runs in data.items():
                if isinstance(key, str) and isinstance(runs, dict):
                    good = {str(r): float(v) for r, v in runs.items()
                            if isinstance(v, (int, float)) and math.isfinite(v) and v > 0}
                    _merge(store, key, good)

    def refresh(self, every_s: float = 1.0) -> None:
        """Re-read the stores' pace files that changed, at most once per ``every_s``."""
        now = time.monotonic()
        if now - self._checked < every_s:
            return
        self._checked = now
        for root in list(self._read):
            self.read(root)

    def remember(self, root: str | Path | None, key: str, run_id: str, s_per_token: float) -> None:
        """Keep one run's pace for ``key`` (in memory, and in ``root``'s pace.json if a root is given)."""
        self.read(root)
        with self._lock:
            store = self.stores.setdefault("" if root is None else str(root), {})
            _merge(store, key, {run_id: s_per_token})
            data = json.dumps(store).encode()
        if root is not None:
            from .checkpoint import write_atomic
            try:
                write_atomic(Path(root) / FILE, data)
            except OSError:
                pass  # a hint only: a store that cannot be written keeps its paces in memory


def _merge(store: dict[str, dict[str, float]], key: str, runs: dict[str, float]) -> None:
    kept = store.setdefault(key, {})
    for run, value in runs.items():
        kept.pop(run, None)
        kept[run] = value  # the newest last
    while len(kept) > KEEP_RUNS:
        kept.pop(next(iter(kept)))


PACES = Paces()


def observe(root: str | Path | None, view) -> None:
    """Read ``root``'s paces (once) and keep ``view``'s run's pace once it covers enough time."""
    PACES.read(root)
    rate = seconds_per_token([r["wall_s"] for r in view.records], view.tokens_per_epoch)
    if rate is not None:
        PACES.remember(root, view_key(view), view.id, rate)


def view_eta_s(view) -> float | None:
    """The ETA of a running run's view (``RunView.eta_s``): its own pace blended with the prior for its
    settings from earlier runs; None when it is not running or nothing is known yet."""
    if not view.running:
        return None
    PACES.refresh()
    prior = PACES.prior(view_key(view), exclude=view.id)
    prior_epoch = prior * view.tokens_per_epoch if prior is not None and view.tokens_per_epoch > 0 else None
    walls = [r["wall_s"] for r in view.records]
    return eta_s(walls, view.wall_s, view.epoch_fraction, view.target, prior_epoch)

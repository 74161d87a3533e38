"""A training run the Training page advances in short, time-budgeted chunks (no Streamlit here).

The page keeps one :class:`TrainingRun` in ``st.session_state``; each run of its fragment calls
:meth:`TrainingRun.train_for` with a budget well under the fragment's interval, so Stop and every
other widget get a turn at least once a second.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import pandas as pd
import torch

import rnn_core
from rnn_core.model import device_label

from .lab import CorpusInfo, Settings, default_prefix, make_loader, visible_spaces

SAMPLE_EVERY = 10  # the lesson prints a sample every 10 epochs

# Pacing. One server process serves every session, so its runs share about one core. A live update
# costs RENDER_S of CPU besides its training chunk; with n runs training, the chunk shrinks and the
# refresh interval grows so that n updates fit in one interval (measured with benchmarks.class_load).
CHUNK_S = 0.25  # training time per live update, one run alone
REFRESH_S = 0.5  # live-update interval, one run alone
RENDER_S = 0.1  # CPU per live update besides training (figures, metrics, samples)
_active: dict[int, float] = {}  # id(run) -> when it last trained, over all sessions of this server
_active_lock = threading.Lock()


def runs_training(window_s: float = 3.0) -> int:
    """How many runs (of any session) trained in the last `window_s` seconds; at least 1."""
    now = time.monotonic()
    with _active_lock:
        for key in [k for k, t in _active.items() if now - t > window_s]:
            del _active[key]
        return max(1, len(_active))


def pace() -> tuple[float, float]:
    """(training chunk, refresh interval) in seconds for the runs training on this server now."""
    n = runs_training()
    chunk = max(0.02, CHUNK_S / n)
    return chunk, max(REFRESH_S, 1.25 * n * (chunk + RENDER_S))


@dataclass
class TrainingRun:
    """A model, its trainer and what the page shows about them."""

    settings: Settings
    info: CorpusInfo
    trainer: rnn_core.Trainer
    estimate: rnn_core.guards.Estimate
    status: str = "running"  # running | stopped | done | diverged
    error: str | None = None
    seconds: float = 0.0  # wall time spent training
    created: float = field(default_factory=time.time)
    # One thread trains at a time: with runner.fastReruns a slider moved during training starts a new
    # script run while the old one is still inside its chunk, and two threads stepping the same
    # parameters break autograd ("modified by an inplace operation").
    _training: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    @property
    def net(self):
        return self.trainer.net

    @property
    def vocab(self) -> rnn_core.Vocab:
        return self.info.vocab

    @property
    def epoch(self) -> int:
        return self.trainer.epoch

    @property
    def target(self) -> int:
        return self.settings.epochs

    @property
    def running(self) -> bool:
        return self.status == "running"

    @property
    def finished(self) -> bool:
        return self.epoch >= self.target

    @property
    def device_name(self) -> str:
        return device_label(self.trainer.device)

    @property
    def model_key(self) -> tuple:
        """Changes whenever the parameters do (for caches of what the model computes)."""
        return ("trained", id(self), self.created, self.epoch)

    def history(self) -> pd.DataFrame:
        return self.trainer.history_frame()

    def samples(self) -> pd.DataFrame:
        """Epoch and generated text, for the epochs that produced a sample."""
        h = self.history()
        out = h.loc[h["sample"].notna(), ["epoch", "perplexity", "sample"]].iloc[::-1].reset_index(drop=True)
        out["sample"] = out["sample"].map(visible_spaces)
        return out

    def train_for(self, budget_s: float) -> int:
        """Train for about `budget_s` seconds (at least one minibatch), mid-epoch if need be; returns epochs done."""
        if not self.running or not self._training.acquire(blocking=False):
            return 0  # stopped, or another run of this session is training it right now
        start = time.perf_counter()
        with _active_lock:
            _active[id(self)] = time.monotonic()
        done = 0
        try:
            while self.epoch < self.target:
                left = budget_s - (time.perf_counter() - start)
                if left <= 0:
                    break
                done += self.trainer.train_for(left) is not None
        except rnn_core.DivergenceError as exc:
            self.status, self.error = "diverged", str(exc)
        except torch.OutOfMemoryError:
            self.status = "out_of_memory"
            self.error = (f"{self.device_name} ran out of memory at these settings. The model so far is kept; "
                          "lower the batch size, steps or hidden size, or continue on the CPU.")
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
        finally:
            self.seconds += time.perf_counter() - start
            self._training.release()
        if self.running and self.finished:
            self.status = "done"
        return done

    @property
    def progress(self) -> float:
        """Fraction of the run done, counting the epoch in progress."""
        return min(1.0, (self.epoch + self.trainer.epoch_fraction) / self.target)

    def move_to_cpu(self) -> None:
        """After a GPU out-of-memory: carry the parameters to the CPU and go on there (same engine)."""
        params = rnn_core.inspection.formula_params(self.net)
        net = rnn_core.make_model(self.settings.engine, len(self.vocab), self.settings.hidden, "cpu")
        net.load_formula_params({k: v.cpu() for k, v in params.items()})
        self.trainer.net = net
        self.trainer.discard_pass()
        self.status, self.error = "stopped", None

    def seconds_left(self) -> float | None:
        """Time to the last epoch at the throughput measured so far."""
        rate = self.tokens_per_s()
        if not rate or not self.trainer.history:
            return None
        tokens_per_epoch = self.estimate.tokens_per_epoch
        return (self.target - self.epoch) * tokens_per_epoch / rate

    def tokens_per_s(self) -> float:
        """Mean training throughput over the run so far."""
        h = self.trainer.history
        seconds = sum(r.seconds for r in h)
        return sum(r.tokens_per_s * r.seconds for r in h) / seconds if seconds else 0.0


def check(settings: Settings, info: CorpusInfo, device: torch.device) -> rnn_core.guards.Estimate:
    """The guard's verdict on these settings (SettingsError / CorpusError when they cannot run)."""
    loader = make_loader(info, settings)  # raises CorpusError when the corpus is too short
    return rnn_core.check_settings(len(info.vocab), settings.batch, settings.steps, settings.hidden,
                                   len(loader) * settings.batch * settings.steps, settings.epochs, settings.lr,
                                   settings.clip, device)


def start_run(settings: Settings, info: CorpusInfo, device: torch.device) -> TrainingRun:
    """A fresh model and trainer for these settings, after the guard has accepted them."""
    estimate = check(settings, info, device)
    loader = make_loader(info, settings)
    net = rnn_core.make_model(settings.engine, len(info.vocab), settings.hidden, device, seed=settings.seed)
    trainer = rnn_core.Trainer(net, loader, info.vocab, lr=settings.lr, theta=settings.clip,
                               sample_every=SAMPLE_EVERY, prefix=default_prefix(info), num_preds=50)
    return TrainingRun(settings, info, trainer, estimate)

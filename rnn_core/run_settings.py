"""A run's settings and its view: :class:`RunSettings` (what a run was started with, each saved field checked
when read back) and :class:`RunView` (one consistent snapshot of a run, what the pages read).
"""
from __future__ import annotations

from dataclasses import dataclass, fields

import pandas as pd

from . import pace, settings_schema
from .checkpoint import check_bool, check_choice, check_int, check_positive, check_text, damaged
from .engines import ENGINES
from .guards import LIMITS
from .training import EpochRecord, parse_predict

STATUSES = ("new", "running", "stopped", "done", "diverged", "out_of_memory", "failed")
ORIGINS = ("trained", "uploaded", "reference")
MAX_EPOCHS = LIMITS["num_epochs"][1]
SEEDS = (-(1 << 63), (1 << 64) - 1)  # what torch.manual_seed takes
MAX_EMBED = 1_000_000


def checkpoint_epochs(target: int) -> list[int]:
    """The epochs a run keeps: 1, 2, 5, 10, 20, 50, ... up to ``target``, and ``target`` itself."""
    epochs, scale = set(), 1
    while scale <= target:
        epochs.update(m * scale for m in (1, 2, 5) if m * scale <= target)
        scale *= 10
    return sorted(epochs | {target})


@dataclass(frozen=True)
class RunSettings:
    """What a run was started with: plain data, saved with it (the tokens come with the run itself)."""

    corpus: str = "time_machine"  # where the text came from, for people (a name, a built-in, a file name)
    token: str = "char"
    batch: int = 32  # batch_size
    steps: int = 35  # num_steps
    hidden: int = 512  # num_hiddens
    lr: float = 1.0
    epochs: int = 500
    clip: float | None = 1.0  # gradient clipping threshold theta; None: no clipping
    partition: str = "sequential"  # sequential | random
    engine: str = "fast"
    device: str = "auto"
    seed: int = 0
    prefix: str = "time traveller"  # samples are generated from it
    # The lesson's exercises (rnn_core.variants); the defaults are the lesson's model, so a run.json or a
    # checkpoint written before these fields existed reads back as what it was.
    activation: str = "tanh"  # tanh | relu
    input: str = "onehot"  # onehot | embedding (learnable E, lesson engine)
    embed: int = 0  # the embedding's size; 0: the vocabulary's (as one-hot)
    detach: bool = True  # False: sequential partitioning keeps the graph across an epoch's minibatches
    predict: str = "greedy"  # how samples are generated: greedy | sample:T | sharpen:alpha
    heldout: str = ""  # a text scored every epoch, never trained on: "" | rest | builtin:NAME | upload:NAME

    def switches(self) -> dict:
        """make_model's keyword arguments for the model these settings describe."""
        return {"activation": self.activation, "input": self.input, "embed": self.embed, "detach": self.detach}

    @classmethod
    def from_dict(cls, d: dict, source: str = "settings") -> "RunSettings":
        """Settings from saved plain data (unknown keys are ignored, missing ones take the lesson's values), each
        checked for its type and range: CheckpointError naming ``source`` (the file) and the field otherwise."""
        if not isinstance(d, dict):
            raise damaged(source, "settings")
        return cls(**{k: _check_setting(source, k, v) for k, v in d.items() if k in SETTING_NAMES})

    def differences(self, other: "RunSettings") -> dict[str, tuple]:
        """{name: (this, other)} for every setting that differs."""
        return {f.name: (getattr(self, f.name), getattr(other, f.name)) for f in fields(self)
                if getattr(self, f.name) != getattr(other, f.name)}


SETTING_NAMES = frozenset(f.name for f in fields(RunSettings))
PREDICTIONS = ("greedy", "sample:T", "sharpen:alpha")
# The choices a saved setting is checked against (the engines in ENGINES' order: the message lists them)
SAVED_CHOICES = {"engine": tuple(ENGINES),
                 **{name: settings_schema.choices(name) for name in ("token", "partition", "activation", "input")}}


def _check_setting(source: str, name: str, value):
    """One saved setting as RunSettings holds it (CheckpointError when its type or range is wrong)."""
    if name in ("batch", "steps", "hidden"):
        lo, hi = LIMITS[{"batch": "batch_size", "steps": "num_steps", "hidden": "num_hiddens"}[name]]
        return check_int(source, name, value, lo, hi)
    if name == "epochs":
        return check_int(source, name, value, 1, MAX_EPOCHS)
    if name == "seed":
        return check_int(source, name, value, *SEEDS)
    if name == "embed":
        return check_int(source, name, value, 0, MAX_EMBED)
    if name == "lr":
        return check_positive(source, name, value)
    if name == "clip":
        return None if value is None else check_positive(source, name, value)
    if name == "detach":
        return check_bool(source, name, value)
    choices = SAVED_CHOICES.get(name)
    if choices is not None:
        return check_choice(source, name, value, choices)
    value = check_text(source, name, value)
    if name == "predict":
        try:
            parse_predict(value)
        except ValueError:
            check_choice(source, name, value, PREDICTIONS)  # raises: a spec outside those forms
    return value


@dataclass(frozen=True)
class RunView:
    """One consistent snapshot of a run: every number a page shows comes from the same moment."""

    id: str
    settings: RunSettings
    status: str
    error: str | None
    records: tuple[dict, ...]  # EpochRecord fields + wall_s (wall-clock seconds running at its end) + busy_s
    # (seconds of the scheduler's turns it had by then: training and its bookkeeping, not waiting) + threads
    # (torch threads of the turn that ended the epoch)
    epoch_fraction: float  # of the epoch in progress
    wall_s: float  # wall-clock seconds spent running (waiting for other runs' turns included)
    tokens_per_epoch: int
    checkpoints: tuple[int, ...]
    good_epoch: int  # the last epoch not blown up: the model a diverged run keeps
    device: str
    trainable: bool  # held in memory with its trainer (else read back from disk: it can be looked at only)
    vocab_size: int
    origin: str = "trained"  # trained | uploaded | reference
    # An uploaded checkpoint has no records: the epoch and perplexity its file gives (None: not uploaded)
    file_epoch: int | None = None
    file_perplexity: float | None = None

    @property
    def epoch(self) -> int:
        """The epochs trained: one per record, or the uploaded checkpoint's epoch."""
        return len(self.records) or self.file_epoch or 0

    @property
    def perplexity(self) -> float | None:
        """The perplexity at :attr:`epoch`: the last record's, or the uploaded checkpoint's (None: unknown)."""
        return self.perplexity_at(self.epoch)

    def record(self, epoch: int) -> dict | None:
        """The record of ``epoch`` (1-based), or None when there is none (an uploaded run has no records)."""
        return self.records[epoch - 1] if isinstance(epoch, int) and 0 < epoch <= len(self.records) else None

    def perplexity_at(self, epoch: int) -> float | None:
        """The perplexity at ``epoch``: its record's, or the uploaded checkpoint's at its epoch; None if unknown."""
        record = self.record(epoch)
        if record is not None:
            return record["perplexity"]
        return self.file_perplexity if epoch == self.file_epoch else None

    @property
    def target(self) -> int:
        return self.settings.epochs

    @property
    def last(self) -> dict | None:
        return self.records[-1] if self.records else None

    @property
    def running(self) -> bool:
        return self.status == "running"

    @property
    def progress(self) -> float:
        """Fraction of the run done, counting the epoch in progress."""
        done = self.epoch + (self.epoch_fraction if self.running else 0.0)
        return min(1.0, done / self.target) if self.target else 1.0

    @property
    def tokens_per_s(self) -> float:
        """Wall-clock throughput: tokens trained over the wall time spent running."""
        return len(self.records) * self.tokens_per_epoch / self.wall_s if self.wall_s > 0 else 0.0

    @property
    def eta_s(self) -> float | None:
        """Wall-clock seconds to the last epoch (None when not running or unknown): rnn_core/pace.py."""
        return pace.view_eta_s(self)  # the run's own pace blended with earlier runs' for its settings

    def frame(self) -> pd.DataFrame:
        """The records as a DataFrame, one row per epoch."""
        columns = [*EpochRecord.__dataclass_fields__, "wall_s", "busy_s", "threads"]
        return pd.DataFrame(list(self.records), columns=columns)


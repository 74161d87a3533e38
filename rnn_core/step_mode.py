"""Step mode: the lesson's training one minibatch at a time, with what each step did.

A :class:`StepTrainer` holds a model, its loader and a :class:`~rnn_core.training.Trainer` at the settings of a
:class:`StepSettings`, trains one minibatch per :meth:`StepTrainer.steps` call and keeps a row per step (the loss
and ‖g‖ before and after clipping) and the last step's :class:`~rnn_core.training.StepReport`. Other settings need
another StepTrainer: :meth:`StepSettings.changes` says which switches differ (a UI says that it started again).
"""
from __future__ import annotations

from dataclasses import astuple, dataclass, fields

from .data import TokenizedCorpus, make_loader
from .engines import make_model
from .training import DivergenceError, StepReport, Trainer


# The switches a student flips between steps; the sizes stay those the trainer was made with.
SWITCHES = ("theta", "detach", "seed")


@dataclass(frozen=True)
class StepSettings:
    """What a step-mode trainer trains: the sizes, the switches, and the corpus it reads (``corpus``: its key)."""

    hidden: int
    batch: int
    steps: int
    lr: float
    theta: float | None  # None: no clipping
    detach: bool
    seed: int
    corpus: str = ""
    engine: str = "fast"

    def changes(self, other: StepSettings) -> list[str]:
        """The names of the fields that differ from ``other``'s, in field order."""
        return [f.name for f, x, y in zip(fields(self), astuple(self), astuple(other)) if x != y]


class StepTrainer:
    """A trainer that trains one minibatch per step and remembers each step."""

    def __init__(self, settings: StepSettings, tc: TokenizedCorpus):
        self.settings = s = settings
        net = make_model(s.engine, len(tc.vocab), s.hidden, "cpu", seed=s.seed, detach=s.detach)
        loader = make_loader(tc, s.batch, s.steps, seed=s.seed)
        self.trainer = Trainer(net, loader, tc.vocab, lr=s.lr, theta=s.theta, sample_every=0, detach=s.detach)
        self.history: list[dict] = []  # a row per step: step, epoch, minibatch, loss, g_before, g_after
        self.last: StepReport | None = None

    @property
    def minibatches_per_epoch(self) -> int:
        return len(self.trainer.loader)

    def steps(self, n: int) -> DivergenceError | None:
        """Train ``n`` minibatches; fewer when one diverges, whose error is returned (the model is the last good
        one)."""
        for _ in range(n):
            try:
                report = self.trainer.step()
            except DivergenceError as exc:
                return exc
            self.history.append({"step": self.trainer.batches_done, "epoch": report.epoch,
                                 "minibatch": report.batch + 1, "loss": report.loss,
                                 "g_before": report.grad_norm, "g_after": report.clipped_norm})
            self.last = report
        return None

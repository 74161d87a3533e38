"""Step mode on the Exercises page: the session's :class:`rnn_core.step_mode.StepTrainer`, kept in the page's state
while its settings stay, started again (and said so) when a switch changes, and the words and tables of a step.
"""
from __future__ import annotations

import math
from collections.abc import MutableMapping

import pandas as pd

from rnn_core.step_mode import StepSettings, StepTrainer
from rnn_core.training import StepReport

from .corpora import CorpusInfo, visible_spaces
from .exercise_catalogue import BASE, HIDDEN, tr, value_word
from .exercise_runs import ERROR_KEY
from .formatting import num

# the page's session state (the tests read them): the StepTrainer, and the switches that last started it again
STEP_TRAINER, STEP_RESTARTED = "step_trainer", "step_restarted"


def step_settings(info: CorpusInfo, seed: int, detach: bool, theta: float | None) -> StepSettings:
    """Step mode's settings: the pairs' sizes (:data:`HIDDEN` units, :data:`BASE`'s batch, steps and lr) and the
    switches on the page."""
    return StepSettings(hidden=HIDDEN, batch=BASE.batch, steps=BASE.steps, lr=BASE.lr, theta=theta, detach=detach,
                        seed=seed, corpus=str(info.key))


class StepMode:
    """The session's step trainer, kept in ``state[STEP_TRAINER]`` while the settings stay; other settings (seed,
    detach, θ, corpus) start a new one, and when steps had been taken the switches that changed are kept in
    ``state[STEP_RESTARTED]`` for :func:`restart_note`. A divergence is kept for ``take_error``."""

    def __init__(self, state: MutableMapping, info: CorpusInfo, seed: int, detach: bool, theta: float | None):
        self.state, self.info = state, info
        self.settings = step_settings(info, seed, detach, theta)

    def trainer(self) -> StepTrainer:
        """The step trainer for these settings (a new one when they changed)."""
        held = self.state.get(STEP_TRAINER)
        if held is None or held.settings != self.settings:
            if held is not None and held.history:
                self.state[STEP_RESTARTED] = (held.settings, self.settings, len(held.history))
            held = self.state[STEP_TRAINER] = StepTrainer(self.settings, self.info.tc)
        return held

    @property
    def history(self) -> list[dict]:
        """A row per step taken: step, epoch, minibatch, loss, ‖g‖ before and after clipping."""
        return self.trainer().history

    @property
    def last(self) -> StepReport | None:
        """The last step's report (None before the first step with these settings)."""
        return self.trainer().last

    def steps(self, n: int) -> None:
        """Train ``n`` minibatches (fewer when one diverges: the error is kept)."""
        error = self.trainer().steps(n)
        if error is not None:
            self.state[ERROR_KEY] = error

    def reset(self) -> None:
        """Start again from a fresh model."""
        self.state.pop(STEP_TRAINER, None)
        self.state.pop(STEP_RESTARTED, None)


def intro(settings: StepSettings, lang: str | None = None) -> str:
    """What one press trains, from the step trainer's own settings."""
    return tr("step.intro", lang, hidden=settings.hidden, batch=settings.batch, steps=settings.steps,
              lr=value_word("lr", settings.lr, lang), theta=value_word("clip", settings.theta, lang))


def restart_note(state: MutableMapping, lang: str | None = None) -> str | None:
    """Said once after a switch changed with steps taken: which switch, and that training started again from the
    first minibatch with a fresh model (None otherwise)."""
    held = state.pop(STEP_RESTARTED, None)
    if held is None:
        return None
    before, after, taken = held
    parts = []
    for field in before.changes(after):
        if field in ("theta", "detach", "seed"):  # the corpus has no words of its own here
            key = "clip" if field == "theta" else field  # value_word names θ's values as the setting clip's
            parts.append(tr("step.changed", lang, setting=tr(f"step.setting.{field}", lang),
                            a=value_word(key, getattr(before, field), lang),
                            b=value_word(key, getattr(after, field), lang)))
    what = tr("list_sep", lang).join(parts) or tr("step.setting.corpus", lang)
    return tr("step.restarted", lang, what=what, n=taken)


def history_table(history: list[dict], lang: str | None = None, rows: int = 10) -> pd.DataFrame:
    """The last ``rows`` steps, headed in ``lang``."""
    frame = pd.DataFrame(history[-rows:], columns=["step", "epoch", "minibatch", "loss", "g_before", "g_after"])
    return frame.rename(columns={c: tr(f"step.col.{c}", lang) for c in frame.columns})


def step_rows(report: StepReport, vocab, rows: int = 4) -> str:
    """The step's first ``rows`` rows of X and Y as text, one 'X[i]  tokens' line each."""
    lines = []
    for i in range(min(rows, report.X.shape[0])):
        x, y = ("".join(vocab.to_tokens(m[i].tolist())) for m in (report.X, report.Y))
        lines += [f"X[{i}]  {visible_spaces(x)}", f"Y[{i}]  {visible_spaces(y)}"]
    return "\n".join(lines)


def update_table(report: StepReport, lang: str | None = None) -> pd.DataFrame:
    """Each parameter's relative update ‖ΔW‖/‖W‖ in this step ('from 0' where W was all zeros)."""
    ratios = report.update_ratio
    shown = [num(r, 3) if math.isfinite(r) else tr("step.from_zero", lang) for r in ratios.values()]
    return pd.DataFrame({"W": list(ratios), "‖ΔW‖/‖W‖": shown})


def state_sentence(report: StepReport, lang: str | None = None) -> str:
    """What happened to the hidden state the step carries on: still attached to its graph, or detached."""
    shape, norm = f"{tuple(report.state.shape)}", num(float(report.state.norm()), 3)
    if report.attached:
        return tr("step.state_attached", lang, shape=shape, norm=norm, k=report.graph_batches)
    return tr("step.state_detached", lang, shape=shape, norm=norm)

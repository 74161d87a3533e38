"""An exercise pair's numbers: both arms' records as one frame at the same epoch, every minibatch's loss and ‖g‖
(the epoch that blew up included, its inf/nan kept), and what a card says about each arm (:class:`ArmStats`).

Per-minibatch numbers come from each record's ``batch_losses`` / ``batch_grad_norms``; a run that went non-finite
keeps the epoch that blew up as its last record, marked ``diverged`` (``rnn_core.training``), so its exploding
minibatches are counted and drawn like the others.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from rnn_core.runs import RunSettings, RunView


def pair_frame(a: RunView | None, b: RunView | None) -> pd.DataFrame:
    """Both runs' records in one frame, with an ``arm`` column (A, B)."""
    frames = [v.frame().assign(arm=arm) for arm, v in (("A", a), ("B", b)) if v is not None]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["arm", "epoch"])


def at_same_epoch(a: RunView | None, b: RunView | None) -> tuple[RunView | None, RunView | None]:
    """While an arm trains, both arms cut to the epochs it has (A at epoch 92 is compared with B at 92, not with
    B at 90); an arm that ended sooner keeps what it has. Finished pairs are returned as they are."""
    running = [v for v in (a, b) if v is not None and v.running]
    if not running:
        return a, b
    n = min(len(v.records) for v in running)
    return tuple(v if v is None or len(v.records) <= n else replace(v, records=v.records[:n]) for v in (a, b))


def pair_theta(a: RunSettings, b: RunSettings) -> float | None:
    """The pair's θ: the threshold of the arm that clips (A's when both do), None when neither does."""
    return a.clip if a.clip is not None else b.clip


def _series(record: dict, key: str) -> list[float] | None:
    """A record's per-minibatch numbers under ``key`` (None when it has none: written before they were kept,
    or not a list of numbers)."""
    values = record.get(key)
    if not isinstance(values, list) or not values or not all(
            isinstance(x, (int, float)) and not isinstance(x, bool) for x in values):
        return None
    return [float(x) for x in values]


MINIBATCH_COLUMNS = ["arm", "epoch", "minibatch", "x", "loss", "grad_norm", "above", "clipped", "diverged"]


def arm_minibatches(view: RunView | None, arm: str, theta: float | None) -> pd.DataFrame:
    """Every minibatch of one arm in training order: its epoch, its index in the epoch (1-based), ``x`` on the
    epoch axis (epoch - 1 + minibatch / minibatches in an epoch: the epoch's last minibatch sits on the epoch),
    its loss and ‖g‖ before clipping (inf or nan where they blew up), whether ‖g‖ was above the pair's ``theta``,
    whether this arm clipped it (above its own θ) and whether it is of the epoch that blew up (``diverged``, as
    far as it went: placed by a whole epoch's count of minibatches). Epochs recorded without per-minibatch
    numbers are left out."""
    rows = []
    own = view.settings.clip if view is not None else None
    per_epoch = 0  # minibatches in a whole epoch, from the records before
    for r in view.records if view is not None else ():
        losses, norms = _series(r, "batch_losses"), _series(r, "batch_grad_norms")
        if losses is None or norms is None or len(losses) != len(norms):
            continue
        diverged = bool(r.get("diverged"))
        n = max(per_epoch, len(norms)) if diverged else len(norms)
        per_epoch = per_epoch if diverged else max(per_epoch, n)
        rows += [(arm, r["epoch"], i + 1, r["epoch"] - 1 + (i + 1) / n, loss, g,
                  theta is not None and g > theta, own is not None and g > own, diverged)
                 for i, (loss, g) in enumerate(zip(losses, norms))]
    return pd.DataFrame(rows, columns=MINIBATCH_COLUMNS)


def minibatch_frame(a: RunView | None, b: RunView | None) -> pd.DataFrame:
    """Both arms' minibatches (:func:`arm_minibatches`) in one frame, ‖g‖ compared with the pair's θ: what the
    minibatch chart draws and every per-minibatch number of the card's table and sentences is taken from."""
    theta = pair_theta(*(v.settings for v in (a or b, b or a))) if (a or b) else None
    frames = [arm_minibatches(v, arm, theta) for arm, v in (("A", a), ("B", b)) if v is not None]
    frames = [f for f in frames if len(f)]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=MINIBATCH_COLUMNS)


def above_by_epoch(minibatches: pd.DataFrame) -> pd.DataFrame:
    """Per arm and epoch, the share of its minibatches whose ‖g‖ was above θ (for an arm that clips: the share
    it clipped), from the per-minibatch numbers: arm, epoch, above, minibatches, share."""
    if not len(minibatches):
        return pd.DataFrame(columns=["arm", "epoch", "above", "minibatches", "share"])
    g = minibatches.groupby(["arm", "epoch"], sort=True)["above"]
    out = pd.DataFrame({"above": g.sum().astype(int), "minibatches": g.size()}).reset_index()
    out["share"] = out["above"] / out["minibatches"]
    return out


# A spike: a minibatch's loss 1.5x the lowest before it and above log|V|, the loss of guessing uniformly: the run
# lost what it had learnt. (At a low loss, 0.7 nats, minibatches of harder text alone vary by 1.5x.)
SPIKE = 1.5


@dataclass(frozen=True)
class ArmStats:
    """What a card says about one arm, from its records; the per-minibatch numbers from :func:`arm_minibatches`."""

    epochs: int
    final_ppl: float | None
    best_ppl: float | None
    # the largest finite ‖g‖ of any minibatch, before clipping (None: no per-minibatch numbers)
    grad_max: float | None
    grad_max_epoch: int | None
    minibatches: int  # with per-minibatch numbers
    above: int  # minibatches whose ‖g‖ was above the pair's θ
    clipped: int  # minibatches this arm clipped (0 with θ off)
    jump: float | None  # the largest ratio of a minibatch's loss to the lowest loss before it
    jump_from: float | None  # that lowest loss
    jump_to: float | None  # the minibatch's loss
    jump_epoch: int | None
    seconds_per_epoch: float | None  # compute time, not the turns of the other arm
    tokens_per_s: float | None
    heldout: float | None
    status: str
    theta: float | None  # the pair's θ the counts compare with
    uniform: float  # log|V|: the loss of guessing uniformly
    blowup_epoch: int | None = None  # the epoch in which a minibatch's loss or ‖g‖ stopped being a finite number
    blowup_minibatch: int | None = None  # the first such minibatch of that epoch (1-based)
    blowup_of: int | None = None  # the minibatches that epoch's record holds
    good_epoch: int = 0  # the last epoch not blown up: the model a diverged run keeps

    @property
    def clip_rate(self) -> float | None:
        """The share of minibatches clipped (None without per-minibatch numbers)."""
        return self.clipped / self.minibatches if self.minibatches else None

    @property
    def spiked(self) -> bool:
        """The loss of some minibatch jumped to :data:`SPIKE` times the lowest before it, and above guessing."""
        return self.jump is not None and self.jump >= SPIKE and self.jump_to > self.uniform


def arm_stats(view: RunView | None, theta: float | None = None) -> ArmStats | None:
    """The numbers of one arm (None before it exists); ``theta``: the pair's (default: the arm's own).

    ‖g‖ and loss peaks are the largest finite ones; where they stopped being finite (the epoch that blew up) is
    :attr:`ArmStats.blowup_epoch` / ``blowup_minibatch``. Perplexities are the records' (infinite for the epoch
    that blew up); times and throughput are over whole epochs only."""
    if view is None:
        return None
    theta = view.settings.clip if theta is None else theta
    r = view.records
    mb = arm_minibatches(view, "", theta)
    grad_max = grad_max_epoch = jump = jump_from = jump_to = jump_epoch = None
    blowup = (None, None, None)
    if len(mb):
        norms, losses = mb["grad_norm"].to_numpy(float), mb["loss"].to_numpy(float)
        finite = np.isfinite(norms) & np.isfinite(losses)
        if not finite.all():
            k = int(np.argmin(finite))  # the first minibatch that is not finite
            epoch = int(mb["epoch"].iat[k])
            blowup = (epoch, int(mb["minibatch"].iat[k]), int((mb["epoch"] == epoch).sum()))
        if np.isfinite(norms).any():
            top = int(np.nanargmax(np.where(np.isfinite(norms), norms, np.nan)))
            grad_max, grad_max_epoch = float(norms[top]), int(mb["epoch"].iat[top])
        losses = np.where(np.isfinite(losses), losses, np.nan)
        lowest = pd.Series(losses).cummin().ffill().shift(1).to_numpy()  # the lowest finite loss before each
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = losses / lowest
        ratio[0] = 0.0
        i = int(np.nanargmax(ratio)) if len(ratio) > 1 and not np.isnan(ratio[1:]).all() else 0
        if i > 0:
            jump, jump_from, jump_to, jump_epoch = (float(ratio[i]), float(lowest[i]), float(losses[i]),
                                                    int(mb["epoch"].iat[i]))
    uniform = math.log(view.vocab_size)
    whole = [x for x in r if not x.get("diverged")]
    if not r:
        return ArmStats(0, None, None, grad_max, grad_max_epoch, len(mb), 0, 0, jump, jump_from, jump_to,
                        jump_epoch, None, None, None, view.status, theta, uniform, *blowup, view.good_epoch)
    ppl = [x["perplexity"] for x in r]
    seconds = sum(x["seconds"] for x in whole)
    held = [x.get("heldout_perplexity") for x in r if x.get("heldout_perplexity") is not None]
    return ArmStats(len(r), ppl[-1], min(ppl), grad_max, grad_max_epoch, len(mb), int(mb["above"].sum()),
                    int(mb["clipped"].sum()), jump, jump_from, jump_to, jump_epoch,
                    seconds / len(whole) if whole else None,
                    len(whole) * view.tokens_per_epoch / seconds if seconds > 0 else None,
                    held[-1] if held else None, view.status, theta, uniform, *blowup, view.good_epoch)


def repeat_share(text: str | None, n: int = 4) -> float | None:
    """Share of a text's word n-grams that occurred before in it (a loop scores near 1, fresh text 0)."""
    words = (text or "").split()
    grams = [tuple(words[i:i + n]) for i in range(len(words) - n + 1)]
    if not grams:
        return None
    seen, repeats = set(), 0
    for g in grams:
        repeats += g in seen
        seen.add(g)
    return repeats / len(grams)


def last_sample(view: RunView | None) -> tuple[int, str] | None:
    """(epoch, text) of the arm's latest sample."""
    for r in reversed(view.records if view else ()):
        if r.get("sample"):
            return r["epoch"], r["sample"]
    return None


def samples_side_by_side(a: RunView | None, b: RunView | None) -> pd.DataFrame:
    """The samples of both arms at the same epochs (1, 10, 20, ...)."""
    def by_epoch(v):
        return {r["epoch"]: r["sample"] for r in (v.records if v else ()) if r.get("sample")}

    sa, sb = by_epoch(a), by_epoch(b)
    epochs = sorted(set(sa) | set(sb))
    return pd.DataFrame({"epoch": epochs, "A": [sa.get(e, "") for e in epochs], "B": [sb.get(e, "") for e in epochs]})


def pair_stats(a: RunView | None, b: RunView | None) -> tuple[ArmStats | None, ArmStats | None]:
    """Both arms' numbers at the same epoch (:func:`at_same_epoch`), ‖g‖ counted against the pair's θ."""
    a, b = at_same_epoch(a, b)
    theta = pair_theta(*(v.settings for v in (a or b, b or a))) if (a or b) else None
    return arm_stats(a, theta), arm_stats(b, theta)

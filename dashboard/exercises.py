"""The lesson's exercises (d2l 8.5) as A/B pairs: two background runs, the same seed and settings except one
switch (``rnn_core.variants``), and what they answer, computed from their numbers.

Logic only (the page is ``views/exercises.py``, which draws): the exercises, each pair's settings and run ids,
starting a pair on the server's scheduler, the pair's records as one frame and its table, the two-line summary
of each card, and step mode's trainer. What a button starts is kept in the page's session state, passed in as
``state`` (a mapping), with the error a user can cause kept there for :func:`take_error`.
Run ids are fixed by (exercise, variation, seed, sizes), so a pair is trained once per server and the page
(or a link with ``?exercise=&variation=&seed=``) reopens it from the run store; the same seed gives the same
numbers anywhere.

Every string the page shows is in the catalogues (``dashboard/i18n``, ids ``exercises.*``), read by :func:`tr`.
"""
from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Callable, MutableMapping
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

import rnn_core
from rnn_core import environment, fast
from rnn_core.runs import Run, RunSettings, RunView
from rnn_core.training import StepReport, Trainer

from . import i18n, runs
from .corpora import CorpusInfo, visible_spaces
from .formatting import fmt_seconds, fmt_setting
from .i18n import t
from .runs import RUN_ERRORS

# ---------------------------------------------------------------- sizes

# Small enough that a pair (two runs taking turns on the scheduler) ends in under 2 minutes on a 2-core CPU:
# the lesson's data (10,000 char tokens of The Time Machine, batch 32, 35 steps, lr 1, theta 1), 256 hidden
# units instead of 512 and 100 epochs instead of 500. Pairs on the lesson engine (embedding, no detach: its
# backward goes through every earlier minibatch of the epoch) get fewer epochs. Measured on a 2-core CPU
# loaded by other work: 5 to 62 s a pair. Each card says so (card.sizes).
HIDDEN = 256
EPOCHS = 100
SIZES_VERSION = "v2"  # in the run ids: a change of sizes trains new pairs instead of reopening old ones
BASE = RunSettings(corpus="The Time Machine (H. G. Wells)", token="char", batch=32, steps=35, hidden=HIDDEN, lr=1.0,
                   epochs=EPOCHS, clip=1.0, partition="sequential", engine="fast", device="cpu", seed=0,
                   prefix="time traveller")
BUDGET_S = 120  # what the card promises for a pair on a 2-core CPU
# Other sizes for every pair, e.g. "hidden=16,epochs=3" (keys: hidden, epochs, batch, steps): quick pairs for the
# tests or a slow machine. The run ids then carry the sizes' digest instead of SIZES_VERSION.
SIZES_ENV = environment.EXERCISE_SIZES
SIZE_KEYS = ("hidden", "epochs", "batch", "steps")


@dataclass(frozen=True)
class Sizes:
    """The settings every pair starts from, and their tag in the run ids (other sizes train other pairs).
    ``given``: the sizes named in ``$RNN_LAB_EXERCISE_SIZES``, which win over an exercise's own (a quick pair
    for the tests is quick on every card)."""

    base: RunSettings = BASE
    tag: str = SIZES_VERSION
    given: tuple[tuple[str, int], ...] = ()

    @classmethod
    def from_env(cls, spec: str | None = None) -> Sizes:
        """BASE, or BASE with the sizes ``spec`` names (default: ``$RNN_LAB_EXERCISE_SIZES`` as
        rnn_core.environment reads it: a value it cannot use leaves BASE, and Home names it)."""
        if spec is None:
            spec = ",".join(f"{k}={v}" for k, v in environment.read().exercise_sizes)
        spec = spec.strip()
        if not spec:
            return cls()
        sizes = environment.parse_sizes(spec)
        if sizes is None:
            raise ValueError(f"{SIZES_ENV}={spec!r}: give {', '.join(SIZE_KEYS)} as key=whole number, "
                             "separated by commas.")
        changes = dict(sizes)
        return cls(replace(BASE, **changes), "x" + hashlib.sha1(spec.encode()).hexdigest()[:4],
                   tuple(changes.items()))


@dataclass(frozen=True)
class Variation:
    """One A/B pair of an exercise: the settings A and B change from the exercise's base."""

    id: str
    a: dict
    b: dict


@dataclass(frozen=True)
class Exercise:
    """One exercise of the lesson: its question, its base settings and its pairs."""

    id: str
    base: dict  # changes from BASE, for both arms
    variations: tuple[Variation, ...]

    def variation(self, variation_id: str | None) -> Variation:
        return next((v for v in self.variations if v.id == variation_id), self.variations[0])


EXERCISES: dict[str, Exercise] = {e.id: e for e in (
    Exercise("embedding", {"engine": "lesson", "epochs": 50}, (Variation("embedding", {"input": "onehot"}, {"input": "embedding"}),)),
    Exercise("tuning", {}, (
        Variation("lr", {"lr": 1.0}, {"lr": 2.0}),
        Variation("hidden", {"hidden": HIDDEN}, {"hidden": 2 * HIDDEN}),
        Variation("steps", {"steps": 35}, {"steps": 10}),
    )),
    Exercise("heldout", {}, (
        Variation("other", {"heldout": "rest"}, {"heldout": "builtin:toy_english"}),
    )),
    Exercise("predict", {}, (
        Variation("sample", {"predict": "greedy"}, {"predict": "sample:1"}),
        Variation("sharpen2", {"predict": "sample:1"}, {"predict": "sharpen:2"}),
        Variation("sharpen10", {"predict": "sample:1"}, {"predict": "sharpen:10"}),
    )),
    # Minibatches of 8 at the lesson's lr 1: at batch 32 the unclipped run rarely leaves theta behind within 100
    # epochs (lr 2: 1 seed of 0-4 diverged; lr 3 and 4 diverge with clipping too; batch 8 at lr 2 or more: the
    # clipped run spikes too). Measured with benchmarks/exercise_pairs.py (docs/performance.md): without clipping,
    # every seed 0-4 diverges at epoch 87-90, its per-minibatch ‖g‖ up to 40-3e13; clipped, every seed trains on to
    # perplexity 3.1-3.4 with no loss spike.
    Exercise("clip", {"batch": 8}, (Variation("off", {"clip": 1.0}, {"clip": None}),)),
    Exercise("detach", {"engine": "lesson", "epochs": 40}, (Variation("nodetach", {"detach": True}, {"detach": False}),)),
    # Batch 32 at lr 2, measured for seeds 0-4 (docs/performance.md): ReLU ends at perplexity 2.4-2.6 against tanh's
    # 5.6-5.9, and an unclipped ReLU run trains as well as a clipped one (its largest ‖g‖ 1.3-1.8): the card says
    # so. At the clipping card's batch 8 an unclipped ReLU run diverges (epoch 82-88), but ReLU trains on the fast
    # engine's Python path and an arm takes ~90 s there on a loaded 2-core CPU, past the card's budget.
    Exercise("relu", {"lr": 2.0}, (
        Variation("relu", {"activation": "tanh"}, {"activation": "relu"}),
        Variation("reluclip", {"activation": "relu", "clip": 1.0}, {"activation": "relu", "clip": None}),
    )),
)}


def upload_variation(name: str, payload: bytes) -> Variation:
    """The held-out card's pair for an uploaded text: A scored on the rest of the book, B on the upload (its run
    ids carry the text's digest, so another text is another pair)."""
    return Variation(f"up{hashlib.sha1(payload).hexdigest()[:8]}", {"heldout": "rest"},
                     {"heldout": f"upload:{name[:60]}"})


def variation_message(variation: Variation) -> str:
    """The message id naming a pair ("var.<id>"; every upload pair is "var.upload")."""
    known = {v.id for e in EXERCISES.values() for v in e.variations}
    return f"var.{variation.id}" if variation.id in known else "var.upload"


def pair_settings(exercise: Exercise, variation: Variation, seed: int,
                  sizes: Sizes | None = None) -> tuple[RunSettings, RunSettings]:
    """(A, B): the exercise's base (at ``sizes``, default :meth:`Sizes.from_env`) with the seed, each with its
    arm's switch."""
    sizes = sizes or Sizes.from_env()
    base = replace(sizes.base, **{**exercise.base, **dict(sizes.given)}, seed=seed)
    return replace(base, **variation.a), replace(base, **variation.b)


def pair_ids(exercise: Exercise, variation: Variation, seed: int, sizes: Sizes | None = None) -> tuple[str, str]:
    """The two runs' ids: fixed by exercise, variation, seed and sizes (a run id allows 40 characters)."""
    stem = f"ex-{exercise.id}-{variation.id}-s{seed}-{(sizes or Sizes.from_env()).tag}"
    return f"{stem}-A", f"{stem}-B"


def from_url(state: MutableMapping, query, key: str, param: str, valid: Callable[[str], bool],
             default: str) -> str | None:
    """A widget's first value from the URL's ``param`` (so a link opens the card it names), else ``default``.

    Returns the URL's value when it was refused (the page names it and the default used), else None.
    """
    if key in state:
        return None
    raw = query.get(param)
    good = raw is not None and valid(raw)
    state[key] = raw if good else default
    return raw if raw is not None and not good else None


def parse_seed(text) -> int:
    """A seed from the URL: a whole number 0..999999, else 0."""
    text = str(text or "0").strip()
    return int(text) if re.fullmatch(r"\d{1,6}", text) else 0


# ---------------------------------------------------------------- the pair on the scheduler

def find_pair(registry, exercise: Exercise, variation: Variation, seed: int,
              sizes: Sizes | None = None) -> tuple[Run | None, Run | None]:
    """The pair's runs if the server has them (in memory or in the run store)."""
    a, b = pair_ids(exercise, variation, seed, sizes)
    return registry.get(a), registry.get(b)


def pair_complete(run: Run | None) -> bool:
    """A run that needs no training: finished (done or diverged)."""
    return run is not None and run.status in ("done", "diverged")


def start_pair(registry, tc, exercise: Exercise, variation: Variation, seed: int, corpus: str | None = None,
               prefix: str | None = None, heldout_text: bytes | None = None,
               sizes: Sizes | None = None) -> tuple[Run, Run]:
    """Train the pair in the background: runs that exist and are finished or training are kept, stopped ones
    go on, and missing ones (or ones read back from disk halfway, whose trainer is gone) start anew.

    ``corpus`` and ``prefix`` name the text ``tc`` is (the lesson's, or the built-in one used without it);
    ``heldout_text`` is the uploaded text an arm with ``heldout="upload:..."`` is scored on; ``sizes``: the pair's
    sizes (default :meth:`Sizes.from_env`).
    """
    sizes = sizes or Sizes.from_env()
    # The fast engine's C++ kernels settled first (loaded from the cache after the first build): a run that
    # found them ready halfway would differ from its twin in the last bits, and the same seed would not give
    # the same numbers.
    fast.kernels(block=True)
    named = {k: v for k, v in (("corpus", corpus), ("prefix", prefix)) if v}
    settings = [replace(s, **named) for s in pair_settings(exercise, variation, seed, sizes)]
    out = []
    for run_id, s in zip(pair_ids(exercise, variation, seed, sizes), settings):
        run = registry.get(run_id)
        if run is None or (not pair_complete(run) and not run.running and run.trainer is None):
            text = heldout_text if s.heldout.startswith("upload:") else None
            run = registry.add(Run.create(s, tc, store=registry.store, run_id=run_id, device="cpu",
                                          heldout_text=text))
        out.append(run)
    for run in out:
        if not pair_complete(run) and not run.running:
            registry.scheduler.start(run)
    return out[0], out[1]


ERROR_KEY = "ex_error"  # the page's session state: an error kept by a button, said once when the page draws


def start_pair_keeping_the_error(state: MutableMapping, registry, tc, exercise: Exercise, variation: Variation,
                                 seed: int, corpus: str | None = None, prefix: str | None = None,
                                 heldout_text: bytes | None = None, sizes: Sizes | None = None) -> None:
    """:func:`start_pair` from a button: an error a user can cause is kept in ``state`` for :func:`take_error`.

    A pair's runs are shared by every session on the same card (the same sizes and seed train the same numbers),
    but controlled by the session that started them: an arm another session stopped halfway is not continued
    from here (NotOwnerError); the arms this press starts are this session's to stop."""
    # a button callback cannot draw: the error is said by the page, in its language
    try:
        for run in find_pair(registry, exercise, variation, seed, sizes):
            if run is not None and not pair_complete(run) and not run.running and runs.controlled_elsewhere(run):
                raise runs.NotOwnerError(f"Run {run.id} belongs to another session: it can be watched here, not "
                                         "controlled.", "not_owner", id=run.id)
        for run in start_pair(registry, tc, exercise, variation, seed, corpus=corpus, prefix=prefix,
                              heldout_text=heldout_text, sizes=sizes):
            if run.running:
                runs.take_control(run)
    except RUN_ERRORS + (ValueError,) as exc:
        state[ERROR_KEY] = exc


def take_error(state: MutableMapping) -> Exception | None:
    """Why the last press of Run the pair, or a step that diverged, trained nothing (said once), or None."""
    return state.pop(ERROR_KEY, None)


def controls_pair(pair) -> bool:
    """Whether this session may stop the pair: it started an arm that is training."""
    return any(run is not None and run.running and runs.owns(run) for run in pair)


def stop_pair(registry, pair) -> None:
    """Stop the arms of the pair this session started (the others train on for the sessions that started them)."""
    for run in pair:
        if run is not None and run.running and runs.owns(run):
            registry.scheduler.stop(run)


def pair_running(a: Run | RunView | None, b: Run | RunView | None) -> bool:
    """Whether either arm is training now."""
    return any(x is not None and x.running for x in (a, b))


# ---------------------------------------------------------------- the numbers

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


MINIBATCH_COLUMNS = ["arm", "epoch", "minibatch", "x", "loss", "grad_norm", "above", "clipped"]


def arm_minibatches(view: RunView | None, arm: str, theta: float | None) -> pd.DataFrame:
    """Every minibatch of one arm in training order: its epoch, its index in the epoch (1-based), ``x`` on the
    epoch axis (epoch - 1 + minibatch / minibatches in that epoch: the epoch's last minibatch sits on the epoch),
    its loss and ‖g‖ before clipping, whether ‖g‖ was above the pair's ``theta``, and whether this arm clipped
    it (above its own θ). Epochs recorded without per-minibatch numbers are left out."""
    rows = []
    own = view.settings.clip if view is not None else None
    for r in view.records if view is not None else ():
        losses, norms = _series(r, "batch_losses"), _series(r, "batch_grad_norms")
        if losses is None or norms is None or len(losses) != len(norms):
            continue
        n = len(norms)
        rows += [(arm, r["epoch"], i + 1, r["epoch"] - 1 + (i + 1) / n, loss, g,
                  theta is not None and g > theta, own is not None and g > own)
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
    grad_max: float | None  # the largest ‖g‖ of any minibatch, before clipping (None: no per-minibatch numbers)
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

    @property
    def clip_rate(self) -> float | None:
        """The share of minibatches clipped (None without per-minibatch numbers)."""
        return self.clipped / self.minibatches if self.minibatches else None

    @property
    def spiked(self) -> bool:
        """The loss of some minibatch jumped to :data:`SPIKE` times the lowest before it, and above guessing."""
        return self.jump is not None and self.jump >= SPIKE and self.jump_to > self.uniform


def arm_stats(view: RunView | None, theta: float | None = None) -> ArmStats | None:
    """The numbers of one arm (None before it exists); ``theta``: the pair's (default: the arm's own)."""
    if view is None:
        return None
    theta = view.settings.clip if theta is None else theta
    r = view.records
    mb = arm_minibatches(view, "", theta)
    grad_max = grad_max_epoch = jump = jump_from = jump_to = jump_epoch = None
    if len(mb):
        top = int(mb["grad_norm"].to_numpy().argmax())
        grad_max, grad_max_epoch = float(mb["grad_norm"].iat[top]), int(mb["epoch"].iat[top])
        losses = mb["loss"].to_numpy()
        lowest = pd.Series(losses).cummin().shift(1).to_numpy()  # the lowest loss before each minibatch
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = losses / lowest
        ratio[0] = 0.0
        i = int(np.nanargmax(ratio)) if len(ratio) > 1 else 0
        if i > 0:
            jump, jump_from, jump_to, jump_epoch = (float(ratio[i]), float(lowest[i]), float(losses[i]),
                                                    int(mb["epoch"].iat[i]))
    if not r:
        return ArmStats(0, None, None, grad_max, grad_max_epoch, len(mb), 0, 0, jump, jump_from, jump_to,
                        jump_epoch, None, None, None, view.status, theta, math.log(view.vocab_size))
    ppl = [x["perplexity"] for x in r]
    seconds = sum(x["seconds"] for x in r)
    held = [x.get("heldout_perplexity") for x in r if x.get("heldout_perplexity") is not None]
    return ArmStats(len(r), ppl[-1], min(ppl), grad_max, grad_max_epoch, len(mb), int(mb["above"].sum()),
                    int(mb["clipped"].sum()), jump, jump_from, jump_to, jump_epoch, seconds / len(r),
                    len(r) * view.tokens_per_epoch / seconds if seconds > 0 else None,
                    held[-1] if held else None, view.status, theta, math.log(view.vocab_size))


def pct(part: int, whole: int) -> str:
    """A share as a card writes it: 12%, 1.5%, 0.12% (never 0% for a share above 0)."""
    p = 100 * part / whole if whole else 0.0
    return "0%" if p == 0 else f"{p:.0f}%" if p >= 10 else f"{p:.2g}%"


def share(part: int, whole: int, lang: str | None = None) -> str:
    """'12 of 800 (1.5%)': a count of minibatches with its share, as the table and the sentences write it."""
    return tr("card.share", lang, k=f"{part:,}", n=f"{whole:,}", pct=pct(part, whole))


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


TABLE_COLUMNS = ("arm", "status", "epochs", "ppl", "best", "held", "grad", "clip", "sec", "tps", "wall")


def pair_stats(a: RunView | None, b: RunView | None) -> tuple[ArmStats | None, ArmStats | None]:
    """Both arms' numbers at the same epoch (:func:`at_same_epoch`), ‖g‖ counted against the pair's θ."""
    a, b = at_same_epoch(a, b)
    theta = pair_theta(*(v.settings for v in (a or b, b or a))) if (a or b) else None
    return arm_stats(a, theta), arm_stats(b, theta)


def pair_table(a: RunView | None, b: RunView | None, labels: dict[str, str], lang: str | None = None) -> pd.DataFrame:
    """The pair's numbers at the same epoch, a row per arm that exists, headed in ``lang`` (empty before either
    exists). ‖g‖ is per minibatch, as the minibatch chart draws it: its largest, and in how many it was above θ."""
    def row(arm: str, v: RunView, s: ArmStats) -> dict:
        above = share(s.above, s.minibatches, lang) if s.minibatches and s.theta is not None else "–"
        return {"arm": labels[arm], "status": t(f"status.{v.status}", lang), "epochs": s.epochs,
                "ppl": fmt(s.final_ppl), "best": fmt(s.best_ppl), "held": fmt(s.heldout), "grad": fmt(s.grad_max),
                "clip": above, "sec": fmt(s.seconds_per_epoch, 2),
                "tps": f"{s.tokens_per_s:,.0f}" if s.tokens_per_s else "–", "wall": fmt_seconds(v.wall_s)}

    stats = dict(zip("AB", pair_stats(a, b)))
    arms = [(arm, v, stats[arm]) for arm, v in (("A", a), ("B", b)) if v is not None]
    frame = pd.DataFrame([row(*arm) for arm in arms], columns=list(TABLE_COLUMNS))
    return frame.rename(columns={c: tr(f"col.{c}", lang) for c in TABLE_COLUMNS})


def settings_line(a: RunSettings, b: RunSettings, lang: str | None = None) -> str:
    """The card's caption: the settings A and B differ in, then the sizes both train at."""
    diff = " · ".join(f"**{t(f'setting.{k}', lang)}**: A {fmt_setting(x)}, B {fmt_setting(y)}"
                      for k, (x, y) in a.differences(b).items())
    return diff + "  \n" + tr("card.sizes", lang, batch=a.batch, steps=a.steps, lr=fmt_setting(a.lr),
                               hidden=a.hidden, epochs=a.epochs, budget=BUDGET_S)


def engine_note(exercise: Exercise, a: RunSettings, b: RunSettings, lang: str | None = None) -> str | None:
    """Why the pair trains on the lesson engine, when an arm does (its times are slower than the fast engine's)."""
    if "lesson" not in (rnn_core.engines.engine_for(s.engine, s.activation, s.input, s.detach) for s in (a, b)):
        return None
    what = "card.engine_what_embedding" if exercise.id == "embedding" else "card.engine_what_nodetach"
    return tr("card.engine_note", lang, what=tr(what, lang))


def fmt(x: float | None, digits: int = 3) -> str:
    """A number as a card writes it: 3 significant digits (a whole number from 1,000), 3.1e4 style from 10,000."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    if math.isinf(x):
        return "∞"
    if abs(x) >= 1e4:
        return f"{x:.1e}".replace("e+0", "e").replace("e+", "e")
    if abs(x) >= 10 ** digits:  # 1,107 rather than 1.11e+03
        return f"{x:,.0f}"
    return f"{x:.{digits}g}"


def clip_lines(A: str, B: str, sa: ArmStats, sb: ArmStats, lr: float, lang: str | None = None) -> list[str]:
    """What B without clipping did (its gradient and loss, per minibatch), then what A clipped and reached."""
    theta = fmt(sa.theta)
    if not sa.clipped:  # A never clipped: B took exactly A's steps
        return [tr("sum.clip_never", lang, A=A, theta=theta, n=f"{sa.minibatches:,}", a=fmt(sa.grad_max)),
                tr("sum.clip_same", lang, a=fmt(sa.final_ppl), b=fmt(sb.final_ppl))]
    g = dict(B=B, g=fmt(sb.grad_max), theta=theta, lo=fmt(sb.jump_from),
             hi=fmt(sb.jump_to), epoch=sb.jump_epoch, uniform=fmt(sb.uniform))
    if sb.status == "diverged":
        blew = tr("sum.b_diverged" if sb.spiked else "sum.b_diverged_only", lang, **g, end=sb.epochs)
    elif sb.spiked:
        blew = tr("sum.b_spiked", lang, **g)
    else:
        blew = tr("sum.b_calm", lang, B=B, theta=theta, above=share(sb.above, sb.minibatches, lang), g=g["g"],
                  uniform=g["uniform"])
    clipped, step = share(sa.clipped, sa.minibatches, lang), fmt(lr * sa.theta)
    if sa.status == "diverged":
        return [blew, tr("sum.a_diverged_too", lang, A=A, clipped=clipped, end=sa.epochs, step=step)]
    if sb.status == "diverged":
        line = tr("sum.a_clipped_b_diverged", lang, A=A, clipped=clipped, a=fmt(sa.final_ppl), B=B)
    else:
        line = tr("sum.a_clipped", lang, A=A, clipped=clipped, a=fmt(sa.final_ppl), B=B, b=fmt(sb.final_ppl))
    if sa.spiked:  # clipping bounds the step, not how often a long one is taken
        line += " " + tr("sum.a_spiked_too", lang, A=A, lo=fmt(sa.jump_from), hi=fmt(sa.jump_to),
                         epoch=sa.jump_epoch, step=step)
    return [blew, line]


def summary(exercise: Exercise, variation: Variation, a: RunView | None, b: RunView | None,
            lang: str | None = None) -> list[str]:
    """Two sentences answering the card's question from the pair's numbers at the same epoch (one while they are
    missing); every number is one the table or a chart shows."""
    a, b = at_same_epoch(a, b)
    sa, sb = pair_stats(a, b)
    if sa is None or sb is None or not sa.epochs or not sb.epochs:
        return [tr("sum.waiting", lang)]
    A, B = arm_label(variation, "A", lang), arm_label(variation, "B", lang)
    part = "" if not pair_running(a, b) else tr("sum.so_far", lang, epoch=max(sa.epochs, sb.epochs))
    lower = A if sa.final_ppl <= sb.final_ppl else B
    same = _close(sa.final_ppl, sb.final_ppl, SAME_PPL) and "diverged" not in (sa.status, sb.status)
    ppl_line = tr("sum.ppl_same" if same else "sum.ppl", lang, A=A, B=B, a=fmt(sa.final_ppl), b=fmt(sb.final_ppl),
                  lower=lower, epochs_a=sa.epochs, epochs_b=sb.epochs, within=pct(SAME_PPL * 100, 100)) + part
    time_line = tr("sum.time", lang, A=A, B=B, a=fmt(sa.seconds_per_epoch, 2), b=fmt(sb.seconds_per_epoch, 2),
                   ratio=fmt(sb.seconds_per_epoch / sa.seconds_per_epoch, 2) if sa.seconds_per_epoch else "–")
    if (exercise.id == "clip" or variation.id == "reluclip") and sa.minibatches and sb.minibatches:
        lines = clip_lines(A, B, sa, sb, a.settings.lr, lang)
        return [lines[0], lines[1] + part]
    if exercise.id == "detach":
        return [time_line, ppl_line]
    if exercise.id == "heldout":
        return [tr("sum.heldout", lang, A=A, a=fmt(sa.heldout), train=fmt(sa.final_ppl)),
                tr("sum.heldout_other", lang, B=B, b=fmt(sb.heldout),
                   ratio=fmt(sb.heldout / sa.heldout, 3) if sa.heldout and sb.heldout else "–") + part]
    if exercise.id == "predict":
        la, lb = last_sample(a), last_sample(b)
        ra, rb = repeat_share(la[1] if la else None), repeat_share(lb[1] if lb else None)
        return [tr("sum.repeats", lang, A=A, B=B, a=f"{ra:.0%}" if ra is not None else "–",
                   b=f"{rb:.0%}" if rb is not None else "–", epoch=la[0] if la else "–"),
                tr("sum.same_training", lang, a=fmt(sa.final_ppl), b=fmt(sb.final_ppl))]
    if exercise.id == "relu" and sa.minibatches and sb.minibatches:
        return [ppl_line, tr("sum.relu_grad", lang, A=A, B=B, a=fmt(sa.grad_max), b=fmt(sb.grad_max),
                             ca=share(sa.clipped, sa.minibatches, lang), cb=share(sb.clipped, sb.minibatches, lang))]
    return [ppl_line, time_line]


# ---------------------------------------------------------------- predict first

# What the class is asked before a pair runs, by kind of question, and the choices it has (ids; their words are
# the catalogues' exercises.guess.*, "A" and "B" the arms' labels).
GUESS_CHOICES = {"blowup": ("diverge", "spike", "same"), "lower": ("A", "B", "same"), "heldout": ("A", "B", "same"),
                 "repeats": ("A", "B", "same"), "slower": ("same", "some", "much")}
SAME_PPL = 0.02  # perplexities within 2% of each other are "about the same"
SAME_REPEATS = 0.05  # repeat shares within 5 points
SLOWER = (1.5, 3.0)  # the bounds of "about as long", "1.5x to 3x", "more than 3x"


def guess_kind(exercise: Exercise, variation: Variation) -> str:
    """The question asked before this pair runs (a key of :data:`GUESS_CHOICES`)."""
    if exercise.id == "clip" or variation.id == "reluclip":
        return "blowup"
    return {"detach": "slower", "heldout": "heldout", "predict": "repeats"}.get(exercise.id, "lower")


def guess_question(exercise: Exercise, variation: Variation, lang: str | None = None) -> str:
    """The question, with the arms named."""
    return tr(f"guess.{guess_kind(exercise, variation)}.q", lang, A=arm_label(variation, "A", lang),
              B=arm_label(variation, "B", lang))


def guess_choice(exercise: Exercise, variation: Variation, choice: str, lang: str | None = None) -> str:
    """A choice's words: an arm's label, or the catalogue's sentence."""
    kind = guess_kind(exercise, variation)
    A, B = arm_label(variation, "A", lang), arm_label(variation, "B", lang)
    if choice in ("A", "B"):
        return A if choice == "A" else B
    if choice == "same" and kind != "slower" and kind != "blowup":
        return tr("guess.same", lang, within=pct(SAME_REPEATS * 100, 100) if kind == "repeats" else
                  pct(SAME_PPL * 100, 100))
    return tr(f"guess.{kind}.{choice}", lang, A=A, B=B)


def _close(x: float, y: float, rel: float) -> bool:
    return abs(x - y) <= rel * min(abs(x), abs(y))


def guess_outcome(exercise: Exercise, variation: Variation, a: RunView | None, b: RunView | None) -> str | None:
    """The choice the finished pair bears out (None while an arm trains or is missing, or the numbers that would
    decide are not there)."""
    if a is None or b is None or pair_running(a, b):
        return None
    sa, sb = pair_stats(a, b)
    if not sa.epochs or not sb.epochs:
        return None
    kind = guess_kind(exercise, variation)
    if kind == "blowup":
        if not sb.minibatches:
            return None
        return "diverge" if sb.status == "diverged" else "spike" if sb.spiked else "same"
    if kind == "slower":
        if not sa.seconds_per_epoch or sb.seconds_per_epoch is None:
            return None
        ratio = sb.seconds_per_epoch / sa.seconds_per_epoch
        return "same" if ratio < SLOWER[0] else "some" if ratio <= SLOWER[1] else "much"
    if kind == "repeats":
        la, lb = last_sample(a), last_sample(b)
        ra, rb = repeat_share(la[1] if la else None), repeat_share(lb[1] if lb else None)
        if ra is None or rb is None:
            return None
        return "same" if abs(ra - rb) <= SAME_REPEATS else "A" if ra > rb else "B"
    x, y = (sa.heldout, sb.heldout) if kind == "heldout" else (sa.final_ppl, sb.final_ppl)
    if x is None or y is None:
        return None
    if kind == "lower" and (sa.status == "diverged") != (sb.status == "diverged"):
        return "A" if sb.status == "diverged" else "B"  # a diverged arm's last record is not where it ended
    if _close(x, y, SAME_PPL):
        return "same"
    return ("A" if x > y else "B") if kind == "heldout" else ("A" if x < y else "B")


def guess_reveal(exercise: Exercise, variation: Variation, guess: str | None, a: RunView | None,
                 b: RunView | None, lang: str | None = None) -> tuple[str, bool | None] | None:
    """What the page says beside the class's choice once the pair has ended: (the sentence, whether the guess was
    right; None without a guess), or None while there is nothing to reveal."""
    actual = guess_outcome(exercise, variation, a, b)
    if actual is None:
        return None
    words = guess_choice(exercise, variation, actual, lang)
    if guess not in GUESS_CHOICES[guess_kind(exercise, variation)]:
        return tr("guess.none", lang, actual=words), None
    right = guess == actual
    return tr("guess.right" if right else "guess.wrong", lang, guess=guess_choice(exercise, variation, guess, lang),
              actual=words), right


def overview(registry, seed: int, lang: str | None = None) -> pd.DataFrame:
    """Every exercise's pairs at this seed: whether the server has them, and the first line of their answer."""
    rows = []
    for i, e in enumerate(EXERCISES.values(), 1):
        for v in e.variations:
            run_a, run_b = find_pair(registry, e, v, seed)
            va, vb = (r.view() if r is not None else None for r in (run_a, run_b))
            state = "–" if va is None and vb is None else "…" if pair_running(va, vb) else "✓"
            rows.append({"#": i, tr("page.exercise", lang): tr(f"ex.{e.id}.title", lang),
                         tr("page.variation", lang): pair_name(v, lang), "": state,
                         tr("card.answer", lang): summary(e, v, va, vb, lang)[0] if va or vb else ""})
    return pd.DataFrame(rows)


# ---------------------------------------------------------------- step mode

STEP_TRAINER, STEP_LAST = "step_trainer", "step_last"  # the page's session state (the tests read them)


class StepMode:
    """Step mode's trainer on the lesson's sizes (:data:`HIDDEN` units, :data:`BASE`'s batch, steps and lr), one
    minibatch per press, kept in ``state``: ``state["step_trainer"]`` is (its settings, the Trainer, the history
    of steps), ``state["step_last"]`` the last step's report. Other settings (seed, detach, θ, corpus) start a new
    one; a divergence is kept for :func:`take_error`."""

    def __init__(self, state: MutableMapping, info: CorpusInfo, seed: int, detach: bool, theta: float | None):
        self.state, self.info, self.seed, self.detach, self.theta = state, info, seed, detach, theta
        self.key = (seed, detach, theta, info.key)

    def trainer(self) -> Trainer:
        """The trainer for these settings (a new one, and no last report, when they changed)."""
        held = self.state.get(STEP_TRAINER)
        if held is None or held[0] != self.key:
            net = rnn_core.make_model("fast", len(self.info.vocab), HIDDEN, "cpu", seed=self.seed, detach=self.detach)
            loader = rnn_core.make_loader(self.info.tc, BASE.batch, BASE.steps, seed=self.seed)
            held = (self.key, Trainer(net, loader, self.info.vocab, lr=BASE.lr, theta=self.theta, sample_every=0,
                                      detach=self.detach), [])
            self.state[STEP_TRAINER] = held
            self.state.pop(STEP_LAST, None)
        return held[1]

    @property
    def history(self) -> list[dict]:
        """A row per step taken: step, epoch, minibatch, loss, ‖g‖ before and after clipping."""
        self.trainer()
        return self.state[STEP_TRAINER][2]

    @property
    def last(self) -> StepReport | None:
        """The last step's report (None before the first step with these settings)."""
        self.trainer()
        return self.state.get(STEP_LAST)

    def steps(self, n: int) -> None:
        """Train ``n`` minibatches (fewer when one diverges: the error is kept)."""
        trainer, history = self.trainer(), self.history
        for _ in range(n):
            try:
                report = trainer.step()
            except rnn_core.DivergenceError as exc:
                self.state[ERROR_KEY] = exc
                break
            history.append({"step": trainer.batches_done, "epoch": report.epoch, "minibatch": report.batch + 1,
                            "loss": report.loss, "‖g‖ before": report.grad_norm, "‖g‖ after": report.clipped_norm})
            self.state[STEP_LAST] = report

    def reset(self) -> None:
        """Start again from a fresh model."""
        self.state.pop(STEP_TRAINER, None)
        self.state.pop(STEP_LAST, None)


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
    return pd.DataFrame({"W": list(ratios), "‖ΔW‖/‖W‖": [fmt(r) if math.isfinite(r) else tr("step.from_zero", lang)
                                                         for r in ratios.values()]})


def state_sentence(report: StepReport, lang: str | None = None) -> str:
    """What happened to the hidden state the step carries on: still attached to its graph, or detached."""
    shape, norm = f"{tuple(report.state.shape)}", fmt(float(report.state.norm()))
    if report.attached:
        return tr("step.state_attached", lang, shape=shape, norm=norm, k=report.graph_batches)
    return tr("step.state_detached", lang, shape=shape, norm=norm)


# ---------------------------------------------------------------- words (the catalogues' exercises.*)

def lang_now() -> str:
    """The page's language (English outside a script run)."""
    return i18n.current()


def tr(key: str, lang: str | None = None, **fmt) -> str:
    """The catalogue's message ``exercises.<key>`` in ``lang`` (default: the page's), its ``{fields}`` filled."""
    return t(f"exercises.{key}", lang, **fmt)


def pair_name(variation: Variation, lang: str | None = None) -> str:
    """A pair's name, 'one-hot vs embedding' (the hidden-size pair names both sizes)."""
    return tr(variation_message(variation), lang, hidden_a=HIDDEN, hidden_b=2 * HIDDEN)


def arm_label(variation: Variation, arm: str, lang: str | None = None) -> str:
    """'A (one-hot)' style label from the variation's name 'one-hot vs embedding'."""
    parts = pair_name(variation, lang).split(" vs ")
    if len(parts) == 2:
        head, _, first = parts[0].rpartition("：") if "：" in parts[0] else parts[0].rpartition(": ")
        names = [first or parts[0], parts[1]]
        return f"{arm} ({names[0 if arm == 'A' else 1].strip()})"
    return arm

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
SIZES_VERSION = "v1"  # in the run ids: a change of sizes trains new pairs instead of reopening old ones
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
    """The settings every pair starts from, and their tag in the run ids (other sizes train other pairs)."""

    base: RunSettings = BASE
    tag: str = SIZES_VERSION

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
        return cls(replace(BASE, **changes), "x" + hashlib.sha1(spec.encode()).hexdigest()[:4])


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
    # lr 2: at lr 1 and this size the gradient stays under theta; at 2 it does not, now and then
    Exercise("clip", {"lr": 2.0}, (Variation("off", {"clip": 1.0}, {"clip": None}),)),
    Exercise("detach", {"engine": "lesson", "epochs": 40}, (Variation("nodetach", {"detach": True}, {"detach": False}),)),
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
    base = replace((sizes or Sizes.from_env()).base, **exercise.base, seed=seed)
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


@dataclass(frozen=True)
class ArmStats:
    """What a card says about one arm, from its records."""

    epochs: int
    final_ppl: float | None
    best_ppl: float | None
    peak_ppl: float | None  # the largest jump above the best perplexity so far: a spike (None when it only fell)
    peak_epoch: int | None
    peak_from: float | None  # the best perplexity before that jump
    grad_max: float | None
    clip_rate: float | None  # over all minibatches
    seconds_per_epoch: float | None  # compute time, not the turns of the other arm
    tokens_per_s: float | None
    heldout: float | None
    status: str


def arm_stats(view: RunView | None) -> ArmStats | None:
    """The numbers of one arm (None before it exists)."""
    if view is None:
        return None
    r = view.records
    if not r:
        return ArmStats(0, None, None, None, None, None, None, None, None, None, None, view.status)
    ppl = [x["perplexity"] for x in r]
    best_so_far, peak, peak_epoch, peak_from, jump = math.inf, None, None, None, 1.0
    for i, p in enumerate(ppl):
        if best_so_far < math.inf and p / best_so_far > jump and p > best_so_far * 1.05:
            jump, peak, peak_epoch, peak_from = p / best_so_far, p, i + 1, best_so_far
        best_so_far = min(best_so_far, p)
    seconds = sum(x["seconds"] for x in r)
    held = [x.get("heldout_perplexity") for x in r if x.get("heldout_perplexity") is not None]
    return ArmStats(len(r), ppl[-1], min(ppl), peak, peak_epoch, peak_from, max(x["grad_norm"] for x in r),
                    sum(x["clip_fraction"] for x in r) / len(r), seconds / len(r),
                    len(r) * view.tokens_per_epoch / seconds if seconds > 0 else None,
                    held[-1] if held else None, view.status)


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


def pair_table(a: RunView | None, b: RunView | None, labels: dict[str, str], lang: str | None = None) -> pd.DataFrame:
    """The pair's numbers, a row per arm that exists, headed in ``lang`` (empty before either exists)."""
    def row(arm: str, v: RunView, s: ArmStats) -> dict:
        return {"arm": labels[arm], "status": t(f"status.{v.status}", lang), "epochs": s.epochs,
                "ppl": fmt(s.final_ppl), "best": fmt(s.best_ppl), "held": fmt(s.heldout), "grad": fmt(s.grad_max),
                "clip": f"{s.clip_rate:.0%}" if s.clip_rate is not None else "–", "sec": fmt(s.seconds_per_epoch, 2),
                "tps": f"{s.tokens_per_s:,.0f}" if s.tokens_per_s else "–", "wall": fmt_seconds(v.wall_s)}

    arms = [(arm, v, arm_stats(v)) for arm, v in (("A", a), ("B", b)) if v is not None]
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
    """A number as a card writes it: 3 significant digits, 3.1e4 style when large."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    if math.isinf(x):
        return "∞"
    if abs(x) >= 1e4:
        return f"{x:.1e}".replace("e+0", "e").replace("e+", "e")
    return f"{x:.{digits}g}"


def summary(exercise: Exercise, variation: Variation, a: RunView | None, b: RunView | None,
            lang: str | None = None) -> list[str]:
    """Two sentences answering the card's question from the pair's numbers (one while they are missing)."""
    sa, sb = arm_stats(a), arm_stats(b)
    if sa is None or sb is None or not sa.epochs or not sb.epochs:
        return [tr("sum.waiting", lang)]
    A, B = arm_label(variation, "A", lang), arm_label(variation, "B", lang)
    part = "" if (not (a.running or b.running)) else tr("sum.so_far", lang, epoch=min(sa.epochs, sb.epochs))
    lower = A if sa.final_ppl <= sb.final_ppl else B
    ppl_line = tr("sum.ppl", lang, A=A, B=B, a=fmt(sa.final_ppl), b=fmt(sb.final_ppl), lower=lower,
                  epochs_a=sa.epochs, epochs_b=sb.epochs) + part
    time_line = tr("sum.time", lang, A=A, B=B, a=fmt(sa.seconds_per_epoch, 2), b=fmt(sb.seconds_per_epoch, 2),
                   ratio=fmt(sb.seconds_per_epoch / sa.seconds_per_epoch, 2) if sa.seconds_per_epoch else "–")
    if exercise.id == "clip" or variation.id == "reluclip":
        if sa.clip_rate == 0 and sb.status != "diverged":  # A never clipped: the two runs took the same steps
            return [tr("sum.never_clipped", lang, A=A, a=fmt(sa.grad_max)),
                    tr("sum.clip_reached", lang, A=A, a=fmt(sa.final_ppl), rate="0%", B=B, b=fmt(sb.final_ppl)) + part]
        blew = (tr("sum.diverged", lang, B=B, epoch=sb.epochs) if sb.status == "diverged" else
                tr("sum.spike", lang, B=B, peak=fmt(sb.peak_ppl), epoch=sb.peak_epoch, best=fmt(sb.peak_from))
                if sb.peak_ppl else
                tr("sum.no_spike", lang, B=B))
        return [blew + " " + tr("sum.grad_max", lang, b=fmt(sb.grad_max), a=fmt(sa.grad_max)),
                tr("sum.clip_reached", lang, A=A, a=fmt(sa.final_ppl), rate=f"{sa.clip_rate:.0%}",
                   B=B, b=fmt(sb.final_ppl)) + part]
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
    if exercise.id == "relu":
        return [ppl_line, tr("sum.relu_grad", lang, A=A, B=B, a=fmt(sa.grad_max), b=fmt(sb.grad_max),
                             ca=f"{sa.clip_rate:.0%}", cb=f"{sb.clip_rate:.0%}")]
    return [ppl_line, time_line]


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

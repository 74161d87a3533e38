"""The lesson's exercises (d2l 8.5) as A/B pairs: two background runs, the same seed and settings except one
switch (``rnn_core.variants``), and what they answer, computed from their numbers.

Logic only (the page is ``views/exercises.py``): the exercises, each pair's settings and run ids, starting a
pair on the server's scheduler, the pair's records as one frame, and the two-line summary of each card.
Run ids are fixed by (exercise, variation, seed, sizes), so a pair is trained once per server and the page
(or a link with ``?exercise=&variation=&seed=``) reopens it from the run store; the same seed gives the same
numbers anywhere.

Every string the page shows is in :data:`MESSAGES` (English and 简体中文), read by :func:`tr`.
"""
from __future__ import annotations

import hashlib
import math
import re
from dataclasses import dataclass, replace

import pandas as pd

from rnn_core import fast
from rnn_core.runs import Run, RunSettings, RunView

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


def pair_settings(exercise: Exercise, variation: Variation, seed: int) -> tuple[RunSettings, RunSettings]:
    """(A, B): the exercise's base with the seed, each with its arm's switch."""
    base = replace(BASE, **exercise.base, seed=seed)
    return replace(base, **variation.a), replace(base, **variation.b)


def pair_ids(exercise: Exercise, variation: Variation, seed: int) -> tuple[str, str]:
    """The two runs' ids: fixed by exercise, variation, seed and sizes (a run id allows 40 characters)."""
    stem = f"ex-{exercise.id}-{variation.id}-s{seed}-{SIZES_VERSION}"
    return f"{stem}-A", f"{stem}-B"


def parse_seed(text) -> int:
    """A seed from the URL: a whole number 0..999999, else 0."""
    text = str(text or "0").strip()
    return int(text) if re.fullmatch(r"\d{1,6}", text) else 0


# ---------------------------------------------------------------- the pair on the scheduler

def find_pair(registry, exercise: Exercise, variation: Variation, seed: int) -> tuple[Run | None, Run | None]:
    """The pair's runs if the server has them (in memory or in the run store)."""
    a, b = pair_ids(exercise, variation, seed)
    return registry.get(a), registry.get(b)


def pair_complete(run: Run | None) -> bool:
    """A run that needs no training: finished (done or diverged)."""
    return run is not None and run.status in ("done", "diverged")


def start_pair(registry, tc, exercise: Exercise, variation: Variation, seed: int, corpus: str | None = None,
               prefix: str | None = None, heldout_text: bytes | None = None) -> tuple[Run, Run]:
    """Train the pair in the background: runs that exist and are finished or training are kept, stopped ones
    go on, and missing ones (or ones read back from disk halfway, whose trainer is gone) start anew.

    ``corpus`` and ``prefix`` name the text ``tc`` is (the lesson's, or the built-in one used without it);
    ``heldout_text`` is the uploaded text an arm with ``heldout="upload:..."`` is scored on.
    """
    # The fast engine's C++ kernels settled first (loaded from the cache after the first build): a run that
    # found them ready halfway would differ from its twin in the last bits, and the same seed would not give
    # the same numbers.
    fast.kernels(block=True)
    named = {k: v for k, v in (("corpus", corpus), ("prefix", prefix)) if v}
    settings = [replace(s, **named) for s in pair_settings(exercise, variation, seed)]
    out = []
    for run_id, s in zip(pair_ids(exercise, variation, seed), settings):
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


def stop_pair(registry, runs) -> None:
    for run in runs:
        if run is not None and run.running:
            registry.scheduler.stop(run)


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
            state = ("–" if va is None and vb is None else "…" if (va and va.running) or (vb and vb.running)
                     else "✓")
            rows.append({"#": i, tr("page.exercise", lang): tr(f"ex.{e.id}.title", lang),
                         tr("page.variation", lang): tr(f"var.{v.id}", lang), "": state,
                         tr("card.answer", lang): summary(e, v, va, vb, lang)[0] if va or vb else ""})
    return pd.DataFrame(rows)


# ---------------------------------------------------------------- words (English, 简体中文)

MESSAGES: dict[str, dict[str, str]] = {
    "en": {
        "page.title": "7 · Exercises",
        "page.intro": "The lesson ends with exercises. Each card runs one as an **A/B pair**: two runs with the "
                      "same seed and the same settings except **one switch**, training in the background (they go "
                      "on while you read or open other pages, and this page reopens them). The answer under the "
                      "curves is computed from the pair's numbers.",
        "page.exercise": "Exercise",
        "page.variation": "Pair",
        "page.seed": "Seed",
        "page.seed_help": "The sidebar's seed: both runs start from it, and the same seed gives the same numbers, "
                          "here or on any server (the URL holds exercise, pair and seed).",
        "page.overview": "All exercises",
        "card.sizes": "Sizes: the lesson's data (10,000 characters, batch {batch}, {steps} steps), lr {lr}, "
                      "{hidden} hidden units and {epochs} epochs (the lesson: 512 and 500), so that a pair ends in "
                      "under {budget} s on a 2-core CPU.",
        "card.run": "Run the pair",
        "card.rerun": "Run the pair again",
        "card.stop": "Stop the pair",
        "card.running": "Training in the background: A {a} / B {b} epochs.",
        "card.done": "Both runs finished. The same seed gives the same numbers: pressing again reopens them.",
        "card.not_started": "Press the button: both runs start at once and share the CPU.",
        "card.answer": "What the numbers say",
        "card.curves": "Perplexity, A against B",
        "card.table": "The pair in numbers",
        "card.samples": "Samples at the same epochs (from “{prefix}”)",
        "card.engine_note": "Runs on the lesson engine (the fast engine has no {what}); both arms use it, so "
                            "their times compare.",
        "col.arm": "arm", "col.switch": "switch", "col.status": "status", "col.epochs": "epochs",
        "col.ppl": "perplexity", "col.best": "best", "col.grad": "max ‖g‖", "col.clip": "clipped",
        "col.sec": "s / epoch", "col.tps": "tokens/s", "col.held": "held-out perplexity", "col.wall": "wall time",
        "ex.embedding.title": "One-hot or a learnable embedding",
        "ex.embedding.q": "Show that one-hot encoding is equivalent to picking a different embedding for each "
                          "object. Replace one-hot encoding with learnable embeddings. Does this lead to better "
                          "performance?",
        "ex.embedding.why": "One-hot times W_xh picks a row of W_xh: an embedding E (one row per token) is the same "
                            "with E = I (tested: equal to the last bit). B learns E (|V| × |V|, N(0, 1)) together "
                            "with W_xh.",
        "ex.tuning.title": "Tuning: hidden units, time steps, learning rate",
        "ex.tuning.q": "Adjust the hyperparameters (e.g., number of epochs, number of hidden units, number of "
                       "time steps in a minibatch, and learning rate) to improve the perplexity. How low can you go?",
        "ex.tuning.why": "Each pair changes one hyperparameter; the curves show every epoch, so the number of "
                         "epochs is read off the x axis.",
        "ex.heldout.title": "Perplexity on other books",
        "ex.heldout.q": "How well will it work on other books by H. G. Wells, e.g., The War of the Worlds?",
        "ex.heldout.why": "Both arms train alike on the first 10,000 characters; each epoch A is scored on the "
                          "next 5,000 of The Time Machine and B on a text it never saw (the built-in Toy English), "
                          "without training on them.",
        "ex.predict.title": "Sampling instead of greedy, and sharpening with P^α",
        "ex.predict.q": "Modify the prediction function such as to use sampling rather than picking the most "
                        "likely next character. What happens? Bias the model towards more likely outputs, e.g., "
                        "by sampling from q(x_t | x_{t-1}, …, x_1) ∝ P(x_t | x_{t-1}, …, x_1)^α for α > 1.",
        "ex.predict.why": "Prediction does not change training: the curves coincide, the samples differ. P^α "
                          "renormalised is softmax(α · log P): α = 1 samples P, α → ∞ is greedy.",
        "ex.clip.title": "Without gradient clipping",
        "ex.clip.q": "Run the code in this section without clipping the gradient. What happens?",
        "ex.clip.why": "A clips the gradient to norm θ = 1 before each SGD step; B takes the full step.",
        "ex.detach.title": "Sequential partitioning without detach",
        "ex.detach.q": "Change sequential partitioning so that it does not separate hidden states from the "
                       "computational graph. Does the running time change? How about the perplexity?",
        "ex.detach.why": "Without detach, each minibatch's backward pass goes on through every earlier minibatch "
                         "of the epoch (the state is fresh at each epoch): the k-th costs k passes.",
        "ex.relu.title": "ReLU instead of tanh",
        "ex.relu.q": "Replace the activation function used in this section with ReLU and repeat the experiments "
                     "in this section. Do we still need gradient clipping? Why?",
        "ex.relu.why": "ReLU does not saturate: H_t can grow without bound, and so can the gradient through W_hh.",
        "var.embedding": "one-hot vs embedding",
        "var.lr": "lr 1 vs lr 2", "var.hidden": f"{HIDDEN} hidden units vs {2 * HIDDEN} hidden units",
        "var.steps": "35 vs 10 time steps",
        "var.other": "rest of the book vs another text",
        "var.upload": "rest of the book vs your text",
        "card.upload": "Or score B on a text of your own (.txt): it is read in the training vocabulary (characters "
                       "it lacks count as <unk>), the first 5,000 tokens. A link cannot carry the file: upload it "
                       "again to reopen this pair.",
        "var.sample": "greedy vs sampling", "var.sharpen2": "sampling vs P^2", "var.sharpen10": "sampling vs P^10",
        "var.off": "θ = 1 vs no clipping",
        "var.nodetach": "detach vs no detach",
        "var.relu": "tanh vs ReLU (θ = 1)", "var.reluclip": "ReLU: θ = 1 vs no clipping",
        "sum.waiting": "Run the pair: the answer appears after the first epoch of both runs.",
        "sum.so_far": " (so far: epoch {epoch})",
        "sum.ppl": "{lower} reached the lower perplexity: {A} {a} after {epochs_a} epochs, {B} {b} after {epochs_b}.",
        "sum.time": "An epoch took {a} s with {A} and {b} s with {B} ({ratio}×).",
        "sum.diverged": "{B}: the run diverged at epoch {epoch} (its loss blew up; the last good model is kept).",
        "sum.spike": "{B}: perplexity spiked from {best} to {peak} at epoch {epoch}.",
        "sum.no_spike": "{B}: perplexity never rose from one epoch to the next.",
        "sum.grad_max": "The gradient norm reached {b} (A: {a}).",
        "sum.never_clipped": "{A} never reached θ (its gradient norm peaked at {a}), so both runs took the same "
                             "steps: at this seed clipping changed nothing; try another seed.",
        "sum.clip_reached": "{A} reached perplexity {a} (gradient clipped in {rate} of minibatches); {B} {b}.",
        "sum.heldout": "{A}: perplexity {a} on the rest of The Time Machine, against {train} on the text it "
                       "trained on.",
        "sum.heldout_other": "{B}: perplexity {b} on a text it never saw, {ratio}× the rest of the same book.",
        "sum.repeats": "Last samples (epoch {epoch}): {a} of {A}'s 4-word sequences repeat an earlier one, "
                       "{b} of {B}'s.",
        "sum.same_training": "Training is the same for both (perplexity {a} and {b}): prediction only changes "
                             "what the model writes.",
        "sum.relu_grad": "The gradient norm peaked at {a} with {A} and {b} with {B}; clipped in {ca} and {cb} "
                         "of minibatches.",
        "step.title": "Step by step: one minibatch at a time",
        "step.intro": "One press trains one minibatch of the lesson's data (as the Training page does, "
                      "{hidden} hidden units) and shows what that single SGD step did.",
        "step.one": "One minibatch", "step.ten": "Run 10 steps", "step.reset": "Start over",
        "step.detach": "Detach the state between minibatches",
        "step.none": "No step yet: press “One minibatch”.",
        "step.where": "Epoch {epoch}, minibatch {batch} of {n}.",
        "step.rows": "X and Y (first {rows} rows as text: Y is X shifted by one)",
        "step.loss": "Loss {loss}", "step.g_before": "‖g‖ before clipping", "step.g_after": "‖g‖ after clipping",
        "step.updates": "Update size ‖ΔW‖ / ‖W‖ of each parameter",
        "step.state_detached": "The state carried to the next minibatch: {shape}, ‖H‖ = {norm}; detached (the "
                               "next backward stops here).",
        "step.state_attached": "The state carried to the next minibatch: {shape}, ‖H‖ = {norm}; still attached: "
                               "this step's backward went through {k} minibatches.",
        "step.from_zero": "from 0",
        "chart.grad": "‖g‖ before clipping (mean per epoch)", "chart.clipped": "minibatches clipped",
        "chart.step_loss": "Loss at each position (cell text: the input token)",
        "chart.step_row": "row of the minibatch",
    },
    "zh": {
        "page.title": "7 · 练习",
        "page.intro": "本节以练习结束。每张卡片把一道练习变成一组 **A/B 对照**：两次训练用同一个随机种子、同样的设置，只改 "
                      "**一个开关**，在后台训练（阅读或打开其他页面时继续进行，重新打开本页仍在）。曲线下的答案由这组训练的数字算出。",
        "page.exercise": "练习",
        "page.variation": "对照",
        "page.seed": "随机种子",
        "page.seed_help": "侧边栏的随机种子：两次训练都从它开始，同一种子在任何服务器上都得到同样的数字（网址保存练习、对照和种子）。",
        "page.overview": "全部练习",
        "card.sizes": "规模：本节的数据（10,000 个字符，批量 {batch}，时间步 {steps}），学习率 {lr}，隐藏单元 {hidden} 个、"
                      "迭代周期 {epochs} 个（本节为 512 和 500），因此一组对照在 2 核 CPU 上不到 {budget} 秒完成。",
        "card.run": "运行这组对照",
        "card.rerun": "再次运行这组对照",
        "card.stop": "停止这组对照",
        "card.running": "正在后台训练：A {a} / B {b} 个迭代周期。",
        "card.done": "两次训练都已完成。同一种子得到同样的数字：再按一次会重新打开它们。",
        "card.not_started": "按下按钮：两次训练同时开始，共用 CPU。",
        "card.answer": "数字说明了什么",
        "card.curves": "困惑度：A 对 B",
        "card.table": "这组对照的数字",
        "card.samples": "同一迭代周期的生成样本（前缀 “{prefix}”）",
        "card.engine_note": "在课程引擎上运行（快速引擎没有{what}）；两组都用它，所以时间可以比较。",
        "col.arm": "组", "col.switch": "开关", "col.status": "状态", "col.epochs": "迭代周期",
        "col.ppl": "困惑度", "col.best": "最低", "col.grad": "最大 ‖g‖", "col.clip": "裁剪比例",
        "col.sec": "秒 / 周期", "col.tps": "词元/秒", "col.held": "留出文本困惑度", "col.wall": "耗时",
        "ex.embedding.title": "独热编码还是可学习的嵌入",
        "ex.embedding.q": "尝试说明独热编码等价于为每个对象选择不同的嵌入表示。用可学习的嵌入表示替换独热编码，是否会带来更好的表现？",
        "ex.embedding.why": "独热向量乘 W_xh 就是取出 W_xh 的一行：嵌入矩阵 E（每个词元一行）取 E = I 时与之完全相同（已测试，逐位相等）。"
                            "B 组同时学习 E（|V| × |V|，N(0, 1)）和 W_xh。",
        "ex.tuning.title": "调整超参数：隐藏单元、时间步、学习率",
        "ex.tuning.q": "通过调整超参数（如迭代周期数、隐藏单元数、小批量数据的时间步数、学习率等）来改善困惑度。困惑度可以降到多少？",
        "ex.tuning.why": "每组对照只改一个超参数；曲线显示每个迭代周期，迭代周期数从横轴读出。",
        "ex.heldout.title": "在其他书上的困惑度",
        "ex.heldout.q": "如果用 H. G. Wells 的其他书作为数据集时效果如何，例如《世界大战》？",
        "ex.heldout.why": "两组在前 10,000 个字符上的训练完全相同；每个迭代周期，A 组在《时间机器》接下来的 5,000 个字符上评估，"
                          "B 组在从未见过的文本（内置的 Toy English）上评估，都不在其上训练。",
        "ex.predict.title": "采样代替贪心，以及用 P^α 锐化",
        "ex.predict.q": "修改预测函数，例如使用采样，而不是选择最有可能的下一个字符。会发生什么？调整模型使之偏向更可能的输出，"
                        "例如，当 α > 1，从 q(x_t | x_{t-1}, …, x_1) ∝ P(x_t | x_{t-1}, …, x_1)^α 中采样。",
        "ex.predict.why": "预测方式不改变训练：曲线重合，生成的样本不同。归一化后的 P^α 等于 softmax(α · log P)：α = 1 按 P 采样，"
                          "α → ∞ 即贪心。",
        "ex.clip.title": "不裁剪梯度",
        "ex.clip.q": "在不裁剪梯度的情况下运行本节中的代码会发生什么？",
        "ex.clip.why": "A 组在每次 SGD 更新前把梯度范数裁剪到 θ = 1；B 组直接用完整的梯度。",
        "ex.detach.title": "顺序分区但不分离隐状态",
        "ex.detach.q": "更改顺序划分，使其不会从计算图中分离隐状态。运行时间会有变化吗？困惑度呢？",
        "ex.detach.why": "不分离时，每个小批量的反向传播会一直穿过本迭代周期之前的所有小批量（每个迭代周期隐状态重新初始化）："
                         "第 k 个小批量要反传 k 段。",
        "ex.relu.title": "用 ReLU 代替 tanh",
        "ex.relu.q": "用 ReLU 替换本节中使用的激活函数，并重复本节中的实验。我们还需要梯度裁剪吗？为什么？",
        "ex.relu.why": "ReLU 不会饱和：H_t 可以无限增长，经过 W_hh 的梯度也一样。",
        "var.embedding": "独热编码 vs 嵌入",
        "var.lr": "学习率 1 vs 2", "var.hidden": f"{HIDDEN} 个隐藏单元 vs {2 * HIDDEN} 个隐藏单元",
        "var.steps": "时间步 35 vs 10",
        "var.other": "同书其余部分 vs 另一文本",
        "var.upload": "同书其余部分 vs 你的文本",
        "card.upload": "也可以用你自己的文本（.txt）评估 B：按训练词表读取（词表中没有的字符记为 <unk>），取前 5,000 个词元。"
                       "链接无法携带文件：重新上传即可再次打开这组对照。",
        "var.sample": "贪心 vs 采样", "var.sharpen2": "采样 vs P^2", "var.sharpen10": "采样 vs P^10",
        "var.off": "θ = 1 vs 不裁剪",
        "var.nodetach": "分离 vs 不分离",
        "var.relu": "tanh vs ReLU（θ = 1）", "var.reluclip": "ReLU：θ = 1 vs 不裁剪",
        "sum.waiting": "运行这组对照：两次训练各完成第一个迭代周期后，这里给出答案。",
        "sum.so_far": "（目前：第 {epoch} 个迭代周期）",
        "sum.ppl": "{lower} 的困惑度更低：{A} 在 {epochs_a} 个迭代周期后为 {a}，{B} 在 {epochs_b} 个后为 {b}。",
        "sum.time": "一个迭代周期 {A} 用时 {a} 秒，{B} 用时 {b} 秒（{ratio}×）。",
        "sum.diverged": "{B}：训练在第 {epoch} 个迭代周期发散（损失爆炸；保留最后一个正常的模型）。",
        "sum.spike": "{B}：困惑度在第 {epoch} 个迭代周期从 {best} 突增到 {peak}。",
        "sum.no_spike": "{B}：困惑度从未在相邻迭代周期间上升。",
        "sum.grad_max": "梯度范数最高达到 {b}（A：{a}）。",
        "sum.never_clipped": "{A} 从未达到 θ（梯度范数峰值为 {a}），所以两次训练每一步都相同：在这个种子下裁剪没有任何作用；换一个种子试试。",
        "sum.clip_reached": "{A} 的困惑度达到 {a}（{rate} 的小批量被裁剪）；{B} 为 {b}。",
        "sum.heldout": "{A}：在《时间机器》其余部分上的困惑度为 {a}，在训练文本上为 {train}。",
        "sum.heldout_other": "{B}：在从未见过的文本上困惑度为 {b}，是同书其余部分的 {ratio}×。",
        "sum.repeats": "最新样本（第 {epoch} 个迭代周期）：{A} 有 {a} 的四词序列重复了前文，{B} 有 {b}。",
        "sum.same_training": "两组的训练相同（困惑度 {a} 与 {b}）：预测方式只改变模型写出的文字。",
        "sum.relu_grad": "梯度范数的峰值：{A} 为 {a}，{B} 为 {b}；被裁剪的小批量分别占 {ca} 和 {cb}。",
        "step.title": "逐步训练：一次一个小批量",
        "step.intro": "每按一次，在本节的数据上训练一个小批量（与训练页相同，{hidden} 个隐藏单元），并显示这一次 SGD 更新做了什么。",
        "step.one": "一个小批量", "step.ten": "运行 10 步", "step.reset": "重新开始",
        "step.detach": "在小批量之间分离隐状态",
        "step.none": "还没有训练：按“一个小批量”。",
        "step.where": "第 {epoch} 个迭代周期，第 {batch} 个小批量（共 {n} 个）。",
        "step.rows": "X 和 Y（前 {rows} 行文本：Y 是 X 右移一位）",
        "step.loss": "损失 {loss}", "step.g_before": "裁剪前 ‖g‖", "step.g_after": "裁剪后 ‖g‖",
        "step.updates": "各参数的更新幅度 ‖ΔW‖ / ‖W‖",
        "step.state_detached": "传给下一个小批量的隐状态：{shape}，‖H‖ = {norm}；已分离（下一次反向传播到此为止）。",
        "step.state_attached": "传给下一个小批量的隐状态：{shape}，‖H‖ = {norm}；仍连在计算图上：这一步的反向传播穿过了 {k} 个小批量。",
        "step.from_zero": "从 0 开始",
        "chart.grad": "裁剪前的 ‖g‖（每个迭代周期的平均）", "chart.clipped": "被裁剪的小批量",
        "chart.step_loss": "每个位置的损失（格中文字：输入词元）",
        "chart.step_row": "小批量的行",
    },
}


def lang_now() -> str:
    """The page's language: the dashboard's choice where there is one (``dashboard.i18n``), else English."""
    try:
        from dashboard import i18n
    except ImportError:
        return "en"
    lang = i18n.current()
    return lang if lang in MESSAGES else "en"


def tr(key: str, lang: str | None = None, **fmt) -> str:
    """The message ``key`` in ``lang`` (default: the page's), its ``{fields}`` filled."""
    text = MESSAGES[lang or lang_now()].get(key) or MESSAGES["en"][key]
    return text.format(**fmt) if fmt else text


def arm_label(variation: Variation, arm: str, lang: str | None = None) -> str:
    """'A (one-hot)' style label from the variation's name 'one-hot vs embedding'."""
    parts = tr(variation_message(variation), lang).split(" vs ")
    if len(parts) == 2:
        head, _, first = parts[0].rpartition("：") if "：" in parts[0] else parts[0].rpartition(": ")
        names = [first or parts[0], parts[1]]
        return f"{arm} ({names[0 if arm == 'A' else 1].strip()})"
    return arm

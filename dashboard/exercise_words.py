"""The Exercises page's words made from numbers: the pair's table, the card's caption, the two sentences that
answer each card's question and the "predict first" question, its choices and what the runs bore out.

Every sentence is built from the numbers of :mod:`dashboard.exercise_stats` (at the same epoch for both arms) and
worded by the catalogues (``exercises.*``); every number it quotes is one the table or a chart shows.
"""
from __future__ import annotations

import pandas as pd

import rnn_core
from rnn_core.runs import RunSettings, RunView

from .exercise_catalogue import (BUDGET_S, EXERCISES, Exercise, Variation, arm_label, pair_name, tr,
                                 value_word)
from .exercise_runs import find_pair, pair_running
from .exercise_stats import ArmStats, at_same_epoch, last_sample, pair_stats, repeat_share
from .formatting import fmt_seconds, num
from .i18n import t


def pct(part: int, whole: int) -> str:
    """A share as a card writes it: 12%, 1.5%, 0.12% (never 0% for a share above 0)."""
    p = 100 * part / whole if whole else 0.0
    return "0%" if p == 0 else f"{p:.0f}%" if p >= 10 else f"{p:.2g}%"


def share(part: int, whole: int, lang: str | None = None) -> str:
    """'12 of 800 (1.5%)': a count of minibatches with its share, as the table and the sentences write it."""
    return tr("card.share", lang, k=f"{part:,}", n=f"{whole:,}", pct=pct(part, whole))



TABLE_COLUMNS = ("arm", "status", "epochs", "ppl", "best", "held", "grad", "clip", "sec", "tps", "wall")


def pair_table(a: RunView | None, b: RunView | None, labels: dict[str, str], lang: str | None = None) -> pd.DataFrame:
    """The pair's numbers at the same epoch, a row per arm that exists, headed in ``lang`` (empty before either
    exists). ‖g‖ is per minibatch, as the minibatch chart draws it: its largest, and in how many it was above θ."""
    def row(arm: str, v: RunView, s: ArmStats) -> dict:
        above = share(s.above, s.minibatches, lang) if s.minibatches and s.theta is not None else "–"
        grad = num(s.grad_max, 3) if s.blowup_epoch is None else tr("card.grad_then", lang, g=num(s.grad_max, 3))
        return {"arm": labels[arm], "status": t(f"status.{v.status}", lang), "epochs": s.epochs,
                "ppl": num(s.final_ppl, 3), "best": num(s.best_ppl, 3), "held": num(s.heldout, 3), "grad": grad,
                "clip": above, "sec": num(s.seconds_per_epoch, 2),
                "tps": f"{s.tokens_per_s:,.0f}" if s.tokens_per_s else "–", "wall": fmt_seconds(v.wall_s)}

    stats = dict(zip("AB", pair_stats(a, b)))
    arms = [(arm, v, stats[arm]) for arm, v in (("A", a), ("B", b)) if v is not None]
    frame = pd.DataFrame([row(*arm) for arm in arms], columns=list(TABLE_COLUMNS))
    return frame.rename(columns={c: tr(f"col.{c}", lang) for c in TABLE_COLUMNS})


def settings_line(a: RunSettings, b: RunSettings, lang: str | None = None) -> str:
    """The card's caption: the settings A and B differ in, then the sizes both train at."""
    diff = " · ".join(tr("card.diff", lang, setting=t(f"setting.{k}", lang), a=value_word(k, x, lang),
                         b=value_word(k, y, lang)) for k, (x, y) in a.differences(b).items())
    return diff + "  \n" + tr("card.sizes", lang, batch=a.batch, steps=a.steps, lr=value_word("lr", a.lr, lang),
                               hidden=a.hidden, epochs=a.epochs, budget=BUDGET_S)


def engine_note(exercise: Exercise, a: RunSettings, b: RunSettings, lang: str | None = None) -> str | None:
    """Why the pair trains on the lesson engine, when an arm does (its times are slower than the fast engine's)."""
    if "lesson" not in (rnn_core.engines.engine_for(s.engine, s.activation, s.input, s.detach) for s in (a, b)):
        return None
    what = "card.engine_what_embedding" if exercise.id == "embedding" else "card.engine_what_nodetach"
    return tr("card.engine_note", lang, what=tr(what, lang))


def clip_lines(A: str, B: str, sa: ArmStats, sb: ArmStats, lr: float, lang: str | None = None) -> list[str]:
    """What B without clipping did (its gradient and loss, per minibatch), then what A clipped and reached."""
    theta = num(sa.theta, 3)
    if not sa.clipped:  # A never clipped: B took exactly A's steps
        return [tr("sum.clip_never", lang, A=A, theta=theta, n=f"{sa.minibatches:,}", a=num(sa.grad_max, 3)),
                tr("sum.clip_same", lang, a=num(sa.final_ppl, 3), b=num(sb.final_ppl, 3))]
    g = dict(B=B, g=num(sb.grad_max, 3), theta=theta, lo=num(sb.jump_from, 3),
             hi=num(sb.jump_to, 3), epoch=sb.jump_epoch, uniform=num(sb.uniform, 3))
    kept = tr("sum.kept_epoch", lang, good=sb.good_epoch) if sb.good_epoch else tr("sum.kept_initial", lang)
    if sb.status == "diverged" and sb.blowup_epoch is not None:  # the epoch that blew up is in the numbers
        where = dict(blowup=sb.blowup_epoch, k=sb.blowup_minibatch, kept=kept)
        blew = tr("sum.b_blew_up" if sb.spiked else "sum.b_blew_up_only", lang, **g, **where)
    elif sb.status == "diverged":  # its loss stayed above the bound: every epoch is whole
        blew = tr("sum.b_diverged" if sb.spiked else "sum.b_diverged_only", lang, **g, end=sb.epochs, kept=kept)
    elif sb.spiked:
        blew = tr("sum.b_spiked", lang, **g)
    else:
        blew = tr("sum.b_calm", lang, B=B, theta=theta, above=share(sb.above, sb.minibatches, lang), g=g["g"],
                  uniform=g["uniform"])
    clipped, step = share(sa.clipped, sa.minibatches, lang), num(lr * sa.theta, 3)
    if sa.status == "diverged":
        return [blew, tr("sum.a_diverged_too", lang, A=A, clipped=clipped, end=sa.epochs, step=step)]
    if sb.status == "diverged":
        line = tr("sum.a_clipped_b_diverged", lang, A=A, clipped=clipped, a=num(sa.final_ppl, 3), B=B)
    else:
        line = tr("sum.a_clipped", lang, A=A, clipped=clipped, a=num(sa.final_ppl, 3), B=B, b=num(sb.final_ppl, 3))
    if sa.spiked:  # clipping bounds the step, not how often a long one is taken
        line += " " + tr("sum.a_spiked_too", lang, A=A, lo=num(sa.jump_from, 3), hi=num(sa.jump_to, 3),
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
    ppl_line = tr("sum.ppl_same" if same else "sum.ppl", lang, A=A, B=B, a=num(sa.final_ppl, 3), b=num(sb.final_ppl, 3),
                  lower=lower, epochs_a=sa.epochs, epochs_b=sb.epochs, within=pct(SAME_PPL * 100, 100)) + part
    time_line = tr("sum.time", lang, A=A, B=B, a=num(sa.seconds_per_epoch, 2), b=num(sb.seconds_per_epoch, 2),
                   ratio=num(sb.seconds_per_epoch / sa.seconds_per_epoch, 2) if sa.seconds_per_epoch else "–")
    if (exercise.id == "clip" or variation.id == "reluclip") and sa.minibatches and sb.minibatches:
        lines = clip_lines(A, B, sa, sb, a.settings.lr, lang)
        return [lines[0], lines[1] + part]
    if exercise.id == "detach":
        return [time_line, ppl_line]
    if exercise.id == "heldout":
        return [tr("sum.heldout", lang, A=A, a=num(sa.heldout, 3), train=num(sa.final_ppl, 3)),
                tr("sum.heldout_other", lang, B=B, b=num(sb.heldout, 3),
                   ratio=num(sb.heldout / sa.heldout, 3) if sa.heldout and sb.heldout else "–") + part]
    if exercise.id == "predict":
        la, lb = last_sample(a), last_sample(b)
        ra, rb = repeat_share(la[1] if la else None), repeat_share(lb[1] if lb else None)
        return [tr("sum.repeats", lang, A=A, B=B, a=f"{ra:.0%}" if ra is not None else "–",
                   b=f"{rb:.0%}" if rb is not None else "–", epoch=la[0] if la else "–"),
                tr("sum.same_training", lang, a=num(sa.final_ppl, 3), b=num(sb.final_ppl, 3))]
    if exercise.id == "relu" and sa.minibatches and sb.minibatches:
        return [ppl_line, tr("sum.relu_grad", lang, A=A, B=B, a=num(sa.grad_max, 3), b=num(sb.grad_max, 3),
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

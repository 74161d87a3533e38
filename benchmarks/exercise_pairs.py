"""The Exercises page's pairs at their defaults, seed by seed: ``python -m benchmarks.exercise_pairs``.

``python -m benchmarks.exercise_pairs [--pairs clip/off,relu/reluclip] [--seeds 0-4] [--sizes hidden=16,epochs=3]
[--set lr=4] [--threads 1]``

Each arm of each pair trains as the page trains it (``dashboard.exercises.pair_settings``, ``Run.create`` on the
lesson's 10,000 characters of The Time Machine), here one arm after the other in this process, without the
scheduler. A row per seed and arm, counted as the page counts (``dashboard.exercises.pair_stats``): the epochs
trained, the status (done or diverged), the final and best perplexity, the largest per-minibatch ‖g‖ before
clipping and how many minibatches were above the pair's θ, the largest jump of a minibatch's loss over the lowest
before it (from 1.5× and above log|V|, the page calls it a spike: the arm lost what it had learnt), and the seconds
it took. Then the prediction the runs bear out and the page's answer for the pair, in English: the sentences a
class reads at these settings.

``--set`` changes settings of both arms (the candidates tried before choosing the clipping pair's); ``--sizes``
the sizes as ``RNN_LAB_EXERCISE_SIZES`` does. Numbers are measurements, reported in docs/performance.md,
never asserted. Writes ``artifacts/exercise_pairs.json`` (``--out``).
"""
from __future__ import annotations

import argparse
import json
import math
import time
from dataclasses import replace
from pathlib import Path

import torch

import rnn_core
from rnn_core import corpus as rc_corpus
from rnn_core import fast
from rnn_core.runs import Run
from rnn_core.training import json_safe

import streamlit.logger  # noqa: E402

streamlit.logger.set_log_level("error")  # no "no runtime" warning per cached function of the dashboard
from dashboard import exercises as ex  # noqa: E402
from dashboard.settings import MAX_TOKENS  # noqa: E402

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"


def parse_seeds(text: str) -> list[int]:
    """'0-4' or '0,3,7' -> the seeds."""
    seeds = []
    for part in text.split(","):
        lo, _, hi = part.partition("-")
        seeds += list(range(int(lo), int(hi or lo) + 1))
    return seeds


def parse_set(text: str) -> dict:
    """'lr=4,activation=relu' -> {'lr': 4.0, 'activation': 'relu'} (numbers as float or int)."""
    out = {}
    for part in filter(None, text.split(",")):
        k, _, v = part.partition("=")
        try:
            out[k.strip()] = int(v) if v.strip().isdigit() and k.strip() != "lr" else float(v)
        except ValueError:
            out[k.strip()] = None if v.strip() == "off" else v.strip()
    return out


def train(settings, tc) -> tuple[Run, float]:
    """One arm to its last epoch (or its divergence), in this thread; (the run, seconds)."""
    run = Run.create(settings, tc, device="cpu")
    run.status = "running"  # what the scheduler's start does, without its thread
    start = time.perf_counter()
    while run.advance(math.inf):
        pass
    return run, time.perf_counter() - start


def arm_row(stats: ex.ArmStats, seconds: float) -> dict:
    """What the pair's arm did, as the page counts it (``dashboard.exercises.pair_stats``)."""
    return {"epochs": stats.epochs, "status": stats.status, "ppl": stats.final_ppl, "best": stats.best_ppl,
            "g_max": stats.grad_max, "g_max_epoch": stats.grad_max_epoch, "above_theta": stats.above,
            "clipped": stats.clipped, "minibatches": stats.minibatches, "jump": stats.jump,
            "jump_from": stats.jump_from, "jump_to": stats.jump_to, "jump_epoch": stats.jump_epoch,
            "blowup_epoch": stats.blowup_epoch, "blowup_minibatch": stats.blowup_minibatch, "seconds": seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", default="clip/off,relu/reluclip,relu/relu",
                        help="exercise/variation, comma separated, or 'all'")
    parser.add_argument("--seeds", default="0-4")
    parser.add_argument("--sizes", default="", help="as RNN_LAB_EXERCISE_SIZES: hidden=16,epochs=3")
    parser.add_argument("--set", default="", help="settings of both arms: lr=4,steps=35")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (the machine is shared)")
    parser.add_argument("--arms", default="AB", help="the arms to train: AB, A or B (a quick look at one arm)")
    parser.add_argument("--out", default=str(ARTIFACTS / "exercise_pairs.json"), help="where the rows are written")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    fast.kernels(block=True)
    tc = rnn_core.tokenize_corpus(rc_corpus.read_time_machine(download=False), "char", MAX_TOKENS, clean="lesson")
    sizes = ex.Sizes.from_env(args.sizes)
    pairs = ([(e, v) for e in ex.EXERCISES.values() for v in e.variations] if args.pairs == "all" else
             [(ex.EXERCISES[p.split("/")[0]], ex.EXERCISES[p.split("/")[0]].variation(p.split("/")[1]))
              for p in args.pairs.split(",")])
    changes = parse_set(args.set)
    results = []
    for exercise, variation in pairs:
        for seed in parse_seeds(args.seeds):
            a, b = (replace(s, **changes) for s in ex.pair_settings(exercise, variation, seed, sizes))
            trained = {arm: train(s, tc) for arm, s in (("A", a), ("B", b)) if arm in args.arms}
            views = [trained[arm][0].view() if arm in trained else None for arm in "AB"]
            stats = dict(zip("AB", ex.pair_stats(*views)))
            rows = {arm: arm_row(stats[arm], trained[arm][1]) for arm in trained}
            answer = ex.summary(exercise, variation, *views, "en") if len(trained) == 2 else []
            outcome = ex.guess_outcome(exercise, variation, *views) if len(trained) == 2 else None
            results.append({"pair": f"{exercise.id}/{variation.id}", "seed": seed, "set": args.set,
                            "sizes": args.sizes, **{f"{arm}_{k}": v for arm, row in rows.items()
                                                    for k, v in row.items()}, "answer": answer,
                            "outcome": outcome})
            for arm, row in rows.items():
                print(f"{exercise.id}/{variation.id} seed {seed} {arm}: {row['status']:8} {row['epochs']:4} ep  "
                      f"ppl {row['ppl']:8.3g} (best {row['best']:.3g})  max‖g‖ {row['g_max']:9.3g}  "
                      f"(epoch {row['g_max_epoch']})  above θ {row['above_theta']:4}/{row['minibatches']}  "
                      f"loss jump {row['jump'] or 0:6.2f}x (epoch {row['jump_epoch']})  "
                      f"not finite from epoch {row['blowup_epoch']} minibatch {row['blowup_minibatch']}  "
                      f"{row['seconds']:5.1f} s",
                      flush=True)
            if answer:
                print(f"   [{outcome}] " + " / ".join(answer), flush=True)
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        # after every pair (a long run can be cut short); a diverged arm's perplexity is written "inf"
        Path(args.out).write_text(json.dumps(json_safe(results), indent=1))


if __name__ == "__main__":
    main()

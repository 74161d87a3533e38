"""How far the ETA is from the time really left: ``python -m benchmarks.eta_error [--epochs 100] [--runs 3]``.

Trains ``--runs`` runs one after another with the same settings (the lesson's: Time Machine chars, first 10,000
tokens, batch 32, 35 steps, 512 hidden units, fast engine) as the Training page does: a run store in a temporary
folder, the scheduler's worker thread. Every 0.1 s it reads the run's view and keeps the ETA the page would show
(``RunView.eta_s``: the run's pace blended with the pace earlier runs of the same settings left in the store)
and, for comparison, the former one (the last quarter's pace alone, at least 20 epochs). The first run has no
earlier run to go by; each later one has (as after Restart). At 10/25/50/75/90% of each run it prints the ETA
shown against the time really left, as a signed error, and the first ETA shown.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

from rnn_core import pace
from rnn_core.corpus import load_corpus
from rnn_core.data import tokenize_corpus
from rnn_core.runs import RunSettings, RunStore, Scheduler

MARKS = (0.10, 0.25, 0.50, 0.75, 0.90)


def former_eta(view) -> float | None:
    """The ETA as it was computed before rnn_core.pace blended in a prior: the recent window's pace alone
    (``pace.own_pace`` over the finished epochs; the first epoch's time while it is the only one)."""
    if not view.running or not view.records:
        return None
    walls = [r["wall_s"] for r in view.records]
    own = pace.own_pace(walls, walls[-1], 0.0)
    per_epoch = own[0] if own is not None else walls[0]
    return max(0.0, view.target - view.epoch - view.epoch_fraction) * per_epoch


def one_run(store: RunStore, tc, settings: RunSettings, threads: int | None) -> list[tuple[float, float, float, float]]:
    """(seconds since start, progress, ETA shown, former ETA) every 0.1 s, and the seconds to the end."""
    scheduler = Scheduler(threads=threads)
    run = scheduler.create(settings, tc, store=store)
    samples = []
    start = time.perf_counter()
    scheduler.start(run)
    while run.running:
        view = run.view()
        samples.append((time.perf_counter() - start, view.progress, view.eta_s, former_eta(view)))
        time.sleep(0.1)
    end = time.perf_counter() - start
    scheduler.close()
    run.close()
    return [(t, p, eta, old, end - t) for t, p, eta, old in samples], end


def error(shown: float | None, left: float) -> str:
    if shown is None:
        return "none"
    return f"{(shown / left - 1) * 100:+.0f}% ({shown:.1f}/{left:.1f} s)" if left > 0 else f"{shown:.1f}/0 s"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.eta_error", description=__doc__.split("\n")[0])
    p.add_argument("--epochs", type=int, default=100)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--hidden", type=int, default=512)
    p.add_argument("--threads", type=int, default=None, help="fixed torch threads (default: chosen per turn)")
    args = p.parse_args(argv)
    tc = tokenize_corpus(load_corpus("time_machine"), "char", 10_000)
    settings = RunSettings(epochs=args.epochs, hidden=args.hidden)
    print(f"{args.runs} runs of {args.epochs} epochs, hidden {args.hidden}, batch 32, 35 steps; "
          f"load average at start {os.getloadavg()[0]:.2f}")
    print("| run | load | wall s | first ETA shown (former) | " + " | ".join(f"at {m:.0%}" for m in MARKS) + " |")
    print("|---|---:|---:|---|" + "---|" * len(MARKS))
    with tempfile.TemporaryDirectory() as root:
        store = RunStore(root, reference_root=None, max_bytes=1 << 62)
        for i in range(args.runs):
            load = os.getloadavg()[0]
            samples, end = one_run(store, tc, settings, args.threads)
            shown = [(t, eta, old, left) for t, _, eta, old, left in samples if eta is not None or old is not None]
            first = shown[0] if shown else None
            cells = []
            for mark in MARKS:
                at = next(((eta, old, left) for _, prog, eta, old, left in samples if prog >= mark), None)
                cells.append("-" if at is None else f"{error(at[0], at[2])}; former {error(at[1], at[2])}")
            first_cell = ("-" if first is None else
                          f"at {first[0]:.1f} s: {error(first[1], first[3])}; former {error(first[2], first[3])}")
            print(f"| {i + 1}{' (no earlier run)' if i == 0 else ''} | {load:.2f} | {end:.1f} | {first_cell} | "
                  + " | ".join(cells) + " |", flush=True)
    print(f"load average at end {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Where runs train: the server's own thread against worker processes. ``python -m benchmarks.workers_speed``.

For each number of runs (``--runs 2 4``) and each place (``--workers 0 1 2``: 0 is the in-process Scheduler,
N a WorkerPool of N processes) it starts that many runs of the lesson's model (The Time Machine, first 10,000
tokens, batch 32, 35 steps, ``--hidden`` units, the fast engine) on a fresh run store, waits until each has
trained an epoch, and then for ``--seconds`` measures:

- aggregate tokens/s: the tokens all runs trained in the window (epochs and the fraction of the epoch in
  progress, as the server sees them) over its length;
- the server's responsiveness: a page's kind of work done in the server's process meanwhile (tokenize a
  corpus, build a table, one forward pass of a 512-unit model over 35 steps: what a Streamlit script run does),
  timed again and again; its median and p95 against the same work on an idle machine (``idle`` row).

The runs' threads are the schedulers' own choice (RNN_LAB_TRAIN_THREADS fixes them), as on a server.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time

import pandas as pd
import torch

import rnn_core
from rnn_core.runs import RunSettings, RunStore, Scheduler
from rnn_core.workers import WorkerPool


def page_work(tc, net) -> None:
    """About what one script run of a light page costs the server: Python, pandas and a small forward pass."""
    tokens = tc.vocab.to_tokens(tc.corpus[:2000])
    pd.DataFrame({"token": tokens, "index": tc.corpus[:2000]}).groupby("token").count()
    with torch.no_grad():
        X = torch.tensor([tc.corpus[:35]])
        net(X, net.begin_state(1, "cpu"))


def page_latency(tc, net, seconds: float) -> list[float]:
    times, end = [], time.perf_counter() + seconds
    while time.perf_counter() < end:
        t0 = time.perf_counter()
        page_work(tc, net)
        times.append(time.perf_counter() - t0)
        time.sleep(0.05)  # a page run, then a pause (the browser, the next click)
    return times


def p95(values: list[float]) -> float:
    return sorted(values)[max(0, round(0.95 * len(values)) - 1)]


def measure(n_runs: int, workers: int, hidden: int, seconds: float, tc, page_tc, net) -> dict:
    store = RunStore(tempfile.mkdtemp(prefix="rnn-lab-bench-"), reference_root=None)
    scheduler = WorkerPool(store, workers) if workers else Scheduler()
    if workers:
        scheduler.wait_ready()  # processes started and kernels loaded, as on a server that has been up a while
    runs = []
    try:
        for i in range(n_runs):
            settings = RunSettings(corpus="time_machine", hidden=hidden, epochs=100_000, seed=i, device="cpu")
            run = scheduler.create(settings, tc, store=store, device="cpu")
            scheduler.start(run)
            runs.append(run)
        deadline = time.monotonic() + 300
        while any(r.view().epoch < 1 for r in runs) and time.monotonic() < deadline:
            time.sleep(0.1)

        def done() -> float:
            return sum((v.epoch + v.epoch_fraction) * v.tokens_per_epoch for v in (r.view() for r in runs))
        t0, tokens0 = time.perf_counter(), done()
        latencies = page_latency(page_tc, net, seconds)
        elapsed, tokens = time.perf_counter() - t0, done() - tokens0
    finally:
        for run in runs:
            scheduler.stop(run)
        scheduler.close()
    return {"runs": n_runs, "workers": workers, "hidden": hidden, "tokens_per_s": round(tokens / elapsed),
            "page_median_ms": round(1000 * statistics.median(latencies), 1),
            "page_p95_ms": round(1000 * p95(latencies), 1), "page_runs": len(latencies),
            "load": os.getloadavg()[0]}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, nargs="+", default=[2, 4])
    ap.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--json", default=None, help="also write the rows to this file")
    args = ap.parse_args(argv)
    tc = rnn_core.tokenize_corpus(rnn_core.load_corpus("time_machine"), "char", 10_000)
    page_tc = rnn_core.tokenize_corpus(rnn_core.builtin_corpus("toy_english", seed=0), "char", 10_000)
    net = rnn_core.make_model("fast", len(page_tc.vocab), 512, "cpu", seed=0)
    rows = [{"runs": 0, "workers": "idle", "tokens_per_s": 0, **_idle(page_tc, net, args.seconds / 2)}]
    print(json.dumps(rows[0]), flush=True)
    for n in args.runs:
        for w in args.workers:
            rows.append(measure(n, w, args.hidden, args.seconds, tc, page_tc, net))
            print(json.dumps(rows[-1]), flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)
    return 0


def _idle(page_tc, net, seconds: float) -> dict:
    latencies = page_latency(page_tc, net, seconds)
    return {"page_median_ms": round(1000 * statistics.median(latencies), 1),
            "page_p95_ms": round(1000 * p95(latencies), 1), "page_runs": len(latencies), "load": os.getloadavg()[0]}


if __name__ == "__main__":
    raise SystemExit(main())

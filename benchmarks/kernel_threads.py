"""The fast engine's C++ kernels with 1 and 2 threads, alone and beside a busy process:
``python -m benchmarks.kernel_threads [--source OLD.cpp] [--rounds 4]``.

Each measurement runs in a process of its own (OpenMP threads left spinning by one measurement would slow the
next in the same process): the lesson's settings (Time Machine chars, first 10,000 tokens, batch 32, 35 steps,
512 hidden units, lr 1, theta 1) in ``rnn_core.Trainer`` on the fast engine, one warm-up epoch, then epochs until
``--seconds`` have passed. "busy" starts ``python -c "while 1: pass"`` beside it (one core taken away, as a
browser drawing a page does). The configurations alternate, each round in the opposite order to the last.

``--spin 1000 default`` measures each configuration with rnn_core's OpenMP spin count and with libgomp's own.
``--source`` adds another kernel source (e.g. an earlier version: ``git show REV:rnn_core/csrc/rnn_cpu.cpp``)
compiled under its own name, measured alongside the current one as "other".
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

LESSON = {"batch": 32, "steps": 35, "hidden": 512, "max_tokens": 10_000}


def child(source: str | None, threads: int, seconds: float) -> dict:
    """One measurement in this process: tokens/s of the fast engine on the C++ kernels from ``source``."""
    import torch

    from rnn_core import fast, kernel_build
    from rnn_core.data import load_data
    from rnn_core.engines import make_model
    from rnn_core.training import Trainer

    if source:
        module = kernel_build.compile_kernels(source=Path(source))
        fast.reset_kernels(fast.KernelBuild(compile=lambda announce: module))
    assert fast.kernels(block=True) is not None, fast.kernel_status()
    torch.set_num_threads(threads)
    loader, vocab = load_data("time_machine", LESSON["batch"], LESSON["steps"], max_tokens=LESSON["max_tokens"],
                              seed=0)
    net = make_model("fast", len(vocab), LESSON["hidden"], "cpu", seed=0)
    trainer = Trainer(net, loader, vocab, lr=1.0, theta=1.0, sample_every=0)
    trainer.train_epoch()  # warm-up
    tokens, start = 0, time.perf_counter()
    while True:
        record = trainer.train_epoch()
        tokens += round(record.tokens_per_s * record.seconds)
        if time.perf_counter() - start >= seconds:
            break
    return {"tokens_per_s": tokens / (time.perf_counter() - start)}


def measure(source: str | None, threads: int, busy: bool, seconds: float, spin: str = "1000") -> float:
    """tokens/s of one child process; ``spin``: its GOMP_SPINCOUNT ("default": libgomp's own, 300,000)."""
    env = {k: v for k, v in os.environ.items() if k not in ("GOMP_SPINCOUNT", "OMP_WAIT_POLICY")}
    if spin != "default":  # else none: the child loads torch before rnn_core, whose setting then comes too late
        env["GOMP_SPINCOUNT"] = spin
    hog = subprocess.Popen([sys.executable, "-c", "while 1: pass"]) if busy else None
    try:
        cmd = [sys.executable, "-m", "benchmarks.kernel_threads", "--child", "--threads", str(threads),
               "--seconds", str(seconds)] + (["--source", source] if source else [])
        out = subprocess.run(cmd, capture_output=True, text=True, check=True, env=env)
        return json.loads(out.stdout.strip().splitlines()[-1])["tokens_per_s"]
    finally:
        if hog is not None:
            hog.kill()
            hog.wait()


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.kernel_threads", description=__doc__.split("\n")[0])
    p.add_argument("--source", default=None, help="another kernel source to measure alongside (as 'other')")
    p.add_argument("--rounds", type=int, default=4)
    p.add_argument("--seconds", type=float, default=3.0, help="timed seconds per measurement")
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    p.add_argument("--spin", nargs="+", default=["1000"],
                   help="GOMP_SPINCOUNT values to measure, 'default' for libgomp's own (rnn_core sets 1000)")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.source, args.threads[0], args.seconds)))
        return 0
    kernels = {"current": None, **({"other": os.path.abspath(args.source)} if args.source else {})}
    configs = [(k, n, busy, spin) for busy in (False, True) for n in args.threads for k in kernels
               for spin in args.spin]
    for k, src in kernels.items():  # build (or load) each once before timing
        measure(src, 1, False, 0.1)
    rates = {c: [] for c in configs}
    print(f"load average at start: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f}", flush=True)
    order = list(configs)
    for r in range(args.rounds):
        for c in order:
            rates[c].append(measure(kernels[c[0]], c[1], c[2], args.seconds, c[3]))
            print(f"round {r + 1}: {c[0]:<7} {c[1]} thread(s) {'busy' if c[2] else 'alone':<5} spin {c[3]:<7} "
                  f"{rates[c][-1]:>8,.0f} tok/s  (load {os.getloadavg()[0]:.2f})", file=sys.stderr, flush=True)
        order.reverse()
    print("| kernel | threads | beside | GOMP_SPINCOUNT | tokens/s (median) | rounds |")
    print("|---|---:|---|---|---:|---|")
    for c in configs:
        print(f"| {c[0]} | {c[1]} | {'busy process' if c[2] else 'nothing'} | {c[3]} | "
              f"{statistics.median(rates[c]):,.0f} | "
              f"{', '.join(f'{x / 1000:.1f}k' for x in rates[c])} |")
    print(f"load average at end: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

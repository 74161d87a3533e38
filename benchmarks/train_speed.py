"""Training speed of the engines on the lesson's task: ``python -m benchmarks.train_speed [--quick]``.

Rows: engine x hidden x batch, on the Time Machine (chars, first 10,000 tokens, 35 steps, lr 1, theta 1).

- ``lesson (d2l loop)``: the lesson's own code as written (``rnn_core.d2l_code``): the one-hot per-step scratch
  model, ``train_epoch_ch8`` with a host-side ``if norm > theta`` clip, d2l's per-parameter ``sgd``, a host
  read of the loss every minibatch. The baseline: "x lesson" is relative to it.
- ``lesson (Trainer)``: the same model in ``rnn_core.Trainer`` (fused clipping and SGD, one sync per epoch).
- ``nn.RNN``: ``torch.nn.RNN`` + ``nn.Linear`` in the same Trainer.
- ``fast``: ``rnn_core.fast`` in the same Trainer; on the CPU with its C++ kernels, built first if they are not
  yet (``RNN_LAB_NO_EXT=1`` measures its Python path instead).
- ``fast (Python path)``: the same engine without the C++ kernels (``FastRNN.use_kernels = False``).

All engines of one configuration start from the same seed and train the same epochs, measured in rounds
that alternate between the engines (each round in the opposite order to the last), so a slow spell of a
shared machine hits every engine alike. Each engine's round runs in a process of its own (a warm-up epoch,
then the timed ones): OpenMP threads left spinning by one engine slow the next one in the same process.
tokens/s is the median over rounds. Peak memory is the growth of the process's peak resident set (CPU) or of
``max_memory_allocated`` (CUDA) during one further epoch.

``--cli EPOCHS``: the bar the fast engine is held to, the CLI (``python -m rnn_core.train --quiet``, the lesson's
settings) against the lesson's ``train_ch8`` run alone (its predictions included), each a program of its own
training EPOCHS epochs from the start, in ``--rounds`` alternating pairs; tokens/s over each program's whole wall time, start-up included.
"""
from __future__ import annotations

import argparse
import contextlib
import ctypes
import gc
import io
import json
import os
import platform
import statistics
import subprocess
import sys
import time
import warnings

import torch
from torch import nn

from rnn_core import d2l_code, fast
from rnn_core.data import load_data
from rnn_core.engines import make_model
from rnn_core.model import device_label, resolve_device
from rnn_core.training import Trainer

NUM_STEPS, MAX_TOKENS, LR, THETA, SEED = 35, 10_000, 1.0, 1.0, 0
ENGINES = ("lesson (d2l loop)", "lesson (Trainer)", "nn.RNN", "fast (Python path)", "fast")
ENGINE_OF = {"lesson (d2l loop)": "lesson", "lesson (Trainer)": "lesson", "nn.RNN": "torch",
             "fast (Python path)": "fast", "fast": "fast"}


# ---------------------------------------------------------------- the lesson's loop, as d2l 8.5 writes it

# rnn_core.d2l_code's train_epoch_ch8 clips at 1 and the lesson's train_ch8 steps with lr 1: the same as here.
assert (LR, THETA) == (1.0, 1.0)


class D2LRun:
    """The lesson's loop behind the same interface as a Trainer: ``train_epoch() -> (perplexity, tokens)``."""

    def __init__(self, net, loader, device):
        self.net, self.loader, self.device = net, loader, device
        self.loss = nn.CrossEntropyLoss()

    def train_epoch(self):
        ppl, _ = d2l_code.train_epoch_ch8(self.net, self.loader, self.loss,
                                          lambda batch_size: d2l_code.sgd(self.net.params, LR, batch_size),
                                          self.device, False)
        return ppl, len(self.loader) * self.loader.batch_size * self.loader.num_steps


class TrainerRun:
    def __init__(self, trainer):
        self.trainer, self.net = trainer, trainer.net

    def train_epoch(self):
        record = self.trainer.train_epoch()
        return record.perplexity, record.tokens_per_s * record.seconds


def make_run(engine: str, num_hiddens: int, batch_size: int, device):
    loader, vocab = load_data("time_machine", batch_size, NUM_STEPS, max_tokens=MAX_TOKENS, seed=SEED)
    net = make_model(ENGINE_OF[engine], len(vocab), num_hiddens, device, seed=SEED)
    if engine == "lesson (d2l loop)":
        return D2LRun(net, loader, device)
    if engine == "fast (Python path)":
        net.use_kernels = False
    return TrainerRun(Trainer(net, loader, vocab, lr=LR, theta=THETA, sample_every=0))


# ---------------------------------------------------------------- measuring

def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _status_kib(key: str) -> int | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(key):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def peak_memory_mib(run, device) -> float | None:
    """Growth of peak memory during one epoch: CUDA allocator peak, or the process's peak RSS (Linux)."""
    gc.collect()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        base = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        run.train_epoch()
        torch.cuda.synchronize(device)
        return (torch.cuda.max_memory_allocated(device) - base) / 2**20
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)  # hand freed heap back, so the baseline is what is live
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # reset the peak RSS (VmHWM) to the current RSS
    except OSError:
        return None
    base = _status_kib("VmRSS")
    run.train_epoch()
    peak = _status_kib("VmHWM")
    return None if base is None or peak is None else (peak - base) / 1024


def child(engine: str, num_hiddens: int, batch_size: int, epochs: int, device, threads: int | None) -> dict:
    """One measurement, in this process alone: a warm-up epoch, ``epochs`` timed epochs, one more for memory."""
    if threads:
        torch.set_num_threads(threads)
    if engine == "fast" and device.type == "cpu":
        assert fast.kernels(block=True) is not None or os.environ.get("RNN_LAB_NO_EXT") == "1", fast.kernel_status()
    run = make_run(engine, num_hiddens, batch_size, device)
    run.train_epoch()  # warm-up epoch, untimed (first-call costs)
    sync(device)
    start, tokens = time.perf_counter(), 0
    for _ in range(epochs):
        ppl, n = run.train_epoch()
        tokens += n
    sync(device)
    rate = tokens / (time.perf_counter() - start)
    return {"tokens_per_s": rate, "perplexity": ppl, "peak_mib": peak_memory_mib(run, device)}


def in_own_process(engine: str, num_hiddens: int, batch_size: int, epochs: int, device, threads) -> dict:
    """:func:`child` in a fresh process: OpenMP threads that one engine leaves spinning (libgomp spins a while
    after each parallel region) would slow the next engine measured in the same process."""
    cmd = [sys.executable, "-m", "benchmarks.train_speed", "--child", engine, "--hidden", str(num_hiddens),
           "--batch", str(batch_size), "--epochs-per-round", str(epochs), "--device", str(device)]
    if threads:
        cmd += ["--threads", str(threads)]
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"{engine} failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def measure(num_hiddens: int, batch_size: int, rounds: int, epochs_per_round: int, device, engines,
            threads: int | None = None):
    """Rows for one configuration: tokens/s (median over alternating rounds, each engine's round in a process of
    its own), perplexity after the last round's epochs, peak memory (median)."""
    rates = {e: [] for e in engines}
    ppl, memory = {}, {e: [] for e in engines}
    order = list(engines)
    for r in range(rounds):
        for e in order:
            got = in_own_process(e, num_hiddens, batch_size, epochs_per_round, device, threads)
            rates[e].append(got["tokens_per_s"])
            ppl[e] = got["perplexity"]
            if got["peak_mib"] is not None:
                memory[e].append(got["peak_mib"])
        order.reverse()
    base = statistics.median(rates[engines[0]])
    rows = []
    for e in engines:
        tps = statistics.median(rates[e])
        rows.append({"engine": e, "hidden": num_hiddens, "batch": batch_size, "tokens_per_s": tps,
                     "x_lesson": tps / base, "perplexity": ppl[e],
                     "peak_mib": statistics.median(memory[e]) if memory[e] else None,
                     "epochs": 1 + epochs_per_round, "spread": (min(rates[e]), max(rates[e]))})
    return rows


# ---------------------------------------------------------------- the CLI against the lesson's loop

def lesson_loop_alone(epochs: int) -> None:
    """The lesson's ``train_ch8`` at the lesson's settings for ``epochs`` epochs from the start, as a program of
    its own (``--lesson-alone``): what the CLI is compared with, process start to exit. As the lesson runs it,
    with its prediction from "time traveller" every 10 epochs and at the end (the CLI samples as often); its
    printed lines are kept off stdout, whose last line is the result."""
    loader, vocab = load_data("time_machine", 32, NUM_STEPS, max_tokens=MAX_TOKENS, seed=SEED)
    net = make_model("lesson", len(vocab), 512, resolve_device("cpu"), seed=SEED)
    with contextlib.redirect_stdout(io.StringIO()) as printed:
        d2l_code.train_ch8(net, loader, vocab, LR, epochs, resolve_device("cpu"))
    print(json.dumps({"perplexity": float(printed.getvalue().split("perplexity ")[-1].split(",")[0])}))


def timed(cmd: list[str]) -> tuple[float, dict]:
    """Wall seconds of a program from start to exit, and its last stdout line as JSON."""
    start = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if out.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{out.stderr[-2000:]}")
    return seconds, json.loads(out.stdout.strip().splitlines()[-1])


def cli_pairs(epochs: int, pairs: int, cli_args: list[str]) -> None:
    """``pairs`` alternating pairs: the CLI (``python -m rnn_core.train``, lesson settings) and the lesson's loop,
    each a process of its own, each ``epochs`` epochs from the start; tokens/s over each program's whole wall
    time (start-up included), and where the CLI's time went."""
    loader, _ = load_data("time_machine", 32, NUM_STEPS, max_tokens=MAX_TOKENS, seed=SEED)
    tokens = epochs * len(loader) * 32 * NUM_STEPS
    lesson_cmd = [sys.executable, "-m", "benchmarks.train_speed", "--lesson-alone", str(epochs)]
    cli_cmd = [sys.executable, "-m", "rnn_core.train", "--epochs", str(epochs), "--quiet", *cli_args]
    print(f"CLI: {' '.join(cli_cmd[1:])}; lesson: the d2l loop, {epochs} epochs; {tokens:,} tokens each")
    print("| pair | load | lesson's loop (tok/s) | CLI (tok/s) | CLI / lesson | CLI start-up s | "
          "CLI training loop (tok/s) | CLI threads |")
    print("|---:|---:|---:|---:|---:|---:|---:|---|")
    ratios = []
    for pair in range(pairs):
        load_before = os.getloadavg()[0]
        got = {}
        for name in (("lesson", "cli") if pair % 2 == 0 else ("cli", "lesson")):
            got[name] = timed(lesson_cmd if name == "lesson" else cli_cmd)
        (lesson_s, _), (cli_s, cli_out) = got["lesson"], got["cli"]
        ratios.append(lesson_s / cli_s)
        startup = cli_s - cli_out["seconds"]  # before the first epoch and after the last (imports, corpus, sample)
        print(f"| {pair + 1} | {load_before:.2f} | {tokens / lesson_s:,.0f} | {tokens / cli_s:,.0f} | "
              f"{lesson_s / cli_s:.2f} | {startup:.1f} | {cli_out['tokens_per_s']:,.0f} | "
              f"{cli_out.get('threads_used', cli_out['threads'])} |", flush=True)
    print(f"CLI / lesson: median {statistics.median(ratios):.2f} ({min(ratios):.2f}-{max(ratios):.2f}); "
          f"load average at end {load()}")


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), cpu)
    except OSError:
        pass
    return (f"{cpu}, {os.cpu_count()} cores, torch {torch.__version__}, {torch.get_num_threads()} threads, "
            f"Python {platform.python_version()}")


def load() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "n/a"


def table(rows) -> str:
    lines = ["| engine | hidden | batch | tokens/s | x lesson | x nn.RNN | final ppl | peak memory (MiB) |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    torch_rate = {(r["hidden"], r["batch"]): r["tokens_per_s"] for r in rows if r["engine"] == "nn.RNN"}
    for r in rows:
        vs_torch = torch_rate.get((r["hidden"], r["batch"]))
        mem = "n/a" if r["peak_mib"] is None else f"{r['peak_mib']:.1f}"
        lines.append(f"| {r['engine']} | {r['hidden']} | {r['batch']} | {r['tokens_per_s']:,.0f} | "
                     f"{r['x_lesson']:.2f} | {r['tokens_per_s'] / vs_torch:.2f} | {r['perplexity']:.2f} | {mem} |"
                     if vs_torch else
                     f"| {r['engine']} | {r['hidden']} | {r['batch']} | {r['tokens_per_s']:,.0f} | "
                     f"{r['x_lesson']:.2f} | - | {r['perplexity']:.2f} | {mem} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.train_speed", description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="1 round of 1 epoch per engine (a smoke run)")
    p.add_argument("--hidden", type=int, nargs="+", default=[128, 512])
    p.add_argument("--batch", type=int, nargs="+", default=[32, 128])
    p.add_argument("--rounds", type=int, default=5, help="alternating rounds per configuration")
    p.add_argument("--epochs-per-round", type=int, default=2)
    p.add_argument("--engines", nargs="+", default=list(ENGINES), choices=ENGINES)
    p.add_argument("--device", default="cpu", help="cpu | cuda | auto")
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    p.add_argument("--cli", type=int, default=None, metavar="EPOCHS",
                   help="instead: the CLI against the lesson's loop, --rounds alternating pairs of EPOCHS epochs")
    p.add_argument("--child", choices=ENGINES, default=None, help=argparse.SUPPRESS)
    p.add_argument("--lesson-alone", type=int, default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    # The lesson's loop adds a loss that requires grad to its Accumulator (float(l * n)), as d2l does.
    warnings.filterwarnings("ignore", message="Converting a tensor with requires_grad=True to a scalar")
    if args.lesson_alone is not None:
        lesson_loop_alone(args.lesson_alone)
        return 0
    device = resolve_device(args.device)
    if args.child:
        print(json.dumps(child(args.child, args.hidden[0], args.batch[0], args.epochs_per_round, device,
                               args.threads)))
        return 0
    if args.quick:
        args.rounds, args.epochs_per_round = 1, 1
    fast_on_cpu = device.type == "cpu" and ("fast" in args.engines or args.cli)
    if fast_on_cpu:  # the C++ kernels: built (once) before timing
        fast.kernels(block=True, announce=lambda line: print(line, file=sys.stderr, flush=True))
    print(f"machine: {machine()}; device: {device_label(device)}")
    if fast_on_cpu:
        print(f"fast engine: {fast.kernel_status()}")
    print(f"load average at start: {load()}", flush=True)
    if args.cli:
        cli_pairs(args.cli, args.rounds, ["--threads", str(args.threads)] if args.threads else [])
        return 0
    print(f"task: Time Machine chars, first {MAX_TOKENS:,} tokens, {NUM_STEPS} steps, lr {LR}, theta {THETA}; "
          f"{args.rounds} alternating rounds, each engine's round a process of its own: 1 warm-up epoch, "
          f"{args.epochs_per_round} timed")
    rows = []
    start = time.perf_counter()
    for h in args.hidden:
        for b in args.batch:
            new = measure(h, b, args.rounds, args.epochs_per_round, device, args.engines, args.threads)
            rows += new
            for r in new:
                lo, hi = r["spread"]
                print(f"  h={h:<4} b={b:<4} {r['engine']:<18} {r['tokens_per_s']:>10,.0f} tok/s "
                      f"(rounds {lo:,.0f}-{hi:,.0f})  x{r['x_lesson']:.2f}  ppl {r['perplexity']:.2f}",
                      file=sys.stderr, flush=True)
    print(table(rows))
    print(f"load average at end: {load()}; {time.perf_counter() - start:.0f} s in all")
    return 0


if __name__ == "__main__":
    sys.exit(main())

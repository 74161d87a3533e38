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
shared machine hits every engine alike. tokens/s is the median over rounds. Peak memory is the growth of
the process's peak resident set (CPU) or of ``max_memory_allocated`` (CUDA) during one further epoch.
"""
from __future__ import annotations

import argparse
import ctypes
import gc
import os
import platform
import statistics
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


def measure(num_hiddens: int, batch_size: int, rounds: int, epochs_per_round: int, device, engines):
    """Rows for one configuration: tokens/s (median over alternating rounds), perplexity, peak memory."""
    runs = {e: make_run(e, num_hiddens, batch_size, device) for e in engines}
    for run in runs.values():  # warm-up epoch, untimed (first-call costs)
        run.train_epoch()
    rates = {e: [] for e in engines}
    ppl = {}
    order = list(engines)
    for r in range(rounds):
        for e in order:
            sync(device)
            start = time.perf_counter()
            tokens = 0
            for _ in range(epochs_per_round):
                ppl[e], n = runs[e].train_epoch()
                tokens += n
            sync(device)
            rates[e].append(tokens / (time.perf_counter() - start))
        order.reverse()
    memory = {e: peak_memory_mib(runs[e], device) for e in engines}  # one more epoch each, after the timing
    base = statistics.median(rates[engines[0]])
    rows = []
    for e in engines:
        tps = statistics.median(rates[e])
        rows.append({"engine": e, "hidden": num_hiddens, "batch": batch_size, "tokens_per_s": tps,
                     "x_lesson": tps / base, "perplexity": ppl[e], "peak_mib": memory[e],
                     "epochs": 1 + rounds * epochs_per_round, "spread": (min(rates[e]), max(rates[e]))})
    return rows


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
    args = p.parse_args(argv)
    # The lesson's loop adds a loss that requires grad to its Accumulator (float(l * n)), as d2l does.
    warnings.filterwarnings("ignore", message="Converting a tensor with requires_grad=True to a scalar")
    if args.quick:
        args.rounds, args.epochs_per_round = 1, 1
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    fast_on_cpu = "fast" in args.engines and device.type == "cpu"
    if fast_on_cpu:  # the C++ kernels: built (once) before timing
        fast.kernels(block=True, announce=lambda line: print(line, file=sys.stderr, flush=True))
    print(f"machine: {machine()}; device: {device_label(device)}")
    if fast_on_cpu:
        print(f"fast engine: {fast.kernel_status()}")
    print(f"task: Time Machine chars, first {MAX_TOKENS:,} tokens, {NUM_STEPS} steps, lr {LR}, theta {THETA}; "
          f"{args.rounds} alternating rounds x {args.epochs_per_round} epochs after 1 warm-up epoch")
    print(f"load average at start: {load()}", flush=True)
    rows = []
    start = time.perf_counter()
    for h in args.hidden:
        for b in args.batch:
            new = measure(h, b, args.rounds, args.epochs_per_round, device, args.engines)
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

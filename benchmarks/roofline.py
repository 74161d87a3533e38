"""How near the fast engine runs to what the CPU can do, and so how fast any engine could train the lesson's
model here: ``python -m benchmarks.roofline [--threads 1 2]``.

For each thread count (``torch.set_num_threads``), GFLOP/s of:

- MKL's float32 matmul of square matrices (512, 1024, 2048): the rate the machine reaches on large, regular work,
  taken as its peak;
- the lesson's per-step matmul, H (batch, h) times W_hh (h, h) at batch 32, h 512: what the lesson's loop runs 70
  times a minibatch (forward and backward), each its own call;
- the fast engine's C++ kernels at the lesson's size (35 steps, batch 32, h 512, V 28): its forward, its backward,
  and within the backward the one weight-gradient matmul ``[H; one-hot; 1] dA^T``.

The kernels' forward and backward together are a floor on a minibatch's time whatever the rest costs (loss,
clipping, SGD, data, start-up): tokens/s at most batch*steps / (forward + backward). Each figure is the median of
``--repeats`` timings of ``--calls`` calls. No training, no files written.
"""
from __future__ import annotations

import argparse
import statistics
import time

import rnn_core  # noqa: F401  (first: it sets OpenMP's spin count before torch loads)
import torch

BATCH, STEPS, HIDDEN, VOCAB = 32, 35, 512, 28


def _ms_per_call(f, calls: int, repeats: int) -> float:
    """Median milliseconds per call of f over ``repeats`` timings of ``calls`` calls, after a warm-up."""
    for _ in range(3):
        f()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(calls):
            f()
        times.append((time.perf_counter() - start) / calls * 1e3)
    return statistics.median(times)


def matmul_rates(calls: int, repeats: int) -> dict[str, float]:
    """GFLOP/s of square matmuls and of the lesson's per-step shape."""
    rates = {}
    for n in (512, 1024, 2048):
        a, b, c = torch.randn(n, n), torch.randn(n, n), torch.empty(n, n)
        ms = _ms_per_call(lambda: torch.mm(a, b, out=c), max(2, calls * 512 ** 3 // n ** 3), repeats)
        rates[f"matmul {n}x{n}x{n}"] = 2 * n ** 3 / ms / 1e6
    H, W, out = torch.randn(BATCH, HIDDEN), torch.randn(HIDDEN, HIDDEN), torch.empty(BATCH, HIDDEN)
    ms = _ms_per_call(lambda: torch.mm(H, W, out=out), calls * 50, repeats)
    rates[f"per-step matmul ({BATCH}x{HIDDEN}) x ({HIDDEN}x{HIDDEN})"] = 2 * BATCH * HIDDEN ** 2 / ms / 1e6
    return rates


def kernel_times(calls: int, repeats: int) -> dict[str, float]:
    """Milliseconds of the fast engine's C++ forward, backward and weight-gradient matmul at the lesson's size."""
    from rnn_core import fast

    ext = fast.kernels(block=True)
    if ext is None:
        raise SystemExit(f"the C++ kernels are not available: {fast.kernel_status()}")
    gen = torch.Generator().manual_seed(0)
    h, V, N = HIDDEN, VOCAB, STEPS * BATCH
    tokens = torch.randint(0, V, (N,), generator=gen)
    H0 = torch.zeros(BATCH, h)
    W_xh, W_hh, W_hq = (torch.randn(*s, generator=gen) * 0.01 for s in ((V, h), (h, h), (h, V)))
    b_h, b_q = torch.zeros(h), torch.zeros(V)
    Hs, dA = torch.empty(h + V + 1, STEPS + 1, BATCH), torch.empty(h, STEPS, BATCH)  # fast.py's buffers
    dO = torch.randn(N, V, generator=gen) * 0.01
    forward = _ms_per_call(lambda: ext.forward(tokens, H0, W_xh, W_hh, b_h, W_hq, b_q, Hs), calls, repeats)
    backward = _ms_per_call(lambda: ext.backward(dO, None, W_hh, W_hq, Hs, dA, False, True, True), calls, repeats)
    grads = _ms_per_call(lambda: torch.mm(Hs.narrow(1, 0, STEPS).reshape(h + V + 1, N), dA.view(h, N).t()),
                         calls, repeats)
    return {"forward": forward, "backward": backward, "weight gradients": grads}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.roofline", description=__doc__.split("\n")[0])
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    p.add_argument("--calls", type=int, default=40, help="calls per timing (the lesson-size kernels)")
    p.add_argument("--repeats", type=int, default=5)
    args = p.parse_args(argv)
    recurrent = 2 * BATCH * HIDDEN ** 2 * STEPS  # FLOP of 35 per-step (h, h) products, forward or backward
    gradient = 2 * (HIDDEN + VOCAB + 1) * STEPS * BATCH * HIDDEN
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads by default")
    for threads in args.threads:
        torch.set_num_threads(threads)
        print(f"\n{threads} thread(s)")
        for name, rate in matmul_rates(args.calls, args.repeats).items():
            print(f"  {name}: {rate:,.0f} GFLOP/s")
        ms = kernel_times(args.calls, args.repeats)
        print(f"  fast engine forward: {ms['forward']:.2f} ms ({recurrent / ms['forward'] / 1e6:,.0f} GFLOP/s in its "
              f"recurrent matmuls)")
        rest = ms["backward"] - ms["weight gradients"]
        print(f"  fast engine backward: {ms['backward']:.2f} ms: weight gradients {ms['weight gradients']:.2f} ms "
              f"({gradient / ms['weight gradients'] / 1e6:,.0f} GFLOP/s), the steps back {rest:.2f} ms "
              f"({recurrent / rest / 1e6:,.0f} GFLOP/s)")
        floor = ms["forward"] + ms["backward"]
        print(f"  a minibatch takes at least {floor:.2f} ms: at most {BATCH * STEPS / floor * 1e3:,.0f} tokens/s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""How fast the Inside page's views are at the lesson's size: ``python -m benchmarks.inside_speed [--threads N]``.

Times (median of 5, after one warm-up) at hidden 512 on the Time Machine's vocabulary, untrained weights
(the cost does not depend on the values): the gradient-flow matrix of a 35-step string (one backward sweep
for all loss steps) against 35 autograd backward passes, the minibatch decay curve the Training page can
draw, W_hh's spectrum, the unit order and finder over a 400-character passage, surprise and top-k, the
nn.RNN twin, and the Inside page's whole script run (AppTest) for a new string and for a new model (the
page sets torch to half the cores, at least one). Printed, never asserted.
"""
from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch
from torch.nn import functional as F

from rnn_core import units
from rnn_core.data import load_data
from rnn_core.gradflow import decay_curve, gradient_flow, spectrum
from rnn_core.inside import float_params, hidden_states, surprise, top_k_frame, twin_differences
from rnn_core.model import RNN, formula_params, rnn_step

TEXT = ("the time machine by h g wells i the time traveller for so it will be convenient to speak of him was "
        "expounding a recondite matter to us his grey eyes shone and twinkled and his usually pale face was "
        "flushed and animated the fire burned brightly and the soft radiance of the incandescent lights in the "
        "lilies of silver caught the bubbles that flashed and passed in our glasses our chairs being his "
        "patents embraced and caressed us rather than submitted to be sat upon")


def median_time(fn, repeats: int = 5) -> float:
    """Median seconds of `repeats` calls, after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def autograd_flow(net, idx: torch.Tensor) -> torch.Tensor:
    """The same matrix from one autograd backward pass per loss step (what the one sweep replaces)."""
    p = {k: v.float().requires_grad_() for k, v in formula_params(net).items()}
    x, y = idx[:-1], idx[1:]
    H = torch.zeros(1, p["W_hh"].shape[0])
    hs = []
    for s in range(len(x)):
        H = rnn_step(x[s:s + 1], H, p["W_xh"], p["W_hh"], p["b_h"])  # (1, h)
        hs.append(H)
    G = torch.zeros(len(x), len(x))
    for t in range(len(x)):
        loss = F.cross_entropy(hs[t] @ p["W_hq"] + p["b_q"], y[t:t + 1])
        grads = torch.autograd.grad(loss, hs[:t + 1], retain_graph=True)
        G[t, :t + 1] = torch.stack([g.norm() for g in grads])
    return G


def page_time() -> tuple[float, float]:
    """Seconds of the Inside page's script run after the input string changes (caches warm for the model), and
    after the model changes (hidden 512 -> 511: every view computed anew), medians of 5 (AppTest)."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(Path(__file__).resolve().parents[1] / "dashboard" / "Home.py"), default_timeout=120)
    at.run()
    at.switch_page("views/inside.py").run()
    if any(r.key == "model" for r in at.radio):  # a model picker: the untrained model follows the hidden slider
        at.radio(key="model").set_value("untrained").run()
    assert not at.exception, [e.value for e in at.exception]
    times = []
    for i in range(5):
        start = time.perf_counter()
        at.text_input[0].set_value(TEXT[i * 7:i * 7 + 40]).run()
        times.append(time.perf_counter() - start)
        assert not at.exception, [e.value for e in at.exception]
    model_times = []
    for hidden in range(511, 506, -1):
        start = time.perf_counter()
        at.slider(key="hidden").set_value(hidden).run()
        model_times.append(time.perf_counter() - start)
        assert not at.exception, [e.value for e in at.exception]
    return statistics.median(times), statistics.median(model_times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--no-page", action="store_true", help="skip the AppTest run of the page")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    loader, vocab = load_data("time_machine", batch_size=32, num_steps=35, max_tokens=10_000)
    net = RNN(len(vocab), 512, "cpu", seed=0)
    tokens = list(TEXT)
    idx36 = torch.tensor(vocab[tokens[:36]])  # 35 steps
    X, _ = next(iter(loader))  # (32, 35)
    passage = tokens[:400]
    rows = [
        ("gradient flow, 35 steps, one sweep", lambda: gradient_flow(net, idx36)),
        ("gradient flow, 35 steps, 35 autograd passes", lambda: autograd_flow(net, idx36)),
        ("gradient flow, 200 steps, one sweep", lambda: gradient_flow(net, torch.tensor(vocab[tokens[:201]]))),
        ("decay_curve, minibatch 8 x 35 (default)", lambda: decay_curve(net, X)),
        ("decay_curve, minibatch 32 x 35", lambda: decay_curve(net, X, max_rows=None)),
        ("spectrum of W_hh (eigenvalues + singular values)", lambda: spectrum(net)),
        ("hidden states over 400 characters", lambda: hidden_states(float_params(net),
                                                                    torch.tensor(vocab[passage])[None])),
    ]
    hidden = hidden_states(float_params(net), torch.tensor(vocab[passage])[None])[0].numpy()
    features = units.text_features(passage)
    rows += [
        ("unit order (average linkage, 512 units)", lambda: units.cluster_order(hidden)),
        ("unit finder (6 features)", lambda: units.unit_finder(hidden, features, units.CHAR_FEATURES)),
        ("surprise + top-5 over 400 characters",
         lambda: top_k_frame(surprise(net, vocab, passage).probs, passage, vocab)),
        ("nn.RNN twin, 40 characters (forward + backward)", lambda: twin_differences(net, vocab, tokens[:40])),
    ]
    print(f"hidden 512, vocabulary {len(vocab)}, torch {torch.__version__}, {torch.get_num_threads()} thread(s)")
    for name, fn in rows:
        print(f"{name:<52} {1000 * median_time(fn):9.1f} ms")
    if not args.no_page:
        new_text, new_model = page_time()
        print(f"{'Inside page script run, new 40-character string':<52} {1000 * new_text:9.1f} ms")
        print(f"{'Inside page script run, new model (hidden 511..507)':<52} {1000 * new_model:9.1f} ms")


if __name__ == "__main__":
    main()

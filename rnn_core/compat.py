"""The small helpers the lesson's notebook takes from ``d2l``, so it runs with ``import rnn_core as d2l``.

``Animator`` records its points instead of drawing with matplotlib (rnn_core has no plotting); its
``frame()`` is what the dashboard's charts draw.
"""
from __future__ import annotations

import time

import pandas as pd


class Timer:
    """Record running times (d2l.Timer)."""

    def __init__(self):
        self.times: list[float] = []
        self.start()

    def start(self) -> None:
        self.tik = time.time()

    def stop(self) -> float:
        self.times.append(time.time() - self.tik)
        return self.times[-1]

    def avg(self) -> float:
        return sum(self.times) / len(self.times)

    def sum(self) -> float:
        return sum(self.times)


class Accumulator:
    """Sums over n variables (d2l.Accumulator)."""

    def __init__(self, n: int):
        self.data = [0.0] * n

    def add(self, *args) -> None:
        # the lesson adds `l * y.numel()` straight from the loss: detach, so reading it is not a warning
        self.data = [a + float(b.detach() if hasattr(b, "detach") else b) for a, b in zip(self.data, args)]

    def reset(self) -> None:
        self.data = [0.0] * len(self.data)

    def __getitem__(self, idx):
        return self.data[idx]


class Animator:
    """d2l.Animator's interface; keeps the points (x, series, y) for a chart to draw."""

    def __init__(self, xlabel=None, ylabel=None, legend=None, xlim=None, ylim=None, **_ignored):
        self.xlabel, self.ylabel, self.legend = xlabel, ylabel, list(legend or [])
        self.xlim, self.ylim = xlim, ylim
        self.points: list[tuple[float, str, float]] = []

    def add(self, x, y) -> None:
        ys = y if hasattr(y, "__len__") else [y]
        names = self.legend or [f"y{i}" for i in range(len(ys))]
        self.points.extend((float(x), name, float(v)) for name, v in zip(names, ys))

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.points, columns=[self.xlabel or "x", "series", self.ylabel or "y"])

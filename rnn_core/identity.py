"""The concatenation identity behind the RNN cell (d2l 8.4/8.5).

    X W_xh + H W_hh  ==  cat((X, H), dim=1) @ cat((W_xh, W_hh), dim=0)

Multiplying X (n, d) by W_xh (d, h) and H (n, h) by W_hh (h, h) and adding is one matmul of the
side-by-side [X | H] (n, d+h) with the stacked [W_xh ; W_hh] (d+h, h). The two sides agree up to
float32 rounding: the sums are accumulated in a different order.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class ConcatIdentity:
    """Both sides of the identity and how far apart they are."""

    X: torch.Tensor  # (n, d)
    H: torch.Tensor  # (n, h)
    W_xh: torch.Tensor  # (d, h)
    W_hh: torch.Tensor  # (h, h)
    XH: torch.Tensor  # cat((X, H), 1): (n, d+h)
    W: torch.Tensor  # cat((W_xh, W_hh), 0): (d+h, h)
    separate: torch.Tensor  # X W_xh + H W_hh: (n, h)
    concatenated: torch.Tensor  # XH @ W: (n, h)
    max_abs_diff: float

    @property
    def allclose(self) -> bool:
        return bool(torch.allclose(self.separate, self.concatenated, atol=1e-5))


def concat_identity(n: int = 3, d: int = 1, h: int = 4, seed: int = 0, dtype=torch.float32) -> ConcatIdentity:
    """Draw X (n, d), H (n, h), W_xh (d, h), W_hh (h, h) from N(0, 1) and compute both sides.

    The lesson's example is n=3, d=1, h=4.
    """
    g = torch.Generator().manual_seed(seed)
    X, W_xh = torch.randn(n, d, generator=g, dtype=dtype), torch.randn(d, h, generator=g, dtype=dtype)
    H, W_hh = torch.randn(n, h, generator=g, dtype=dtype), torch.randn(h, h, generator=g, dtype=dtype)
    separate = torch.matmul(X, W_xh) + torch.matmul(H, W_hh)
    XH, W = torch.cat((X, H), 1), torch.cat((W_xh, W_hh), 0)
    concatenated = torch.matmul(XH, W)
    diff = (separate - concatenated).abs().max().item()
    return ConcatIdentity(X, H, W_xh, W_hh, XH, W, separate, concatenated, diff)

"""Sentences about the step t selected on Inside, one per view, made from the numbers that view draws.

Pure functions, no Streamlit; numbers written with ``formatting.num`` (a test reads them back with
``formatting.numbers``). Steps are counted t = 1..T: step t reads the t-th token and predicts the next.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from .chart_base import show_token
from .formatting import num
from .i18n import t


def steps_row(steps: pd.DataFrame, step: int) -> str:
    """Step t's row of the Steps heatmaps: what it reads, the model's top choice and the true next token."""
    row = steps.iloc[step - 1]
    return t("inside.step_row", t=step, token=show_token(row["input"]), predicted=show_token(row["predicted"]),
             p_pred=num(row["p_predicted"]), target=show_token(row["target"]), p=num(row["p_target"]))


def flow_row(matrix: np.ndarray, step: int) -> str:
    """Row t of the gradient flow: ‖∂ℓ_t/∂H_t‖ and, from step 2 on, ‖∂ℓ_t/∂H_1‖ (t − 1 steps back)."""
    G = np.asarray(matrix, dtype=np.float64)
    if step == 1:
        return t("inside.flow_row_one", g=num(G[0, 0]))
    return t("inside.flow_row", t=step, g=num(G[step - 1, step - 1]), g1=num(G[step - 1, 0]), d=step - 1)


def surprise_char(tokens: list[str], surprisal: np.ndarray, step: int) -> str:
    """The character framed in the surprise text (the one step t reads) and the surprise of what follows it."""
    if step > len(surprisal):  # the scored text has no step t
        return t("inside.surprise_short", n=len(tokens), t=step)
    s = float(surprisal[step - 1])
    return t("inside.surprise_step", t=step, token=show_token(tokens[step - 1]), next=show_token(tokens[step]),
             s=num(s), p=num(float(np.exp(-s))))


def top_k_row(frame: pd.DataFrame, step: int) -> str | None:
    """Step t's row of the top-k table in one sentence (None when the scored text has no step t)."""
    if step > len(frame):
        return None
    row = frame.iloc[step - 1]
    k = sum(1 for c in frame.columns if c.startswith("p#"))
    top = ", ".join(f"{show_token(row[f'#{j}'])} {num(row[f'p#{j}'])}" for j in range(1, k + 1))
    return t("inside.top_k_step", t=step, token=show_token(row["input"]), next=show_token(row["true next"]),
             p=num(row["p(true)"]), rank=int(row["rank"]), k=k, top=top)

"""Inside's tables as they are shown: the top-k table and the nn.RNN twin check, with spaces as '␣' and headers and
row names in the page's language. rnn_core's DataFrames keep their column ids (the tests and sentences read them);
the copies here only change what is displayed."""
from __future__ import annotations

import pandas as pd
import streamlit as st

from .chart_base import show_token
from .explain import twin_name
from .i18n import t

TOP_K_HEADERS = {"step": "inside.col_step", "input": "inside.col_input", "true next": "inside.col_true",
                 "p(true)": "inside.col_p_true", "rank": "inside.col_rank"}
TWIN_HEADERS = {"compared": "inside.col_compared", "shape": "inside.col_shape",
                "largest |value|": "inside.col_largest", "max |difference|": "inside.col_difference"}


def top_k_table(frame: pd.DataFrame) -> pd.DataFrame:
    """The top-k frame with every token as a chart shows it (a space as '␣')."""
    out = frame.copy()
    for column in out.columns:
        if column in ("input", "true next") or (column.startswith("#") and column[1:].isdigit()):
            out[column] = out[column].map(show_token)
    return out


def steps_table(steps: pd.DataFrame) -> pd.DataFrame:
    """The per-step numbers with their tokens as a chart shows them (a space as '␣')."""
    out = steps.copy()
    for column in ("input", "target", "predicted"):
        out[column] = out[column].map(show_token)
    return out


STEP_HEADERS = {"step": "inside.col_step", "input": "inside.col_input", "target": "inside.col_target",
                "predicted": "inside.col_predicted", "p_target": "inside.col_p_true",
                "p_predicted": "inside.col_p_predicted", "loss": "inside.col_loss", "grad_norm": "inside.col_grad"}


def steps_columns(steps: pd.DataFrame) -> dict:
    """column_config of the per-step table: headers in the page's language."""
    return {c: t(key) for c, key in STEP_HEADERS.items() if c in steps.columns}


def top_k_columns(frame: pd.DataFrame) -> dict:
    """column_config of the top-k table: headers in the page's language, probabilities to 3 decimals."""
    config = {c: st.column_config.NumberColumn(t(TOP_K_HEADERS[c]) if c in TOP_K_HEADERS else c, format="%.3f")
              for c in frame.columns if c.startswith("p")}
    config.update({c: t(key) for c, key in TOP_K_HEADERS.items() if c in frame.columns and c not in config})
    return config


def twin_table(diffs: pd.DataFrame) -> pd.DataFrame:
    """The twin check with the rows that have a name (outputs, final state, loss) named in the page's language."""
    out = diffs.copy()
    out["compared"] = out["compared"].map(twin_name)
    return out


def twin_columns() -> dict:
    return {"compared": t(TWIN_HEADERS["compared"]), "shape": t(TWIN_HEADERS["shape"]),
            "largest |value|": st.column_config.NumberColumn(t(TWIN_HEADERS["largest |value|"]), format="%.3e"),
            "max |difference|": st.column_config.NumberColumn(t(TWIN_HEADERS["max |difference|"]), format="%.2e")}

"""Home: what RNN Lab teaches, the lesson map, the device found and the corpus status."""
import streamlit as st
import torch

from dashboard import lab, ui
from rnn_core.corpus import BUILTIN_CORPORA, TIME_MACHINE_SHA1, time_machine_status

ctx = ui.context()

st.title("RNN Lab")
st.markdown(
    "A recurrent neural network reads text one token at a time and carries what it has read in a "
    "**hidden state**. This dashboard walks through the *RNN from scratch* lesson of "
    "*Dive into Deep Learning* (chapter 8.5): every step is a page you can change with the sliders on the "
    "left, from the raw text to a trained model writing its own."
)
st.latex(r"H_t = \tanh(X_t W_{xh} + H_{t-1} W_{hh} + b_h) \qquad O_t = H_t W_{hq} + b_q")

st.header("The lesson, page by page")
for path, (file, title, icon, help_) in ui.PAGES.items():
    if path:
        st.page_link(file, label=f"**{title}** — {help_}", icon=icon)

left, right = st.columns(2, gap="large")
with left:
    st.subheader("Device")
    device = lab.resolve_device(lab.Settings())[0]
    st.metric("Found", lab.describe_device(device), border=True)
    gpus = torch.cuda.device_count()
    st.caption(f"PyTorch {torch.__version__}; "
               + (f"{gpus} CUDA GPU(s)." if gpus else "no CUDA GPU: everything runs on the CPU."))
    if ctx.device_error:
        st.error(ctx.device_error)
with right:
    st.subheader("Corpus")
    status = time_machine_status()
    tm, tm_note = lab.time_machine_lines()
    if tm is not None:
        st.success(f"The Time Machine is available: {tm_note}.", icon=":material/check_circle:")
    else:
        st.warning(f"The Time Machine is not available ({status}): {tm_note}", icon=":material/warning:")
        st.caption(f"Copy `timemachine.txt` (SHA-1 `{TIME_MACHINE_SHA1}`) into `data/` to use it.")
    info = ctx.info
    if info.fallback_reason:
        kind = "the built-in corpus " if info.used in BUILTIN_CORPORA else ""
        st.info(f"In use: {kind}**{info.title}** instead of **{info.requested}**, because "
                f"{info.fallback_reason[0].lower() + info.fallback_reason[1:]}", icon=":material/info:")
    else:
        st.info(f"In use: **{info.title}**, {info.note}.", icon=":material/info:")
    st.caption(f"{len(info.tc.corpus):,} tokens used of {info.tc.num_tokens_total:,}; "
               f"vocabulary of {len(info.vocab)} {ctx.settings.token} tokens.")

st.divider()
st.caption("Settings live in the URL, so a copied link reopens the same demo. The lesson's settings are "
           "batch 32, 35 time steps, 512 hidden units, learning rate 1, clipping θ = 1, 500 epochs.")

"""Home: what RNN Lab teaches, the lesson map, the device found and the corpus status."""
import streamlit as st
import torch

from dashboard import compute, corpora, pages, settings, sidebar
from dashboard.i18n import error_text, t
from rnn_core.corpus import BUILTIN_CORPORA, TIME_MACHINE_SHA1, time_machine_status
from rnn_core.model import device_label

ctx = sidebar.context()

st.title("RNN Lab")
# where the settings are: the sidebar in lab mode, above each page in lecture mode (which has no sidebar)
st.markdown(t("home.intro", controls=t("home.controls_lecture" if pages.lecture_mode() else "home.controls_lab")))
st.latex(r"H_t = \tanh(X_t W_{xh} + H_{t-1} W_{hh} + b_h) \qquad O_t = H_t W_{hq} + b_q")

st.header(t("home.map"))
for path, (file, icon) in pages.PAGES.items():
    if path:
        st.page_link(file, label=f"**{pages.page_title(path)}** — {pages.page_help(path)}", icon=icon)

left, right = st.columns(2, gap="large")
with left:
    st.subheader(t("home.device"))
    device = compute.resolve_device(settings.Settings())[0]
    # the device's short name as the value (a projector's half width cuts longer ones), the rest as its help
    st.metric(t("home.found"), device_label(device), border=True, help=compute.describe_device(device))
    gpus = torch.cuda.device_count()
    st.caption(t("home.gpus", version=torch.__version__, n=gpus) if gpus else
               t("home.no_gpu", version=torch.__version__))
    if ctx.device_error:
        st.error(ctx.device_error)
with right:
    st.subheader(t("home.corpus"))
    status = time_machine_status()
    tm, tm_note = corpora.time_machine_lines()
    if tm is not None:
        st.success(t("home.tm_ok", note=t("corpus.time_machine.note_" + ("found" if tm_note.startswith("found")
                                                                          else "downloaded"))),
                   icon=":material/check_circle:")
    else:
        st.warning(t("home.tm_missing", status=status, note=error_text(tm_note)), icon=":material/warning:")
        st.caption(t("home.tm_copy", sha1=TIME_MACHINE_SHA1))
    info = ctx.info
    if info.fallback_reason:
        kind = t("home.builtin") if info.used in BUILTIN_CORPORA else ""
        st.info(t("home.in_use_instead", kind=kind, used=corpora.corpus_title(info.used),
                  requested=corpora.corpus_title(info.requested), reason=info.fallback_reason),
                icon=":material/info:")
    else:
        st.info(t("home.in_use", used=corpora.corpus_title(info.used), note=sidebar.corpus_note(info)),
                icon=":material/info:")
    st.caption(t("home.tokens", used=f"{len(info.tc.corpus):,}", total=f"{info.tc.num_tokens_total:,}",
                 vocab=len(info.vocab), token=t(f"option.token.{ctx.settings.token}")))
    if info.used != pages.CHINESE_DEMO["corpus"]:
        pages.chinese_demo()

st.divider()
st.caption(t("home.url_note"))

"""1 · Data: the corpus, its vocabulary, and how minibatches are cut from it."""
import streamlit as st

from dashboard import corpora, layout, lesson_charts, lesson_code, pages, settings, sidebar
from dashboard.i18n import t

ctx = sidebar.context()
s, info = ctx.settings, ctx.info

layout.header(
    t("data.title"),
    t("data.intro"),
    [r"X \in \{0,\dots,|V|-1\}^{\,\text{batch} \times \text{steps}}",
     r"Y_{b,t} = X_{b,t+1} \;\;(\text{" + t("data.formula_next") + "})"],
    lesson_code.excerpt("data"),
)

st.markdown(t("data.corpus", title=corpora.corpus_title(info.used), note=sidebar.corpus_note(info)))
if info.used != pages.CHINESE_DEMO["corpus"]:
    pages.chinese_demo()
c1, c2, c3, c4 = st.columns(4)
# short labels, the whole sentence in their help: four metrics share the width a projector's 1024 px leaves
c1.metric(t("data.m_text"), f"{info.tc.num_tokens_total:,}",
          help=t("data.m_text_help", note=sidebar.corpus_note(info)))
c2.metric(t("data.m_used"), f"{len(info.tc.corpus):,}", help=t("data.m_used_help", n=f"{settings.MAX_TOKENS:,}"))
c3.metric(t("data.m_vocab"), f"{len(info.vocab):,}", help=t("data.m_vocab_help"))
try:
    loader = corpora.make_loader(info, s)
    c4.metric(t("data.m_batches"), f"{len(loader):,}", help=t("data.m_batches_help", batch=s.batch, steps=s.steps))
except settings.USER_ERRORS as exc:
    loader = None
    c4.metric(t("data.m_batches"), "0")
    layout.user_error(exc)

st.header(t("data.first_tokens"))
st.code(corpora.first_tokens(info, 300), language=None, wrap_lines=True)
if info.used == "time_machine" and s.token == "char" and s.clean == "lesson":
    st.caption(t("data.joining"))

st.header(t("data.vocab"))
left, right = st.columns([1, 2], gap="large")
vocab_df = corpora.vocab_frame(info)
with left:
    st.dataframe(vocab_df, hide_index=True, height=420, width="stretch",
                 column_config={"index": t("data.col_index"), "token": t("data.col_token"),
                                "count": st.column_config.NumberColumn(t("data.col_count"), format="localized")})
with right:
    layout.cached_chart(lesson_charts.vocab_frequency, info.key, vocab_df)

st.header(t("data.map"))
st.markdown(t("data.map_intro", batch=s.batch, steps=s.steps, seed=s.seed))
if loader is not None:
    maps = corpora.minibatch_positions(info, info.key, s.batch, s.steps, s.seed)
    left, right = st.columns(2, gap="large")
    for col, partition in ((left, "sequential"), (right, "random")):
        with col:
            layout.cached_chart(lesson_charts.minibatch_map, (info.key, s.batch, s.steps, s.seed, partition), maps[partition],
                            len(info.tc.corpus), t(f"data.map_{partition}"))

    st.header(t("data.xy"))
    X, Y = corpora.first_minibatch(info, s)
    st.markdown(t("data.xy_intro", partition=t(f"partition.{s.partition}"), rows=X.shape[0], cols=X.shape[1]))
    st.dataframe(corpora.xy_frame(info, X, Y), hide_index=True, width="stretch",
                 column_config={"row": t("data.col_row"), "X (input)": t("data.col_x"),
                                "Y (target = X shifted by one)": t("data.col_y")})

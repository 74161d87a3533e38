"""1 · Data: the corpus, its vocabulary, and how minibatches are cut from it."""
import streamlit as st

from dashboard import lab, lesson, ui

ctx = ui.context()
s, info = ctx.settings, ctx.info

ui.header(
    "1 · Data: from text to minibatches",
    "The text is cleaned, split into tokens, and every token gets an index in the **vocabulary**. "
    "Training reads **minibatches**: `batch_size` rows of `num_steps` consecutive tokens `X`, and the "
    "targets `Y`, the same rows shifted one token ahead. The rows are cut from the corpus either "
    "**sequentially** (each row continues where it stopped) or at **random**.",
    [r"X \in \{0,\dots,|V|-1\}^{\,\text{batch} \times \text{steps}}, \qquad "
     r"Y_{b,t} = X_{b,t+1} \;\;(\text{the next token})"],
    lesson.DATA,
)

st.markdown(f"**Corpus:** {info.title} ({info.note}).")
c1, c2, c3, c4 = st.columns(4)
c1.metric("Tokens in the text", f"{info.tc.num_tokens_total:,}", help=f"{info.title}: {info.note}")
c2.metric("Tokens used", f"{len(info.tc.corpus):,}", help=f"the lesson keeps the first {lab.MAX_TOKENS:,}")
c3.metric("Vocabulary |V|", f"{len(info.vocab):,}", help="including <unk> at index 0")
try:
    loader = lab.make_loader(info, s)
    c4.metric("Minibatches per epoch", f"{len(loader):,}", help=f"of {s.batch} × {s.steps} tokens each")
except lab.USER_ERRORS as exc:
    loader = None
    c4.metric("Minibatches per epoch", "0")
    ui.user_error(exc)

st.header("The first tokens")
st.code(lab.first_tokens(info, 300), language=None, wrap_lines=True)

st.header("Vocabulary")
left, right = st.columns([1, 2], gap="large")
vocab_df = lab.vocab_frame(info)
with left:
    st.dataframe(vocab_df, hide_index=True, height=420, width="stretch",
                 column_config={"index": "index", "token": "token", "count": st.column_config.NumberColumn(
                     "count", format="localized")})
with right:
    ui.cached_chart("vocab_frequency", info.key, vocab_df)

st.header("Minibatch map")
st.markdown(f"Which corpus positions land in each batch row, minibatch by minibatch, during the first epoch "
            f"(batch {s.batch}, {s.steps} steps, seed {s.seed}; hover to read positions). **Sequential**: row *b* "
            f"of minibatch *i+1* starts where row *b* of minibatch *i* ended, so the hidden state can carry over. "
            f"**Random**: every row of every minibatch is an independent subsequence, in shuffled order.")
if loader is not None:
    maps = lab.minibatch_positions(info, info.key, s.batch, s.steps, s.seed)
    left, right = st.columns(2, gap="large")
    for col, partition in ((left, "sequential"), (right, "random")):
        with col:
            ui.cached_chart("minibatch_map", (info.key, s.batch, s.steps, s.seed, partition), maps[partition],
                            len(info.tc.corpus), f"{partition.capitalize()} partitioning")

    st.header("The first X and Y")
    X, Y = lab.first_minibatch(info, s)
    st.markdown(f"The first minibatch of the **{s.partition}** iterator, as text: `X` and `Y` have shape "
                f"`({X.shape[0]}, {X.shape[1]})`; each row of `Y` is its row of `X` moved one token on.")
    st.dataframe(lab.xy_frame(info, X, Y), hide_index=True, width="stretch")

"""7 · Generate: greedy and temperature-sampled continuations of a prefix, side by side."""
import streamlit as st

from rnn_core import settings_schema as schema

from dashboard import compute, corpora, formatting, inside_charts, layout, lesson_code, runs, sidebar
from dashboard.i18n import t

ctx = sidebar.context()

layout.header(
    t("generate.title"),
    t("generate.intro"),
    [r"x_{t+1} = \arg\max_j O_{t,j} \quad\text{(" + t("generate.greedy_word") + r")}",
     r"P(x_{t+1} = j) = \frac{\exp(O_{t,j}/T)}{\sum_k \exp(O_{t,k}/T)} \quad\text{(" + t("generate.sampling_word")
     + ")}"],
    lesson_code.excerpt("generate"),
)
model = runs.pick_model(ctx)
runs.model_banner(model)

sidebar.url_checks("generate_length", "generate_temperature", "generate_seed")
bound = dict(bind="query-params")
c1, c2, c3, c4 = st.columns([3, 2, 2, 1])
prefix = c1.text_input(t("generate.prefix"), corpora.default_prefix(model.info), max_chars=schema.TEXT_MAX_CHARS,
                       key="prefix", **bound)
length = c2.slider(t("generate.length"), **schema.widget_args("generate_length"), key="generate_length", **bound)
temperature = c3.slider(t("generate.temperature"), **schema.widget_args("generate_temperature"),
                        key="generate_temperature", **bound)
seed = c4.number_input(t("generate.seed"), **schema.widget_args("generate_seed", value=ctx.settings.seed),
                       key="generate_seed", **bound)
unknown = corpora.unknown_tokens(model.vocab, prefix)
if unknown:
    st.warning(t("generate.unknown", tokens=", ".join(repr(tok) for tok in unknown)))
if not corpora.split_text(model.vocab, prefix):
    st.info(t("generate.empty"))

greedy_col, sample_col = st.columns(2, gap="large")
with greedy_col:
    st.subheader(t("generate.greedy"))
    st.code(compute.continuation(model.net, model.vocab, model.key, prefix, length, 0.0, 0), language=None,
            wrap_lines=True)
with sample_col:
    st.subheader(t("generate.sampled", T=f"{temperature:g}"))
    st.code(compute.continuation(model.net, model.vocab, model.key, prefix, length, float(temperature), int(seed)),
            language=None, wrap_lines=True)

if model.trained:
    # Samples by checkpoint, as char-rnn's post shows them: the same prefix continued greedily after each saved
    # epoch up to the one shown (Play through training adds a line a frame).
    st.subheader(t("generate.by_checkpoint"))
    head = t("generate.col_epoch")
    width = max(6, formatting.display_width(head))  # a Chinese character takes two columns of the code font
    lines = [f"{e:>{width}} │ " + compute.continuation(net, model.vocab, key, prefix, length, 0.0, 0)
             .replace("\n", "⏎") for e, net, key in runs.earlier_checkpoints(model)]
    st.code("\n".join([formatting.pad_left(head, width) + " │", *lines]), language=None)

temperatures = tuple(sorted({0.5, 1.0, 2.0, round(float(temperature), 2)}))
layout.cached_chart(inside_charts.next_token_chart, (model.key, prefix, temperatures),
                compute.next_tokens(model.net, model.vocab, model.key, prefix, temperatures))
st.caption(t("generate.note"))

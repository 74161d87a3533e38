"""6 · Generate: greedy and temperature-sampled continuations of a prefix, side by side."""
import streamlit as st

from dashboard import lab, lesson, ui

ctx = ui.context()

ui.header(
    "6 · Generate text",
    "The model warms its hidden state on the prefix, then writes one token at a time, feeding each back in. "
    "**Greedy** decoding always takes the most likely token (the lesson's `predict_ch8`) and soon repeats "
    "itself; **sampling** draws from the softmax, sharpened (T < 1) or flattened (T > 1) by the temperature.",
    [r"x_{t+1} = \arg\max_j O_{t,j} \quad\text{(greedy)}, \qquad "
     r"P(x_{t+1} = j) = \frac{\exp(O_{t,j}/T)}{\sum_k \exp(O_{t,k}/T)} \quad\text{(sampling)}"],
    lesson.GENERATE,
)
model = ui.session_model(ctx)
ui.model_banner(model)

c1, c2, c3, c4 = st.columns([3, 2, 2, 1])
prefix = c1.text_input("Prefix", lab.default_prefix(model.info), max_chars=200)
length = c2.slider("Tokens to generate", 10, 500, 50, step=10, key="generate_length")
temperature = c3.slider("Temperature T", 0.1, 3.0, 1.0, step=0.1, format="%.1f", key="generate_temperature")
seed = c4.number_input("Sample seed", 0, 2**31 - 1, ctx.settings.seed, key="generate_seed")
unknown = lab.unknown_tokens(model.vocab, prefix)
if unknown:
    st.warning(f"Not in the model's vocabulary, read as <unk>: {', '.join(repr(t) for t in unknown)}.")
if not lab.split_text(model.vocab, prefix):
    st.info("An empty prefix starts from the most frequent token.")

greedy_col, sample_col = st.columns(2, gap="large")
with greedy_col:
    st.subheader("Greedy (argmax)")
    st.code(lab.continuation(model.net, model.vocab, model.key, prefix, length, 0.0, 0), language=None,
            wrap_lines=True)
with sample_col:
    st.subheader(f"Sampled at T = {temperature:g}")
    st.code(lab.continuation(model.net, model.vocab, model.key, prefix, length, float(temperature), int(seed)),
            language=None, wrap_lines=True)

temperatures = tuple(sorted({0.5, 1.0, 2.0, round(float(temperature), 2)}))
ui.cached_chart("next_token_chart", (model.key, prefix, temperatures),
                lab.next_tokens(model.net, model.vocab, model.key, prefix, temperatures))
st.caption("Low temperature piles the probability onto the favourite token (T → 0 is greedy); high "
           "temperature spreads it towards uniform. Change the seed to draw another sample.")

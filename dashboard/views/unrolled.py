"""3 · The recurrence, unrolled: one column per time step with every number of a real model, and the gradient
of one step's loss flowing back along the chain."""
import streamlit as st

from dashboard import corpora, formatting, i18n, layout, lesson_code, linked_step, runs, sidebar
from dashboard import unrolled_charts as charts
from dashboard import unrolled_explain as explain
from dashboard.i18n import t
from rnn_core import unrolled
from rnn_core.reference import REFERENCE_ID

MODELS = ("tiny", "lesson", "untrained")
TEXT_MAX = 40  # characters: 39 steps, eight pages of five columns
COLUMNS = 5  # steps drawn at once: at 1024 px beside the sidebar a cell is ~30 px, a number's width
UNITS = 8  # hidden units drawn: all of the tiny model's, the 8 that matter of a larger one
PLAY_EVERY_S = 1.5

ctx = sidebar.context()
layout.header(
    t("unrolled.title"),
    t("unrolled.intro"),
    [r"H_t = \varphi(\underbrace{X_t W_{xh}}_{\text{XW}} + \underbrace{H_{t-1} W_{hh}}_{\text{HW}} + b_h),"
     r"\quad H_0 = 0",
     r"O_t = H_t W_{hq} + b_q, \quad \ell_t = -\log \mathrm{softmax}(O_t)_{x_{t+1}}"],
    lesson_code.excerpt("unrolled"),
    fold=True,  # the picture is the formula: it comes first on a projector's screen
)


@st.cache_resource(max_entries=2, show_spinner=False)
def model_run(model: str):
    """The run a model choice reads: the tiny model's (also the untrained one's size), or the lesson's."""
    return unrolled.tiny_run() if model != "lesson" else runs.get(REFERENCE_ID)


@st.cache_resource(max_entries=32, show_spinner=False)
def model_numbers(model: str, seed: int, epoch: int | None = None):
    """(parameters, vocabulary, activation, epoch, run) of a model choice at a checkpoint (None: the last); run is
    None when untrained."""
    run = model_run(model)
    if run is None or not run.checkpoints:
        return None
    if model == "untrained":
        return unrolled.untrained_params(len(run.vocab), run.settings.hidden, seed), run.vocab, "tanh", 0, None
    epoch = epoch if epoch in run.checkpoints else run.checkpoints[-1]
    return run.checkpoint(epoch), run.vocab, run.settings.activation, epoch, run


@st.cache_resource(max_entries=64, show_spinner=False)
def unrolled_text(model: str, seed: int, epoch: int | None, text: str):
    """Every number of the chain for `text` at a checkpoint (shared, never changed)."""
    params, vocab, activation, _, _ = model_numbers(model, seed, epoch)
    return unrolled.unroll(params, vocab, corpora.split_text(vocab, text), activation)


model = layout.url_choice(st, "segmented_control", t("unrolled.model"), list(MODELS), "unrolled_model", "tiny",
                          lambda m: t(f"unrolled.model.{m}"), help=t("unrolled.model_help"))
seed = ctx.settings.seed
run = model_run(model) if model != "untrained" else None
epoch, banner = None, st
if run and run.checkpoints:  # the checkpoint scrubber and Play through training, the banner beside them
    c_epoch, banner = st.columns([3, 2], gap="large")
    epoch = runs.scrubber(run.view(), list(run.checkpoints), c_epoch)
loaded = model_numbers(model, seed, epoch)
if loaded is None:
    st.error(t("unrolled.missing", model=t(f"unrolled.model.{model}")), icon=":material/error:")
    st.stop()
params, vocab, activation, epoch, run = loaded
if run is None:
    st.warning(t("unrolled.banner.untrained", hidden=params["W_hh"].shape[0], seed=seed), icon=":material/warning:")
else:
    # the evaluated perplexity belongs to the last checkpoint; an earlier one has its epoch's training record
    ppl = run.extra.get("eval_perplexity") if epoch == run.checkpoints[-1] else run.view().perplexity_at(epoch)
    banner.success(t(f"unrolled.banner.{model}", epoch=epoch, hidden=run.settings.hidden,
                 ppl=formatting.fmt_ppl(ppl) if ppl else "–"), icon=":material/model_training:")


def play() -> None:
    st.session_state["unrolled_play"] = not st.session_state.get("unrolled_play", False)


def chain() -> None:
    """Text, step and play, the chain, its sentences and the weights: redrawn alone while playing."""
    c1, c2, c3 = st.columns([3, 5, 1], vertical_alignment="bottom")
    text = c1.text_input(t("unrolled.text"), "time traveller", max_chars=TEXT_MAX, key="unrolled_text",
                         bind="query-params", help=t("unrolled.text_help", n=TEXT_MAX))
    tokens = corpora.split_text(vocab, text)
    unknown = corpora.unknown_tokens(vocab, text)
    if unknown:
        st.warning(t("generate.unknown", tokens=", ".join(repr(tok) for tok in unknown)))
    if len(tokens) < 2:
        st.error(t("inside.two_tokens"))
        return
    u = unrolled_text(model, seed, epoch, text)
    steps, playing = u.steps, st.session_state.get("unrolled_play", False)
    if playing != st.session_state.get("_unrolled_timer", False):
        st.rerun(scope="app")  # Play or Pause was pressed: the timer starts or stops with a full run
    linked_step.prepare(steps)  # ?t=, the step kept from Inside, a text shorter than the step
    if playing and st.session_state.get("_unrolled_ticks", 0):
        st.session_state["t"] = st.session_state.get("t", 1) % steps + 1
    st.session_state["_unrolled_ticks"] = st.session_state.get("_unrolled_ticks", 0) + 1 if playing else 0
    step = linked_step.slider(c2, steps, t("unrolled.step_help", count=COLUMNS))
    c3.button("", icon=":material/pause:" if playing else ":material/play_arrow:", key="unrolled_play_button",
              on_click=play, help=t("unrolled.pause" if playing else "unrolled.play_help"), disabled=steps < 2)
    linked_step.notes(step)
    shown = charts.window(step, steps, COLUMNS)
    units = u.top_units(step, UNITS)
    if u.hidden > UNITS:
        st.caption(explain.units(u, step, units))
    linked_step.show(charts.chain_figure(u, step, shown, units, lang=i18n.current()), "unrolled_chain", steps)
    st.markdown(explain.step(u, step))
    st.markdown(explain.backward(u, step))
    st.caption(t("unrolled.legend", columns=len(shown), steps=steps))
    st.subheader(t("unrolled.weights"))
    st.markdown(t("unrolled.weights_text"))
    layout.chart(charts.weights_figure(u, step, units, lang=i18n.current()), key="unrolled_weights")


st.session_state["_unrolled_timer"] = st.session_state.get("unrolled_play", False)
st.fragment(chain, run_every=PLAY_EVERY_S if st.session_state["_unrolled_timer"] else None)()

"""The frame every page shares: navigation, the sidebar bound to the URL, page headers, errors.

Every sidebar widget is keyed by its URL query parameter and bound with ``bind="query-params"``, so a
copied link reopens the same demo: ``/shapes?batch=8&steps=10&hidden=64``.
"""
from __future__ import annotations

from dataclasses import dataclass

import streamlit as st
import torch

from rnn_core.corpus import BUILTIN_CORPORA, CLEANINGS, MAX_CORPUS_BYTES

from . import lab, runs
from .lab import LESSON, CorpusInfo, Settings
from .runs import model_banner, pick_model as session_model  # noqa: F401  (the pages' names for them)

# url_path -> (file, title, icon, help)
PAGES = {
    "": ("views/home.py", "Home", ":material/home:", "What RNN Lab teaches, the lesson map, device and corpus."),
    "data": ("views/data.py", "1 · Data", ":material/dataset:",
             "The corpus, its vocabulary, and how minibatches are cut from it."),
    "shapes": ("views/shapes.py", "2 · One-hot & shapes", ":material/view_in_ar:",
               "From token indices to one-hot vectors, and every tensor shape of a forward pass."),
    "identity": ("views/identity.py", "3 · Concat identity", ":material/join:",
                 "Why X W_xh + H W_hh is one matrix product of [X | H] and [W_xh ; W_hh]."),
    "training": ("views/training.py", "4 · Training", ":material/model_training:",
                 "Train the RNN live: loss, perplexity, gradient clipping and samples."),
    "inside": ("views/inside.py", "5 · Inside the RNN", ":material/biotech:",
               "Hidden states, output probabilities, per-step loss and gradients for one string."),
    "generate": ("views/generate.py", "6 · Generate", ":material/edit_note:",
                 "Continue a prefix greedily and by sampling at a temperature."),
}

STYLE = """
<style>
/* lecture hall: larger body text, metrics and tables */
[data-testid="stMainBlockContainer"] p, [data-testid="stMainBlockContainer"] li { font-size: 1.15rem; }
[data-testid="stMainBlockContainer"] [data-testid="stMetricValue"] p { font-size: inherit; }
[data-testid="stMarkdownContainer"] .katex { font-size: 1.45em; }
[data-testid="stMainBlockContainer"] [data-testid="stCode"] code { font-size: 1.05rem; }
</style>
"""


def pages() -> list:
    """One st.Page per file in dashboard/views/, Home first and default."""
    return [st.Page(file, title=title, icon=icon, help=help_, url_path=path or None, default=path == "")
            for path, (file, title, icon, help_) in PAGES.items()]


@dataclass
class Context:
    """What the sidebar decided for this run: settings, corpus, device."""

    settings: Settings
    info: CorpusInfo
    device: torch.device
    device_error: str | None


CLIP_CHOICES = ["off", "0.01", "0.1", "0.5", "1", "2", "5", "10", "100", "1000"]


def parse_clip(text: str | None) -> tuple[float | None, str | None]:
    """The clipping threshold θ from the sidebar's text: (θ or None for off, a warning when it was unusable)."""
    text = (text or "1").strip().lower()
    if text == "off":
        return None, None
    try:
        theta = float(text)
    except ValueError:
        theta = -1.0
    if not (0 < theta < float("inf")):
        return LESSON.clip, f"Clip θ = {text!r} is not a positive number or 'off': using the lesson's θ = {LESSON.clip:g}."
    return theta, None


def reset_to_lesson() -> None:
    """Callback: the lesson's settings (32, 35, 512, lr 1, theta 1, 500 epochs, sequential)."""
    for key in ("batch", "steps", "hidden", "lr", "epochs", "partition", "token", "clean"):
        st.session_state[key] = getattr(LESSON, key)
    st.session_state["clip"] = f"{LESSON.clip:g}"


def sidebar(live_run: bool = True) -> Context:
    """Draw the settings sidebar (each widget bound to its URL parameter) and resolve corpus and device.

    ``live_run``: show this session's run with a live progress bar (the Training page draws its own).
    """
    bound = dict(bind="query-params")
    sb = st.sidebar
    run_box = sb.container()  # this session's run, on top: seen on every page without scrolling
    sb.header("Settings")
    corpus = sb.selectbox("Corpus", lab.CORPUS_CHOICES, index=0, key="corpus", **bound,
                          help="time_machine: the lesson's text. toy_english, parentheses, counting: generated "
                               "texts with structure to find in the hidden units. upload: your own .txt file.")
    upload = None
    if corpus == "upload":
        f = sb.file_uploader(f"Text file (≤ {MAX_CORPUS_BYTES // 2**20} MB)", type=["txt", "md", "csv"],
                             key="upload_file")
        if f is not None:
            upload = (f.file_id, f.name, f.getvalue())
    elif corpus in BUILTIN_CORPORA:
        sb.caption(BUILTIN_CORPORA[corpus][1])
    corpus_status = sb.container()  # filled once the corpus is resolved (it needs the token type and seed)
    token = sb.radio("Tokens", ["char", "word"], key="token", horizontal=True, **bound)
    clean = sb.radio("Cleaning", list(CLEANINGS), key="clean", horizontal=True, **bound,
                     help="lesson: the lesson's a-z and space, lower case. keep: every character (NFKC, "
                          "whitespace collapsed), so a Chinese or other Unicode text trains character by "
                          "character.")

    sb.subheader("Minibatches and model")
    batch = sb.slider("Batch size", 1, 128, LESSON.batch, key="batch", **bound,
                      help="batch_size: sequences trained on together (rows of X).")
    steps = sb.slider("Time steps per sequence", 1, 100, LESSON.steps, key="steps", **bound,
                      help="num_steps: tokens per sequence (columns of X), the length unrolled in BPTT.")
    hidden = sb.slider("Hidden units", 1, 1024, LESSON.hidden, key="hidden", **bound,
                       help="num_hiddens: the size of the hidden state H_t.")
    partition = sb.radio("Partitioning", ["sequential", "random"], key="partition", horizontal=True, **bound,
                         help="sequential: each row continues where it stopped, the state carries over. "
                              "random: random subsequences, fresh state each minibatch.")

    sb.subheader("Training")
    lr = sb.number_input("Learning rate", min_value=0.001, max_value=100.0, value=LESSON.lr, step=0.1,
                         format="%g", key="lr", **bound)
    epochs = sb.number_input("Epochs", min_value=1, max_value=10_000, value=LESSON.epochs, step=10,
                             key="epochs", **bound)
    clip_text = sb.selectbox("Clip θ (gradient norm)", CLIP_CHOICES, index=CLIP_CHOICES.index("1"), key="clip",
                             accept_new_options=True, **bound,
                             help="Gradients are scaled down to norm θ when larger. 'off' trains without "
                                  "clipping (one of the lesson's exercises). Type another value if you like.")
    clip, clip_error = parse_clip(clip_text)
    if clip_error:
        sb.warning(clip_error)
    engines = lab.engine_names()
    engine = sb.selectbox("Engine", engines, index=0, key="engine", **bound,
                          help="lesson: the scratch model as written in the lesson. Other engines compute "
                               "the same RNN faster.")
    device_choice = sb.radio("Device", ["auto", "cpu", "cuda"], key="device", horizontal=True, **bound)
    device_status = sb.container()
    seed = sb.number_input("Seed", min_value=0, max_value=2**31 - 1, value=LESSON.seed, step=1, key="seed",
                           **bound)
    sb.button("Reset to the lesson's settings", on_click=reset_to_lesson, width="stretch",
              help="Batch 32, 35 steps, 512 hidden units, learning rate 1, θ 1, 500 epochs.")
    sb.caption("These settings live in the page's URL: copy it to reopen this exact demo.")

    settings = Settings(corpus=corpus, token=token, clean=clean, batch=int(batch), steps=int(steps), hidden=int(hidden),
                        lr=float(lr), epochs=int(epochs), clip=clip, partition=partition,
                        device=device_choice, seed=int(seed), engine=engine,
                        upload_id=upload[0] if upload else None)
    info = lab.corpus_info(settings, upload, st.session_state.get("last_good_corpus"))
    if info.error is None and info.used == info.requested:
        st.session_state["last_good_corpus"] = info  # what a refused upload leaves in use
    device, device_error = lab.resolve_device(settings)
    with corpus_status:
        if info.error:
            st.error(info.error, icon=":material/error:")
        if info.fallback_reason:
            st.warning(f"Using **{info.title}** instead of {info.requested}: {info.fallback_reason}")
        for warning in info.warnings:
            st.warning(warning)
    if device_error:
        device_status.error(f"{device_error} Using {lab.describe_device(device)}.")
    _sidebar_summary(info, device)
    view = runs.current_view()
    if view is not None and live_run:
        with run_box:
            st.fragment(run_status, run_every=refresh_s() if view.running else None)()
    ctx = Context(settings, info, device, device_error)
    st.session_state["lab_context"] = ctx
    return ctx


def _sidebar_summary(info: CorpusInfo, device: torch.device) -> None:
    """Below the settings: what is actually in use."""
    sb = st.sidebar
    sb.divider()
    sb.caption(f"Corpus: **{info.title}** ({info.note}); {len(info.tc.corpus):,} tokens, "
               f"{len(info.vocab)} in the vocabulary. Device: **{lab.describe_device(device)}**.")


STATUS_WORDS = {"new": "not started", "running": "training in the background", "stopped": "stopped",
                "done": "finished", "diverged": "stopped: diverged", "out_of_memory": "stopped: out of memory",
                "failed": "stopped: internal error"}


def run_status() -> None:
    """The session's run in one line and a progress bar (a fragment: redrawn while the run trains)."""
    view = runs.current_view()
    if view is None:
        return
    ppl = f", perplexity {lab.fmt_ppl(view.last['perplexity'])}" if view.last else ""
    st.caption(f"Session model: {view.epoch}/{view.target} epochs{ppl}, {STATUS_WORDS[view.status]}.")
    st.progress(view.progress)
    if st.session_state.get("_run_was_running") and not view.running:
        st.session_state["_run_was_running"] = False
        st.rerun()  # the run ended: a full run turns the timer off and updates every view
    st.session_state["_run_was_running"] = view.running


LIVE_EVERY_S = 2.0  # each redraw of the live curves costs the browser ~0.25 s of CPU: on a laptop that trains
# too, a redraw every second took a quarter of a core from training (measured with two cores)


def refresh_s() -> float:
    """Seconds between live redraws: 2 s, longer when many runs train on the server (each redraw costs CPU)."""
    return max(LIVE_EVERY_S, 0.25 * len(runs.registry().scheduler.active()))


def context() -> Context:
    """This run's settings, corpus and device (set by the sidebar in Home.py)."""
    ctx = st.session_state.get("lab_context")
    if ctx is None:  # only when a page file is run on its own
        ctx = sidebar()
    return ctx


def index_slider(label: str, size: int, default: int, key: str, **kwargs) -> int:
    """A slider over 0..size-1 (a slider needs two values: with one there is nothing to choose)."""
    if size <= 1:
        st.caption(f"{label}: 0 (the only one)")
        return 0
    return st.slider(label, 0, size - 1, min(default, size - 1), key=key, **kwargs)


def header(title: str, intro: str, formulas: list[str], code: str) -> None:
    """A page's opening: title, two or three plain sentences, the formula, the lesson's code (collapsed)."""
    st.title(title)
    st.markdown(intro)
    for formula in formulas:
        st.latex(formula)
    with st.expander("The lesson's code for this step", icon=":material/code:"):
        st.code(code, language="python")


def chart(fig, key: str | None = None) -> None:
    """Render a plotly figure full width with its own (large-font) template."""
    st.plotly_chart(fig, width="stretch", theme=None, key=key, config={"displaylogo": False})


@st.cache_resource(max_entries=256, show_spinner=False)
def _figure(builder: str, cache_key: tuple, _args: tuple, _kwargs: dict):
    # Figures are never mutated after building (st.plotly_chart serialises a copy), so sharing is safe.
    from . import charts  # plotly loads with the first chart, not with Home

    return getattr(charts, builder)(*_args, **_kwargs)


def cached_chart(builder: str, cache_key: tuple, *args, key: str | None = None, **kwargs) -> None:
    """Render ``charts.<builder>(*args, **kwargs)``, built once per `cache_key` (which must identify the inputs).

    Building a plotly figure costs tens of milliseconds; a slider that does not touch a chart's inputs
    should not pay for it again.
    """
    chart(_figure(builder, cache_key, args, kwargs), key=key)


def user_error(exc: Exception) -> None:
    """A user-caused problem, said in one sentence (never a traceback)."""
    st.error(str(exc).strip().splitlines()[0] if str(exc).strip() else exc.__class__.__name__,
             icon=":material/error:")

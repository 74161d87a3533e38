"""The checkpoint scrubber (``?epoch=``) and Play through a run's checkpoints, one a frame, beside the run's
perplexity curve with the epoch shown marked.
"""
from __future__ import annotations

import streamlit as st

from rnn_core.runs import RunView

from . import layout
from .i18n import t
from .run_shown import file_figures, url_notes, url_text

PLAY = "epoch_play"  # session state: True while the checkpoints play, one a frame
PLAY_EVERY_S = 1.5  # a frame's time on screen; building one takes less once its checkpoint was shown (cached)


def scrubber(view: RunView, epochs: list[int], box) -> int:
    """The checkpoint scrubber (bound to ``?epoch=``), its Play / Pause button and the run's perplexity curve
    with the epoch shown marked, drawn in ``box``; the epoch chosen.

    While playing, every run of the page shows the next checkpoint, and a timer runs the page once a frame;
    after the last checkpoint it pauses. Pause keeps the epoch shown, in the scrubber and in the URL."""
    notes = url_notes()
    _epoch_from_url(epochs)
    if st.session_state.get("epoch") is not None and st.session_state["epoch"] not in epochs:
        # another run's checkpoint (the model choice changed): the nearest of this one's
        st.session_state["epoch"] = min(epochs, key=lambda e: (abs(e - st.session_state["epoch"]), -e))
    playing = _advance(epochs)
    with box:
        if len(epochs) > 1:
            c_scrub, c_play = st.columns([8, 1], vertical_alignment="bottom")
            epoch = c_scrub.select_slider(t("runs.checkpoint"), epochs, value=epochs[-1], key="epoch",
                                          bind="query-params", help=t("runs.checkpoint_help"))
            c_play.button("", icon=":material/pause:" if playing else ":material/play_arrow:",
                          key="epoch_play_button", on_click=_press_play, args=(tuple(epochs),),
                          help=t("runs.pause" if playing else "runs.play_help"))
        else:
            epoch = epochs[0]
            st.caption(t("runs.one_checkpoint", epoch=epoch))
        _perplexity_curve(view, epoch, epochs)
    if "epoch" in notes and epoch != notes["epoch"][1]:
        del notes["epoch"]  # the scrubber was moved
    if playing:
        st.session_state["_play_full_run"] = True
        _timer()
    return epoch


def _press_play(epochs: tuple[int, ...]) -> None:
    """Play or Pause: Play on the last checkpoint starts again from the first."""
    playing = not st.session_state.get(PLAY, False)
    st.session_state[PLAY] = playing
    if playing:
        st.session_state["_play_pressed"] = True  # the run that follows shows the frame it starts from
        if st.session_state.get("epoch", epochs[-1]) == epochs[-1]:
            st.session_state["epoch"] = epochs[0]


def _advance(epochs: list[int]) -> bool:
    """Move the scrubber to the next checkpoint when playing (before it is drawn); whether it still plays."""
    if not st.session_state.get(PLAY):
        return False
    if len(epochs) < 2:  # another model, with one checkpoint: nothing to play
        st.session_state[PLAY] = False
        return False
    if st.session_state.pop("_play_pressed", False):
        return True
    now = st.session_state.get("epoch", epochs[-1])
    later = [e for e in epochs if e > now]
    if later:
        st.session_state["epoch"] = later[0]
    if len(later) <= 1:  # the last checkpoint is shown: pause there
        st.session_state[PLAY] = False
        return False
    return True


@st.fragment(run_every=PLAY_EVERY_S)
def _timer() -> None:
    # Drawn only while playing. With the page it does nothing; run alone by its timer it runs the page, which
    # shows the next checkpoint (a fragment cannot move the scrubber, drawn outside it).
    if not st.session_state.pop("_play_full_run", False):
        st.rerun(scope="app")


def _perplexity_curve(view: RunView, epoch: int, epochs: list[int]) -> None:
    """The run's perplexity by epoch with the epoch shown marked; a checkpoint file has no curve: said."""
    if file_figures(view) is not None or not view.records:
        st.caption(t("runs.no_curve"))
        return
    from . import training_charts  # plotly loads with the first chart, not with Home

    layout.cached_chart(training_charts.perplexity_marker, (view.id, len(view.records), epoch, tuple(epochs)),
                        view.frame(), epoch, list(epochs), key="epoch_curve")


def _epoch_from_url(epochs: list[int]) -> None:
    """Check the URL's epoch before the scrubber is drawn: a value that is not one of ``epochs`` is named in a
    warning with the nearest one (the last for a value that is no number), and that epoch replaces it in the
    URL, so the scrubber, bound to ``?epoch=``, starts there and a copied link reopens what is shown. The page
    runs again for it (Streamlit seeds a bound widget from the URL it was opened with)."""
    raw = st.query_params.get("epoch")
    notes = url_notes()
    if raw is None or not epochs:
        return
    try:
        wanted = int(raw)
    except ValueError:
        wanted = None
    if wanted in epochs:
        if notes.get("epoch", (None, None))[1] != wanted:
            notes.pop("epoch", None)  # a good link, not the epoch a bad one was replaced by
        return
    used = epochs[-1] if wanted is None else min(epochs, key=lambda e: (abs(e - wanted), -e))
    notes["epoch"] = (t("url.epoch", value=url_text(raw), used=used), used)
    if "epoch" not in st.session_state and layout.url_replace("epoch", used, epochs[-1]):
        st.rerun()


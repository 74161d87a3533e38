"""The lesson's own code (Dive into Deep Learning 8.3-8.5, PyTorch), one excerpt per page.

Shown collapsed under each page's formula, so a student can map what is drawn to what they read. An excerpt
is cells of ``rnn_core.d2l_code``, the one copy of the lesson's code (the notebook test runs it and the
benchmark times it), with a page's own notes added at the end of some lines. The comments are shown in the
reader's language (d2l-zh's wording), through :func:`code`.
"""
import re

from rnn_core.d2l_code import cells

from .i18n import t

# page -> the cells of rnn_core.d2l_code it shows, in order
CELLS = {
    "data": ("seq_data_iter_random", "seq_data_iter_sequential", "load"),
    "shapes": ("one_hot", "rnn", "RNNModelScratch", "check_shapes"),
    "unrolled": ("rnn",),
    "identity": ("identity",),
    "training": ("grad_clipping", "train_epoch_ch8", "train"),
    "inside": ("rnn",),
    "generate": ("predict_ch8", "predict"),
}
# page -> {how a line of its cells starts: a note added at the end of that line}
NOTES = {
    "unrolled": {
        "for X in inputs:": "one column of the picture per time step",
        "H = torch.tanh(": "XW + HW + b, then φ: the cells z and H",
        "Y = torch.mm(H, W_hq)": "O_t: its softmax gives the three tokens under each column",
    },
    "inside": {
        "H = torch.tanh(": "the hidden state drawn here",
        "Y = torch.mm(H, W_hq)": "softmax(Y): the probabilities; the loss is -log softmax(Y)[true next token]",
    },
}


def _english(page: str) -> str:
    """A page's cells, one blank line apart, with the page's notes; a note whose line is not there once raises."""
    source = cells()
    lines = "\n".join(source[name] for name in CELLS[page]).splitlines()
    for start, note in NOTES.get(page, {}).items():
        at = [i for i, line in enumerate(lines) if line.lstrip().startswith(start)]
        if len(at) != 1:
            raise ValueError(f"lesson.NOTES[{page!r}]: {len(at)} lines start with {start!r}, not one.")
        lines[at[0]] += f"  # {note}"
    return "\n".join(lines) + "\n"


# A comment's text (after "# ") or a one-line docstring's: the parts of the code a translation changes.
COMMENT = re.compile(r'(?<=# )[^\n]+|(?<=""")[^"\n]+(?=""")')
EXCERPTS = {page: _english(page) for page in CELLS}


def excerpt(page: str, lang: str | None = None) -> str:
    """A page's excerpt with its comments in `lang` (catalogue ids lesson.<page>.<n>, n-th comment in order)."""
    counter = iter(range(1 << 30))
    return COMMENT.sub(lambda m: t(f"lesson.{page}.{next(counter)}", lang), EXCERPTS[page])

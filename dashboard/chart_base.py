"""What every chart builder shares: the large-font ``rnnlab`` template, colours, token labels, hover texts.

The builders live in one module per thing they show (lesson_charts, training_charts, inside_charts,
exercise_charts, unrolled_charts): DataFrames and tensors in, plotly Figures out. No Streamlit here. Fonts are
large on purpose: the charts are read from the back of a lecture hall.
Every figure is made by ``figure`` (or ``subplots``) below, with the ``rnnlab`` template registered here (the
pages render with ``theme=None`` so Streamlit does not override it).
"""
from __future__ import annotations

import math

# pandas before plotly: plotly looks pandas up in sys.modules without the import lock, so a page building a chart
# while another session's script is still importing pandas met a half-made module ('no attribute Series').
import pandas  # noqa: F401
import plotly.graph_objects as go
import plotly.io as pio


FONT_SIZE = 18
COLORS = {"loss": "#1f77b4", "ppl": "#d62728", "ref": "#7f7f7f", "good": "#2ca02c", "accent": "#ff7f0e",
          "x_block": "#1f77b4", "h_block": "#9467bd"}
DIVERGING = "RdBu_r"  # blue negative, red positive, white 0

# plotly_white's layout only: its per-trace defaults make every figure 4x slower to build and 10 kB bigger.
_template = go.layout.Template(layout=pio.templates["plotly_white"].layout)
_template.layout.update(
    font=dict(size=FONT_SIZE, family="Inter, Helvetica, Arial, sans-serif"),
    title=dict(font=dict(size=FONT_SIZE + 4), x=0.0, xanchor="left"),
    margin=dict(l=70, r=30, t=70, b=60),
    hoverlabel=dict(font=dict(size=FONT_SIZE)),
    legend=dict(font=dict(size=FONT_SIZE - 2)),
)
pio.templates["rnnlab"] = _template
TEMPLATE = "rnnlab"


def _default_template() -> None:
    """``rnnlab`` as plotly's default template, which a new figure takes without validating it again (``template=``
    on a figure costs 2.4 ms for a deep copy of it, and a live page draws several figures every 2 s for each
    session of a class). Importing Streamlit sets its own default, so it is put back before each figure."""
    if pio.templates.default != TEMPLATE:
        pio.templates.default = TEMPLATE


def figure(*args, **kwargs) -> go.Figure:
    """``go.Figure(*args, **kwargs)`` drawn with the ``rnnlab`` template: every builder makes its figures here."""
    _default_template()
    return go.Figure(*args, **kwargs)


def subplots(**kwargs) -> go.Figure:
    """``plotly.subplots.make_subplots(**kwargs)`` drawn with the ``rnnlab`` template."""
    from plotly.subplots import make_subplots

    _default_template()
    return make_subplots(**kwargs)

# Lecture mode (?mode=lecture): no tick label under LECTURE_TICK px (tick_size, the one rule). A builder that fits
# its labels to their font size asks tick_size itself; layout.chart passes every figure through lecture_figure in
# lecture mode, which applies it to the tick fonts of the other builders (the template's are FONT_SIZE).
LECTURE_TICK = 16

# The narrowest a chart is drawn at 1024 px (a projector), beside the sidebar: the page's column is ~560 px, a
# half column (st.columns(2, gap="large")) ~250 px. Titles are wrapped to these widths (plotly does not wrap).
PAGE_PX = 560
HALF_PX = 250


# Glyph widths in em of the charts' font (Helvetica/Arial metrics: Liberation Sans on Debian), by character class
_EM = {**dict.fromkeys("fijlrtI!'\",./:;[]\\|`()-{}·ℓ ", 0.3), **dict.fromkeys("cksvxyzJ\"^*", 0.5),
       **dict.fromkeys("ABEFKPSTVXYZL&", 0.67), **dict.fromkeys("CDGHNOQRUw", 0.75),
       **dict.fromkeys("mM%", 0.86), **dict.fromkeys("W@", 0.97)}
AXIS_TITLE_SIZE = round(1.2 * FONT_SIZE)  # plotly draws axis titles at 1.2 x the layout's font


def text_px(text: str, size: float) -> float:
    """Estimated width in px of `text` at font `size` px: a CJK character is 1 em, a Latin one its glyph's width
    (0.56 em for most)."""
    return size * sum(1.0 if ord(c) >= 0x2E80 or c in "→…" else _EM.get(c, 0.56) for c in text)


def wrap(text: str, width_px: float, size: float) -> str:
    """`text` with ``<br>`` where it must break to fit `width_px` at `size` px: between words, or between CJK
    characters (Chinese has no spaces). A single word longer than the width stays whole."""
    lines, line = [], ""
    for piece in _pieces(text):
        if line and text_px((line + piece).rstrip(), size) > width_px:
            lines.append(line.rstrip())
            line = piece.lstrip()
        else:
            line += piece
    lines.append(line.rstrip())
    return "<br>".join(part for part in lines if part)


def _pieces(text: str) -> list[str]:
    """Where `text` may break: after a space, and before or after a CJK character (a word keeps its space); a
    full-width bracket's contents stay together ("（词元索引）" is not cut after "索")."""
    pieces, word, bracket = [], "", None
    for c in text:
        if bracket is not None:  # inside "（...）": one piece
            bracket += c
            if c == "）":
                pieces.append(bracket)
                bracket = None
            continue
        if c == "（":
            if word:
                pieces.append(word)
            word, bracket = "", c
            continue
        if ord(c) >= 0x2E80:
            if word:
                pieces.append(word)
            # full-width punctuation stays with the character before it, an opening bracket with the one after
            if pieces and (c in "，。；：、）】》”’！？" or pieces[-1][-1:] in "（【《“‘"):
                pieces[-1] += c
            else:
                pieces.append(c)
            word = ""
        else:
            word += c
            if c == " ":
                pieces.append(word)
                word = ""
    if word or bracket:
        pieces.append(word + (bracket or ""))
    return pieces


def lines(text: str | None) -> int:
    """How many lines a (wrapped) title has."""
    return text.count("<br>") + 1 if text else 0


def title_margin(text: str | None, size: float = FONT_SIZE + 4) -> int:
    """The top margin a title of these lines needs (px), with room for the plot's top tick label."""
    return 30 + int(1.3 * size * lines(text)) if text else 30


def show_token(token: str) -> str:
    """A token as it reads on a chart axis: a space becomes '␣'."""
    return token.replace(" ", "␣") if token.strip() == "" or len(token) == 1 else token


def hover(*lines: str) -> str:
    """A hover template from its lines: words from the catalogues, values as plotly's ``%{...}`` fields."""
    return "<br>".join(lines) + "<extra></extra>"


def styled(fig: go.Figure, title: str | None, height: int | None = None, width: float | None = None) -> go.Figure:
    """The title (wrapped to `width` px, the narrowest the chart is drawn at) and its margin."""
    if title and width:
        title = wrap(title, width - 10, FONT_SIZE + 4)
    fig.update_layout(title=title, margin=dict(t=title_margin(title)))
    if height:
        fig.update_layout(height=height + 26 * (lines(title) - 1))
    return fig


def legend_below(names: list[str], width: float, x_title_lines: int = 1) -> tuple[dict, int]:
    """A horizontal legend at the foot of a chart `width` px wide, under its x axis title (never over it), and the
    bottom margin (px) that holds the tick labels, the title and the legend's rows."""
    size = FONT_SIZE - 2
    rows, used = 1, 0.0
    for name in names:  # plotly fills a row left to right: a symbol (~40 px), the name, a gap
        item = 50 + text_px(name, size)
        if used and used + item > width - 20:
            rows, used = rows + 1, 0.0
        used += item
    legend = dict(orientation="h", yref="container", y=0.0, yanchor="bottom", xref="container", x=0.0,
                  xanchor="left", font=dict(size=size))
    return legend, 40 + int(1.3 * AXIS_TITLE_SIZE) * x_title_lines + int(1.5 * size) * rows + 8


def tick_size(size: float, lecture: bool = True) -> float:
    """A tick label's font size: `size`, and at least LECTURE_TICK px in lecture mode (read from the back of the
    room)."""
    return max(size, LECTURE_TICK) if lecture else size


def _tick_fonts(fig: go.Figure) -> list:
    """The tick fonts of `fig`'s axes and colour bars (a trace's own or a shared colour axis's)."""
    return [*(axis.tickfont for axis in (*fig.select_xaxes(), *fig.select_yaxes())),
            *(tr.colorbar.tickfont for tr in fig.data if "colorbar" in tr),
            *(axis.colorbar.tickfont for axis in fig.select_coloraxes())]


def lecture_figure(fig: go.Figure) -> go.Figure:
    """`fig` for lecture mode: every tick label (axes and colour bars) at tick_size, a builder's own smaller tick
    font too. A figure that has none smaller is returned as it is; else a copy (a cached figure is shared with lab
    mode). Copying a figure of 1,000 points costs ~25 ms: only when something changes."""
    base = fig.layout.font.size or FONT_SIZE
    size = lambda font: font.size or base  # noqa: E731  (unset: the layout's)
    if all(tick_size(size(font)) == size(font) for font in _tick_fonts(fig)):
        return fig
    fig = figure(fig)
    for font in _tick_fonts(fig):
        if tick_size(size(font)) != size(font):
            font.size = tick_size(size(font))
    return fig


def whole_log_ticks(lo: float, hi: float, max_ticks: int = 8) -> tuple[list[float], list[str]]:
    """Ticks for a log axis over the values lo .. hi (both > 0), labelled with the numbers they are.

    plotly's own log ticks label the minor ticks "2 3 4" above "10", so 20, 30 and 40 read as 2, 3 and 4.
    Here a tick says its value: 1, 2, 5, 10, 20, 50, ... while they fit in `max_ticks`, else the decades
    only (1, 10, 100; from 10^6 up and below 10^-3 as 1e6, 1e-4).
    """
    lo, hi = min(lo, hi), max(lo, hi)
    lo_d, hi_d = math.floor(math.log10(lo)), math.ceil(math.log10(hi))
    for mantissas in ((1, 2, 5), (1,)):
        vals = [m * 10.0 ** d for d in range(lo_d, hi_d + 1) for m in mantissas]
        vals = [v for v in vals if lo * (1 - 1e-9) <= v <= hi * (1 + 1e-9)]
        if len(vals) <= max_ticks:
            break
    else:  # even the decades are too many: every k-th decade
        step = math.ceil(len(vals) / max_ticks)
        vals = vals[::step]
    if len(vals) < 2:  # under a decade: every whole digit, else the ends
        vals = [m * 10.0 ** d for d in range(lo_d, hi_d + 1) for m in range(1, 10)]
        vals = [v for v in vals if lo * (1 - 1e-9) <= v <= hi * (1 + 1e-9)] or [lo, hi]

    def label(v: float) -> str:
        if 1 <= v < 1e6:
            return f"{v:,.0f}" if v == round(v) else f"{v:.3g}"
        if 1e-3 <= v < 1:
            return f"{v:.3g}"
        return f"1e{round(math.log10(v))}" if math.log10(v).is_integer() else f"{v:.0e}"
    return vals, [label(v) for v in vals]


def log_axis(lo: float, hi: float, **axis) -> dict:
    """A plotly log axis over the values lo .. hi with `whole_log_ticks` (pass it to update_xaxes/update_yaxes
    or as a layout axis dict; `axis` adds to it, e.g. title)."""
    vals, text = whole_log_ticks(lo, hi)
    return dict(type="log", tickvals=vals, ticktext=text, **axis)

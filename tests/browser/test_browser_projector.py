"""Every page at a projector's 1024x768, in lab and lecture mode, in English and Chinese: no metric label or value
cut, no chart title or axis title outside its chart, no two titles or labels of a chart over each other, no legend
over a title, no two numbers of a heatmap over each other, no display formula cut, and in lecture mode every text
input, number input and select at 18 px or more and every chart's tick labels at 16 px or more.

One tab walks the pages in order (the key N turns to the next one, as a lecturer does); each mode and language
starts from Home by its URL. Screenshots: artifacts/screenshots/walk-{mode}-{lang}-{page}.png.
"""
import re

import pytest

from tests.browser import st_browser as sb

PROJECTOR = {"width": 1024, "height": 768}
MODES = ("lab", "lecture")
LANGS = ("en", "zh")
LECTURE_INPUT_PX = 18
LECTURE_TICK_PX = 16

# Every chart drawn at the width its container gives it (Streamlit sizes a plotly chart after its first draw:
# titles measured before would be measured at another width).
CHARTS_LAID_OUT = """() => [...document.querySelectorAll('.js-plotly-plot')].filter(gd => gd.clientWidth > 0)
  .every(gd => gd._fullLayout && gd.querySelector('.main-svg') &&
               Math.abs(gd._fullLayout.width - gd.clientWidth) < 2)"""

# What cannot be read on the page, one line per problem (empty: all readable). Argument: lecture mode or not.
PROBLEMS = """(lecture) => {
  const out = [];
  const shown = r => r.width > 0 && r.height > 0;
  const overlap = (r, s, slack) => r.left < s.right - slack && s.left < r.right - slack &&
                                   r.top < s.bottom - slack && s.top < r.bottom - slack;
  const cut = e => e.clientWidth > 0 && (e.scrollWidth > e.clientWidth + 1 ||
    (getComputedStyle(e).textOverflow === 'ellipsis' && e.scrollWidth > e.clientWidth));
  // metrics: the label and the value, and everything inside them
  for (const part of document.querySelectorAll("[data-testid='stMetricLabel'], [data-testid='stMetricValue']")) {
    const bad = [part, ...part.querySelectorAll('*')].filter(cut);
    if (bad.length)
      out.push(`metric cut: "${part.innerText.trim()}" (${bad[0].scrollWidth} > ${bad[0].clientWidth} px)`);
  }
  for (const gd of document.querySelectorAll('.js-plotly-plot')) {
    const svg = gd.querySelector('.main-svg');
    if (!svg) continue;
    const box = svg.getBoundingClientRect();
    const name = (gd.querySelector('.gtitle')?.textContent || gd.querySelector('.annotation-text')?.textContent ||
                  '(untitled chart)').trim().slice(0, 50);
    const titles = [...gd.querySelectorAll('.gtitle, .g-xtitle text, .g-ytitle text, ' +
        '[class^="g-x"][class$="title"] text, [class^="g-y"][class$="title"] text, .cbtitle text')]
      .filter(e => e.textContent.trim()).map(e => [e.textContent.trim(), e.getBoundingClientRect()])
      .filter(([, r]) => shown(r));
    // titles and text annotations (panel titles, labels on lines) over each other
    const labels = [...titles, ...[...gd.querySelectorAll('.annotation-text')].filter(e => e.textContent.trim())
      .map(e => [e.textContent.trim(), e.getBoundingClientRect()]).filter(([, r]) => shown(r))];
    for (let i = 0; i < labels.length; i++) for (let j = i + 1; j < labels.length; j++)
      if (overlap(labels[i][1], labels[j][1], 1))
        out.push(`chart "${name}": "${labels[i][0].slice(0, 40)}" over "${labels[j][0].slice(0, 40)}"`);
    const seen = new Set();
    for (const [text, r] of titles) {
      if (seen.has(text)) continue;
      seen.add(text);
      const span = b => `${Math.round(b.left)}..${Math.round(b.right)} x ${Math.round(b.top)}..${Math.round(b.bottom)}`;
      if (r.left < box.left - 1 || r.right > box.right + 1 || r.top < box.top - 1 || r.bottom > box.bottom + 1)
        out.push(`chart "${name}": title "${text.slice(0, 50)}" outside the chart (${span(r)} in ${span(box)})`);
    }
    for (const legend of gd.querySelectorAll('.legend')) {
      const l = (legend.querySelector('.bg') || legend).getBoundingClientRect();
      if (!shown(l)) continue;
      for (const [text, r] of titles)
        if (overlap(l, r, 1)) out.push(`chart "${name}": legend over "${text.slice(0, 50)}"`);
    }
    // a heatmap's numbers in its cells
    const cells = [...gd.querySelectorAll('.heatmaplayer text, .hm text')].filter(e => e.textContent.trim())
      .map(e => [e.textContent.trim(), e.getBoundingClientRect()]).filter(([, r]) => shown(r));
    for (let i = 0; i < cells.length; i++) for (let j = i + 1; j < cells.length; j++)
      if (overlap(cells[i][1], cells[j][1], 1)) {
        out.push(`chart "${name}": cell numbers "${cells[i][0]}" and "${cells[j][0]}" overlap`);
        i = cells.length;
        break;
      }
  }
  // display formulas wider than their space (KaTeX scrolls them; its struts stick out 1-2 px where nothing is cut)
  for (const e of document.querySelectorAll('.katex-display'))
    if (e.clientWidth > 0 && e.scrollWidth > e.clientWidth + 4)
      out.push(`formula cut: ${e.textContent.slice(0, 40)} (${e.scrollWidth} > ${e.clientWidth} px)`);
  if (lecture) {
    for (const tick of document.querySelectorAll('.js-plotly-plot .xtick text, .js-plotly-plot .ytick text')) {
      const px = parseFloat(getComputedStyle(tick).fontSize);
      if (tick.textContent.trim() && px < %(tick_px)d) {
        out.push(`tick label "${tick.textContent.trim().slice(0, 20)}" at ${px} px`);
        break;
      }
    }
    const inputs = [...document.querySelectorAll('input, textarea')].filter(e =>
      !['hidden', 'file', 'range', 'checkbox', 'radio'].includes(e.type) && e.getAttribute('role') !== 'slider');
    const selects = [...document.querySelectorAll('[data-baseweb="select"] *')].filter(e =>
      [...e.childNodes].some(n => n.nodeType === 3 && n.textContent.trim()));
    for (const e of [...inputs, ...selects]) {
      const px = parseFloat(getComputedStyle(e).fontSize);
      if (px < %(input_px)d) {
        const label = e.getAttribute('aria-label') || e.value || e.textContent.trim();
        out.push(`input "${label.slice(0, 40)}" at ${px} px`);
      }
    }
  }
  return out;
}""" % {"input_px": LECTURE_INPUT_PX, "tick_px": LECTURE_TICK_PX}

# Pages whose check is known to fail, by (mode, lang, view): the reason names what is cut.
KNOWN = {}

# Every page in order, then Training showing a run (?run=lesson, the reference run): its numbers, the gradient
# chart, the samples, the gradient flow charts (with no run of the session's own, the page shows its curves only).
VIEWS = {**{name: (path, {}) for path, name in sb.PAGES.items()}, "training-run": ("training", {"run": "lesson"})}
WALK = [pytest.param(mode, lang, view, id=f"{mode}-{lang}-{view}",
                     marks=[pytest.mark.xfail(reason=KNOWN[mode, lang, view], strict=False)]
                     if (mode, lang, view) in KNOWN else [])
        for mode in MODES for lang in LANGS for view in VIEWS]
ORDER = list(VIEWS)


class Walker:
    """One tab at 1024x768 that is on one page of one mode and language at a time."""

    def __init__(self, tab, base_url: str):
        self.tab, self.base_url, self.at = tab, base_url, None

    def open(self, mode: str, lang: str, view: str) -> None:
        i = ORDER.index(view)
        path, params = VIEWS[view]
        before, self.at = self.at, None  # known again once this page is open (a failed turn starts afresh)
        if before == (mode, lang, ORDER[i - 1]) and i > 0 and not params:
            sb.press_shortcut(self.tab, "n")  # the next page, in the same session
            self.tab.wait_for_url(re.compile(rf"/{path}(\?|$)"), timeout=sb.APP_TIMEOUT_MS)
            sb.wait_for_app_run(self.tab)
        else:
            sb.open_page(self.tab, self.base_url, path,
                         {"lang": lang, **({"mode": "lecture"} if mode == "lecture" else {}), **params})
        self.at = (mode, lang, view)
        if path:
            self.tab.locator(sb.PLOTLY).first.wait_for(state="visible", timeout=sb.APP_TIMEOUT_MS)
        self.tab.wait_for_function(CHARTS_LAID_OUT, timeout=sb.APP_TIMEOUT_MS)
        sb.settle_frames(self.tab)


@pytest.fixture(scope="module")
def walker(browser, app_url):
    context = browser.new_context(viewport=PROJECTOR)
    tab = sb.new_tab(context)
    try:
        yield Walker(tab, app_url)
    finally:
        context.close()


@pytest.mark.parametrize(("mode", "lang", "view"), WALK)
def test_page_is_readable_on_a_projector(walker, mode, lang, view):
    offset = sb.log_size()
    walker.open(mode, lang, view)
    tab = walker.tab
    sb.SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    tab.screenshot(path=str(sb.SCREENSHOTS / f"walk-{mode}-{lang}-{view}.png"))
    problems = tab.evaluate(PROBLEMS, mode == "lecture")
    assert problems == [], f"{view} ({mode}, {lang}) at 1024x768: {tab.url}\n" + "\n".join(problems)
    sb.assert_clean(tab, offset)

"""The unrolled page and Play in a real browser at a projector's 1024x768: in English and Chinese no chart title,
axis title or panel title leaves its chart; Play walks the step along the chain (the URL's ?t= moves on); a click on
a column of the chain selects its step; and Play beside Inside's checkpoint slider walks the epochs.

Screenshots: artifacts/screenshots/unrolled-{en,zh}-1024x768.png. Every wait is for a state in the page or the URL,
with st_browser.APP_TIMEOUT_MS.
"""
import re

import pytest
from playwright.sync_api import expect

from tests.browser import st_browser as sb

PROJECTOR = {"width": 1024, "height": 768}

# Every chart drawn at the width its container gives it (titles measured before would be at another width).
LAID_OUT = """() => [...document.querySelectorAll('.js-plotly-plot')].every(gd =>
  gd._fullLayout && gd.querySelector('.main-svg') && Math.abs(gd._fullLayout.width - gd.clientWidth) < 2)"""

# Titles (figure, axes, colour bars, panel titles drawn as annotations) that reach past their chart's drawing.
CUT_TITLES = """() => {
  const out = [];
  for (const gd of document.querySelectorAll('.js-plotly-plot')) {
    const box = gd.querySelector('.main-svg')?.getBoundingClientRect();
    if (!box) continue;
    for (const e of gd.querySelectorAll('.gtitle, .g-xtitle text, .g-ytitle text, [class^="g-x"][class$="title"] text, '
                                        + '[class^="g-y"][class$="title"] text, .cbtitle text, .annotation-text')) {
      const r = e.getBoundingClientRect();
      if (!e.textContent.trim() || !r.width || !r.height) continue;
      if (r.left < box.left - 1 || r.right > box.right + 1 || r.top < box.top - 1 || r.bottom > box.bottom + 1)
        out.push(`"${e.textContent.trim().slice(0, 40)}" ${Math.round(r.left)}..${Math.round(r.right)} x ` +
                 `${Math.round(r.top)}..${Math.round(r.bottom)} outside ${Math.round(box.left)}..` +
                 `${Math.round(box.right)} x ${Math.round(box.top)}..${Math.round(box.bottom)}`);
    }
  }
  return out;
}"""

# Pairs of a chart's heatmap cell numbers that overlap (a number wider than its cell).
OVERLAPPING_NUMBERS = """() => {
  const out = [];
  for (const gd of document.querySelectorAll('.js-plotly-plot')) {
    const cells = [...gd.querySelectorAll('.heatmaplayer text, .hm text')].filter(e => e.textContent.trim())
      .map(e => [e.textContent.trim(), e.getBoundingClientRect()]).filter(([, r]) => r.width && r.height);
    for (let i = 0; i < cells.length; i++) for (let j = i + 1; j < cells.length; j++) {
      const [a, r] = cells[i], [b, q] = cells[j];
      if (r.left < q.right - 1 && q.left < r.right - 1 && r.top < q.bottom - 1 && q.top < r.bottom - 1)
        return [`${a} / ${b}`];
    }
  }
  return out;
}"""

# Inside's p(next) token labels: [text, font size px, rotated, left, right] each.
TOKEN_LABELS = r"""() => [...document.querySelectorAll('.st-key-inside_steps .js-plotly-plot .x2tick text')]
  .map(e => { const r = e.getBoundingClientRect();
    return [e.textContent, parseFloat(getComputedStyle(e).fontSize),
            /rotate\((?!0)/.test(e.getAttribute('transform') || ''),
            r.left, r.right]; })"""

# The step slider's value is the URL's ?t= (a frame of Play in flight when Pause was pressed has landed).
SLIDER_IS_URL = """() => document.querySelector('.st-key-t input[type=range]')?.value ===
  new URLSearchParams(location.search).get('t')"""

# The page's pixel of a point (x, y) of a chart's data, in the chart found by its element key.
POINT_PX = """([key, x, y]) => {
  const gd = document.querySelector(`.st-key-${key} .js-plotly-plot`);
  const xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis, r = gd.getBoundingClientRect();
  return [r.left + xa._offset + xa.l2p(x), r.top + ya._offset + ya.l2p(y)];
}"""


@pytest.fixture(scope="module")
def projector(browser, app_url):
    context = browser.new_context(viewport=PROJECTOR)
    tab = sb.new_tab(context)
    try:
        yield tab
    finally:
        context.close()


def url_step(tab) -> str | None:
    match = re.search(r"[?&]t=(\d+)", tab.url)
    return match[1] if match else None


def open_laid_out(tab, app_url: str, path: str, params: dict) -> None:
    sb.open_page(tab, app_url, path, params)
    tab.locator(sb.PLOTLY).first.wait_for(state="visible", timeout=sb.APP_TIMEOUT_MS)
    tab.wait_for_function(LAID_OUT, timeout=sb.APP_TIMEOUT_MS)
    sb.settle_frames(tab)


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_the_unrolled_page_at_1024x768_plays_and_takes_a_click(projector, app_url, lang):
    tab, offset = projector, sb.log_size()
    open_laid_out(tab, app_url, "unrolled", {"lang": lang})
    sb.SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    tab.screenshot(path=str(sb.SCREENSHOTS / f"unrolled-{lang}-1024x768.png"))
    assert tab.evaluate(CUT_TITLES) == [], f"/unrolled?lang={lang}: titles cut at 1024x768"
    assert tab.evaluate(OVERLAPPING_NUMBERS) == [], f"/unrolled?lang={lang}: cell numbers overlap at 1024x768"
    sb.assert_clean(tab, offset)
    assert url_step(tab) is None  # step 1, the slider's default

    # a click on the third column's token box selects step 3 (chain_figure: column s's box is at x = 3.75 (s-1) + 1.5)
    tab.evaluate("() => document.querySelector('.st-key-unrolled_chain').scrollIntoView({block: 'center'})")
    sb.settle_frames(tab)
    x, y = tab.evaluate(POINT_PX, ["unrolled_chain", 3.75 * 2 + 1.5, 2.0])
    tab.mouse.click(x, y)
    tab.wait_for_url(re.compile(r"[?&]t=3(&|$)"), timeout=sb.APP_TIMEOUT_MS)
    sb.wait_for_app_run(tab)
    # the slider, moved in the chain's fragment, is not set back to the step the click kept
    thumb = tab.locator(".st-key-t").get_by_role("slider")
    thumb.focus()
    thumb.press("ArrowRight")
    tab.wait_for_url(re.compile(r"[?&]t=4(&|$)"), timeout=sb.APP_TIMEOUT_MS)
    sb.wait_for_app_run(tab)
    expect(thumb).to_have_value("4")

    play = tab.locator(".st-key-unrolled_play_button button:visible").first  # (a hidden copy measures its width)
    play.click()
    tab.wait_for_url(re.compile(r"[?&]t=5(&|$)"), timeout=sb.APP_TIMEOUT_MS)  # the next step, by the timer
    play.click()  # Pause: the step stays where it is, the same in the slider and the URL
    sb.wait_for_app_run(tab)
    tab.wait_for_function(SLIDER_IS_URL, timeout=sb.APP_TIMEOUT_MS)
    assert int(url_step(tab)) >= 5
    sb.assert_clean(tab, offset)


def test_play_on_inside_walks_the_checkpoints(projector, app_url):
    tab, offset = projector, sb.log_size()
    sb.open_page(tab, app_url, "inside", {"model": "reference"})
    assert "epoch=" not in tab.url  # the last checkpoint, the scrubber's default
    tab.locator(".st-key-epoch_play_button button:visible").first.click(timeout=sb.APP_TIMEOUT_MS)
    # Play on the last checkpoint starts from the first, then the timer shows the next: 1, 2, ...
    tab.wait_for_url(re.compile(r"[?&]epoch=2(&|$)"), timeout=sb.APP_TIMEOUT_MS)
    tab.locator(".st-key-epoch_play_button button:visible").first.click()  # Pause
    sb.wait_for_app_run(tab)
    sb.assert_clean(tab, offset)


@pytest.mark.parametrize("mode, smallest", [("lecture", 16), ("lab", 12)])
def test_inside_labels_p_next_upright_and_apart(projector, app_url, mode, smallest):
    tab, offset = projector, sb.log_size()
    sb.open_page(tab, app_url, "inside", {"mode": mode, "t": 3})
    tab.locator(".st-key-inside_steps .js-plotly-plot .x2tick text").first.wait_for(timeout=sb.APP_TIMEOUT_MS)
    tab.wait_for_function(LAID_OUT.replace(".js-plotly-plot", ".st-key-inside_steps .js-plotly-plot"),
                          timeout=sb.APP_TIMEOUT_MS)  # the Steps chart (the other tabs' charts are not shown)
    sb.scroll_to(tab.locator(".st-key-inside_steps"))
    sb.settle_frames(tab)
    tab.screenshot(path=str(sb.SCREENSHOTS / f"inside-{mode}-steps-1024x768.png"))
    labels = tab.evaluate(TOKEN_LABELS)
    assert len(labels) >= 20 and all(size >= smallest and not rotated for _, size, rotated, _, _ in labels), labels
    edges = sorted((left, right, text) for text, _, _, left, right in labels)
    assert all(a[1] <= b[0] + 1 for a, b in zip(edges, edges[1:])), f"p(next) labels overlap: {edges}"
    sb.assert_clean(tab, offset)

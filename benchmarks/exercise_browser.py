"""The Exercises page in Chromium at its own sizes: pairs run from their URLs to their end, read in both languages.

    python -m benchmarks.exercise_browser                     # clipping and ReLU pairs, seed 0, en then zh
    python -m benchmarks.exercise_browser --pairs clip/off --seed 3 --sizes hidden=32,epochs=20

A server of its own (``streamlit run dashboard/Home.py``, a fresh run store, ``$RNN_LAB_EXERCISE_SIZES`` as
``--sizes`` gives it: empty is the page's defaults) and Debian's Chromium at a projector's 1024x768. For each pair:
open ``/exercises?exercise=&variation=&seed=`` in English, predict, press Run the pair, wait for "Both runs
finished"; then the same URL in Chinese, in lab and lecture mode (the pair is finished: it reopens). Prints, per
view, the answer under the curves, the time the pair took, the smallest tick font of the charts and whether a
legend covers a title, and fails on an exception box, a server traceback or a JavaScript error.
Screenshots: ``artifacts/screenshots/exercise-<pair>-<lang>-<mode>.png``; rows: ``artifacts/exercise_browser.json``.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import tempfile
import time

from tests.browser import st_browser as sb

from dashboard import exercises as ex

PROJECTOR = {"width": 1024, "height": 768}

# Per chart: the smallest tick label's font size (px) and whether a legend box overlaps a title or subplot title.
CHART_CHECK = """() => [...document.querySelectorAll('.js-plotly-plot')].map(gd => {
  const px = [...gd.querySelectorAll('.xtick text, .ytick text')].map(e => parseFloat(getComputedStyle(e).fontSize));
  const titles = [...gd.querySelectorAll('.gtitle, .annotation-text, .g-xtitle text, .g-ytitle text')]
    .map(e => e.getBoundingClientRect()).filter(r => r.width > 0);
  const over = [...gd.querySelectorAll('.legend .bg')].map(e => e.getBoundingClientRect()).some(l =>
    titles.some(r => l.left < r.right - 1 && r.left < l.right - 1 && l.top < r.bottom - 1 && r.top < l.bottom - 1));
  return {ticks_px: px.length ? Math.min(...px) : null, legend_over_title: over};
})"""


def answer_text(page, lang: str) -> str:
    """The answer under the curves: the markdown that starts with the card's "What the numbers say"."""
    head = ex.tr("card.answer", lang)
    return page.locator("[data-testid='stMarkdownContainer']").filter(has_text=head).first.inner_text()


def look(page, base: str, pair: str, seed: int, lang: str, mode: str, offset: int) -> dict:
    """Open the pair's URL in ``lang`` and ``mode``; what it shows (the pair is finished by now)."""
    exercise, variation = pair.split("/")
    params = {"exercise": exercise, "variation": variation, "seed": seed, "lang": lang,
              **({"mode": "lecture"} if mode == "lecture" else {})}
    seconds = sb.open_page(page, base, "exercises", params)
    finished = page.get_by_text(ex.tr("card.done", lang)[:30], exact=False).first
    finished.wait_for(timeout=sb.APP_TIMEOUT_MS)
    page.locator(sb.PLOTLY).nth(1).wait_for(timeout=sb.APP_TIMEOUT_MS)  # the minibatch chart
    sb.settle_frames(page)
    text = answer_text(page, lang)
    sb.scroll_to(page.get_by_text(ex.tr("card.answer", lang)).first)
    page.screenshot(path=str(sb.SCREENSHOTS / f"exercise-{exercise}-{variation}-{lang}-{mode}.png"))
    charts = page.evaluate(CHART_CHECK)
    minibatches = page.locator("[data-testid='stPlotlyChart']").nth(1)
    minibatches.scroll_into_view_if_needed()
    minibatches.screenshot(path=str(sb.SCREENSHOTS / f"exercise-{exercise}-{variation}-{lang}-{mode}-minibatches.png"))
    sb.assert_clean(page, offset)
    return {"pair": pair, "seed": seed, "lang": lang, "mode": mode, "open_s": round(seconds, 2), "answer": text,
            "charts": charts}


def run_pair(page, base: str, pair: str, seed: int, offset: int, timeout_s: float) -> dict:
    """In English: predict, press Run the pair, wait for both runs to end; the seconds it took and the answer."""
    exercise, variation = pair.split("/")
    sb.open_page(page, base, "exercises", {"exercise": exercise, "variation": variation, "seed": seed})
    e = ex.EXERCISES[exercise]
    v = e.variation(variation)
    choice = ex.GUESS_CHOICES[ex.guess_kind(e, v)][0]
    page.get_by_text(ex.guess_choice(e, v, choice, "en"), exact=True).first.click()  # predict first
    sb.wait_for_app_run(page)
    button = page.get_by_role("button", name=re.compile(r"Run the pair", re.I)).first
    button.wait_for()
    t0 = time.perf_counter()
    button.click()
    page.get_by_text("Both runs finished", exact=False).first.wait_for(timeout=timeout_s * 1000)
    seconds = time.perf_counter() - t0
    sb.wait_for_app_run(page)
    reveal = page.locator("[data-testid='stAlert']").filter(has_text="You predicted").first.inner_text()
    sb.assert_clean(page, offset)
    return {"pair": pair, "seed": seed, "pair_s": round(seconds, 1), "predicted": choice, "reveal": reveal,
            "answer": answer_text(page, "en")}


# In lecture mode: the font size (px) of the exercise select's text and of every input's text on the page.
INPUT_PX = """() => {
  const px = e => parseFloat(getComputedStyle(e).fontSize);
  const shown = e => e.offsetParent !== null && e.getBoundingClientRect().width > 0;
  const main = "[data-testid='stMain'] ";
  const select = [...document.querySelectorAll(main + "[data-testid='stSelectbox'] input")].filter(shown);  // the exercise
  const inputs = [...document.querySelectorAll(main + "input:not([type='radio']):not([type='checkbox']), " +
                                               main + "textarea")].filter(shown);
  return {select_px: select.length ? Math.min(...select.map(px)) : null,
          inputs_px: inputs.length ? Math.min(...inputs.map(px)) : null};
}"""


def step_check(page, base: str, lang: str, offset: int) -> dict:
    """Step mode in lecture mode: one minibatch, then θ switched off: the page says it started again."""
    sb.open_page(page, base, "exercises", {"lang": lang, "mode": "lecture"})
    page.get_by_role("combobox", name=ex.tr("page.exercise", lang)).first.wait_for()
    sb.wait_for_app_run(page)
    sb.settle_frames(page)
    sizes = page.evaluate(INPUT_PX)
    one = page.get_by_role("button", name=ex.tr("step.one", lang), exact=True).first
    one.scroll_into_view_if_needed()
    one.click()
    sb.wait_for_app_run(page)
    page.get_by_text(ex.tr("step.where", lang, epoch=1, batch=1, n=0).split(",")[0].split("，")[0]).first.wait_for()
    page.locator("[data-testid='stRadio']").filter(has_text="θ").get_by_text(ex.tr("step.clip_off", lang)).first.click()
    sb.wait_for_app_run(page)
    notice = page.locator("[data-testid='stAlert']").filter(has_text="θ").first
    notice.wait_for()
    text = notice.inner_text()
    notice.scroll_into_view_if_needed()
    page.screenshot(path=str(sb.SCREENSHOTS / f"exercise-step-restart-{lang}-lecture.png"))
    sb.assert_clean(page, offset)
    return {"step_mode": lang, "restart_notice": text, **sizes}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", default="clip/off,relu/relu")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sizes", default="", help="RNN_LAB_EXERCISE_SIZES for the server (empty: the defaults)")
    parser.add_argument("--timeout", type=float, default=1200, help="seconds a pair may take")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    sb.ARTIFACTS.mkdir(exist_ok=True)
    sb.SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if k != ex.SIZES_ENV}
    rows = []
    with tempfile.TemporaryDirectory() as runs, open(sb.SERVER_LOG, "w") as log, sync_playwright() as p:
        os.environ.clear()
        os.environ.update({**env, "RNN_LAB_RUNS": runs, **({ex.SIZES_ENV: args.sizes} if args.sizes else {})})
        port = sb.free_port()
        base = f"http://127.0.0.1:{port}"
        proc = sb.start_server(port, log)
        try:
            sb.wait_healthy(proc, base)
            browser = p.chromium.launch(executable_path=sb.chromium_path(), args=sb.CHROMIUM_ARGS)
            context = browser.new_context(viewport=PROJECTOR)
            for pair in filter(None, args.pairs.split(",")):
                page = sb.new_tab(context)
                offset = sb.log_size()
                row = run_pair(page, base, pair, args.seed, offset, args.timeout)
                print(json.dumps(row, ensure_ascii=False), flush=True)
                rows.append(row)
                for lang in ("en", "zh"):
                    for mode in ("lab", "lecture"):
                        row = look(page, base, pair, args.seed, lang, mode, offset)
                        print(json.dumps(row, ensure_ascii=False), flush=True)
                        rows.append(row)
                page.close()
            for lang in ("en", "zh"):
                page = sb.new_tab(context)
                row = step_check(page, base, lang, sb.log_size())
                print(json.dumps(row, ensure_ascii=False), flush=True)
                rows.append(row)
                page.close()
            browser.close()
        finally:
            sb.stop_server(proc)
    (sb.ARTIFACTS / "exercise_browser.json").write_text(json.dumps(rows, ensure_ascii=False, indent=1))


if __name__ == "__main__":
    main()

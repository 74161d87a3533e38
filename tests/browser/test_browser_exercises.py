"""The Exercises page in the browser: "without clipping" runs its pair to the end while the page stays open
(at the small sizes the browser tests' server sets), and the answer under the curves is drawn from the pair's
numbers."""
import re

from playwright.sync_api import expect

from tests.browser import st_browser as sb


def test_the_clipping_pair_trains_to_the_end_and_answers(page, app_url):
    offset = sb.log_size()
    sb.SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    sb.open_page(page, app_url, "exercises", {"exercise": "clip", "seed": 11})
    expect(page.get_by_text("without clipping the gradient", exact=False).first).to_be_visible()
    run = page.get_by_role("button", name=re.compile(r"Run the pair", re.I)).first
    expect(run).to_be_enabled()
    run.click()
    expect(page.get_by_text("Both runs finished", exact=False).first).to_be_visible(timeout=3 * sb.APP_TIMEOUT_MS)  # the pair trains
    answer = page.get_by_text("What the numbers say", exact=False).first
    expect(answer).to_be_visible()
    text = page.locator("[data-testid='stMarkdownContainer']").filter(has_text="What the numbers say").first.inner_text()
    assert "B (no clipping)" in text and "A (θ = 1) reached perplexity" in text, text
    sb.scroll_to(answer)
    page.screenshot(path=str(sb.SCREENSHOTS / "exercises-clip.png"))
    sb.assert_clean(page, offset)

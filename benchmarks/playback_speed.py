"""How long a frame of Play through training takes: ``python -m benchmarks.playback_speed [--threads N]``.

For the Inside, Generate and unrolled pages, Play is pressed and the page is run once a frame (AppTest, as the
timer runs it) through the lesson's reference run's checkpoints (epochs 1, 2, 5, ..., 500; the unrolled page's
tiny model: 1 ... 200). Each frame's seconds are the page's whole script run on the server: the checkpoint read,
every number and every figure of that page. Cold: the first pass, after the caches were emptied; warm: a second
pass, from a new session, when every frame was shown once (the caches are keyed by run id and epoch). The
browser's drawing is not counted. Printed, never asserted.
"""
from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import streamlit as st
import torch
from streamlit.testing.v1 import AppTest

APP = str(Path(__file__).resolve().parents[1] / "dashboard" / "Home.py")
PAGES = {"inside": "views/inside.py", "generate": "views/generate.py", "unrolled": "views/unrolled.py"}


def play_through(page: str) -> list[tuple[int, float]]:
    """(epoch, seconds) of each frame while the page plays from its first checkpoint to its last."""
    at = AppTest.from_file(APP, default_timeout=300)
    at.run()
    at.switch_page(PAGES[page]).run()
    assert not at.exception, [e.value for e in at.exception]
    start = time.perf_counter()
    at.button(key="epoch_play_button").click().run()  # on the last checkpoint: from the first again
    frames = [(at.select_slider(key="epoch").value, time.perf_counter() - start)]
    while at.session_state["epoch_play"]:
        start = time.perf_counter()
        at.run()  # what the timer does once a frame
        frames.append((at.select_slider(key="epoch").value, time.perf_counter() - start))
        assert not at.exception, [e.value for e in at.exception]
    return frames


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pages", nargs="*", help="pages to time: inside, generate, unrolled (default: all three)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's own)")
    args = parser.parse_args()
    if set(args.pages) - set(PAGES):
        parser.error(f"pages are {', '.join(PAGES)}")
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch threads {torch.get_num_threads()}")
    for page in args.pages or PAGES:
        st.cache_data.clear()
        st.cache_resource.clear()
        cold = play_through(page)
        warm = play_through(page)
        print(f"\n{page}: epoch  cold s  warm s")
        for (epoch, c), (_, w) in zip(cold, warm):
            print(f"  {epoch:>11}  {c:6.2f}  {w:6.2f}")
        print(f"  {'median':>11}  {statistics.median(c for _, c in cold):6.2f}  "
              f"{statistics.median(w for _, w in warm):6.2f}   max {max(c for _, c in cold):.2f} / "
              f"{max(w for _, w in warm):.2f}")


if __name__ == "__main__":
    main()

"""RNN Lab: ``streamlit run dashboard/Home.py``. Page config, the shared sidebar, navigation over views/.

``streamlit run`` imports this file once to find ``app`` (an ``st.App``), then runs it as the script of
every session. The App's start-up hook imports torch and the compute package in the background while the
browser loads Streamlit's frontend, so the first visitor does not wait ~2 s for ``import torch``.
"""
import logging
import sys
from contextlib import asynccontextmanager
from pathlib import Path

import streamlit as st
from streamlit.runtime.scriptrunner import get_script_run_ctx

# Streamlit puts dashboard/ on sys.path; the repository root holds rnn_core and the dashboard package.
ROOT = str(Path(__file__).resolve().parent.parent)
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)


@asynccontextmanager
async def warm_up(_app):
    """Server start: import what every session's first run needs, in a thread (the server answers meanwhile)."""
    import threading

    from dashboard import fragment_reruns

    fragment_reruns.install()  # a fragment's timed rerun no longer drops the full run just before it

    def imports():
        try:
            from dashboard import compute, sidebar  # noqa: F401  (torch, pandas, rnn_core: ~2 s on 2 cores)

            compute.warm_up()
        except Exception:  # noqa: BLE001  a failed warm-up only costs time: the session's run says what is wrong
            logging.getLogger("rnn_lab").exception("warm-up failed")

    threading.Thread(target=imports, name="rnn-lab-warm-up", daemon=True).start()
    yield


def environment_problems(page: str) -> None:
    """A warning line per RNN_LAB_* variable that cannot be used (rnn_core.environment), in the page's language:
    on every run of the page the session opened first (a bad link value makes that page run twice, and the
    second run must say it too), and on Home whenever it is shown."""
    from dashboard import i18n
    from rnn_core import environment

    if "_environment_problems" not in st.session_state:
        st.session_state["_environment_problems"] = (page, environment.problems())
    first_page, problems = st.session_state["_environment_problems"]
    if page == first_page or not page:
        for problem in problems:
            st.warning(i18n.error_text(problem), icon=":material/warning:")


def main() -> None:
    """One session's run: page config, navigation, the shared sidebar, the chosen page."""
    from dashboard import layout, pages, playback, settings, sidebar

    # An emoji icon is drawn by the browser from an inline SVG; a :material: icon is fetched from a font CDN.
    st.set_page_config(page_title="RNN Lab", page_icon="🧠", layout="wide")
    settings.share_the_cpu()
    pages.language()  # before the navigation: page titles are in the run's language
    lecture = pages.lecture_mode()
    page = st.navigation(pages.pages(), position="top" if lecture else "sidebar")
    previous = st.session_state.get("_page")
    turned = previous != page.url_path
    if turned and previous is not None:  # a page turn leaves the last page's own parameters behind (the first
        pages.drop_foreign_params(page.url_path)  # page a link opens keeps all of its own)
    st.html(layout.STYLE + (layout.LECTURE_STYLE if lecture else ""))
    pages.toolbar(page.url_path)
    st.session_state[layout.PAGE_TURNED] = turned
    if turned:  # a page turn pauses the play through training
        st.session_state["_page"] = page.url_path
        st.session_state[playback.PLAY] = False
    environment_problems(page.url_path)
    sidebar.sidebar(live_run=page.url_path != "training", page=page.url_path, lecture=lecture)  # context() reads it
    page.run()


if get_script_run_ctx() is None:  # imported by `streamlit run` to serve the app, not run for a session
    app = st.App(__file__, lifespan=warm_up)
else:
    main()

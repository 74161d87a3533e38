"""RNN Lab: ``streamlit run dashboard/Home.py``. Page config, the shared sidebar, navigation over views/."""
import sys
from pathlib import Path

import streamlit as st

st.set_page_config(page_title="RNN Lab", page_icon=":material/neurology:", layout="wide")

# Streamlit puts dashboard/ on sys.path; the repository root holds rnn_core and the dashboard package.
ROOT = str(Path(__file__).resolve().parent.parent)
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from dashboard import lab, ui  # noqa: E402  (needs the path above)

lab.share_the_cpu()
page = st.navigation(ui.pages())
st.html(ui.STYLE)
ui.sidebar()
page.run()

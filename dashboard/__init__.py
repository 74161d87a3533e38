"""RNN Lab's Streamlit dashboard: ``streamlit run dashboard/Home.py`` (UI only; the lesson is in rnn_core)."""

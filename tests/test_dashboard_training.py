"""AppTest: a short training run draws a curve, Stop halts it, and Inside/Generate use the trained model."""
import json
from pathlib import Path

import pytest
import torch
from streamlit.testing.v1 import AppTest

APP = str(Path(__file__).resolve().parents[1] / "dashboard" / "Home.py")
SHORT = {"hidden": "16", "epochs": "3", "batch": "32", "steps": "35"}


@pytest.fixture(autouse=True, scope="module")
def _restore_torch_threads():
    """The app sets torch's thread count for the process (AppTest runs in it): give it back afterwards."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def training_page(**query) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60)
    at.query_params.update(query)
    at.run()
    return at.switch_page("views/training.py").run()


def curve_points(at: AppTest) -> int:
    """Epochs drawn on the loss curve (the first trace of the training chart)."""
    spec = json.loads(at.get("plotly_chart")[0].proto.spec)
    return len(spec["data"][0]["x"])


def run_until_done(at: AppTest, max_runs: int = 40) -> AppTest:
    """Each script run trains one time-budgeted chunk, as a fragment run does in the browser."""
    for _ in range(max_runs):
        if not at.session_state["training_run"].running:
            break
        at.run()
    return at


def test_short_training_draws_a_curve_and_feeds_inside_and_generate():
    at = training_page(**SHORT)
    assert curve_points(at) == 0
    at.button(key="start_training").click().run()
    assert not at.exception, [e.value for e in at.exception]
    run = run_until_done(at).session_state["training_run"]
    assert run.status == "done" and run.epoch == 3
    assert curve_points(at) == 3
    assert at.get("progress")[0].value == 100
    metrics = {m.label: m.value for m in at.metric}
    assert float(metrics["Perplexity"]) > 1 and float(metrics["Tokens/s"].replace(",", "")) > 0
    assert run.settings.engine in metrics["Device · engine"]
    assert len(at.code) >= 1  # a sample generated from the prefix

    at.switch_page("views/inside.py").run()
    assert not at.exception
    assert "Trained model of this session: 3 epochs" in at.success[0].value
    assert not any("UNTRAINED" in w.value for w in at.warning)
    assert at.slider(key="inside_unit").max == 15  # the trained model's 16 hidden units

    at.switch_page("views/generate.py").run()
    assert not at.exception
    assert "Trained model" in at.success[0].value


def test_stop_halts_training_and_start_offers_continue_or_restart():
    # progress counts the epoch in progress too: a script run trains a time-budgeted chunk, which on a
    # busy machine may end mid-epoch
    at = training_page(**{**SHORT, "epochs": "400", "hidden": "32"})
    at.button(key="start_training").click().run()
    run = at.session_state["training_run"]
    assert 0 < run.progress < 1
    at.button(key="stop_training").click().run()
    stopped_at = run.progress
    assert run.status == "stopped"
    at.run().run()
    assert run.progress == stopped_at  # nothing trains while stopped
    at.button(key="start_training").click().run()
    assert run.progress == stopped_at and run.status == "stopped"  # Start asks first
    at.button(key="continue_run").click().run()
    assert at.session_state["training_run"] is run and run.progress > stopped_at  # continued, same model
    at.button(key="stop_training").click().run()
    at.button(key="start_training").click().run()
    at.button(key="restart_run").click().run()
    fresh = at.session_state["training_run"]
    assert fresh is not run and fresh.net is not run.net and fresh.running  # a new model from scratch
    at.button(key="stop_training").click().run()
    assert not at.exception


def test_divergence_is_explained_and_keeps_the_last_finite_curve():
    # lr 100 (the sidebar's largest) with theta 1000: at 256 hidden units every seed tried (0-5, both fast-engine
    # paths) blows up in the first epoch; at 16 the epoch it happens in is chaotic (float rounding decides)
    at = training_page(**{**SHORT, "hidden": "256", "epochs": "5", "lr": "100", "clip": "1000"})
    at.button(key="start_training").click().run()
    run_until_done(at)
    run = at.session_state["training_run"]
    assert not at.exception
    assert run.status == "diverged"
    assert any("non-finite" in e.value and "Lower the learning rate" in e.value for e in at.error)
    assert all(torch.isfinite(p).all() for p in run.net.params)
    assert curve_points(at) == run.epoch  # the finite epochs stay on the curve


def test_out_of_memory_offers_the_cpu(monkeypatch):
    import rnn_core

    at = training_page(**{**SHORT, "epochs": "50"})
    real = rnn_core.Trainer.train_for
    calls = {"n": 0}

    def oom_once(self, budget_s):
        calls["n"] += 1
        if calls["n"] == 2:  # the second chunk: as if the GPU ran out of memory mid-run
            raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
        return real(self, budget_s)

    monkeypatch.setattr(rnn_core.Trainer, "train_for", oom_once)
    at.button(key="start_training").click().run()
    at.run()
    run = at.session_state["training_run"]
    assert run.status == "out_of_memory" and not at.exception
    assert any("ran out of memory" in e.value for e in at.error)
    kept = run.epoch
    at.button(key="oom_to_cpu").click().run()
    run = at.session_state["training_run"]
    assert run.net.device.type == "cpu" and run.running
    run_until_done(at, max_runs=5)
    assert run.epoch > kept and not at.exception

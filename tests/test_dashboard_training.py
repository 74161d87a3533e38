"""AppTest: runs train in the background whatever page is open, Stop / Continue / Restart, a reload with
?run= reopens a run, checkpoints download and upload, divergence is flagged, and Inside / Generate show
the model chosen (this session's run, the reference run, untrained) at the checkpoint chosen."""
import json
import time
from pathlib import Path

import pytest
import torch
from streamlit.testing.v1 import AppTest

from dashboard import compute, formatting, runs, training_page
from rnn_core.runs import RunRegistry, RunStore, Scheduler
from tests.plotly_json import values
from tests.test_dashboard_pages import open_app
from tests.waiting import until

APP = str(Path(__file__).resolve().parents[1] / "dashboard" / "Home.py")
SHORT = {"hidden": "16", "epochs": "3", "batch": "32", "steps": "35"}


def open_page(page: str = "training", **query) -> AppTest:
    return open_app(page, **query)


def current_run(at: AppTest):
    return runs.registry().get(at.session_state["run_id"])


def curve_points(at: AppTest) -> int:
    """Epochs drawn on the loss curve (the first trace of the training chart)."""
    spec = json.loads(at.get("plotly_chart")[0].proto.spec)
    return len(values(spec["data"][0]["x"]))


def texts(elements) -> str:
    return "\n".join(str(e.value) for e in elements)


def test_short_training_draws_a_curve_and_feeds_inside_and_generate():
    at = open_page(**SHORT)
    reference = training_page.reference_run()
    assert curve_points(at) == (reference.epoch if reference else 0)  # the reference run's curves until Start
    at.button(key="start_training").click().run()
    assert not at.exception, [e.value for e in at.exception]
    view = current_run(at).wait(60)
    assert view.status == "done" and view.epoch == 3
    at.run()
    assert curve_points(at) == 3
    assert at.get("progress")[0].value == 100
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Perplexity"] == f"{view.last['perplexity']:.2f}"  # the page shows the run's own record
    assert float(metrics["Tokens/s"].replace(",", "")) == pytest.approx(view.tokens_per_s, rel=0.01)
    line = texts(at.markdown) + texts(at.caption)  # the settings line is a caption under the live curves
    assert "This run:" in line and "16 hidden units" in line
    assert len(at.code) >= 1  # a sample generated from the prefix

    at.switch_page("views/inside.py").run()
    assert not at.exception
    assert "Trained model of this session: 3 epochs" in at.success[0].value
    assert not any("UNTRAINED" in w.value for w in at.warning)
    assert at.slider(key="inside_unit").max == 15  # the trained model's 16 hidden units

    at.switch_page("views/generate.py").run()
    assert not at.exception
    assert "Trained model" in at.success[0].value


def test_a_fresh_session_sees_the_reference_runs_curves_labelled_as_the_reference_run():
    reference = training_page.reference_run()
    if reference is None:
        pytest.skip("no reference run in data/reference/")
    view = reference.view()
    for lang, said in (("en", "the lesson's reference run"), ("zh", "课程的参考运行")):
        at = open_page(lang=lang)
        assert not at.exception and "run_id" not in at.session_state  # no run of its own: nothing shown as one
        spec = json.loads(at.get("plotly_chart")[0].proto.spec)
        assert values(spec["data"][0]["y"]) == view.frame()["loss"].tolist()  # the reference run's own records
        assert len(values(spec["data"][0]["x"])) == view.epoch == 500
        line = at.get("progress")[0].text  # the progress bar's line, right above the curves
        assert said in line and f"{view.epoch} " in line and formatting.fmt_ppl(view.last["perplexity"]) in line
        assert at.button(key="stop_training").disabled  # nothing trains


def test_the_training_pages_gradient_flow_sentence_states_the_runs_own_numbers():
    at = open_page(**{**SHORT, "epochs": "12", "hidden": "32"})
    at.button(key="start_training").click().run()
    view = current_run(at).wait(60)
    at.run()
    from rnn_core.gradflow import probe_summary

    run = current_run(at)
    assert view.checkpoints == (1, 2, 5, 10, 12)
    first, last = (probe_summary(run.checkpoint(e), *run.probe) for e in (1, 12))  # the first and last checkpoint
    text = texts(at.markdown)
    r0, r1 = (g["decay"][10] / g["decay"][0] for g in (first, last))
    assert (f"10 steps back, the gradient of a step's loss: at epoch 1 it was **{formatting.num(r0)}** of its size "
            f"at the step itself; at epoch 12 it is **{formatting.num(r1)}**.") in text
    assert (f"ρ went from {formatting.num(first['radius'], 3)} to {formatting.num(last['radius'], 3)} and its largest "
            f"singular value σ_max from {formatting.num(first['singular'][0], 3)} to "
            f"{formatting.num(last['singular'][0], 3)}") in text
    assert len(at.get("plotly_chart")) == 4  # curves, gradient norm, decay curves by epoch, spectrum


def test_training_goes_on_while_another_page_is_open_and_the_sidebar_shows_it():
    at = open_page(**{**SHORT, "epochs": "10000", "hidden": "24"})
    at.button(key="start_training").click().run()
    run = current_run(at)
    at.switch_page("views/data.py").run()
    before = run.epoch
    until(lambda: run.epoch >= before + 3)  # no script runs meanwhile: the run trains on its own
    at.run()
    assert "training in the background" in texts(at.sidebar.caption)
    runs.registry().scheduler.stop(run)  # the test's own clean-up, outside any session


def test_stop_holds_and_start_offers_continue_or_restart():
    at = open_page(**{**SHORT, "epochs": "10000", "hidden": "32"})
    at.button(key="start_training").click().run()
    run = current_run(at)
    until(lambda: run.epoch >= 1)
    at.button(key="stop_training").click().run()
    stopped = run.view()
    assert stopped.status == "stopped"
    time.sleep(0.3)
    assert run.view().records == stopped.records  # nothing trains while stopped
    at.button(key="start_training").click().run()
    assert run.view().status == "stopped"  # Start asks first
    at.button(key="continue_run").click().run()
    assert current_run(at) is run and run.running  # continued, same model
    until(lambda: run.epoch > stopped.epoch)
    at.button(key="stop_training").click().run()
    at.button(key="start_training").click().run()
    at.button(key="restart_run").click().run()
    fresh = current_run(at)
    assert fresh is not run and fresh.trainer.net is not run.trainer.net and fresh.running  # from scratch
    assert {run.id, fresh.id} <= set(at.session_state["run_ids"])  # both are this session's runs
    runs.registry().scheduler.stop(fresh)
    assert not at.exception


def test_two_runs_of_one_session_train_at_once_and_another_session_sees_neither():
    at = open_page(**{**SHORT, "epochs": "10000"})
    at.button(key="start_training").click().run()
    first = current_run(at)
    at.sidebar.slider(key="hidden").set_value(20).run()
    assert "20 (this run: 16)" in texts(at.info)  # the page says the sidebar's hidden size differs from the run's
    at.button(key="start_training").click().run()
    second = current_run(at)
    assert second is not first and first.running and second.running
    a, b = first.epoch, second.epoch
    until(lambda: first.epoch > a + 1 and second.epoch > b + 1)
    table = at.dataframe[-1].value if at.dataframe else None
    at.run()
    table = next(d.value for d in at.dataframe if "run" in d.value.columns)
    assert set(table["run"]) >= {first.id, second.id}
    other = open_page(**SHORT)
    assert "run_ids" not in other.session_state or not set(other.session_state["run_ids"]) & {first.id, second.id}
    assert not any(first.id in t or second.id in t for t in (texts(other.markdown), texts(other.caption)))
    runs.registry().scheduler.stop(first)
    runs.registry().scheduler.stop(second)


def test_a_reload_with_the_run_in_the_url_reopens_it_with_its_curves_and_checkpoints():
    at = open_page(**{**SHORT, "epochs": "12"})
    at.button(key="start_training").click().run()
    run = current_run(at)
    assert at.query_params["run"] == [run.id] or at.query_params["run"] == run.id
    view = run.wait(60)
    reloaded = open_page(**{**SHORT, "run": run.id})  # a new session, as after a reload or in a new tab
    assert reloaded.session_state["run_id"] == run.id
    assert curve_points(reloaded) == view.epoch == 12
    assert reloaded.selectbox(key="download_epoch").options == ["1", "2", "5", "10", "12"]
    inside = reloaded.switch_page("views/inside.py").run()
    assert not inside.exception
    assert inside.select_slider(key="epoch").options == ["1", "2", "5", "10", "12"]
    inside.select_slider(key="epoch").set_value(2).run()
    # the scrubber's epoch; a new session did not start the run, so it is shown as a shared one
    assert "A shared run (read only): 2 epochs" in inside.success[0].value


def test_a_checkpoint_file_uploads_as_a_run_and_a_bad_file_changes_nothing():
    at = open_page(**{**SHORT, "epochs": "5"})
    at.button(key="start_training").click().run()
    run = current_run(at)
    run.wait(60)
    data = run.checkpoint_bytes(5)
    other = open_page(**SHORT)
    other.file_uploader(key="upload_checkpoint").upload("bad.pt", b"not a checkpoint", "application/octet-stream")
    other.run()
    assert "bad.pt is not an RNN Lab checkpoint" in texts(other.error)
    assert "run_id" not in other.session_state
    other.file_uploader(key="upload_checkpoint").upload("good.pt", data, "application/octet-stream").run()
    assert not other.exception and not other.error
    loaded = current_run(other)
    assert loaded.id != run.id and loaded.view().checkpoints == (5,)
    assert torch.equal(loaded.checkpoint(5)["W_hh"], run.checkpoint(5)["W_hh"])
    inside = other.switch_page("views/inside.py").run()
    assert "5 epochs" in inside.success[0].value


def test_divergence_with_clipping_off_is_flagged_and_keeps_the_last_good_curve():
    at = open_page(**{**SHORT, "hidden": "64", "epochs": "30", "lr": "100", "clip": "off"})
    assert "no clipping" in texts(at.markdown) + texts(at.caption)  # the settings line under the curves
    at.button(key="start_training").click().run()
    view = current_run(at).wait(60)
    at.run()
    assert not at.exception
    assert view.status == "diverged"
    assert any("Lower the learning rate" in e.value for e in at.error)
    epoch, params = current_run(at).latest()
    assert epoch == view.good_epoch and all(torch.isfinite(p).all() for p in params.values())
    assert curve_points(at) == view.epoch


def test_a_bad_clip_value_in_the_url_is_named_and_the_lesson_value_used():
    at = AppTest.from_file(APP, default_timeout=60)  # the first run only: AppTest cannot re-send a typed option
    at.query_params.update({"clip": "-3"})
    at.run()
    said = [w for w in texts(at.warning).splitlines() if "-3" in w]  # wherever the page says it
    assert len(said) == 1 and ("θ = 1" in said[0] or "clip = 1" in said[0]), said
    assert at.session_state["lab_context"].settings.clip == 1.0  # and trains with the lesson's θ


class OutOfMemoryOnce(Scheduler):
    """The server's scheduler on a device that runs out of memory in the second chunk of training."""

    chunks = 0

    def start(self, run):
        train_for = run.trainer.train_for

        def count_chunk(budget_s):
            self.chunks += 1
            if self.chunks == 2:
                raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
            return train_for(budget_s)

        run.trainer.train_for = count_chunk
        super().start(run)


def test_out_of_memory_offers_the_cpu(tmp_path):
    runs.reset_registry(RunRegistry(RunStore(tmp_path, reference_root=None), OutOfMemoryOnce(threads=1)))
    at = open_page(**{**SHORT, "epochs": "50"})
    at.button(key="start_training").click().run()
    run = current_run(at)
    run.wait(60)
    at.run()
    assert run.status == "out_of_memory" and not at.exception
    assert any("ran out of memory" in e.value for e in at.error)
    kept = run.epoch
    at.button(key="oom_to_cpu").click().run()
    assert run.trainer.net.device.type == "cpu"
    assert run.wait(60).status == "done" and run.epoch == 50 > kept


def test_a_fresh_session_shows_the_reference_model_and_offers_untrained():
    at = open_page("inside")
    if not runs.registry().references():
        pytest.skip("no reference run in data/reference/")
    assert at.radio(key="model").value == "reference"
    assert "The lesson's reference run: 500 epochs" in at.success[0].value
    assert at.select_slider(key="epoch").options == ["1", "2", "5", "10", "20", "50", "100", "200", "500"]
    at.radio(key="model").set_value("untrained").run()
    assert "UNTRAINED" in texts(at.warning)
    linked = open_page("generate", model="untrained")  # a lecturer's link to the untrained model
    assert linked.radio(key="model").value == "untrained" and "UNTRAINED" in texts(linked.warning)


def test_the_reference_run_with_the_lessons_settings_is_not_said_to_differ_and_a_change_is_named():
    at = open_page(run="lesson")
    assert current_run(at).id == "lesson" and not at.exception
    assert not any("differ from this run" in str(i.value) for i in at.info)  # the settings hold the lesson's settings
    at.slider(key="hidden").set_value(256).run()
    said = [str(i.value) for i in at.info if "differ from this run" in str(i.value)]
    assert len(said) == 1 and "hidden units 256" in said[0] and "512" in said[0] and "corpus" not in said[0]


class _ProbeRun:
    """What compute.checkpoint_flows reads of a run: its id, probe minibatch, activation and checkpoints."""

    def __init__(self, epochs, h=8, V=5):
        gen = torch.Generator().manual_seed(0)
        self.id, self.read = f"probe-{id(self)}", []
        self.settings = type("S", (), {"activation": "tanh"})()
        self.probe = (torch.randint(0, V, (4, 6), generator=gen), torch.randint(0, V, (4, 6), generator=gen))
        self.params = {e: {"W_xh": torch.randn(V, h, generator=gen) * e, "W_hh": 0.1 * torch.randn(h, h, generator=gen),
                           "b_h": torch.zeros(h), "W_hq": torch.randn(h, V, generator=gen), "b_q": torch.zeros(V)}
                       for e in epochs}  # a model per checkpoint epoch

    def checkpoint(self, epoch):
        self.read.append(epoch)
        return self.params[epoch]


def test_a_training_runs_gradient_flows_come_one_new_checkpoint_per_script_run_in_epoch_order():
    run = _ProbeRun([1, 2, 5, 10])
    first = compute.checkpoint_flows(run, [1, 2, 5, 10], new_at_most=1)
    assert [f["epoch"] for f in first] == [1] and run.read == [1]
    second = compute.checkpoint_flows(run, [1, 2, 5, 10], new_at_most=1)
    assert [f["epoch"] for f in second] == [1, 2] and run.read == [1, 2]  # epoch 1 kept, not read again
    assert second[0] == first[0]
    every = compute.checkpoint_flows(run, [1, 2, 5, 10])  # a run no longer training: all of them at once
    assert [f["epoch"] for f in every] == [1, 2, 5, 10] and run.read == [1, 2, 5, 10]
    # each its own checkpoint's: the decay curves of models that differ are not one curve
    assert len({tuple(f["decay"]) for f in every}) == 4

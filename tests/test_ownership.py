"""AppTest: a run belongs to the session that started it. Two sessions of one server (AppTest runs the app in
this process, so both share its registry, as on one server): A starts a run, B opens A's ?run= link and sees
it read only, without Stop, and cannot stop it through dashboard.runs either; B trains a copy of its own; no
link carries the owner key; bad ?run=, ?epoch= and ?model= values, a removed checkpoint, a damaged run.json and
an uploaded checkpoint are each said in one sentence while the page goes on."""
import json
from contextlib import contextmanager

import pytest

from dashboard import runs
from tests.test_dashboard_pages import open_app
from tests.waiting import until

RUNNING = {"hidden": "16", "epochs": "10000", "batch": "32", "steps": "35"}  # trains on while the test looks
SHORT = {**RUNNING, "epochs": "12"}


def texts(elements) -> str:
    return "\n".join(str(e.value) for e in elements)


def shown_run(at):
    return runs.registry().get(at.session_state["run_id"])


def button_keys(at) -> set:
    return {b.key for b in at.button}


@contextmanager
def in_session(at):
    """Call dashboard.runs as ``at``'s session does (as its button callbacks would): outside a script run,
    Streamlit's st.session_state is one module-level state, swapped here for that session's."""
    from streamlit.runtime.state import session_state_proxy

    saved = session_state_proxy._mock_session_state
    session_state_proxy._mock_session_state = at._session_state
    try:
        yield
    finally:
        session_state_proxy._mock_session_state = saved


def start(**query):
    """A session on the Training page that has started a run; (session, run)."""
    at = open_app("training", **query)
    at.button(key="start_training").click().run()
    assert not at.exception, [e.value for e in at.exception]
    return at, shown_run(at)


def test_another_session_sees_the_run_read_only_and_cannot_stop_it():
    a, run = start(**RUNNING)
    until(lambda: run.epoch >= 1)
    assert "stop_training" in button_keys(a) and not a.button(key="stop_training").disabled

    b = open_app("training", **RUNNING, run=run.id)  # A's link, opened in another browser
    assert not b.exception
    assert b.session_state["run_id"] == run.id
    assert "A shared run, read only." in texts(b.info) and run.id in texts(b.info)
    assert "stop_training" not in button_keys(b) and "Stop" not in [x.label for x in b.button]
    assert "train_copy" in button_keys(b)
    assert run.id not in (b.session_state.get("run_ids") or [])  # not listed as B's

    with in_session(a):
        assert runs.owns(run)  # the check below can fail: the same call in A's session is allowed
    with in_session(b):
        assert not runs.owns(run)
        for command in (runs.stop, runs.resume, runs.continue_on_cpu):
            with pytest.raises(runs.NotOwnerError):
                command(run)
    with pytest.raises(runs.NotOwnerError):
        runs.stop(run)  # no session at all
    b.run()  # B's page again after the attempts, and Start there: a run of B's own, A's untouched
    assert run.running
    before = run.epoch
    until(lambda: run.epoch >= before + 2)  # A's run still trains
    assert run.running and a.button(key="stop_training") is not None

    b.switch_page("views/inside.py").run()  # Inside and the sidebar say whose the model is
    assert not b.exception
    assert "A shared run (read only):" in b.success[0].value and "this session" not in b.success[0].value
    b.switch_page("views/data.py").run()
    assert "A shared run (read only):" in texts(b.sidebar.caption)

    a.button(key="stop_training").click().run()  # the owner still can
    assert run.status == "stopped"


def test_train_my_own_copy_starts_a_run_of_this_session_with_the_same_settings():
    a, run = start(**{**RUNNING, "lr": "2", "seed": "3", "partition": "random"})
    b = open_app("training", run=run.id)  # the lesson's sidebar (512 hidden units): the copy takes the run's
    assert "A shared run, read only." in texts(b.info)
    b.button(key="train_copy").click().run()
    assert not b.exception and not b.error, texts(b.error)
    copy = shown_run(b)
    assert copy is not run and copy.running
    assert copy.settings == run.settings  # hidden 16, lr 2, seed 3, random partitioning, the corpus by key
    assert copy.vocab.idx_to_token == run.vocab.idx_to_token
    assert b.session_state["run_ids"] == [copy.id]
    assert b.query_params["run"] in (copy.id, [copy.id])
    assert "stop_training" in button_keys(b) and "A shared run, read only." not in texts(b.info)
    with in_session(b):
        assert runs.owns(copy) and not runs.owns(run)
    with in_session(a):
        assert runs.owns(run) and not runs.owns(copy)
    b.button(key="stop_training").click().run()
    assert copy.status == "stopped" and run.running  # B's Stop stops B's copy only
    runs.registry().scheduler.stop(run)


def test_a_copy_of_a_run_on_an_uploaded_text_says_the_text_is_needed():
    a = open_app("training", **{**RUNNING, "corpus": "upload", "clean": "keep", "batch": "4", "steps": "8"})
    a.sidebar.file_uploader[0].upload("notes.txt", ("the quick brown fox jumps over the lazy dog. " * 40).encode(),
                                      "text/plain").run()
    a.button(key="start_training").click().run()
    run = shown_run(a)
    assert run.settings.corpus == "upload"
    b = open_app("training", run=run.id)
    b.button(key="train_copy").click().run()
    assert not b.exception
    assert f"Run {run.id} trained on an uploaded text (upload) that this session does not have" in texts(b.error)
    assert b.session_state["run_id"] == run.id and not b.session_state.get("run_ids")  # nothing started
    runs.registry().scheduler.stop(run)


def test_the_owner_key_gives_control_and_no_link_carries_it():
    a, run = start(**RUNNING)
    key = a.session_state["_owner_keys"][run.id]
    link = next(c.value for c in a.code if "/training" in c.value)  # "Link to this view"
    assert f"run={run.id}" in link and key not in link
    assert all(key not in str(v) for v in a.query_params.values())
    b = open_app("training", run=run.id)
    b.text_input(key="claim_key").input("not-the-key")
    next(x for x in b.button if x.label == "Take control").click().run()
    assert "not this run's owner key" in texts(b.error) and "stop_training" not in button_keys(b)
    b.text_input(key="claim_key").input(key)
    next(x for x in b.button if x.label == "Take control").click().run()
    assert not b.exception
    assert "stop_training" in button_keys(b) and "A shared run, read only." not in texts(b.info)
    b.button(key="stop_training").click().run()  # after a reload, the key holder stops the run
    assert run.status == "stopped"
    link = next(c.value for c in b.code if "/training" in c.value)
    assert key not in link


@pytest.fixture
def reference():
    refs = runs.registry().references()
    if not refs:
        pytest.skip("no reference run in data/reference/")
    return refs[0]


@pytest.mark.parametrize("value, said", [
    ("xyz", "No run `xyz` here: showing the lesson's reference run (lesson) instead."),
    ("../../etc", "The link's `run=../../etc` is not a run's address (3 to 40 letters, digits, - or _): showing "
                  "the lesson's reference run (lesson) instead."),
    ("[here](http://e.vil/`x`)", "The link's `run=[here](http://e.vil/'x')` is not a run's address"),  # as text
])
def test_a_run_in_the_url_that_is_not_here_is_named_with_the_run_shown(reference, value, said):
    at = open_app("training", run=value)
    assert not at.exception
    assert said in texts(at.warning)
    assert at.session_state["run_id"] == reference.id
    at.switch_page("views/generate.py").run()  # the warning stays on the next page, until another run is shown
    assert said in texts(at.warning)


def test_a_run_in_the_url_beside_a_session_run_names_the_session_run():
    a, run = start(**SHORT)
    a.query_params["run"] = "nope123"
    a.switch_page("views/training.py").run()
    assert f"No run `nope123` here: showing run {run.id} instead." in texts(a.warning)
    assert shown_run(a) is run
    runs.registry().scheduler.stop(run)


def test_a_damaged_run_json_is_said_and_every_page_works(reference):
    folder = runs.registry().store.root / "broken-run"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "run.json").write_text(json.dumps({"id": "broken-run", "status": 5, "settings": {"hidden": "abc"},
                                                 "records": "many", "checkpoints": [1], "vocab": {}}))
    at = open_app("training", run="broken-run")
    assert not at.exception, [e.value for e in at.exception]
    said = [w for w in texts(at.warning).splitlines() if "broken-run" in w]
    assert len(said) == 1 and said[0].startswith(
        "Run `broken-run` could not be read, so the lesson's reference run (lesson) is shown instead: ")
    assert "hidden" in said[0]  # and why: the store names the field of the wrong type
    for page in ("views/inside.py", "views/generate.py", "views/data.py"):
        at.switch_page(page).run()
        assert not at.exception, (page, [e.value for e in at.exception])


@pytest.mark.parametrize("value, used", [("-1", 1), ("99999999", 500), ("3", 2), ("abc", 500)])
def test_a_bad_epoch_in_the_url_is_named_with_the_epoch_shown(reference, value, used):
    at = open_app("inside", epoch=value)
    assert not at.exception
    assert f"The link's `epoch={value}` is not a saved checkpoint of this model: showing epoch {used}." in \
        texts(at.warning)
    assert at.select_slider(key="epoch").value == used
    assert f"The lesson's reference run: {used} epoch{'s' * (used != 1)} " in at.success[0].value  # 1 epoch
    # the link now reopens what is shown (the last epoch is the scrubber's default: left out of the URL)
    assert at.query_params.get("epoch") == (None if used == 500 else str(used))


def test_a_bad_model_in_the_url_is_named_with_the_model_used(reference):
    at = open_app("generate", model="evil")
    assert not at.exception
    said = [w for w in texts(at.warning).splitlines() if "model=evil" in w]
    assert len(said) == 1 and "using model = reference instead." in said[0]
    assert at.radio(key="model").value == "reference"
    at.radio(key="model").set_value("untrained").run()  # the warning goes once another model is chosen
    assert "model=evil" not in texts(at.warning)


def test_a_removed_checkpoint_opened_by_the_url_shows_the_nearest_one():
    a, run = start(**SHORT)
    view = run.wait(60)
    assert view.checkpoints == (1, 2, 5, 10, 12)
    removed = runs.registry().store.root / run.id / "ckpt-000005.pt"
    assert removed.exists()
    removed.unlink()  # as pruning does
    at = open_app("inside", run=run.id, epoch="5")
    assert not at.exception, [e.value for e in at.exception]
    said = texts(at.warning)
    assert "The checkpoint at epoch 5 could not be read, so epoch 2 is shown: " in said  # and why, in a sentence
    assert "A shared run (read only): 2 epochs" in at.success[0].value
    training = at.switch_page("views/training.py").run()  # its gradient-flow figures read every checkpoint
    assert not training.exception, [e.value for e in training.exception]


def test_an_uploaded_checkpoint_shows_its_own_epoch_and_perplexity():
    a, run = start(**{**SHORT, "epochs": "5"})
    view = run.wait(60)
    ppl = f"{view.last['perplexity']:.2f}"
    b = open_app("training", **SHORT)
    b.file_uploader(key="upload_checkpoint").upload("five.pt", run.checkpoint_bytes(5),
                                                    "application/octet-stream").run()
    assert not b.exception and not b.error
    uploaded = shown_run(b)
    assert uploaded.origin == "uploaded" and uploaded is not run
    assert b.get("progress")[0].proto.text.startswith("Epoch 5 of 5 — finished")
    assert f"Uploaded checkpoint at epoch 5, perplexity {ppl}: its training curves are not in the file." in \
        texts(b.info)
    assert {m.label: m.value for m in b.metric}["Perplexity"] == ppl
    table = next(d.value for d in b.dataframe if "run" in d.value.columns)
    row = table[table["run"] == uploaded.id].iloc[0]
    assert row["epochs"] == "5/5" and row["perplexity"] == ppl
    assert "stop_training" in button_keys(b)  # B's own run (an upload never replaces another's)
    inside = b.switch_page("views/inside.py").run()
    assert "Trained model of this session: 5 epochs" in inside.success[0].value and ppl in inside.success[0].value
    assert f"5/5 epochs, perplexity {ppl}" in texts(inside.sidebar.caption)


@pytest.mark.parametrize("bad", [{"epoch": "abc"}, {"batch": "abc"}, {"epoch": -3}])
def test_a_checkpoint_with_a_damaged_config_is_said_and_the_pages_keep_working(bad):
    import rnn_core
    from rnn_core.checkpoint import checkpoint_payload, payload_bytes
    from rnn_core.model import formula_params

    tc = rnn_core.tokenize_corpus(rnn_core.builtin_corpus("toy_english", seed=0), "char", 2000)
    net = rnn_core.make_model("lesson", len(tc.vocab), 8, "cpu", seed=0)
    config = {"epoch": 5, "perplexity": 9.5, "corpus": "toy_english", **bad}
    data = payload_bytes(checkpoint_payload(formula_params(net), tc.vocab, config))
    at = open_app("training", **SHORT)
    at.file_uploader(key="upload_checkpoint").upload("crafted.pt", data, "application/octet-stream").run()
    assert not at.exception, [e.value for e in at.exception]
    said = [e for e in texts(at.error).splitlines() if "crafted.pt" in e]
    assert len(said) == 1 and next(iter(bad)) in said[0]  # one sentence naming the file and the field
    assert "run_id" not in at.session_state  # no run was made of it
    for page in ("views/inside.py", "views/generate.py"):
        at.switch_page(page).run()
        assert not at.exception and not at.error, page  # the reference (or untrained) model, said as such


def test_in_chinese_the_shared_view_and_its_warnings_show_no_english_sentence(reference):
    from tests.test_i18n import english_runs, page_texts

    a, run = start(**RUNNING)
    b = open_app("training", lang="zh", run=run.id)
    assert "共享的训练，只读" in texts(b.info) and "train_copy" in button_keys(b)
    pages = [b, b.switch_page("views/inside.py").run(), open_app("inside", lang="zh", run="nope", epoch="-1",
                                                                  model="evil")]
    assert "这里没有训练 `nope`" in texts(pages[-1].warning) and "`epoch=-1`" in texts(pages[-1].warning)
    for at in pages:
        assert not at.exception
        found = {r: text for text in page_texts(at) for r in english_runs(text)}
        assert not found, found
    runs.registry().scheduler.stop(run)

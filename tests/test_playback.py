"""Play through training: on Inside, Generate and the unrolled page, Play shows the run's checkpoints in turn
(1, 2, 5, ... last), each frame's numbers are that checkpoint's, a marker on the run's perplexity curve sits at
the frame's epoch and value, and Pause keeps the epoch shown, in the scrubber and in the URL."""

import pytest

import rnn_core
from dashboard import runs
from dashboard import unrolled_explain as explain
from rnn_core.checkpoint import model_switches
from rnn_core.unrolled import tiny_run, unroll
from tests.plotly_json import values
from tests.test_dashboard_pages import assert_clean, charts, open_app, texts


@pytest.fixture(scope="module")
def reference():
    refs = runs.registry().references()
    if not refs:
        pytest.skip("no reference run in data/reference/")
    return refs[0]


@pytest.fixture(scope="module")
def tiny():
    run = tiny_run()
    assert run is not None, "no tiny model in data/reference/unrolled/: python -m rnn_core.unrolled makes it"
    return run


def net_at(run, epoch: int):
    """The run's model at a checkpoint, built here as a notebook would (not through the page's caches)."""
    params = run.checkpoint(epoch)
    net = rnn_core.make_model("lesson", params["W_hq"].shape[1], params["W_hh"].shape[0], "cpu",
                              **model_switches(params, {"activation": run.settings.activation}))
    net.load_formula_params(params)
    return net


def shown_epoch(at) -> int:
    return at.select_slider(key="epoch").value


def frames(at, check) -> list[int]:
    """Press Play (on the last checkpoint: from the first), then run the page once a frame, as its timer does,
    until it pauses by itself; ``check(at, epoch)`` on every frame; the epochs shown."""
    at.button(key="epoch_play_button").click().run()
    shown = []
    while True:
        assert_clean(at)
        shown.append(shown_epoch(at))
        check(at, shown[-1])
        if not at.session_state["epoch_play"]:
            return shown
        assert len(shown) < 20, "Play never paused"
        at.run()


def check_marker(at, run, epoch: int) -> None:
    """The perplexity curve's marker is at the frame's epoch and that epoch's recorded perplexity."""
    curve = next(c for c in charts(at, curve=True) if any(tr.get("mode") == "markers+text" for tr in c["data"]))
    marker = next(tr for tr in curve["data"] if tr.get("mode") == "markers+text")
    assert values(marker["x"]) == [epoch]
    assert values(marker["y"])[0] == pytest.approx(run.view().perplexity_at(epoch), rel=1e-9)
    assert len(values(curve["data"][0]["x"])) == len(run.view().records)  # the whole curve, one point an epoch


def test_play_on_inside_shows_every_checkpoint_with_its_own_numbers(reference):
    at = open_app("inside")
    assert_clean(at)
    assert shown_epoch(at) == reference.checkpoints[-1]
    losses = []

    def check(at, epoch):
        assert f"The lesson's reference run: {epoch} epoch{'s' * (epoch != 1)} " in at.success[0].value
        tokens = list(at.text_input(key="text").value)
        steps = rnn_core.inspect_sequence(net_at(reference, epoch), reference.vocab, tokens).steps_frame()
        loss = {m.label: m.value for m in at.metric}["Mean loss"]
        assert loss == f"{steps['loss'].mean():.3f}"
        losses.append(loss)
        check_marker(at, reference, epoch)

    assert frames(at, check) == list(reference.checkpoints)  # 1, 2, 5, ..., 500: from the first, in order
    assert len(set(losses)) > 3  # the frames differ: the comparison means something
    assert "epoch" not in at.query_params  # paused on the last checkpoint, the scrubber's default
    at.run()
    assert shown_epoch(at) == reference.checkpoints[-1] and not at.session_state["epoch_play"]


def greedy_now(at, prefix: str) -> str:
    return next(c.value for c in at.code if c.value.startswith(prefix))


def test_play_on_generate_shows_each_checkpoints_samples_by_epoch(reference):
    at = open_app("generate")
    prefix = at.text_input(key="prefix").value

    def check(at, epoch):
        greedy = rnn_core.generate(prefix, 50, net_at(reference, epoch), reference.vocab, temperature=0.0, seed=0)
        assert greedy_now(at, prefix) == greedy
        by_epoch = next(c.value for c in at.code if "│" in c.value).splitlines()[1:]  # after the header: "  epoch │ sample" up to this frame
        assert [int(line.split("│")[0]) for line in by_epoch] == [e for e in reference.checkpoints if e <= epoch]
        assert by_epoch[-1].split("│ ", 1)[1] == greedy
        check_marker(at, reference, epoch)

    assert frames(at, check) == list(reference.checkpoints)
    assert greedy_now(at, prefix) != rnn_core.generate(prefix, 50, net_at(reference, 1), reference.vocab,
                                                 temperature=0.0, seed=0)  # training changed the sample


def test_pause_keeps_the_epoch_in_the_scrubber_and_the_url(reference):
    at = open_app("generate")
    at.button(key="epoch_play_button").click().run()
    at.run()
    at.run()
    assert shown_epoch(at) == reference.checkpoints[2]
    at.button(key="epoch_play_button").click().run()  # Pause
    assert_clean(at)
    at.run()
    epoch = reference.checkpoints[2]
    assert shown_epoch(at) == epoch and not at.session_state["epoch_play"]
    assert at.query_params.get("epoch") in (str(epoch), [str(epoch)])
    link = open_app("generate", epoch=epoch)  # the copied link reopens the frame
    assert shown_epoch(link) == epoch and f"{epoch} epochs" in link.success[0].value


def test_play_from_a_checkpoint_goes_on_from_there(reference):
    at = open_app("generate", epoch=reference.checkpoints[-3])
    at.button(key="epoch_play_button").click().run()
    assert shown_epoch(at) == reference.checkpoints[-3]
    at.run()
    assert shown_epoch(at) == reference.checkpoints[-2]


def test_play_on_the_unrolled_page_steps_the_chain_through_the_checkpoints(tiny):
    at = open_app("unrolled", unrolled_text="time traveller", t=5)
    sentences = []

    def check(at, epoch):
        assert f"{epoch} epoch{'s' * (epoch != 1)} " in at.success[0].value  # 1 epoch, 2 epochs
        u = unroll(tiny.checkpoint(epoch), tiny.vocab, list("time traveller"), tiny.settings.activation)
        said = explain.step(u, 5)
        assert said in texts(at.markdown)
        sentences.append(said)
        check_marker(at, tiny, epoch)

    assert frames(at, check) == list(tiny.checkpoints)
    assert len(set(sentences)) == len(sentences)  # every checkpoint's numbers differ


def test_an_uploaded_checkpoint_says_it_has_no_curve(tiny):
    at = open_app("training")
    at.file_uploader(key="upload_checkpoint").upload("tiny.pt", tiny.checkpoint_bytes(tiny.checkpoints[-1]),
                                                     "application/octet-stream").run()
    assert_clean(at)
    inside = at.switch_page("views/inside.py").run()
    assert_clean(inside)
    assert "no perplexity curve" in texts(inside.caption)
    assert not any(any(tr.get("mode") == "markers+text" for tr in c["data"]) for c in charts(inside, curve=True))


def test_a_page_turn_pauses_the_play_and_keeps_the_model_chosen(reference):
    at = open_app("inside")
    at.button(key="epoch_play_button").click().run()
    assert at.session_state["epoch_play"]
    at.switch_page("views/generate.py").run()
    assert_clean(at)
    assert not at.session_state["epoch_play"]
    # the model chosen on Inside is the one Generate shows (the choice's widget is another one on each page)
    assert at.radio(key="model").value == "reference" and "reference run" in at.success[0].value
    epoch = shown_epoch(at)
    at.run()  # no frame advances on the new page
    assert shown_epoch(at) == epoch and not at.session_state["epoch_play"]

"""The Exercises page: pairs differ in one switch, their answers come from their numbers, both languages
say the same things, the page renders, step mode steps, and a short pair trains to the end and reopens."""
import dataclasses
import math
import time
from pathlib import Path

import pytest
import torch
from streamlit.testing.v1 import AppTest

import rnn_core
from dashboard import exercises as ex
from dashboard import runs
from dashboard.i18n import catalogue
from rnn_core.runs import RUN_ID, RunSettings, RunView

APP = str(Path(__file__).resolve().parents[1] / "dashboard" / "Home.py")


@pytest.fixture(autouse=True, scope="module")
def _restore_torch_threads():
    """The app sets torch's thread count for the process (AppTest runs in it): give it back afterwards. The fast
    engine's kernels are settled first: Run the pair waits for them (built once, then loaded from the cache)."""
    rnn_core.fast.kernels(block=True)
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def test_every_pair_differs_in_its_switch_only_and_has_its_own_ids():
    seen = set()
    for e in ex.EXERCISES.values():
        for v in e.variations:
            a, b = ex.pair_settings(e, v, 7)
            assert a.seed == b.seed == 7
            assert set(a.differences(b)) == {k for k in {**v.a, **v.b} if v.a.get(k) != v.b.get(k)}
            ids = ex.pair_ids(e, v, 7)
            assert all(RUN_ID.match(i) for i in ids) and not seen & set(ids)
            seen |= set(ids)
    assert ex.pair_ids(ex.EXERCISES["clip"], ex.EXERCISES["clip"].variations[0], 8)[0] not in seen
    assert ex.parse_seed("12") == 12 and ex.parse_seed("x") == 0 and ex.parse_seed("-1") == 0


def test_every_exercise_and_pair_is_worded_in_both_catalogues():
    for lang in ("en", "zh"):
        words = catalogue(lang)
        for e in ex.EXERCISES.values():
            assert all(words[f"exercises.ex.{e.id}.{part}"] for part in ("title", "q", "why"))
            for v in e.variations:
                name = ex.pair_name(v, lang)
                assert name and "{" not in name and len(name.split(" vs ")) == 2, name
    hidden = ex.EXERCISES["tuning"].variation("hidden")
    assert ex.pair_name(hidden, "zh") == f"{ex.HIDDEN} 个隐藏单元 vs {2 * ex.HIDDEN} 个隐藏单元"
    assert ex.arm_label(hidden, "B", "en") == f"B ({2 * ex.HIDDEN} hidden units)"
    assert not hasattr(ex, "MESSAGES")  # one place for the words: the catalogues


def test_other_sizes_come_from_the_environment_and_train_other_pairs():
    e, v = ex.EXERCISES["clip"], ex.EXERCISES["clip"].variations[0]
    assert ex.Sizes.from_env("") == ex.Sizes() and ex.Sizes().base == ex.BASE
    small = ex.Sizes.from_env("hidden=16, epochs=3")
    assert (small.base.hidden, small.base.epochs, small.base.batch) == (16, 3, ex.BASE.batch)
    assert ex.pair_settings(e, v, 1, small)[0].hidden == 16
    assert ex.pair_ids(e, v, 1, small)[0] != ex.pair_ids(e, v, 1, ex.Sizes())[0]
    assert all(RUN_ID.match(i) for i in ex.pair_ids(ex.EXERCISES["embedding"], ex.EXERCISES["embedding"].variations[0],
                                                    999999, small))
    with pytest.raises(ValueError, match=ex.SIZES_ENV):
        ex.Sizes.from_env("lr=2")


def view(settings: RunSettings, ppl: list[float], status="done", grad=None, clip=None, held=None, samples=None):
    records = tuple({"epoch": i + 1, "loss": math.log(p), "perplexity": p, "tokens_per_s": 1e4,
                     "grad_norm": (grad or [0.5] * len(ppl))[i], "clip_fraction": (clip or [0.0] * len(ppl))[i],
                     "seconds": 0.2, "sample": (samples or {}).get(i + 1), "wall_s": 0.4 * (i + 1), "busy_s": 0.2,
                     "threads": 1, "heldout_perplexity": held[i] if held else None} for i, p in enumerate(ppl))
    return RunView("x-a", settings, status, None, records, 0.0, 0.4 * len(ppl), 10_000, (1,), len(ppl), "CPU",
                   True, 28, "trained")


def test_the_clip_answer_quotes_the_spike_and_the_clipped_run():
    e = ex.EXERCISES["clip"]
    v = e.variations[0]
    sa, sb = ex.pair_settings(e, v, 0)
    a = view(sa, [20, 10, 6, 5, 4.5], clip=[0.0, 0.2, 0.4, 0.2, 0.2], grad=[0.5, 1.2, 2, 1, 1])
    b = view(sb, [20, 10, 6, 3.1e4, 50], grad=[0.5, 1.2, 2, 40, 9])
    lines = ex.summary(e, v, a, b, "en")
    assert len(lines) == 2
    assert "spiked from 6 to 3.1e4 at epoch 4" in lines[0] and "40" in lines[0]
    assert "4.5" in lines[1] and "20%" in lines[1] and "50" in lines[1]
    diverged = view(sb, [20, 10, 1e30], status="diverged")
    assert "diverged at epoch 3" in ex.summary(e, v, a, diverged, "en")[0]
    assert ex.summary(e, v, None, None, "en") == [ex.tr("sum.waiting", "en")]
    assert "3.1e4" in ex.summary(e, v, a, b, "zh")[0]


def test_the_answers_of_the_other_cards_come_from_their_numbers():
    e = ex.EXERCISES["detach"]
    v = e.variations[0]
    sa, sb = ex.pair_settings(e, v, 0)
    a, b = view(sa, [9.0, 8.0]), view(sb, [9.5, 7.5])
    b = dataclasses.replace(b, records=tuple({**r, "seconds": 0.5} for r in b.records))
    time_line, ppl_line = ex.summary(e, v, a, b, "en")
    assert "0.2 s" in time_line and "0.5 s" in time_line and "2.5×" in time_line
    assert ppl_line.startswith("B (no detach) reached the lower perplexity") and "7.5" in ppl_line
    e = ex.EXERCISES["heldout"]
    v = e.variations[0]
    sa, sb = ex.pair_settings(e, v, 0)
    lines = ex.summary(e, v, view(sa, [9, 6], held=[12, 8]), view(sb, [9, 6], held=[30, 24]), "en")
    assert "8" in lines[0] and "6" in lines[0] and "24" in lines[1] and "3×" in lines[1]
    e = ex.EXERCISES["predict"]
    v = e.variation("sample")
    sa, sb = ex.pair_settings(e, v, 0)
    loop = "the time the time the time the time the time"
    lines = ex.summary(e, v, view(sa, [9, 6], samples={1: loop}), view(sb, [9, 6], samples={1: "a b c d e f g h"}), "en")
    assert "71%" in lines[0] and "0%" in lines[0]  # 5 of the 7 word 4-grams of the loop come again
    assert ex.repeat_share("a b c") is None and ex.repeat_share(loop) == pytest.approx(5 / 7)


def test_the_pair_table_shows_each_arms_numbers_from_its_records():
    e = ex.EXERCISES["clip"]
    v = e.variations[0]
    sa, sb = ex.pair_settings(e, v, 0)
    a = view(sa, [20, 10, 6, 5.5], clip=[0.0, 0.5, 0.5, 0.0], grad=[0.5, 1.2, 3.25, 1], held=[30, 20, 12, 11])
    b = view(sb, [20, 12, 9], status="diverged", grad=[0.5, 40, 9])
    labels = {arm: ex.arm_label(v, arm, "en") for arm in ("A", "B")}
    table = ex.pair_table(a, b, labels, "en")
    assert list(table["arm"]) == [labels["A"], labels["B"]] and list(table["epochs"]) == [4, 3]
    assert list(table["perplexity"]) == ["5.5", "9"] and list(table["best"]) == ["5.5", "9"]
    assert list(table["max ‖g‖"]) == ["3.25", "40"] and list(table["clipped"]) == ["25%", "0%"]
    assert list(table["held-out perplexity"]) == ["11", "–"] and list(table["s / epoch"]) == ["0.2", "0.2"]
    assert list(table["tokens/s"]) == ["50,000", "50,000"]  # 10,000 tokens an epoch in 0.2 s
    assert list(table["status"]) == ["finished", "stopped: diverged"]
    only_b = ex.pair_table(None, b, labels, "zh")
    assert len(only_b) == 1 and only_b.iloc[0][ex.tr("col.epochs", "zh")] == 3
    assert len(ex.pair_table(None, None, labels, "en")) == 0


def test_the_card_names_the_switch_the_sizes_and_the_lesson_engine_when_an_arm_needs_it():
    clip, embedding, detach = (ex.EXERCISES[i] for i in ("clip", "embedding", "detach"))
    sa, sb = ex.pair_settings(clip, clip.variations[0], 0)
    assert "**θ**: A 1, B off" in ex.settings_line(sa, sb, "en") and f"batch {sa.batch}" in ex.settings_line(sa, sb)
    assert ex.engine_note(clip, sa, sb, "en") is None
    assert "no embedding" in ex.engine_note(embedding, *ex.pair_settings(embedding, embedding.variations[0], 0), "en")
    assert "no no-detach training" in ex.engine_note(detach, *ex.pair_settings(detach, detach.variations[0], 0), "en")


def test_a_pair_that_cannot_start_keeps_its_error_to_be_said_once():
    from rnn_core.runs import RunRegistry, RunStore, RunStoreError, Scheduler

    tc = rnn_core.tokenize_corpus(rnn_core.builtin_corpus("toy_english", seed=0), "char", 4000)
    registry = RunRegistry(RunStore("/proc/rnn-lab-x", reference_root=None), Scheduler())  # cannot be written
    e = ex.EXERCISES["clip"]
    state = {}
    try:
        ex.start_pair_keeping_the_error(state, registry, tc, e, e.variations[0], 0, sizes=ex.Sizes.from_env(
            "hidden=8,epochs=1"))
    finally:
        registry.scheduler.close()
    error = ex.take_error(state)
    assert isinstance(error, RunStoreError) and "/proc/rnn-lab-x" in str(error)
    assert ex.take_error(state) is None


def test_a_bad_sizes_variable_leaves_the_pairs_at_their_own_sizes(monkeypatch):
    monkeypatch.setenv(ex.SIZES_ENV, "lr=2")  # not a size the pairs take: Home names it, the pairs keep theirs
    assert ex.Sizes.from_env() == ex.Sizes()


def test_step_mode_trains_one_minibatch_a_step_and_starts_again_when_its_settings_change(monkeypatch):
    from dashboard.corpora import CorpusInfo

    tc = rnn_core.tokenize_corpus(rnn_core.builtin_corpus("toy_english", seed=0), "char", 4000)
    info = CorpusInfo(tc, "toy_english", "toy_english", "built in")
    state = {}
    step = ex.StepMode(state, info, 3, detach=True, theta=1.0)
    assert step.last is None and step.history == []
    step.steps(3)
    n = len(step.trainer().loader)
    assert [r["step"] for r in step.history] == [1, 2, 3]
    assert (step.last.epoch, step.last.batch) == (1 + 2 // n, 2 % n)
    assert step.history[-1]["loss"] == step.last.loss and step.history[-1]["‖g‖ after"] <= 1.0 + 1e-6
    lines = ex.step_rows(step.last, info.vocab, 4).splitlines()
    assert len(lines) == 8 and lines[0].startswith("X[0]  ") and lines[1].startswith("Y[0]  ")
    assert list(ex.update_table(step.last, "en")["W"]) == list(step.last.update_ratio)
    assert "detached" in ex.state_sentence(step.last, "en")
    again = ex.StepMode(state, info, 3, detach=True, theta=1.0)  # the next page run, the same settings
    assert again.last is step.last and len(again.history) == 3
    other = ex.StepMode(state, info, 3, detach=True, theta=None)
    assert other.last is None and other.history == [] and other.trainer() is not step.trainer()

    def diverge(self):
        raise rnn_core.DivergenceError("the loss is not finite")

    monkeypatch.setattr(rnn_core.training.Trainer, "step", diverge)
    other.steps(10)
    assert other.history == [] and isinstance(ex.take_error(state), rnn_core.DivergenceError)
    other.reset()
    assert "step_trainer" not in state and "step_last" not in state


def open_page(**query) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=90)
    at.query_params.update(query)
    at.run()
    return at.switch_page("views/exercises.py").run()


def test_the_page_renders_every_card_and_steps_one_minibatch_at_a_time():
    at = open_page(exercise="detach", seed="2")
    assert not at.exception
    assert at.query_params["exercise"] == "detach" and at.query_params["variation"] == "nodetach"
    assert any("does not separate hidden states" in m.value for m in at.markdown)
    for exercise_id in ex.EXERCISES:
        at.selectbox(key="ex_exercise").set_value(exercise_id).run()
        assert not at.exception, exercise_id
        assert any(ex.tr(f"ex.{exercise_id}.q", "en")[:40] in m.value for m in at.markdown)
    at.button(key="step_one").click().run()
    assert not at.exception
    first = at.session_state["step_last"]
    assert first.batch == 0 and first.X.shape == (32, 35)
    assert any("X[0]" in c.value for c in at.code)
    at.button(key="step_ten").click().run()
    n = len(at.session_state["step_trainer"][1].loader)
    last = at.session_state["step_last"]
    assert not at.exception and (last.epoch, last.batch) == (1 + 10 // n, 10 % n)
    assert len(at.session_state["step_trainer"][2]) == 11
    at.toggle(key="step_detach").set_value(False).run()  # no detach: the lesson engine, the graph kept
    at.button(key="step_one").click().run()
    at.button(key="step_one").click().run()
    report = at.session_state["step_last"]
    assert report.attached and report.graph_batches == 2
    assert any("still attached" in m.value for m in at.markdown)


def test_a_short_pair_trains_to_the_end_and_the_page_reopens_it(monkeypatch):
    monkeypatch.setenv(ex.SIZES_ENV, "hidden=16,epochs=3")
    at = open_page(exercise="clip", seed="5")
    at.button(key="ex_run").click().run()
    assert not at.exception
    reg = runs.registry()
    e = ex.EXERCISES["clip"]
    a, b = ex.find_pair(reg, e, e.variations[0], 5)
    assert a is not None and b is not None
    deadline = time.monotonic() + 300  # a bound against hanging on a busy machine, not a speed test
    while (a.running or b.running) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert a.status in ("done", "diverged") and b.status in ("done", "diverged")
    assert a.settings.clip == 1.0 and b.settings.clip is None and a.settings.seed == b.settings.seed == 5
    again = open_page(exercise="clip", seed="5")  # another session, the same URL: the same pair, finished
    assert not again.exception
    answer = next(m.value for m in again.markdown if m.value.startswith("**What the numbers say**"))
    assert ex.summary(e, e.variations[0], a.view(), b.view(), "en")[1] in answer
    table = again.dataframe[0].value
    assert len(table) == 2 and list(table["epochs"]) == [a.epoch, b.epoch]


def test_a_pair_is_stopped_only_by_the_session_that_started_it(monkeypatch):
    monkeypatch.setenv(ex.SIZES_ENV, "hidden=16,epochs=5000")  # still training while both sessions look at it
    owner = open_page(exercise="clip", seed="6")
    owner.button(key="ex_run").click().run()
    reg = runs.registry()
    e = ex.EXERCISES["clip"]
    a, b = ex.find_pair(reg, e, e.variations[0], 6)
    assert a.running and b.running and not owner.button(key="ex_stop").disabled
    other = open_page(exercise="clip", seed="6")  # another session, the same link: the same pair, watched
    assert not other.exception and other.button(key="ex_stop").disabled
    owner.button(key="ex_stop").click().run()
    assert not owner.exception and not a.running and not b.running
    other.run()  # its page drawn again: the pair is stopped
    other.button(key="ex_run").click().run()  # the owner's stopped pair is not continued by another session
    assert not a.running and not b.running
    assert any(str(a.id) in w.value or str(b.id) in w.value for w in other.error), [w.value for w in other.error]


def test_training_compares_its_run_with_the_reference_run_and_lists_the_settings_that_differ():
    at = AppTest.from_file(APP, default_timeout=90)
    at.query_params.update(hidden="16", epochs="3")
    at.run()
    at = at.switch_page("views/training.py").run()
    at.button(key="start_training").click().run()
    run = runs.registry().get(at.session_state["run_id"])
    assert run.wait(60).status == "done"
    at.run()
    box = at.selectbox(key="compare_with")
    references = [r.id for r in runs.registry().references()]
    assert references and any(o.startswith(f"reference {references[0]}: 500/500 epochs") for o in box.options)
    box.set_value(references[0]).run()
    assert not at.exception
    diff = next(d.value for d in at.dataframe if "setting" in d.value.columns)
    hidden = diff[diff["setting"] == "hidden"]
    assert list(hidden.iloc[0])[1:] == ["16", "512"]
    assert "epochs" in set(diff["setting"])


def test_the_heldout_card_scores_an_uploaded_text(tmp_path):
    from rnn_core.runs import RunRegistry, RunStore, Scheduler

    sizes = ex.Sizes(dataclasses.replace(ex.BASE, hidden=8, epochs=2, batch=8, steps=10), "t")
    tc = rnn_core.tokenize_corpus(rnn_core.builtin_corpus("toy_english", seed=0), "char", 2000)
    reg = RunRegistry(RunStore(tmp_path, reference_root=None), Scheduler(threads=1))
    e = ex.EXERCISES["heldout"]
    text = b"the quick brown fox jumps over the lazy dog " * 20
    v = ex.upload_variation("notes.txt", text)
    assert v != ex.upload_variation("notes.txt", text + b"!") and ex.variation_message(v) == "var.upload"
    a, b = ex.start_pair(reg, tc, e, v, 0, heldout_text=text, sizes=sizes)
    for run in (a, b):
        assert run.wait(120).status == "done"
    assert a.settings.heldout == "rest" and b.settings.heldout == "upload:notes.txt"
    held_a, held_b = (r.records[-1]["heldout_perplexity"] for r in (a, b))
    assert held_a > 1 and held_b > 1 and held_a != held_b
    assert ex.arm_label(v, "B", "en") == "B (your text)"
    reg.scheduler.close()


def test_a_run_with_relu_and_an_embedding_is_shown_as_it_trained():
    from rnn_core.model import formula_params

    net = rnn_core.make_model("lesson", 12, 8, "cpu", seed=1, activation="relu", input="embedding", embed=5)
    with torch.no_grad():
        net.params[1].mul_(50)  # ReLU and tanh then differ
    shown = runs._net_at("relu-embed", 1, {k: v.clone() for k, v in formula_params(net).items()}, "relu")
    assert shown.activation == "relu" and shown.input == "embedding"
    X = torch.randint(0, 12, (2, 6))
    with torch.no_grad():
        assert torch.equal(shown(X, shown.begin_state(2))[0], net(X, net.begin_state(2))[0])


def test_a_clip_pair_that_never_clipped_says_so():
    e = ex.EXERCISES["clip"]
    v = e.variations[0]
    sa, sb = ex.pair_settings(e, v, 0)
    same = [20, 10, 6, 6.5, 5]
    lines = ex.summary(e, v, view(sa, same, grad=[0.5, 0.8, 0.7, 0.9, 0.6]), view(sb, same), "en")
    assert "never reached θ" in lines[0] and "0.9" in lines[0] and "5" in lines[1]


def test_in_chinese_the_page_shows_no_english_sentence(monkeypatch):
    from tests.test_dashboard_pages import open_app
    from tests.test_i18n import english_runs, page_texts

    monkeypatch.setenv(ex.SIZES_ENV, "hidden=16,epochs=2")
    at = open_app("exercises", lang="zh", exercise="relu", seed="6")
    assert at.title[0].value.startswith("7 · 练习")
    at.button(key="ex_run").click().run()
    e = ex.EXERCISES["relu"]
    for run in ex.find_pair(runs.registry(), e, e.variations[0], 6):
        run.wait(300)
    at.run()
    at.button(key="step_one").click().run()
    assert not at.exception
    texts = page_texts(at)
    assert any("梯度范数的峰值" in text for text in texts)  # the answer, in Chinese
    found = {run: text for text in texts for run in english_runs(text)}
    assert not found, found

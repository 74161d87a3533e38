"""The Exercises page: pairs differ in one switch, their answers come from their numbers, both languages
say the same things, the page renders, step mode steps, and a short pair trains to the end and reopens."""
import base64
import dataclasses
import json
import math
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from streamlit.testing.v1 import AppTest

import rnn_core
from dashboard import exercise_charts as xc
from dashboard import exercises as ex
from dashboard import formatting
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


def test_every_record_keeps_each_minibatchs_loss_and_gradient_norm():
    from rnn_core.data import load_data
    from rnn_core.training import Trainer

    loader, vocab = load_data("toy_english", batch_size=4, num_steps=10, max_tokens=2000, seed=0)
    net = rnn_core.make_model("fast", len(vocab), 16, "cpu", seed=0)
    records = list(Trainer(net, loader, vocab, lr=1.0, theta=0.17, sample_every=0).epochs(2))
    for r in records:
        assert len(r.batch_losses) == len(r.batch_grad_norms) == len(loader)
        assert r.grad_norm == pytest.approx(sum(r.batch_grad_norms) / len(loader))  # the epoch's mean, from them
        assert r.clip_fraction == sum(g > 0.17 for g in r.batch_grad_norms) / len(loader)
        assert r.loss == pytest.approx(sum(r.batch_losses) / len(loader), rel=1e-5)  # equal-sized minibatches
        assert 0 < r.clip_fraction < 1  # the comparison means something


def test_every_exercise_and_pair_is_worded_in_both_catalogues():
    for lang in ("en", "zh"):
        words = catalogue(lang)
        for e in ex.EXERCISES.values():
            assert all(words[f"exercises.ex.{e.id}.{part}"] for part in ("title", "q", "why"))
            for v in e.variations:
                name = ex.pair_name(v, lang)
                assert name and "{" not in name and len(name.split(" vs " if lang == "en" else " 对比 ")) == 2, name
                for arm in "AB":  # from the arm's settings: one pair of brackets, the value of what differs
                    label = ex.arm_label(v, arm, lang)
                    assert label.startswith(arm) and "{" not in label, label
                    assert label.count("(") + label.count("（") == 1 == label.count(")") + label.count("）"), label
    hidden = ex.EXERCISES["tuning"].variation("hidden")
    assert ex.pair_name(hidden, "zh") == f"{ex.HIDDEN} 个隐藏单元 对比 {2 * ex.HIDDEN} 个隐藏单元"
    assert ex.arm_label(hidden, "B", "en") == f"B ({2 * ex.HIDDEN} hidden units)"
    relu, reluclip = ex.EXERCISES["relu"].variations
    assert [ex.arm_label(relu, arm, "en") for arm in "AB"] == ["A (tanh)", "B (ReLU)"]  # not "B (ReLU (θ = 1))"
    assert [ex.arm_label(reluclip, arm, "zh") for arm in "AB"] == ["A（θ = 1）", "B（不裁剪）"]
    assert ex.arm_label(ex.EXERCISES["embedding"].variations[0], "A", "zh") == "A（独热编码）"
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


def view(settings: RunSettings, ppl: list[float], status="done", held=None, samples=None, norms=None, losses=None,
         seconds=0.2):
    """A run's snapshot from its perplexity per epoch and, per epoch, its minibatches' ‖g‖ and losses (default:
    4 minibatches of ‖g‖ 0.5 at the epoch's loss); the per-epoch mean and clipped share follow from them."""
    norms = norms or [[0.5] * 4 for _ in ppl]
    losses = losses or [[math.log(p)] * len(n) for p, n in zip(ppl, norms)]
    theta = settings.clip if settings.clip is not None else math.inf
    records = tuple({"epoch": i + 1, "loss": math.log(p), "perplexity": p, "tokens_per_s": 1e4,
                     "grad_norm": sum(norms[i]) / len(norms[i]),
                     "clip_fraction": sum(g > theta for g in norms[i]) / len(norms[i]),
                     "seconds": seconds, "sample": (samples or {}).get(i + 1), "wall_s": 0.4 * (i + 1),
                     "busy_s": 0.2, "threads": 1, "heldout_perplexity": held[i] if held else None,
                     "batch_losses": list(losses[i]), "batch_grad_norms": list(norms[i])} for i, p in enumerate(ppl))
    return RunView("x-a", settings, status, None, records, 0.0, 0.4 * len(ppl), 10_000, (1,), len(ppl), "CPU",
                   True, 28, "trained")


def numbers(text: str) -> list[float]:
    """Every number of a sentence or cell as the card writes it (``formatting.num``: 40, 0.872, 1.3×10⁷¹)."""
    return formatting.numbers(text)


def clip_pair(seed=0, sizes=None):
    e = ex.EXERCISES["clip"]
    v = e.variations[0]
    return (e, v, *ex.pair_settings(e, v, seed, sizes))


def test_the_clip_answer_says_what_every_minibatch_did():
    e, v, sa, sb = clip_pair()
    quiet = [[0.5, 0.6, 0.4, 0.5]]
    a = view(sa, [20, 10, 6, 5, 4.5], norms=quiet * 2 + [[0.5, 1.3, 0.6, 2.0], [0.5, 0.4, 0.3, 1.5], quiet[0]])
    b_norms = quiet * 3 + [[0.5, 40.0, 9.0, 3.0], [2.0, 1.0, 0.5, 0.5]]
    b_losses = [[3.0] * 4, [2.3] * 4, [1.8, 1.6, 1.9, 1.8], [1.7, 9.0, 4.0, 3.0], [3.9] * 4]
    b = view(sb, [20, 10, 6, 3.1e4, 50], norms=b_norms, losses=b_losses)
    lines = ex.summary(e, v, a, b, "en")
    assert lines == ["B (no clipping): the gradient norm reached 40 (θ = 1) and the loss jumped from 1.6 to 9 "
                     "in epoch 4 (guessing uniformly: 3.33).",
                     "A (θ = 1) clipped 3 of 20 (15%) minibatches and reached perplexity 4.5; B (no clipping) 50."]
    diverged = view(sb, [20, 10, 6, 3.1e4], status="diverged", norms=b_norms[:4], losses=b_losses[:4])
    lines = ex.summary(e, v, a, diverged, "en")
    assert lines[0].endswith("the run stopped as diverged after epoch 4, keeping the model of epoch 4.")
    assert lines[1] == "A (θ = 1) clipped 3 of 20 (15%) minibatches and trained on to perplexity 4.5."
    assert ex.summary(e, v, None, None, "en") == [ex.tr("sum.waiting", "en")]
    zh = ex.summary(e, v, a, b, "zh")
    assert "40" in zh[0] and "3/20 个（15%）" in zh[1]


def test_a_clip_pair_whose_gradient_never_reached_theta_says_so_without_sending_the_class_elsewhere():
    e, v, sa, sb = clip_pair()
    same = [20, 10, 6, 6.5, 5]
    norms = [[0.5, 0.8, 0.7, 0.9]] * 5
    for lang, words in (("en", "never clipped"), ("zh", "从未裁剪")):
        lines = ex.summary(e, v, view(sa, same, norms=norms), view(sb, same, norms=norms), lang)
        assert words in lines[0] and numbers(lines[0])[-1] == 0.9 and numbers(lines[1]) == [5, 5]
        assert "seed" not in " ".join(lines) and "种子" not in " ".join(lines)
    assert not any("another seed" in text or "换一个种子" in text for lang in ("en", "zh")
                   for key, text in catalogue(lang).items() if key.startswith("exercises."))


def test_the_table_and_the_sentences_count_minibatches_as_the_chart_draws_them():
    # 2 of 800 minibatches above θ: a mean per epoch would say 0.872 and "0%"
    e, v, sa, sb = clip_pair()
    norms = [[0.8] * 8 for _ in range(100)]
    norms[40][3], norms[41][5] = 1.3, 1.1
    a = view(sa, [6.0] * 100, norms=norms)
    b = view(sb, [6.1] * 100, norms=[[0.8] * 8 for _ in range(100)])
    labels = {arm: ex.arm_label(v, arm, "en") for arm in ("A", "B")}
    table = ex.pair_table(a, b, labels, "en")
    assert list(table["max ‖g‖"]) == ["1.3", "0.8"]
    assert list(table["‖g‖ > θ (minibatches)"]) == ["2 of 800 (0.25%)", "0 of 800 (0%)"]
    mb = ex.minibatch_frame(a, b)
    fig = xc.ab_minibatches(mb, ex.above_by_epoch(mb), labels, 1.0, 100)
    grad_a, loss_a, bars_a = (tr for tr in fig.data if tr.name == labels["A"])
    assert max(grad_a.y) == 1.3 and len(grad_a.y) == 800 and grad_a.x[-1] == 100
    assert sum(np.asarray(bars_a.y) * 8) == 2 and max(bars_a.y) == 1 / 8  # 12% of epochs 41 and 42
    line = ex.summary(e, v, a, b, "en")[1]
    assert "2 of 800 (0.25%)" in line and table["‖g‖ > θ (minibatches)"][0] in line
    assert fig.layout.shapes[0].y0 == 1.0  # θ drawn on the ‖g‖ trace


def test_while_a_pair_trains_its_arms_are_compared_at_the_same_epoch():
    e, v, sa, sb = clip_pair()
    a = view(sa, [10.0] * 91 + [5.0], status="running")
    b = view(sb, [10.0] * 89 + [9.0], status="running")
    lines = ex.summary(e, v, a, b, "en")
    assert lines[1].endswith("perplexity 10 and 9. (so far: epoch 90)"), lines  # not A's 5 at epoch 92
    labels = {arm: ex.arm_label(v, arm, "en") for arm in ("A", "B")}
    assert list(ex.pair_table(a, b, labels, "en")["epochs"]) == [90, 90]
    cut_a, cut_b = ex.at_same_epoch(a, b)
    assert (cut_a.epoch, cut_b.epoch) == (90, 90) and ex.minibatch_frame(cut_a, cut_b)["epoch"].max() == 90
    e = ex.EXERCISES["tuning"]
    v = e.variation("lr")
    assert "A (lr 1) 10 after 90 epochs, B (lr 2) 9 after 90" in ex.summary(e, v, a, b, "en")[0]
    finished = dataclasses.replace(b, status="diverged")  # an arm that ended sooner is not waited for
    assert [x.epoch for x in ex.at_same_epoch(a, finished)] == [92, 90]
    done_a = dataclasses.replace(a, status="done")
    assert ex.at_same_epoch(done_a, finished) == (done_a, finished)


def test_a_spike_is_a_loss_that_went_back_above_guessing_not_a_harder_minibatch():
    e, v, sa, sb = clip_pair()
    low = [[0.7, 0.9, 0.75, 1.3]] * 3  # late in training: a harder minibatch costs 1.9x the lowest, below log 28
    calm = ex.arm_stats(view(sb, [2.2] * 3, losses=low, norms=[[0.5, 1.5, 0.5, 0.5]] * 3), 1.0)
    assert calm.jump == pytest.approx(1.3 / 0.7) and not calm.spiked
    blown = ex.arm_stats(view(sb, [2.2] * 3, losses=low[:2] + [[0.7, 5.0, 3.0, 3.0]]), 1.0)
    assert blown.spiked and (blown.jump_from, blown.jump_to, blown.jump_epoch) == (0.7, 5.0, 3)
    a = view(sa, [2.2] * 3, losses=low, norms=[[0.5, 1.5, 0.5, 0.5]] * 3)
    line = ex.summary(e, v, a, view(sb, [2.3] * 3, losses=low, norms=[[0.5, 1.5, 0.5, 0.5]] * 3), "en")[0]
    assert line == ("B (no clipping): the gradient norm was above θ = 1 in 3 of 12 (25%) minibatches (largest 1.5), "
                    "but the loss never jumped back above guessing uniformly (3.33).")


def test_the_class_predicts_first_and_the_finished_pair_answers_beside_its_choice():
    e, v, sa, sb = clip_pair()
    assert ex.guess_kind(e, v) == "blowup"
    assert ex.guess_question(e, v, "en") == "Without clipping, what will B (no clipping) do?"
    a = view(sa, [20, 10, 6], norms=[[0.5, 2.0]] * 3)
    b_losses = [[3.0, 3.0], [2.0, 2.0], [2.0, 90.0]]
    running = view(sb, [20, 10, 6], status="running", norms=[[0.5, 30.0]] * 3, losses=b_losses)
    assert ex.guess_outcome(e, v, a, running) is None and ex.guess_reveal(e, v, "diverge", a, running) is None
    diverged = dataclasses.replace(running, status="diverged")
    assert ex.guess_outcome(e, v, a, diverged) == "diverge"
    assert ex.guess_outcome(e, v, a, dataclasses.replace(running, status="done")) == "spike"
    text, right = ex.guess_reveal(e, v, "diverge", a, diverged, "en")
    assert right and text == ("You predicted **diverge: its loss blows up and the run stops**; the runs: **diverge: its "
                              "loss blows up and the run stops**. Right.")
    text, right = ex.guess_reveal(e, v, "same", a, diverged, "zh")
    same = ex.guess_choice(e, v, "same", "zh")
    assert right is False and text.startswith(f"你的预测：**{same}**；训练结果：**发散")
    assert text.endswith("这次没猜中：下面的数字说明了原因。")
    assert ex.guess_reveal(e, v, None, a, diverged, "en") == ("The runs: **diverge: its loss blows up and the run "
                                                              "stops**.", None)
    tuning = ex.EXERCISES["tuning"]
    lr = tuning.variation("lr")
    assert ex.guess_kind(tuning, lr) == "lower"
    assert ex.guess_outcome(tuning, lr, view(sa, [9, 6.0]), view(sb, [9, 6.1])) == "same"  # within 2%
    assert ex.guess_outcome(tuning, lr, view(sa, [9, 6.0]), view(sb, [9, 5.0])) == "B"
    assert ex.guess_choice(tuning, lr, "B", "en") == "B (lr 2)"
    assert ex.guess_choice(tuning, lr, "same", "zh") == "差不多（相差不到 2%）"
    assert "ended about the same (within 2%)" in ex.summary(tuning, lr, view(sa, [9, 6.0]), view(sb, [9, 6.1]), "en")[0]
    for lang in ("en", "zh"):  # every question and choice is worded in both languages
        for ex_ in ex.EXERCISES.values():
            for var in ex_.variations:
                assert "{" not in ex.guess_question(ex_, var, lang)
                assert all(ex.guess_choice(ex_, var, c, lang) for c in ex.GUESS_CHOICES[ex.guess_kind(ex_, var)])


# Minibatches of 2 x 10 characters: their gradients are noisy enough that within 3 epochs of a 32-unit model an
# unclipped run's loss jumps above guessing at every seed 0-4 (python -m benchmarks.exercise_pairs --sizes ...).
TEST_SIZES = "hidden=32,batch=2,steps=10,epochs=3"


def test_the_clipping_pair_at_test_sizes_shows_its_effect_at_every_seed(tmp_path):
    from rnn_core.runs import RunRegistry, RunStore, Scheduler

    sizes = ex.Sizes.from_env(TEST_SIZES)
    tc = rnn_core.tokenize_corpus(rnn_core.builtin_corpus("toy_english", seed=0), "char", 10_000)
    reg = RunRegistry(RunStore(tmp_path, reference_root=None), Scheduler(threads=1))
    e, v, *_ = clip_pair()
    pairs = {seed: ex.start_pair(reg, tc, e, v, seed, sizes=sizes) for seed in range(5)}
    try:
        for seed, (run_a, run_b) in pairs.items():
            a, b = run_a.wait(300), run_b.wait(300)
            assert (a.settings.batch, a.settings.clip, b.settings.clip) == (2, 1.0, None)
            sa, sb = ex.pair_stats(a, b)
            assert sa.clipped > 0 and sa.final_ppl != sb.final_ppl, seed  # the arms differ
            assert sb.grad_max > 5 * sa.theta and (sb.spiked or sb.status == "diverged"), seed  # B blew up
            labels = {arm: ex.arm_label(v, arm, "en") for arm in ("A", "B")}
            table = ex.pair_table(a, b, labels, "en").set_index("arm")
            mb = ex.minibatch_frame(a, b)
            fig = xc.ab_minibatches(mb, ex.above_by_epoch(mb), labels, 1.0, a.target)
            grad = {arm: max(next(t for t in fig.data if t.name == labels[arm]).y) for arm in ("A", "B")}
            lines = ex.summary(e, v, a, b, "en")
            # the sentence says what the numbers show, with the table's numbers, and the table the chart's
            b_max = table.loc[labels["B"], "max ‖g‖"]
            assert lines[0].startswith(f"B (no clipping): the gradient norm reached {b_max}")
            assert table.loc[labels["B"], "max ‖g‖"] == formatting.num(grad["B"], 3)
            assert numbers(lines[0])[0] == pytest.approx(grad["B"], rel=5e-3)
            assert f"clipped {table.loc[labels['A'], '‖g‖ > θ (minibatches)']} minibatches" in lines[1]
            a_norms = mb[mb.arm == "A"].grad_norm
            assert table.loc[labels["A"], "‖g‖ > θ (minibatches)"] == ex.share(int((a_norms > 1).sum()), len(a_norms), "en")
            assert f"perplexity {table.loc[labels['A'], 'perplexity']}" in lines[1]
            assert ex.guess_outcome(e, v, a, b) in ("diverge", "spike")
    finally:
        reg.scheduler.close()


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
    e, v, sa, sb = clip_pair()
    a = view(sa, [20, 10, 6, 5.5], held=[30, 20, 12, 11],
             norms=[[0.5, 0.5], [1.2, 0.4], [3.25, 0.5], [0.5, 0.5]])
    b = view(sb, [20, 12, 9], status="diverged", norms=[[0.5, 0.5], [40, 0.3], [9, 2]])
    labels = {arm: ex.arm_label(v, arm, "en") for arm in ("A", "B")}
    table = ex.pair_table(a, b, labels, "en")
    assert list(table["arm"]) == [labels["A"], labels["B"]] and list(table["epochs"]) == [4, 3]
    assert list(table["perplexity"]) == ["5.5", "9"] and list(table["best"]) == ["5.5", "9"]
    assert list(table["max ‖g‖"]) == ["3.25", "40"]
    assert list(table["‖g‖ > θ (minibatches)"]) == ["2 of 8 (25%)", "3 of 6 (50%)"]
    assert list(table["held-out perplexity"]) == ["11", "–"] and list(table["s / epoch"]) == ["0.2", "0.2"]
    assert list(table["tokens/s"]) == ["50,000", "50,000"]  # 10,000 tokens an epoch in 0.2 s
    assert list(table["status"]) == ["finished", "stopped: diverged"]
    only_b = ex.pair_table(None, b, labels, "zh")
    assert len(only_b) == 1 and only_b.iloc[0][ex.tr("col.epochs", "zh")] == 3
    assert len(ex.pair_table(None, None, labels, "en")) == 0
    old = dataclasses.replace(a, records=tuple({k: x for k, x in r.items() if not k.startswith("batch_")}
                                               for r in a.records))  # recorded before minibatches were kept
    assert list(ex.pair_table(old, None, labels, "en")["max ‖g‖"]) == ["–"]
    assert ex.summary(e, v, old, old, "en")[0].startswith("A (θ = 1) and B (no clipping) ended about the same")


def test_the_card_names_the_switch_the_sizes_and_the_lesson_engine_when_an_arm_needs_it():
    clip, embedding, detach = (ex.EXERCISES[i] for i in ("clip", "embedding", "detach"))
    sa, sb = ex.pair_settings(clip, clip.variations[0], 0)
    line = ex.settings_line(sa, sb, "en")
    assert "**θ**: A 1, B no clipping" in line and f"batch {sa.batch}" in ex.settings_line(sa, sb)
    assert ex.settings_line(sa, sb, "zh").startswith("**θ**：A 1，B 不裁剪")
    emb = ex.pair_settings(embedding, embedding.variations[0], 0)
    assert ex.settings_line(*emb, "zh").startswith("**输入**：A 独热编码，B 嵌入")  # not "A onehot, B embedding"
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
    n = step.trainer().minibatches_per_epoch
    assert [r["step"] for r in step.history] == [1, 2, 3]
    assert (step.last.epoch, step.last.batch) == (1 + 2 // n, 2 % n)
    assert step.history[-1]["loss"] == step.last.loss and step.history[-1]["g_after"] <= 1.0 + 1e-6
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
    assert "step_trainer" not in state


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
    first = at.session_state["step_trainer"].last
    assert first.batch == 0 and first.X.shape == (32, 35)
    assert any("X[0]" in c.value for c in at.code)
    at.button(key="step_ten").click().run()
    n = at.session_state["step_trainer"].minibatches_per_epoch
    last = at.session_state["step_trainer"].last
    assert not at.exception and (last.epoch, last.batch) == (1 + 10 // n, 10 % n)
    assert len(at.session_state["step_trainer"].history) == 11
    at.toggle(key="step_detach").set_value(False).run()  # no detach: the lesson engine, the graph kept
    assert any("started again from minibatch 1" in i.value and "detach" in i.value for i in at.info)
    at.button(key="step_one").click().run()
    at.button(key="step_one").click().run()
    report = at.session_state["step_trainer"].last
    assert report.attached and report.graph_batches == 2
    assert any("still attached" in m.value for m in at.markdown)


def values(array) -> np.ndarray:
    """A plotly figure's array as its JSON holds it: a list, or a typed array ({"dtype", "bdata"})."""
    if isinstance(array, dict):
        flat = np.frombuffer(base64.b64decode(array["bdata"]), dtype=np.dtype(array["dtype"]))
        return flat.reshape([int(n) for n in str(array["shape"]).split(",")]) if "shape" in array else flat
    return np.asarray(array, dtype=float)


def minibatch_chart(at: AppTest) -> dict:
    """The card's minibatch chart (the one with θ drawn on it), as a dict."""
    figures = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    return next(f for f in figures
                if any(a.get("text", "").startswith("θ") for a in f["layout"].get("annotations", ())))


def test_a_short_pair_trains_to_the_end_and_the_page_reopens_it(monkeypatch):
    monkeypatch.setenv(ex.SIZES_ENV, TEST_SIZES)
    at = open_page(exercise="clip", seed="5")
    guess = at.radio(key="ex_guess_clip_off")  # predict first
    assert guess.value is None and guess.options == [ex.guess_choice(*clip_pair()[:2], c, "en")
                                                     for c in ("diverge", "spike", "same")]
    guess.set_value("diverge").run()
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
    at.run()
    actual = ex.guess_outcome(e, e.variations[0], a.view(), b.view())
    reveal = [m.value for m in (at.success if actual == "diverge" else at.warning)]
    assert any("You predicted **diverge" in r and ex.guess_choice(e, e.variations[0], actual, "en") in r
               for r in reveal), reveal
    again = open_page(exercise="clip", seed="5")  # another session, the same URL: the same pair, finished
    assert not again.exception
    assert any(i.value.startswith("The runs: **") for i in again.info)  # no prediction made there
    answer = next(m.value for m in again.markdown if m.value.startswith("**What the numbers say**"))
    lines = ex.summary(e, e.variations[0], a.view(), b.view(), "en")
    assert lines[0] in answer and lines[1] in answer
    table = again.dataframe[0].value.set_index("arm")
    labels = {arm: ex.arm_label(e.variations[0], arm, "en") for arm in ("A", "B")}
    assert list(table["epochs"]) == [a.epoch, b.epoch]
    # the sentences' numbers are the table's, and the table's are the chart's
    chart = minibatch_chart(again)
    traces = {(t["name"], t["type"], t.get("yaxis", "y")): t for t in chart["data"]}
    for arm in ("A", "B"):
        g = values(traces[(labels[arm], "scatter", "y")]["y"])
        per_epoch = values(traces[(labels[arm], "bar", "y3")]["customdata"]).reshape(-1, 3)  # epoch, above, all
        assert per_epoch[:, 1].sum() == (g > 1.0).sum() and per_epoch[:, 2].sum() == len(g)
        assert table.loc[labels[arm], "max ‖g‖"] == formatting.num(float(g.max()), 3)
        assert table.loc[labels[arm], "‖g‖ > θ (minibatches)"] == ex.share(int((g > 1.0).sum()), len(g), "en")
    b_max = float(values(traces[(labels["B"], "scatter", "y")]["y"]).max())
    a_clipped = table.loc[labels["A"], "‖g‖ > θ (minibatches)"]
    assert formatting.num(b_max, 3) in lines[0] and numbers(formatting.num(b_max, 3))[0] in numbers(lines[0])
    assert a_clipped in lines[1] and table.loc[labels["A"], "perplexity"] in lines[1]


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
    shown = runs.net_at("relu-embed", 1, {k: v.clone() for k, v in formula_params(net).items()}, "relu")
    assert shown.activation == "relu" and shown.input == "embedding"
    X = torch.randint(0, 12, (2, 6))
    with torch.no_grad():
        assert torch.equal(shown(X, shown.begin_state(2))[0], net(X, net.begin_state(2))[0])


def test_in_chinese_the_page_shows_no_english_sentence(monkeypatch):
    from tests.test_dashboard_pages import open_app
    from tests.test_i18n import english_runs, page_texts

    monkeypatch.setenv(ex.SIZES_ENV, "hidden=16,epochs=2")
    at = open_app("exercises", lang="zh", exercise="relu", seed="6")
    assert at.title[0].value.startswith("8 · 练习")
    at.button(key="ex_run").click().run()
    e = ex.EXERCISES["relu"]
    for run in ex.find_pair(runs.registry(), e, e.variations[0], 6):
        run.wait(300)
    at.run()
    at.button(key="step_one").click().run()
    at.button(key="step_one").click().run()  # two steps: the table of steps
    assert not at.exception
    texts = page_texts(at)
    assert any("梯度范数的峰值" in text for text in texts)  # the answer, in Chinese
    headers = [str(c) for d in at.dataframe for c in d.value.columns]  # the tables' headers: samples, steps, pair
    assert "迭代周期" in headers and "裁剪前 ‖g‖" in headers and "epoch" not in headers
    texts += headers
    found = {run: text for text in texts for run in english_runs(text)}
    assert not found, found


def test_the_epoch_that_blew_up_is_counted_drawn_and_quoted():
    e, v, sa, sb = clip_pair()
    quiet = [[0.5, 0.6, 0.4, 0.5]]
    a = view(sa, [20, 10, 6, 5], norms=quiet * 2 + [[0.5, 1.3, 0.6, 2.0], quiet[0]])
    b = view(sb, [20, 10, 6], norms=quiet * 3)
    # epoch 4 blew up at its 3rd minibatch: what the Trainer keeps on its DivergenceError, as the Run records it
    blown = {**b.records[-1], "epoch": 4, "loss": math.nan, "perplexity": math.inf, "diverged": True,
             "batch_losses": [1.8, 60.0, math.inf, math.nan], "batch_grad_norms": [0.5, 7.5e6, math.inf, math.nan]}
    b = dataclasses.replace(b, status="diverged", records=(*b.records, blown), good_epoch=3)
    labels = {arm: ex.arm_label(v, arm, "en") for arm in ("A", "B")}
    sb_stats = ex.arm_stats(b, 1.0)
    s = sb_stats
    assert (s.blowup_epoch, s.blowup_minibatch, s.grad_max, s.good_epoch) == (4, 3, 7.5e6, 3)
    lines = ex.summary(e, v, a, b, "en")
    assert lines[0] == ("B (no clipping): the gradient norm reached 7.5×10⁶ (θ = 1) and the loss jumped from 1.79 to "
                        "60 in epoch 4 (guessing uniformly: 3.33); at minibatch 3 of epoch 4 its loss or gradient "
                        "norm was no longer a finite number and the run stopped, keeping the model of epoch 3."), lines
    zh = ex.summary(e, v, a, b, "zh")
    assert "第 4 个迭代周期的第 3 个小批量" in zh[0] and "7.5×10⁶" in zh[0] and "保留第 3 个迭代周期的模型" in zh[0]
    table = ex.pair_table(a, b, labels, "en")
    assert list(table["max ‖g‖"]) == ["2", "7.5×10⁶, then not finite"] and list(table["perplexity"]) == ["5", "∞"]
    mb = ex.minibatch_frame(a, b)
    blew = mb[(mb["arm"] == "B") & mb["diverged"]]
    assert list(blew["minibatch"]) == [1, 2, 3, 4] and list(blew["x"]) == [3.25, 3.5, 3.75, 4.0]
    fig = xc.ab_minibatches(mb, ex.above_by_epoch(mb), labels, 1.0, 4)
    spec = json.loads(fig.to_json())
    grad_b = next(tr for tr in fig.data if tr.name == labels["B"] and tr.yaxis == "y")
    assert max(y for y in grad_b.y if math.isfinite(y)) == 7.5e6  # the spike, drawn on the ‖g‖ axis with θ
    crosses = [tr for tr in fig.data if getattr(tr, "mode", None) == "markers"]
    assert len(crosses) == 2 and [len(tr.x) for tr in crosses] == [2, 2]  # ‖g‖ inf, nan; loss inf, nan
    top = fig.layout.yaxis.range[1]
    assert crosses[0].y[0] <= 10 ** top and crosses[0].y[0] >= 7.5e6  # at the top of the axis, above the spike
    legend = spec["layout"]["legend"]  # at the chart's foot, under the x axis title, clear of the titles
    assert (legend["yref"], legend["y"], legend["yanchor"]) == ("container", 0, "bottom")
    # log axes labelled with their values: 20 reads "20", never "2"
    for axis in ("yaxis", "yaxis2"):
        ticks = spec["layout"][axis]
        assert ticks["type"] == "log" and len(ticks["ticktext"]) == len(ticks["tickvals"]) >= 2
        assert all(math.isclose(float(t.replace(",", "")), v) for t, v in zip(ticks["ticktext"], ticks["tickvals"]))
    curves = xc.ab_curves(ex.pair_frame(a, b), labels, 4, 28, "t")
    assert json.loads(curves.to_json())["layout"]["legend"] == legend
    assert ex.guess_outcome(e, v, a, b) == "diverge"


def test_the_samples_header_and_step_history_are_in_the_pages_language():
    from dashboard import exercise_step
    history = [{"step": 1, "epoch": 1, "minibatch": 1, "loss": 3.3, "g_before": 2.0, "g_after": 1.0}]
    assert list(exercise_step.history_table(history, "zh").columns) == ["步", "迭代周期", "小批量", "损失", "裁剪前 ‖g‖",
                                                                        "裁剪后 ‖g‖"]
    settings = exercise_step.StepSettings(hidden=256, batch=32, steps=35, lr=1.0, theta=None, detach=True, seed=0)
    intro = ex.intro(settings, "en")
    assert "batch 32, 35 time steps, 256 hidden units, lr 1, θ: no clipping" in intro
    assert "Training page" not in intro
    assert "256 个隐藏单元" in ex.intro(settings, "zh") and "不裁剪" in ex.intro(settings, "zh")


def test_in_chinese_a_card_with_one_pair_names_it_in_chinese():
    from tests.test_dashboard_pages import open_app

    at = open_app("exercises", lang="zh", exercise="clip")
    assert not at.exception
    assert any(m.value == "**对照**：θ = 1 对比 不裁剪" for m in at.markdown)  # not "对照: θ = 1 vs 不裁剪"
    assert any(c.value.startswith("**θ**：A 1，B 不裁剪") for c in at.caption)  # not "θ: A 1, B off"

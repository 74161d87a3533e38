"""The lesson's reference run shipped in data/reference/: the lesson's settings, its checkpoints, and the
perplexity its run.json states, recomputed here from the last checkpoint on the corpus."""
import math

import pytest

from rnn_core.reference import REFERENCE_ID, evaluate_run
from rnn_core.runs import REFERENCE_ROOT, RunSettings, RunStore


@pytest.fixture(scope="module")
def reference():
    run = RunStore(reference_root=REFERENCE_ROOT).load(REFERENCE_ID)
    assert run is not None, f"no reference run in {REFERENCE_ROOT}: python -m rnn_core.reference makes it"
    return run


def test_the_reference_run_used_the_lessons_settings(reference):
    lesson = RunSettings()
    assert reference.settings.differences(lesson).keys() <= {"corpus"}  # the corpus by its CLI name
    assert reference.settings.corpus == "time_machine"
    assert reference.origin == "reference" and reference.status == "done"
    assert [r["epoch"] for r in reference.records] == list(range(1, 501))
    assert reference.checkpoints == [1, 2, 5, 10, 20, 50, 100, 200, 500]
    assert len(reference.vocab) == 28 and reference.vocab.idx_to_token[:5] == ["<unk>", " ", "e", "t", "a"]


def test_the_reference_model_has_the_stated_perplexity_on_the_corpus(reference, time_machine):
    stated = reference.extra["eval_perplexity"]
    assert evaluate_run(reference) == pytest.approx(stated, rel=1e-4)
    assert stated < 1.3  # the lesson's run ends near 1
    # the training record of the last epoch (averaged while the weights moved) agrees with it
    assert reference.records[-1]["perplexity"] == pytest.approx(stated, rel=0.05)


def test_the_early_checkpoints_know_less(reference, time_machine):
    first, last = evaluate_run(reference, 1), evaluate_run(reference, 500)
    assert math.isfinite(first) and first > 5 * last

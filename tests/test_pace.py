"""The ETA: a run's own pace blended with the pace earlier runs with the same settings took (rnn_core.pace).

Synthetic epoch records only: no clock is read."""
import json
from types import SimpleNamespace

import pytest

from rnn_core import pace
from rnn_core.runs import RunSettings


def walls(per_epoch, n, first=None):
    """Cumulative wall-clock seconds at the end of each of ``n`` epochs: the first takes ``first``."""
    out, t = [], 0.0
    for i in range(n):
        t += first if (i == 0 and first is not None) else per_epoch
        out.append(t)
    return out


def test_nothing_known_gives_no_estimate():
    assert pace.eta_s([], 0.0, 0.0, 300, None) is None
    assert pace.eta_s([], 0.0, 0.5, 300, None) is None  # half an epoch, no prior: still nothing to go on


def test_prior_alone_before_the_first_epoch():
    assert pace.eta_s([], 0.3, 0.0, 300, 0.1) == pytest.approx(30.0)


def test_a_slow_first_epoch_is_left_out():
    """The first epoch took 2.7 s (thread probing, first calls), every later one 0.083 s: after 20 epochs the
    estimate is the later pace, not 30x it."""
    w = walls(0.083, 20, first=2.7)
    eta = pace.eta_s(w, w[-1], 0.0, 300, None)
    assert eta == pytest.approx(280 * 0.083, rel=1e-6)


def test_the_epoch_in_progress_counts_after_the_first():
    """One slow epoch done and half of the second at the true pace: the estimate follows the second."""
    w = walls(0.1, 1, first=2.0)
    eta = pace.eta_s(w, 2.0 + 0.05, 0.5, 100, None)
    assert eta == pytest.approx(98.5 * 0.1)


def test_without_a_prior_the_first_epoch_alone_gives_no_estimate():
    assert pace.eta_s([2.7], 2.7, 0.0, 300, None) is None
    assert pace.eta_s([2.7], 2.8, 0.25, 300, None) == pytest.approx(298.75 * 0.4)  # a quarter of epoch 2 in 0.1 s


def test_blend_moves_from_the_prior_to_the_own_pace():
    assert pace.blend(None, 0.0, 0.2) == 0.2
    assert pace.blend(0.1, 5.0, None) == 0.1
    assert pace.blend(0.1, 0.0, 0.2) == pytest.approx(0.2)
    assert pace.blend(0.1, pace.PRIOR_WEIGHT_S, 0.2) == pytest.approx(0.15)
    weights = [pace.blend(0.1, s, 0.2) for s in (0.5, 2, 8, 32)]
    assert weights == sorted(weights, reverse=True) and weights[-1] < 0.106


def test_with_a_prior_a_slow_first_epoch_is_never_off_by_ten():
    """The case that showed 13 min 35 s for a 25 s run: a 2.7 s first epoch of a 300-epoch run at 0.083 s.
    With the pace of an earlier run with the same settings, the estimate after the first epoch is within 2x."""
    truth = 299 * 0.083
    eta = pace.eta_s([2.7], 2.7, 0.0, 300, 0.083)
    assert truth / 2 < eta < truth * 2
    eta = pace.eta_s([2.7], 2.7 + 0.0415, 0.5, 300, 0.083)  # half of epoch 2 at the true pace
    assert abs(eta / (298.5 * 0.083) - 1) < 0.1


def test_a_pace_that_changes_is_followed_within_a_quarter():
    """100 epochs at 0.2 s, then 100 at 0.1 s (another run stopped): by epoch 200 the window is the last 50,
    and the run's 29.8 s after its first epoch outweigh the prior (0.2 s, the old pace) ~15 to 1."""
    w = walls(0.2, 100)
    w += [w[-1] + 0.1 * (i + 1) for i in range(100)]
    eta = pace.eta_s(w, w[-1], 0.0, 300, 0.2)
    assert eta == pytest.approx(100 * (0.1 * 29.8 + 0.2 * 2) / 31.8)
    assert pace.eta_s(w, w[-1], 0.0, 300, None) == pytest.approx(100 * 0.1)


def test_seconds_per_token_leaves_the_first_epoch_out_and_needs_three():
    assert pace.seconds_per_token([1.0, 1.1], 1000) is None
    assert pace.seconds_per_token(walls(0.1, 3, first=3.0), 1000) == pytest.approx(1e-4)
    assert pace.seconds_per_token(walls(0.1, 21, first=3.0), 1000) == pytest.approx(1e-4)
    assert pace.seconds_per_token(walls(0.1, 21), 0) is None


def test_the_key_holds_the_settings_that_set_the_cost():
    a = pace.pace_key("fast", 512, 32, 35, 28, "CPU")
    assert a == pace.pace_key("fast", 512, 32, 35, 28, "CPU")
    for other in (pace.pace_key("lesson", 512, 32, 35, 28, "CPU"), pace.pace_key("fast", 256, 32, 35, 28, "CPU"),
                  pace.pace_key("fast", 512, 64, 35, 28, "CPU"), pace.pace_key("fast", 512, 32, 10, 28, "CPU"),
                  pace.pace_key("fast", 512, 32, 35, 4580, "CPU"), pace.pace_key("fast", 512, 32, 35, 28, "cuda"),
                  pace.pace_key("fast", 512, 32, 35, 28, "CPU", activation="relu")):
        assert other != a


def view(run_id="r1", records=(), running=True, epochs=300, wall_s=0.0, fraction=0.0, tokens=8960, **settings):
    """A stand-in for rnn_core.runs.RunView with the fields the ETA reads."""
    return SimpleNamespace(id=run_id, settings=RunSettings(epochs=epochs, **settings), running=running,
                           records=tuple({"wall_s": w} for w in records), wall_s=wall_s, epoch_fraction=fraction,
                           tokens_per_epoch=tokens, target=epochs, vocab_size=28, device="CPU")


@pytest.fixture
def paces(monkeypatch):
    fresh = pace.Paces()
    monkeypatch.setattr(pace, "PACES", fresh)
    return fresh


def test_a_runs_pace_is_kept_in_the_store_and_seeds_the_next_run(paces, tmp_path):
    w = walls(0.09, 30, first=2.0)
    pace.observe(tmp_path, view("first", w, wall_s=w[-1]))
    kept = json.loads((tmp_path / pace.FILE).read_text())
    (key, runs), = kept.items()
    assert "hidden=512" in key and runs["first"] == pytest.approx(0.09 / 8960)
    # A new process (fresh memory) reads it back; a new run with the same settings starts from that pace.
    fresh = pace.Paces()
    fresh.read(tmp_path)
    assert fresh.prior(key) == pytest.approx(0.09 / 8960)
    pace.PACES = fresh
    assert pace.view_eta_s(view("second")) == pytest.approx(300 * 0.09)
    # The run's own pace is never its own prior; other settings have none.
    assert pace.view_eta_s(view("first")) is None
    assert pace.view_eta_s(view("third", hidden=64)) is None
    assert pace.view_eta_s(view("second", running=False)) is None


def test_the_prior_is_the_median_of_the_last_runs(paces):
    for i, rate in enumerate([1.0, 9.0, 2.0, 3.0, 100.0, 2.5, 2.6]):
        paces.remember(None, "k", f"run{i}", rate)
    assert len(paces.stores[""]["k"]) == pace.KEEP_RUNS  # the two oldest dropped
    assert paces.prior("k") == 2.6  # the median of 2, 3, 100, 2.5, 2.6
    assert paces.prior("k", exclude="run4") == pytest.approx(2.55)


def test_a_damaged_pace_file_is_ignored(paces, tmp_path):
    (tmp_path / pace.FILE).write_text("{not json")
    paces.read(tmp_path)
    assert paces.stores == {}
    (tmp_path / pace.FILE).write_text(json.dumps({"k": {"a": -1, "b": "x", "c": 0.5}, "j": [1]}))
    paces.refresh(every_s=0)
    assert paces.stores == {str(tmp_path): {"k": {"c": 0.5}}}


def test_a_stores_pace_file_holds_only_its_own_runs(paces, tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    one.mkdir(), two.mkdir()
    paces.remember(one, "k", "a", 1.0)
    paces.remember(two, "k", "b", 3.0)
    paces.remember(None, "j", "c", 5.0)
    assert json.loads((two / pace.FILE).read_text()) == {"k": {"b": 3.0}}
    assert json.loads((one / pace.FILE).read_text()) == {"k": {"a": 1.0}}
    assert paces.prior("k") == 2.0  # a prior draws on every store read

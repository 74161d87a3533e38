"""Runs as background jobs (rnn_core.runs): the scheduler's turns, stop and continue, the store on disk,
checkpoints at log-spaced epochs, divergence kept to the last good model, and checkpoint files."""
import contextlib
import json
import math

import pytest
import torch

import rnn_core
from rnn_core.checkpoint import CheckpointError, read_checkpoint
from rnn_core import environment
from rnn_core.runs import Run, RunLimitError, RunRegistry, RunSettings, RunStore, Scheduler, checkpoint_epochs
from rnn_core.training import BLOWUP_EPOCHS, BLOWUP_FACTOR, DivergenceError, Trainer
from tests.waiting import until

SMALL = RunSettings(corpus="counting", batch=8, steps=10, hidden=16, epochs=40, engine="fast", device="cpu",
                    prefix="one")


@pytest.fixture(scope="module")
def counting():
    return rnn_core.tokenize_corpus(rnn_core.builtin_corpus("counting", seed=0, n_chars=3000), "char")



def make_run(tc, store=None, **changes):
    return Run.create(RunSettings(**{**SMALL.__dict__, **changes}), tc, store=store)


def test_checkpoints_are_log_spaced_and_include_the_last():
    assert checkpoint_epochs(500) == [1, 2, 5, 10, 20, 50, 100, 200, 500]
    assert checkpoint_epochs(37) == [1, 2, 5, 10, 20, 37]
    assert checkpoint_epochs(1) == [1]


def test_a_run_trains_to_its_target_with_one_record_per_epoch(counting):
    run = make_run(counting)
    scheduler = Scheduler(chunk_s=0.02, threads=1)
    scheduler.start(run)
    view = run.wait(60)
    scheduler.close()
    assert view.status == "done" and view.epoch == 40
    assert [r["epoch"] for r in view.records] == list(range(1, 41))
    walls = [r["wall_s"] for r in view.records]
    assert walls == sorted(walls) and walls[-1] <= view.wall_s
    assert view.checkpoints == (1, 2, 5, 10, 20, 40)
    assert view.progress == 1.0 and view.eta_s is None


def test_the_scheduler_gives_active_runs_turns_in_rotation(counting):
    a, b, c = (make_run(counting, epochs=10_000, seed=i) for i in range(3))
    turns = []
    for run in (a, b, c):
        advance = run.advance

        def counted(budget_s, run=run, advance=advance):
            turns.append(run.id)
            return advance(budget_s)
        run.advance = counted
    scheduler = Scheduler(chunk_s=0.01, threads=1)
    for run in (a, b, c):
        scheduler.start(run)
    n0 = len(turns) + 1  # from the turn after the one in progress, all three are queued
    until(lambda: len(turns) >= n0 + 30)
    for run in (a, b, c):
        scheduler.stop(run)
    scheduler.close()
    window = turns[n0:n0 + 30]
    # round robin: every three turns in a row hold each run once, so no run gets ahead of another
    for i in range(0, 30, 3):
        assert sorted(window[i:i + 3]) == sorted([a.id, b.id, c.id]), window
    assert all(window[i] == window[i + 3] for i in range(27))


def test_the_server_s_cap_on_runs_training_at_once_comes_from_the_environment(counting, monkeypatch):
    monkeypatch.setenv(environment.MAX_RUNS, "2")  # the default, 128, in small
    scheduler = Scheduler(chunk_s=0.01, threads=1)
    a, b, c = (make_run(counting, epochs=10_000, seed=i) for i in range(3))
    try:
        scheduler.start(a)
        scheduler.start(b)
        with pytest.raises(RunLimitError) as refused:
            scheduler.start(c)
        assert refused.value.key == "server_limit" and refused.value.values["n"] == 2 and not c.running
        scheduler.stop(a)
        scheduler.start(c)  # room again
        assert c.running
    finally:
        for run in (a, b, c):
            scheduler.stop(run)
        scheduler.close()


def test_runs_are_made_by_the_scheduler_the_registry_holds_and_wait_follows_their_epochs(counting, tmp_path):
    registry = RunRegistry(RunStore(tmp_path, reference_root=None), Scheduler(chunk_s=0.02, threads=1))
    run = registry.create(RunSettings(**{**SMALL.__dict__, "epochs": 10_000}), counting, run_id="made-here")
    try:
        assert run.id == "made-here" and registry.get("made-here") is run and run.store is registry.store
        assert run.view().status == "new" and run.wait(60, past_epoch=0).status == "new"  # not running: at once
        registry.scheduler.start(run)
        assert run.wait(60, past_epoch=2).epoch >= 3  # woken by the epochs, not by the run's end
        assert run.running
    finally:
        registry.scheduler.stop(run)
        registry.scheduler.close()
    assert run.wait(60).status == "stopped"


def test_the_probe_is_the_first_minibatch_the_run_trains_on(counting):
    run = make_run(counting, partition="random", epochs=1)
    X, Y = run.probe
    first = next(iter(rnn_core.make_loader(counting, 8, 10, True, seed=0)))  # a loader of the same seed
    assert torch.equal(X, first[0]) and torch.equal(Y, first[1])
    assert torch.equal(next(iter(run.trainer.loader))[0], X)  # the trainer's loader starts with it still


def test_each_run_trains_with_the_thread_count_that_was_fastest_and_retries_the_other_now_and_then(counting):
    run = make_run(counting)
    scheduler = Scheduler(max_threads=4, explore_every=5)
    assert scheduler.threads_for(run, 1) == 1  # untimed choices first
    scheduler.record_rate(run.id, 1, 100.0)
    assert scheduler.threads_for(run, 2) == 4
    scheduler.record_rate(run.id, 4, 20.0)  # 4 threads on busy cores: slower
    assert [scheduler.threads_for(run, turn) for turn in range(1, 11)] == [1, 1, 1, 1, 4, 1, 1, 1, 1, 4]
    assert Scheduler(threads=2).threads_for(run, 5) == 2  # a fixed count is never changed
    for _ in range(10):  # the load went away: 4 threads became faster
        scheduler.record_rate(run.id, 4, 300.0)
    assert scheduler.threads_for(run, 1) == 4


def test_stop_is_final_until_continue_and_continue_goes_on_from_there(counting, tmp_path):
    store = RunStore(tmp_path, reference_root=None)
    run = make_run(counting, store=store, epochs=10_000)
    clock = make_run(counting, epochs=10_000, seed=1)  # the test's clock: another run's epochs
    scheduler = Scheduler(chunk_s=0.02, threads=1)
    scheduler.start(run)
    until(lambda: run.epoch >= 3)
    scheduler.stop(run)
    stopped = run.view()
    assert stopped.status == "stopped"
    scheduler.start(clock)
    until(lambda: clock.epoch >= 3)  # turns in rotation: a run still queued would have trained meanwhile
    scheduler.stop(clock)
    assert run.view().records == stopped.records and run.view().epoch_fraction == 0.0  # nothing trained it
    assert stopped.epoch in stopped.checkpoints  # the epoch it stopped at can be downloaded
    assert (tmp_path / run.id / f"ckpt-{stopped.epoch:06d}.pt").exists()
    scheduler.start(run)
    until(lambda: run.epoch >= stopped.epoch + 2)
    scheduler.stop(run)
    scheduler.close()
    assert [r["epoch"] for r in run.view().records] == list(range(1, run.epoch + 1))


def test_a_run_read_back_from_the_store_has_its_records_and_checkpoints(counting, tmp_path):
    store = RunStore(tmp_path, reference_root=None)
    run = make_run(counting, store=store, epochs=12)
    run.resume()
    while run.advance(1.0):
        pass
    again = RunStore(tmp_path, reference_root=None).load(run.id)
    assert again.view().records == run.view().records
    assert again.checkpoints == [1, 2, 5, 10, 12] and again.status == "done" and again.trainer is None
    for epoch in again.checkpoints:  # every checkpoint is the model at that epoch
        params = again.checkpoint(epoch)
        assert params["W_hh"].shape == (16, 16)
    final = again.checkpoint(12)
    assert all(torch.equal(final[k], v) for k, v in run.latest()[1].items())
    assert not list(tmp_path.rglob("*.tmp"))  # written through renames only
    assert json.loads((tmp_path / run.id / "run.json").read_text())["settings"]["hidden"] == 16


def test_the_store_removes_the_oldest_runs_past_its_cap(counting, tmp_path):
    store = RunStore(tmp_path, reference_root=None)
    runs = []
    for i in range(3):
        run = make_run(counting, store=store, epochs=2, seed=i)
        run.resume()
        while run.advance(1.0):
            pass
        run.close()  # finished, and no longer held by this process
        runs.append(run)
    size = sum(f.stat().st_size for f in (tmp_path / runs[0].id).iterdir())
    store.max_bytes = int(size * 2.5)
    removed = store.prune(keep={runs[0].id})
    assert removed == [runs[1].id]  # the oldest not kept; the newest stays
    assert not (tmp_path / runs[1].id).exists()
    assert store.load(runs[0].id) is not None and store.load(runs[2].id) is not None


def test_the_registry_keeps_few_runs_in_memory_and_reads_the_rest_back(counting, tmp_path):
    registry = RunRegistry(RunStore(tmp_path, reference_root=None), Scheduler(threads=1), max_in_memory=2)
    made = []
    for i in range(4):
        run = make_run(counting, store=registry.store, epochs=1, seed=i)
        run.resume()
        while run.advance(1.0):
            pass
        made.append(registry.add(run))
    assert len(registry._runs) == 2
    back = registry.get(made[0].id)
    assert back is not made[0] and back.view().records == made[0].view().records
    assert registry.get("../../etc") is None and registry.get("no-such-run") is None


def test_a_class_beyond_the_memory_limit_sees_its_own_training_runs(counting, tmp_path):
    """More runs training than the registry keeps in memory: each new run, made before it starts, is held (not
    the one dropped), and every training run reads back as the scheduler's own object, never a stale copy from
    disk that says "new"."""
    registry = RunRegistry(RunStore(tmp_path, reference_root=None), Scheduler(chunk_s=0.02, threads=1),
                           max_in_memory=2)
    with long_runs(registry, counting, 4) as made:
        for run in made:
            assert registry.get(run.id) is run and run.running
        for run in made:  # each session's page sees its run's epochs
            until(lambda run=run: registry.get(run.id).view().epoch >= 1)


@contextlib.contextmanager
def long_runs(registry, corpus, n: int):
    """``n`` runs of 10,000 epochs made by the registry and training, a class's; stopped at the end."""
    made = []
    try:
        for i in range(n):
            run = registry.create(RunSettings(**{**SMALL.__dict__, "epochs": 10_000, "seed": i}), corpus)
            registry.scheduler.start(run)
            made.append(run)
        yield made
    finally:
        for run in made:
            registry.scheduler.stop(run)
        registry.scheduler.close()


def test_training_runs_do_not_count_against_the_memory_limit(counting, tmp_path, monkeypatch):
    """With more runs training than the registry keeps, a finished run every page reads (the reference run) stays
    in memory: it is not read back from disk on every read."""
    registry = RunRegistry(RunStore(tmp_path, reference_root=None), Scheduler(chunk_s=0.02, threads=1),
                           max_in_memory=1)
    finished = make_run(counting, store=registry.store, epochs=1)
    finished.resume()
    while finished.advance(1.0):
        pass
    registry.add(finished)
    with long_runs(registry, counting, 3) as made:
        # made but not started, each new run counted: the finished one was let go of, and is read back once
        kept = registry.get(finished.id)
        assert kept.view().records == finished.view().records
        reads = []
        real_load = registry.store.load
        monkeypatch.setattr(registry.store, "load", lambda run_id: reads.append(run_id) or real_load(run_id))
        for _ in range(3):
            assert registry.get(kept.id) is kept
            assert all(registry.get(run.id) is run for run in made)
        assert reads == []


def test_a_run_made_but_not_yet_started_is_not_dropped_by_other_sessions_pages(counting, tmp_path):
    """Start makes a run, then starts it; pages of other sessions that read runs in between must not close it (a
    worker's run closed so was 'stopped' at epoch 0 before it ever started)."""
    registry = RunRegistry(RunStore(tmp_path, reference_root=None), Scheduler(threads=1), max_in_memory=1)
    waiting = registry.create(RunSettings(**{**SMALL.__dict__, "epochs": 1}), counting)
    others = [registry.create(RunSettings(**{**SMALL.__dict__, "epochs": 1, "seed": i}), counting) for i in (1, 2)]
    for other in others:  # finished runs, read back by other sessions' pages
        other.resume()
        while other.advance(1.0):
            pass
        registry.get(other.id)
    assert registry.get(waiting.id) is waiting and waiting.locked and waiting.view().status == "new"
    registry.scheduler.start(waiting)
    try:
        assert waiting.wait(60).status == "done"
    finally:
        registry.scheduler.close()


def test_a_run_refused_by_the_server_s_cap_is_let_go_of(counting, tmp_path):
    registry = RunRegistry(RunStore(tmp_path, reference_root=None), Scheduler(chunk_s=0.02, threads=1, max_active=1))
    first = registry.create(RunSettings(**{**SMALL.__dict__, "epochs": 10_000}), counting)
    registry.start(first)
    refused = registry.create(RunSettings(**{**SMALL.__dict__, "seed": 1}), counting)
    try:
        with pytest.raises(RunLimitError):
            registry.start(refused)  # the registry lets go of the new run the scheduler refused
        assert refused.id not in registry._runs and not refused.locked
        assert registry.get(first.id) is first and first.running
    finally:
        registry.scheduler.stop(first)
        registry.scheduler.close()


def test_a_run_stopped_and_started_again_within_one_turn_trains_on(counting):
    """Continue pressed while the stopped run's last turn is still ending (a busy machine): the turn ends on the
    stop, the run is running again, and the scheduler must give it turns, not drop it."""
    scheduler = Scheduler(chunk_s=0.02, threads=1)
    run = make_run(counting, epochs=10_000)
    real_advance = run.advance

    def advance_once(budget_s):
        run.advance = real_advance
        run.request_stop()  # a stop lands during the turn
        more = real_advance(budget_s)  # the turn ends on it
        scheduler.start(run)  # Continue, while the run is still the scheduler's current one
        return more

    run.advance = advance_once
    try:
        scheduler.start(run)
        assert run.wait(60, past_epoch=2).epoch >= 3 and run.running
    finally:
        scheduler.stop(run)
        scheduler.close()


def test_clipping_off_and_a_huge_learning_rate_are_flagged_diverged_keeping_the_last_good_model(counting):
    run = make_run(counting, hidden=64, lr=1e4, clip=None, epochs=30)
    run.resume()
    while run.advance(1.0):
        pass
    view = run.view()
    assert view.status == "diverged" and "Lower the learning rate" in view.error
    assert view.good_epoch < view.epoch + 1
    epoch, params = run.latest()
    assert epoch == view.good_epoch and all(torch.isfinite(p).all() for p in params.values())
    assert all(torch.isfinite(p).all() for p in run.trainer.net.params)
    assert all(c <= view.good_epoch for c in view.checkpoints)


def test_a_loss_far_above_guessing_for_three_epochs_is_divergence(counting):
    V = len(counting.vocab)
    net = rnn_core.make_model("lesson", V, 16, "cpu", seed=0)
    with torch.no_grad():
        net.params[3].normal_(0, 300.0)  # W_hq: confident and wrong, a finite loss of hundreds of nats
    loader = rnn_core.make_loader(counting, 8, 10)
    trainer = Trainer(net, loader, counting.vocab, lr=1e-9, sample_every=0)
    start = [p.clone() for p in net.params]
    with pytest.raises(DivergenceError, match="for 3 epochs"):
        for _ in range(10):
            trainer.train_epoch()
    assert trainer.epoch == BLOWUP_EPOCHS and trainer.good_epoch == 0
    assert all(r.loss > BLOWUP_FACTOR * math.log(V) and math.isfinite(r.loss) for r in trainer.history)
    assert all(torch.equal(p, s) for p, s in zip(net.params, start))  # reset to the last good model


def test_checkpoint_bytes_load_as_a_run_and_bad_files_are_refused_in_one_sentence(counting, tmp_path):
    run = make_run(counting, epochs=5)
    run.resume()
    while run.advance(1.0):
        pass
    data = run.checkpoint_bytes(5)
    params, vocab, config = read_checkpoint(data, "m.pt")
    assert config["epoch"] == 5 and config["hidden"] == 16 and vocab.idx_to_token == counting.vocab.idx_to_token
    loaded = Run.from_checkpoint(params, vocab, config, name="m.pt")
    assert loaded.view().checkpoints == (5,) and loaded.view().status == "done"
    assert torch.equal(loaded.checkpoint(5)["W_hh"], run.latest()[1]["W_hh"])

    wrong = {k: v.clone() for k, v in params.items()}
    wrong["W_hh"] = torch.zeros(16, 15)
    broken = dict(torch.load(__import__("io").BytesIO(data), weights_only=True), params=wrong)
    nan = dict(torch.load(__import__("io").BytesIO(data), weights_only=True),
               params={**params, "b_q": torch.full_like(params["b_q"], float("nan"))})
    cases = {
        b"just some text": "could not be read",
        rnn_core.checkpoint.payload_bytes({"weights": torch.zeros(3)}): "format tag",
        rnn_core.checkpoint.payload_bytes(broken): "wrong shape",
        rnn_core.checkpoint.payload_bytes(nan): "non-finite",
    }
    for payload, expected in cases.items():
        with pytest.raises(CheckpointError, match=expected) as info:
            read_checkpoint(payload, "bad.pt")
        assert "\n" not in str(info.value) and "bad.pt" in str(info.value)


# ---------------------------------------------------------------- values read back, uploads, missing checkpoints

@pytest.fixture(scope="module")
def five_epochs(counting):
    """A small run trained 5 of 40 epochs, and its checkpoint at epoch 5 as a file's bytes."""
    run = make_run(counting, hidden=8, epochs=40)
    run.resume()
    while run.epoch < 5:
        run.advance(0.05)
    run.request_stop()
    run.settle()
    return run, run.checkpoint_bytes(5)


def with_config(data: bytes, **changes) -> bytes:
    import io

    payload = torch.load(io.BytesIO(data), weights_only=True)
    return rnn_core.checkpoint.payload_bytes({**payload, "config": {**payload["config"], **changes}})


@pytest.mark.parametrize("changes, expected", [
    ({"epoch": "abc"}, "epoch must be a whole number from 0 to 100,000 (got 'abc')"),
    ({"epoch": -3}, "epoch must be a whole number from 0 to 100,000 (got -3)"),
    ({"epoch": 2.5}, "epoch must be a whole number"),
    ({"batch": "abc"}, "batch must be a whole number from 1 to 1,024 (got 'abc')"),
    ({"epochs": 0}, "epochs must be a whole number from 1"),
    ({"perplexity": "abc"}, "perplexity must be a finite number of at least 1 (got 'abc')"),
    ({"perplexity": float("nan")}, "perplexity must be a finite number of at least 1"),
    ({"perplexity": 0.5}, "perplexity must be a finite number of at least 1"),
    ({"lr": float("inf")}, "lr must be a finite number above 0"),
    ({"clip": "off"}, "clip must be a finite number above 0"),
    ({"partition": 3}, "partition must be one of sequential, random"),
    ({"detach": 1}, "detach must be true or false"),
    ({"prefix": ["a"]}, "prefix must be text"),
    ({"seed": True}, "seed must be a whole number"),
])
def test_a_checkpoint_config_of_wrong_types_or_ranges_is_refused_naming_the_field(five_epochs, changes, expected):
    _, data = five_epochs
    with pytest.raises(CheckpointError) as info:
        read_checkpoint(with_config(data, **changes), "crafted.pt")
    text = str(info.value)
    assert text.startswith("crafted.pt: ") and expected in text and "\n" not in text
    assert info.value.values["source"] == "crafted.pt" and info.value.values["field"] == next(iter(changes))


def test_a_checkpoint_config_read_back_is_typed_and_unknown_keys_are_kept(five_epochs):
    _, data = five_epochs
    _, _, config = read_checkpoint(with_config(data, epoch=5.0, lr=2, note="mine"), "m.pt")
    assert config["epoch"] == 5 and type(config["epoch"]) is int and config["lr"] == 2.0 and config["note"] == "mine"
    params, vocab, config = read_checkpoint(data, "m.pt")
    with pytest.raises(CheckpointError, match="m.pt: batch must be"):  # a config given by hand is checked too
        Run.from_checkpoint(params, vocab, {**config, "batch": "abc"}, name="m.pt")


def test_an_uploaded_checkpoint_shows_its_own_epoch_and_perplexity(five_epochs, tmp_path):
    run, data = five_epochs
    params, vocab, config = read_checkpoint(data, "m.pt")
    store = RunStore(tmp_path, reference_root=None)
    uploaded = Run.from_checkpoint(params, vocab, config, store=store, name="m.pt")
    ppl = run.view().records[4]["perplexity"]
    for view in (uploaded.view(), store.read(uploaded.id).view()):  # in memory and read back from run.json
        assert view.origin == "uploaded" and view.records == () and view.status == "done"
        assert view.epoch == 5 and view.target == 40  # trained 5 of the 40 epochs its run was set to
        assert view.perplexity == pytest.approx(ppl) and view.perplexity_at(5) == pytest.approx(ppl)
        assert view.record(5) is None and view.perplexity_at(4) is None and view.checkpoints == (5,)
    assert uploaded.epoch == 5
    # a file that says nothing of its run's length: its epoch is the target
    bare = {k: v for k, v in config.items() if k != "epochs"}
    assert Run.from_checkpoint(params, vocab, bare, name="m.pt").view().target == 5
    # a trained run: the figures come from its records
    view = run.view()
    assert view.epoch == len(view.records) and view.perplexity == view.records[-1]["perplexity"]
    assert view.record(2) == view.records[1] and view.file_epoch is None


def test_a_checkpoint_that_is_missing_is_a_checkpoint_error(counting, tmp_path):
    store = RunStore(tmp_path, reference_root=None)
    run = make_run(counting, store=store, hidden=8, epochs=5)
    run.resume()
    while run.advance(1.0):
        pass
    (tmp_path / run.id / "ckpt-000002.pt").unlink()  # removed (pruned) after the run listed it
    back = store.read(run.id)
    for r in (run, back):
        with pytest.raises(CheckpointError) as info:
            r.checkpoint(2)
        assert str(info.value) == f"Run {run.id} has no checkpoint at epoch 2."
        assert info.value.key == "checkpoint_no_epoch"
        with pytest.raises(CheckpointError, match="no checkpoint at epoch 7"):
            r.checkpoint(7)  # never kept
    with pytest.raises(CheckpointError, match="no checkpoint at epoch 3"):
        make_run(counting, hidden=8).checkpoint(3)  # a run without a store
    # a checkpoint file of another model in the run's folder is refused, not shown as this run's
    other = make_run(counting, hidden=16, epochs=1)
    other.resume()
    other.advance(1.0)
    (tmp_path / run.id / "ckpt-000001.pt").write_bytes(other.checkpoint_bytes(1))
    with pytest.raises(CheckpointError, match="holds another model \\(16 hidden units"):
        back.checkpoint(1)
    import shutil

    shutil.rmtree(tmp_path / run.id)  # the whole run removed while a page held it
    with pytest.raises(CheckpointError, match="no checkpoint at epoch 1"):
        back.checkpoint(1)

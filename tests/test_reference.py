"""The lesson's reference run shipped in data/reference/: the lesson's settings, its checkpoints, and the
perplexity its run.json states, recomputed here from the last checkpoint on the corpus. Its command,
``python -m rnn_core.reference``: a real command line that never replaces the shipped run unless told to."""
import hashlib
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rnn_core.reference import REFERENCE_ID, SHIPPED, evaluate_run, main
from rnn_core.runs import REFERENCE_ROOT, RunSettings, RunStore

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def reference():
    run = RunStore(reference_root=REFERENCE_ROOT).load(REFERENCE_ID)
    assert run is not None, f"no reference run in {REFERENCE_ROOT}: python -m rnn_core.reference --force makes it"
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


def shipped_files() -> dict[str, tuple[str, int]]:
    """The shipped run's files: name -> (SHA-1, mtime in ns)."""
    return {f.name: (hashlib.sha1(f.read_bytes()).hexdigest(), f.stat().st_mtime_ns) for f in SHIPPED.iterdir()}


def test_help_prints_the_usage_and_writes_nothing():
    before = shipped_files()
    result = subprocess.run([sys.executable, "-m", "rnn_core.reference", "--help"], cwd=ROOT, capture_output=True,
                            text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0 and result.stdout.startswith("usage: python -m rnn_core.reference"), result
    for flag in ("--out", "--epochs", "--force"):
        assert flag in result.stdout
    assert result.stderr == ""
    assert shipped_files() == before and len(before) == 10


@pytest.mark.parametrize("argv", [["--out", str(SHIPPED)], ["--out", str(SHIPPED), "--epochs", "1"],
                                  ["--out", os.path.relpath(SHIPPED)]], ids=["default-epochs", "one-epoch", "relative"])
def test_the_shipped_run_is_never_replaced_without_force(argv, capsys):
    before = shipped_files()
    assert main(argv) == 2
    out, err = capsys.readouterr()
    lines = [line for line in err.splitlines() if line.strip()]
    assert out == "" and len(lines) == 1 and "Traceback" not in err
    assert lines[0] == f"error: --out {argv[1]} is the shipped reference run: add --force to replace it."
    assert shipped_files() == before
    assert not [p.name for p in REFERENCE_ROOT.iterdir() if p.name.startswith(".")]  # no scratch left


def test_a_reference_run_into_a_new_directory_repeats_its_figures_and_replaces_only_with_force(
        tmp_path, capsys, time_machine):
    out = tmp_path / "ref-a"
    assert main(["--out", str(out), "--epochs", "2", "--quiet"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    first = json.loads((out / "run.json").read_text())
    assert sorted(p.name for p in out.iterdir()) == ["ckpt-000001.pt", "ckpt-000002.pt", "run.json"]
    assert first["origin"] == "reference" and first["settings"]["engine"] == "fast"
    assert first["extra"]["made_with"]["threads"] == 1
    assert summary["eval_perplexity"] == first["extra"]["eval_perplexity"]
    assert [r["threads"] for r in first["records"]] == [1, 1]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ref-a"]  # the scratch directory is gone

    (out / "notes.txt").write_text("mine")
    assert main(["--out", str(out), "--epochs", "2", "--quiet"]) == 2
    assert "is not empty: add --force" in capsys.readouterr().err
    assert (out / "notes.txt").exists()

    assert main(["--out", str(out), "--epochs", "2", "--quiet", "--force"]) == 0
    capsys.readouterr()
    second = json.loads((out / "run.json").read_text())
    assert not (out / "notes.txt").exists()
    # the same command on the same machine: the same figures, bit for bit
    assert [r["perplexity"] for r in second["records"]] == [r["perplexity"] for r in first["records"]]
    assert second["extra"]["eval_perplexity"] == first["extra"]["eval_perplexity"]

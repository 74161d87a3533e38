"""The headless trainer: a JSON line on success, status 2 and one line on stderr for bad input.

One test runs it as the program a user starts; the rest call the same ``main(argv)`` in-process, which spares
a Python and torch start-up per case.
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rnn_core.train import main

ROOT = Path(__file__).resolve().parent.parent


def test_python_m_rnn_core_train_prints_progress_then_one_json_line(tmp_path):
    save = tmp_path / "model.pt"
    result = subprocess.run([sys.executable, "-m", "rnn_core.train", "--corpus", "counting", "--epochs", "2",
                             "--hidden", "16", "--batch-size", "8", "--num-steps", "10", "--prefix", "a b",
                             "--save", str(save)], cwd=ROOT, env={**os.environ, "OMP_NUM_THREADS": "1"},
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["corpus"] == "counting" and summary["epochs"] == 2
    assert "2/2" in result.stderr  # the progress bar
    assert save.exists()


def test_quick_run_on_the_lesson_text_ends_with_json(time_machine, tmp_path, capsys):
    save = tmp_path / "model.pt"
    assert main(["--epochs", "3", "--hidden", "64", "--device", "cpu", "--save", str(save)]) == 0
    out, err = capsys.readouterr()
    summary = json.loads(out.strip().splitlines()[-1])
    for key in ("perplexity", "tokens_per_s", "epochs", "seconds", "device", "sample"):
        assert key in summary
    assert summary["epochs"] == 3 and summary["device"] == "cpu"
    assert 1.0 < summary["perplexity"] < 28.0  # better than uniform guessing over the 28 tokens
    assert summary["sample"].startswith("time traveller")
    assert "3/3" in err  # the progress bar
    assert save.exists()


def _binary(tmp):
    path = tmp / "b.bin"
    path.write_bytes(bytes(range(256)) * 10)
    return str(path)


def _empty(tmp):
    path = tmp / "e.txt"
    path.write_text("")
    return str(path)


def _short(tmp):
    path = tmp / "s.txt"
    path.write_text("a short text\n")
    return str(path)


@pytest.fixture(scope="module")
def fast_kernels_built():
    """The fast engine's C++ kernels compiled (if this machine can), so a case that trains does not also
    print the one-time "building" line: the CLI says that once per machine, before any error."""
    from rnn_core import fast

    fast.kernels(block=True)


@pytest.mark.parametrize("make_args,expected", [
    (lambda tmp: ["--corpus", str(tmp / "missing.txt")], "No such file"),
    (lambda tmp: ["--corpus", _empty(tmp)], "empty"),
    (lambda tmp: ["--corpus", _binary(tmp)], "binary"),
    (lambda tmp: ["--corpus", _short(tmp)], "too few for one minibatch"),
    (lambda tmp: ["--corpus", "counting", "--batch-size", "0"], "Batch size"),
    (lambda tmp: ["--corpus", "counting", "--hidden", "-5"], "Hidden size"),
    (lambda tmp: ["--corpus", "counting", "--epochs", "0"], "epochs"),
    (lambda tmp: ["--corpus", "counting", "--lr", "-1"], "learning rate"),
    (lambda tmp: ["--corpus", "counting", "--hidden", "100000"], "Hidden size"),
    (lambda tmp: ["--corpus", "counting", "--max-tokens", "0", "--batch-size", "1024", "--num-steps", "1000",
                  "--hidden", "4096"], "GiB"),
    (lambda tmp: ["--corpus", "counting", "--device", "tpu"], "Unknown device"),
    (lambda tmp: ["--corpus", "counting", "--hidden", "16", "--epochs", "3", "--lr", "1e37"], "non-finite"),
    (lambda tmp: ["--batch-size", "many"], "invalid int"),
    (lambda tmp: ["--corpus", "counting", "--clip", "never"], "invalid clip value"),
    (lambda tmp: ["--corpus", "counting", "--load", _empty(tmp)], "not an RNN Lab checkpoint"),
    (lambda tmp: ["--corpus", "counting", "--load", str(tmp / "none.pt")], "does not exist"),
], ids=["missing", "empty", "binary", "too-short", "batch-0", "hidden-neg", "epochs-0", "lr-neg", "absurd-hidden",
        "memory", "device", "divergence", "not-a-number", "clip-word", "load-not-a-checkpoint", "load-missing"])
def test_bad_input_exits_2_with_one_line(tmp_path, capsys, make_args, expected, fast_kernels_built):
    # in-process: the same main() the module runs, without paying torch's import per case
    assert main([*make_args(tmp_path), "--quiet"]) == 2
    out, err = capsys.readouterr()
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ") and expected in lines[0]
    assert out == ""


def test_divergence_with_the_progress_bar_on_is_one_error_line(capsys, fast_kernels_built):
    assert main(["--corpus", "counting", "--hidden", "16", "--epochs", "3", "--lr", "1e37"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and "Traceback" not in err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and "non-finite" in lines[0]


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="this machine has CUDA")
def test_cuda_without_gpu_is_refused(capsys):
    assert main(["--corpus", "counting", "--device", "cuda", "--quiet"]) == 2
    assert "no CUDA GPU" in capsys.readouterr().err


def test_clipping_off_and_a_checkpoint_round_trip(tmp_path, capsys, fast_kernels_built):
    first, second = tmp_path / "a.pt", tmp_path / "b.pt"
    common = ["--corpus", "counting", "--hidden", "16", "--batch-size", "8", "--num-steps", "10", "--quiet"]
    assert main([*common, "--epochs", "3", "--save", str(first)]) == 0
    capsys.readouterr()
    # --load starts from the saved model (its hidden size wins), trains on with clipping off, saves again
    assert main([*common, "--hidden", "99", "--epochs", "2", "--clip", "off", "--load", str(first),
                 "--save", str(second)]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["clip"] is None and summary["hidden"] == 16
    from rnn_core.checkpoint import read_checkpoint

    params, vocab, config = read_checkpoint(second)
    assert config["epoch"] == 2 and config["clip"] is None and params["W_hh"].shape == (16, 16)


def test_a_checkpoint_of_another_vocabulary_is_refused(tmp_path, capsys, fast_kernels_built):
    saved = tmp_path / "counting.pt"
    assert main(["--corpus", "counting", "--hidden", "16", "--epochs", "1", "--quiet", "--save", str(saved)]) == 0
    capsys.readouterr()
    assert main(["--corpus", "parentheses", "--epochs", "1", "--quiet", "--load", str(saved)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "another vocabulary" in err and "\n" not in err


def test_a_run_dir_holds_the_run_as_the_dashboard_keeps_it(tmp_path, capsys, fast_kernels_built):
    assert main(["--corpus", "counting", "--hidden", "16", "--epochs", "12", "--quiet", "--run-dir", str(tmp_path),
                 "--run-id", "cli-run"]) == 0
    from rnn_core.runs import RunStore

    run = RunStore(tmp_path, reference_root=None).load("cli-run")
    assert run.status == "done" and run.checkpoints == [1, 2, 5, 10, 12] and run.epoch == 12

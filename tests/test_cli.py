"""The headless trainer: a JSON line on success, status 2 and one line on stderr for bad input, status 130 and
one line that says what was saved after Ctrl-C.

Two tests run it as the program a user starts; the rest call the same ``main(argv)`` in-process, which spares
a Python and torch start-up per case.
"""
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from rnn_core.train import guarded, main

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
    # where the time went: the training loop's seconds within the run's, and the epochs by torch threads
    assert 0 < summary["train_s"] <= summary["seconds"]
    minibatches = summary["tokens_per_s"] * summary["train_s"] / 3 / (32 * 35)  # per epoch, over train_s
    assert minibatches == pytest.approx(round(minibatches)) and round(minibatches) >= 8
    assert sum(summary["threads_used"].values()) == 3 and all(int(k) >= 1 for k in summary["threads_used"])
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
    # its pace is kept beside the runs: the ETA's starting point for the next run with these settings
    paces = json.loads((tmp_path / "pace.json").read_text())
    (key, by_run), = paces.items()
    assert "hidden=16" in key and "engine=fast" in key and set(by_run) == {"cli-run"}


def _one_error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith("error: "), err
    return lines[0]


def _file(tmp):
    path = tmp / "a-file"
    path.write_text("not a directory")
    return str(path)


def _writable(folder: Path) -> bool:
    try:
        with tempfile.TemporaryFile(dir=folder):
            return True
    except OSError:
        return False


def _unwritable_dir(tmp):
    """A directory no file can be made in: one made read-only, or, where that does not hold (root), /sys."""
    folder = tmp / "read-only"
    folder.mkdir()
    folder.chmod(0o555)
    if not _writable(folder):
        return str(folder)
    folder.chmod(0o755)
    if Path("/sys").is_dir() and not _writable(Path("/sys")):
        return "/sys"
    pytest.skip("no directory here refuses this user's writes")


def _no_proc(tmp):
    if not Path("/proc").is_dir():
        pytest.skip("no /proc on this system")
    return "/proc/x"


def _tmp_dir(tmp):
    folder = tmp / "a-folder"
    folder.mkdir()
    return str(folder)


# (arguments, what the one line names): each refused before any work, with the user's own value or path
SMALL = ["--corpus", "counting", "--hidden", "16", "--batch-size", "8", "--num-steps", "10", "--epochs", "2"]


@pytest.mark.parametrize("flag,make_value,expected", [
    ("--lr", lambda tmp: "1e308", "The learning rate 1e+308 is too large"),
    ("--lr", lambda tmp: "inf", "learning rate must be a positive number (got inf)"),
    ("--lr", lambda tmp: "nan", "learning rate must be a positive number (got nan)"),
    ("--embed", lambda tmp: "-1", "Embedding size must be a whole number from 0 to 20,000 (got -1)"),
    ("--embed", lambda tmp: "100000000", "Embedding size must be a whole number from 0 to 20,000 (got 100000000)"),
    ("--seed", lambda tmp: "99999999999999999999999",
     "Seed must be a whole number from 0 to 9,223,372,036,854,775,807 (got 99999999999999999999999)"),
    ("--run-dir", _file, "is a file, not a directory"),
    ("--run-dir", _no_proc, "cannot be made"),
    ("--run-dir", _unwritable_dir, "cannot be written to"),
    ("--save", _tmp_dir, "is a directory"),
    ("--save", lambda tmp: os.path.join(_unwritable_dir(tmp), "model.pt"), "cannot be written"),
    ("--save", lambda tmp: os.path.join(_file(tmp), "model.pt"), "is a file, not a directory"),
], ids=["lr-1e308", "lr-inf", "lr-nan", "embed-negative", "embed-huge", "seed-huge", "run-dir-file",
        "run-dir-proc", "run-dir-unwritable", "save-directory", "save-unwritable", "save-under-a-file"])
def test_a_bad_value_or_path_is_one_line_that_names_it(tmp_path, capsys, flag, make_value, expected,
                                                      fast_kernels_built):
    value = make_value(tmp_path)
    switches = ["--input", "embedding"] if flag == "--embed" else []
    assert main([*SMALL, *switches, flag, value, "--quiet"]) == 2
    out, err = capsys.readouterr()
    line = _one_error_line(err)
    assert out == "" and expected in line, line
    if flag in ("--run-dir", "--save"):
        assert f"{flag} {value} " in line and ".tmp" not in line  # the user's path, never a temporary file's


def test_save_into_a_directory_is_refused_before_any_epoch(tmp_path, capsys):
    runs = tmp_path / "runs"
    # with the progress bar on: a single epoch would have drawn it, and the run store would hold a checkpoint
    assert main([*SMALL, "--epochs", "50", "--run-dir", str(runs), "--run-id", "refused",
                 "--save", _tmp_dir(tmp_path)]) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert "a-folder is a directory" in line and "ppl" not in line
    assert not runs.exists()  # nothing was made, not even the run directory


def test_the_memory_guard_counts_every_parameter_and_the_graph_kept_without_detaching():
    from rnn_core.engines import make_model
    from rnn_core.guards import BYTES_PER_FLOAT, PARAM_COPIES, SettingsError, check_settings, estimate
    from rnn_core.model import formula_params

    V, h = 28, 16
    for engine, switches in [("lesson", {}), ("fast", {}), ("torch", {}), ("lesson", {"input": "embedding"}),
                             ("lesson", {"input": "embedding", "embed": 7})]:
        net = make_model(engine, V, h, "cpu", seed=0, **switches)
        numel = sum(t.numel() for t in formula_params(net).values())
        est = estimate(V, 8, 10, h, 1000, **switches)
        assert est.param_bytes == PARAM_COPIES * BYTES_PER_FLOAT * numel, (engine, switches)
    # an embedding of 20,000 is refused where the same one-hot model fits
    onehot = estimate(V, 8, 10, h, 1000)
    wide = estimate(V, 8, 10, h, 1000, input="embedding", embed=20_000)
    assert wide.total_bytes > 50 * onehot.total_bytes
    from rnn_core.guards import available_memory

    fraction = (onehot.total_bytes * wide.total_bytes) ** 0.5 / available_memory()  # a budget between the two
    check_settings(V, 8, 10, h, 1000, memory_fraction=fraction)
    with pytest.raises(SettingsError, match="GiB"):
        check_settings(V, 8, 10, h, 1000, memory_fraction=fraction, input="embedding", embed=20_000)
    # without detaching, the graph of all 12 minibatches of an epoch is held at once
    assert estimate(V, 8, 10, h, 1000, detach=False).activation_bytes == 12 * onehot.activation_bytes


def test_load_says_that_the_files_hidden_size_wins(tmp_path, capsys, fast_kernels_built):
    saved = tmp_path / "small.pt"
    assert main([*SMALL, "--quiet", "--save", str(saved)]) == 0  # 16 hidden units
    capsys.readouterr()
    assert main([*SMALL, "--quiet", "--load", str(saved), "--hidden", "64"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out.strip().splitlines()[-1])["hidden"] == 16
    lines = [line for line in err.splitlines() if line.strip()]
    assert lines == [f"note: {saved} holds 16 hidden units: training with 16, not --hidden 64"]
    # the same size asked for: nothing to say
    assert main([*SMALL, "--quiet", "--load", str(saved)]) == 0
    assert capsys.readouterr().err == ""


def _training(args: list[str]) -> tuple[subprocess.Popen, bytes]:
    """``python -m rnn_core.train ARGS``, returned once its progress bar is past epoch 1: (process, stderr so far)."""
    if os.name != "posix":
        pytest.skip("SIGINT is POSIX")
    proc = subprocess.Popen([sys.executable, "-m", "rnn_core.train", *SMALL, "--epochs", "100000", *args], cwd=ROOT,
                            env={**os.environ, "OMP_NUM_THREADS": "1"}, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            # a shell's background job starts with SIGINT ignored, and Python then never sees it
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    err = b""
    try:
        while not re.search(rb"\] [2-9]\d*/100000", err):  # the progress bar past epoch 1
            chunk = os.read(proc.stderr.fileno(), 4096)  # blocks until the program writes; b"" once it has ended
            assert chunk, f"the program ended before epoch 2: {err.decode(errors='replace')}"
            err += chunk
    except BaseException:
        proc.kill()
        raise
    return proc, err


def _interrupt(proc: subprocess.Popen, err: bytes, times: int = 1) -> tuple[bytes, str]:
    """Send SIGINT (``times`` times in a row, as an impatient user or a terminal's timeout does), wait for the end:
    (stdout, the whole stderr)."""
    try:
        for _ in range(times):
            proc.send_signal(signal.SIGINT)
        out, rest = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
    return out, (err + rest).decode()


@pytest.mark.parametrize("times", [1, 3])
def test_ctrl_c_saves_the_last_finished_epoch_and_says_so(tmp_path, fast_kernels_built, times):
    save = tmp_path / "model.pt"
    out, err = _interrupt(*_training(["--save", str(save)]), times=times)
    assert out == b"" and "Traceback" not in err, err
    lines = [line for line in err.split("\n") if line.strip()]
    assert len(lines) == 2, err  # the progress bar's line, then one line that says what was saved
    found = re.fullmatch(r"interrupted after epoch (\d+) of 100000: saved epoch (\d+) to (.+)", lines[1])
    assert found and found[1] == found[2] and found[3] == str(save), lines[1]
    from rnn_core.checkpoint import read_checkpoint

    assert read_checkpoint(save)[2]["epoch"] == int(found[1]) >= 2


def test_a_second_writer_of_a_run_directory_is_refused_in_one_line(tmp_path, capsys, fast_kernels_built):
    runs = tmp_path / "runs"
    proc, err = _training(["--run-dir", str(runs), "--run-id", "shared"])
    try:
        assert main([*SMALL, "--quiet", "--run-dir", str(runs), "--run-id", "shared"]) == 2
        line = _one_error_line(capsys.readouterr().err)
        assert "shared" in line and "another process" in line, line
    finally:
        out, err = _interrupt(proc, err)
    assert proc.returncode == 130 and "Traceback" not in err, err
    assert re.search(r"interrupted after epoch \d+ of 100000: run shared in .* keeps epoch \d+\n$", err), err


def test_ctrl_c_before_training_says_nothing_was_saved(capsys):
    def interrupted():
        raise KeyboardInterrupt

    assert guarded(interrupted) == 130
    assert capsys.readouterr().err == "interrupted before training began: nothing was saved\n"

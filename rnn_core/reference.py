"""The lesson's reference run, shipped so a class sees a trained model at once.

``python -m rnn_core.reference --out DIR`` trains it with this project's own trainer at the lesson's settings
(The Time Machine, char tokens, first 10,000, batch 32, 35 steps, 512 hidden units, lr 1, theta 1,
sequential partitioning, seed 0, 500 epochs) into DIR (run.json and checkpoints at epochs 1, 2, 5, 10, 20,
50, 100, 200, 500), then evaluates the last checkpoint on the corpus and writes that perplexity into run.json,
with the gradient flow and W_hh's spectrum at each checkpoint. tests/test_reference.py loads the shipped one
and checks that figure.

The shipped run is ``data/reference/lesson/``: it is replaced only with ``--force``
(``python -m rnn_core.reference --force`` makes it again). Without ``--out`` the run goes to a new directory
in the run store. The run trains in a scratch directory beside DIR and takes DIR's place only once it is
whole, so a run stopped halfway (Ctrl-C, an error) leaves DIR as it was.

It trains with the fast engine on one thread, so that on one machine the same command gives the same figures
bit for bit; another kind of CPU (other SIMD kernels in the matrix library) gives other roundings, which
500 epochs of training grow into other figures (docs/performance.md, "Reproducing the reference run").
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

import torch

from . import fast
from .corpus import load_corpus
from .data import make_loader, tokenize_corpus
from .engines import make_model
from .guards import check_range
from .runs import DEFAULT_ROOT, META, REFERENCE_ROOT, RUN_ID, Run, RunStore
from .train import Interrupted, _Parser, check_folder, guarded, usage_error
from .train import parse_args as train_args
from .train import run as train
from .training import evaluate

REFERENCE_ID = "lesson"
SHIPPED = REFERENCE_ROOT / REFERENCE_ID
ENGINE, THREADS, SEED = "fast", 1, 0  # fixed, so that a rerun on the same machine repeats the figures


def evaluate_run(run: Run, epoch: int | None = None) -> float:
    """Perplexity of the run's model at ``epoch`` (default: its last checkpoint) on the lesson's corpus.

    One pass of the lesson's loader (sequential, its seed) over the first 10,000 tokens, no training.
    """
    epoch = epoch or run.checkpoints[-1]
    s = run.settings
    tc = tokenize_corpus(load_corpus(s.corpus, seed=s.seed), s.token, 10_000)
    if tc.vocab.idx_to_token != run.vocab.idx_to_token:
        raise ValueError("The corpus found here tokenizes differently from the reference run's.")
    net = make_model("lesson", len(run.vocab), s.hidden, "cpu")
    net.load_formula_params(run.checkpoint(epoch))
    loader = make_loader(tc, s.batch, s.steps, s.partition == "random", seed=s.seed)
    return math.exp(evaluate(net, loader))


def parse_args(argv=None) -> argparse.Namespace:
    """The command line of ``python -m rnn_core.reference``."""
    p = _Parser(prog="python -m rnn_core.reference",
                description="Train the lesson's reference run (the fast engine on one thread, seed 0) into a "
                            "directory. The shipped run in data/reference/lesson/ is replaced only with --force.")
    p.add_argument("--out", default=None, metavar="DIR",
                   help="the run's directory (default: a new one in the run store, runs/reference-<time>); "
                        "its name is the run's id")
    p.add_argument("--epochs", type=int, default=500, metavar="N",
                   help="epochs to train (default 500, the shipped run's)")
    p.add_argument("--force", action="store_true",
                   help="replace what DIR holds (needed for the shipped run: --out data/reference/lesson, or "
                        "--force alone)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    args = p.parse_args(argv)
    if args.out is None:
        args.out = str(SHIPPED) if args.force else str(
            Path(os.environ.get("RNN_LAB_RUNS") or DEFAULT_ROOT) / f"reference-{time.strftime('%Y%m%d-%H%M%S')}")
    return args


def check_out(out: Path, force: bool, shown: str) -> None:
    """Refuse an --out that cannot hold the run, or that holds files already and --force was not given
    (``shown``: the path as the user wrote it)."""
    if not RUN_ID.match(out.name):
        raise usage_error(f"--out {shown}: its last part is the run's id: use 3 to 40 letters, digits, '-' or '_'.")
    if out.exists() and not out.is_dir():
        raise usage_error(f"--out {shown} is a file, not a directory: name a directory.")
    check_folder(str(out.parent), f"--out {shown}", is_target=False)
    if out.is_dir() and any(out.iterdir()) and not force:
        if out.resolve() == SHIPPED.resolve():
            raise usage_error(f"--out {shown} is the shipped reference run: add --force to replace it.")
        raise usage_error(f"--out {shown} is not empty: add --force to replace what it holds, or name a new "
                            "directory.")


def machine() -> dict:
    """What made the figures: CPU model, torch, the engine's kernels and threads."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": cpu, "torch": torch.__version__, "engine": ENGINE, "kernels": fast.kernel_status(),
            "threads": THREADS}


def make_reference(args: argparse.Namespace) -> dict:
    """Train the reference run into a scratch directory beside ``args.out``, evaluate it, then put it in place."""
    out = Path(args.out).expanduser().absolute()
    check_range("num_epochs", args.epochs, "Number of epochs")
    check_out(out, args.force, args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=".reference-", dir=out.parent))  # no run id: never listed as a run
    try:
        argv = ["--run-dir", str(scratch), "--run-id", out.name, "--epochs", str(args.epochs), "--seed", str(SEED),
                "--engine", ENGINE, "--threads", str(THREADS)]  # device auto, as the lesson's sidebar
        try:
            summary = train(train_args(argv + (["--quiet"] if args.quiet else [])))
        except Interrupted:
            raise Interrupted(f"interrupted: nothing was written to {args.out}") from None
        store = RunStore(scratch, reference_root=None, max_bytes=1 << 62)
        run = store.load(out.name)
        run.origin = "reference"
        threads = torch.get_num_threads()
        torch.set_num_threads(THREADS)  # the evaluation's sums in one order too
        try:
            run.extra["eval_perplexity"] = evaluate_run(run)
        finally:
            torch.set_num_threads(threads)
        run.extra["made_with"] = {**machine(), "device": summary["device_name"]}
        store.save_meta(run)
        install(scratch / out.name, out, scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return {"out": str(out), "eval_perplexity": run.extra["eval_perplexity"], "perplexity": summary["perplexity"],
            "checkpoints": run.checkpoints, **run.extra["made_with"]}


def install(built: Path, out: Path, scratch: Path) -> None:
    """Put the run's own files (run.json, checkpoints) from ``built`` at ``out``, in place of what was there."""
    fresh = scratch / "fresh"
    fresh.mkdir()
    for f in built.iterdir():
        if f.name == META or (f.name.startswith("ckpt-") and f.suffix == ".pt"):
            os.replace(f, fresh / f.name)
    if out.exists():
        os.replace(out, scratch / "previous")  # removed with the scratch directory
    os.replace(fresh, out)


def main(argv=None) -> int:
    """The command; 0, or 2 (one line on stderr) for a problem the user can fix, 130 after Ctrl-C."""
    return guarded(lambda: print(json.dumps(make_reference(parse_args(argv)))))


if __name__ == "__main__":
    sys.exit(main())

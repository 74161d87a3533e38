"""Headless trainer: ``python -m rnn_core.train --epochs 500``.

Progress goes to stderr; the last line on stdout is one JSON object with the run's figures. A problem the
user can fix (bad corpus, sizes, paths, device, divergence: any ``rnn_core.errors.UserError``) exits with
status 2 and one line on stderr, found before training wherever it can be. Ctrl-C (SIGINT) exits with status
130 and one line that says what was saved: with ``--save``, the last finished epoch's model.
"""
from __future__ import annotations

import argparse
import collections
import contextlib
import json
import os
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path

import torch

from . import fast, variants
from . import settings_schema as schema
from .checkpoint import read_checkpoint, write_atomic
from .corpus import load_corpus
from .data import tokenize_corpus
from .errors import UserError
from .guards import SettingsError, check_range, check_settings
from .model import device_label, resolve_device
from .runs import RUN_ID, Run, RunSettings, RunStore, Scheduler
from .training import DivergenceError, predict

DEFAULT_HIDDEN = schema.LESSON.hidden
clip_value = schema.clip_value  # --clip's type
INTERRUPTED = 130  # the shell's status for a program ended by SIGINT (128 + 2)


class Interrupted(Exception):
    """Ctrl-C during a run; the message says what was and was not saved."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, not usage + error
        raise SettingsError(f"{message} (see --help)")


def parse_args(argv=None) -> argparse.Namespace:
    p = _Parser(prog="python -m rnn_core.train", description="Train the lesson's RNN from scratch.")
    schema.add_arguments(p, "corpus", "token", "clean", "max_tokens", "batch", "steps", "hidden", "epochs", "lr",
                         "clip", "partition", "device", "engine")
    p.add_argument("--threads", type=int, default=None,
                   help="torch threads for training (default: 1 or every core, whichever trains faster at the "
                        "moment; fix it, e.g. 1, for runs that repeat bit for bit)")
    schema.add_arguments(p, "seed", "prefix")
    p.add_argument("--save", default=None, help="write a checkpoint to this file (checked before training)")
    p.add_argument("--load", default=None, help="start from this checkpoint (from --save or the dashboard)")
    p.add_argument("--run-dir", default=None,
                   help="keep the run in this run store (run.json + log-spaced checkpoints), as the dashboard does")
    p.add_argument("--run-id", default=None, help="the run's id in --run-dir (default: a random one)")
    p.add_argument("--ray", default=None, metavar="ADDRESS",
                   help="train as a job on this Ray cluster (needs --run-dir on a volume every node mounts)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    variants.add_arguments(p)  # the lesson's exercises: --activation, --input, --no-detach, --predict, --heldout
    return p.parse_args(argv)


_bar_open = False  # a progress line is drawn but not yet ended


def progress(view, total: int, out=None) -> None:
    """A one-line progress bar for a run's view, redrawn in place (on ``out``, else on sys.stderr as it is now)."""
    global _bar_open
    out = out or sys.stderr
    _bar_open = view.epoch < total
    width = 30
    done = int(width * view.epoch / total)
    out.write(f"\r[{'#' * done}{'.' * (width - done)}] {view.epoch}/{total} "
              f"ppl {view.last['perplexity']:7.2f}  {view.tokens_per_s:,.0f} tok/s")
    if view.epoch == total:
        out.write("\n")
    out.flush()


def usage_error(message: str) -> SettingsError:
    """A command line's own error (a flag's value or path): an English sentence with no message id, as only the
    commands (this one, ``python -m rnn_core.reference``) say it."""
    return SettingsError(message)


def _nearest_existing(path: Path) -> Path:
    """``path`` or its nearest ancestor that exists."""
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _can_write_in(folder: Path) -> str | None:
    """None if a file can be made in ``folder`` (tried, then removed), else why not."""
    if not os.access(folder, os.W_OK | os.X_OK):
        return "permission denied"
    try:
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        return (exc.strerror or str(exc)).lower()
    return None


def check_folder(path: str, label: str, is_target: bool = True) -> None:
    """Refuse a folder that is not a directory or cannot be made or written, in one sentence that starts with
    ``label`` (the flag and the user's path). ``is_target``: the folder is what the user named (not a file's).

    Nothing is created: a folder that does not exist yet is judged by the nearest one above it that does.
    """
    folder = Path(path).expanduser().absolute()
    if is_target and folder.exists() and not folder.is_dir():
        raise SettingsError(f"{label} is a file, not a directory: name a directory.")
    base = _nearest_existing(folder)
    if not base.is_dir():
        raise SettingsError(f"{label} cannot be made: {base} is a file, not a directory.")
    why = _can_write_in(base)
    if why is not None and is_target and base == folder:
        raise SettingsError(f"{label} cannot be written to ({why}).")
    if why is not None:
        raise SettingsError(f"{label} cannot be {'made' if is_target else 'written'}: {base} cannot be written to "
                            f"({why}).")


def check_save_path(path: str) -> None:
    """Refuse a --save path that names a directory or lies where no file can be written (before training)."""
    target = Path(path).expanduser()
    if target.is_dir() or path.endswith(("/", os.sep)):
        raise SettingsError(f"--save {path} is a directory: give a file name, e.g. {Path(path) / 'model.pt'}.")
    check_folder(str(target.parent), f"--save {path}", is_target=False)


def check_paths(args: argparse.Namespace) -> None:
    """The run directory and the --save file, checked before any work so that nothing is half done."""
    if args.run_dir:
        check_folder(args.run_dir, f"--run-dir {args.run_dir}")
    if args.save:
        check_save_path(args.save)


def check_numbers(args: argparse.Namespace) -> None:
    """Values argparse cannot bound: the seed's range and the thread count."""
    check_range("seed", args.seed, "Seed")
    if args.threads is not None and not 1 <= args.threads <= 1024:
        raise SettingsError(f"--threads must be a whole number from 1 to 1,024 (got {args.threads}).")


def note(line: str) -> None:
    """A line of its own on stderr (after the progress bar's, if one is drawn)."""
    global _bar_open
    sys.stderr.write(("\n" if _bar_open else "") + line + "\n")
    sys.stderr.flush()
    _bar_open = False


def save_epoch(training: Run, path: str, epoch: int) -> None:
    """Write the run's model at ``epoch`` (its last finished one) to ``path``; an OSError names ``path``."""
    try:
        write_atomic(path, training.checkpoint_bytes(epoch))
    except OSError as exc:  # said with the user's path, not write_atomic's temporary file
        raise SettingsError(f"--save {path} could not be written ({(exc.strerror or str(exc)).lower()}).") from None


@contextlib.contextmanager
def further_interrupts_ignored():
    """Ctrl-C does nothing inside: after a first Ctrl-C, the run is stopped and saved whole, however often it is
    pressed again (a terminal's ``timeout`` passes its own SIGINT on too)."""
    if threading.current_thread() is not threading.main_thread():
        yield  # only the main thread receives signals (and may set their handlers)
        return
    before = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, before)


def interrupted(training: Run, args: argparse.Namespace) -> str:
    """After Ctrl-C: save the last finished epoch to --save, and say what was and was not saved."""
    latest = training.latest()
    epoch = latest[0] if latest is not None else 0
    where = f"after epoch {epoch} of {args.epochs}" if epoch else f"in epoch 1 of {args.epochs}"
    kept = []
    if epoch and args.save:
        save_epoch(training, args.save, epoch)
        kept.append(f"saved epoch {epoch} to {args.save}")
    if epoch and args.run_dir:
        kept.append(f"run {training.id} in {args.run_dir} keeps epoch {epoch}")
    if not kept:
        why = "no epoch had finished" if epoch == 0 else "no --save or --run-dir was given"
        kept.append(f"nothing was saved ({why})")
    return f"interrupted {where}: {'; '.join(kept)}"


def run(args: argparse.Namespace) -> dict:
    """Train as the arguments say; returns the summary dict."""
    check_numbers(args)
    check_paths(args)
    device = resolve_device(args.device)
    tc = tokenize_corpus(load_corpus(args.corpus, seed=args.seed), args.token, args.max_tokens, clean=args.clean)
    init_params = None
    if args.load:
        init_params, vocab, _ = read_checkpoint(args.load)
        if vocab.idx_to_token != tc.vocab.idx_to_token:
            raise SettingsError(f"{args.load} was trained on another vocabulary ({len(vocab)} tokens) than "
                                f"{args.corpus}'s ({len(tc.vocab)}): use the corpus and token type it was trained on.")
        held = int(init_params["W_hh"].shape[0])
        if args.hidden is not None and args.hidden != held:
            note(f"note: {args.load} holds {held} hidden units: training with {held}, not --hidden {args.hidden}")
        args.hidden = held
    elif args.hidden is None:
        args.hidden = DEFAULT_HIDDEN
    switches = variants.settings_from_args(args)
    check_settings(len(tc.vocab), args.batch_size, args.num_steps, args.hidden, len(tc.corpus),
                   args.epochs, args.lr, args.clip, device, input=switches["input"], embed=switches["embed"],
                   detach=switches["detach"])
    if args.engine == "fast" and device.type == "cpu":  # the whole run on the C++ kernels, built first if need be
        fast.kernels(block=True, announce=lambda line: print(line, file=sys.stderr, flush=True))
    settings = RunSettings(corpus=str(args.corpus), token=args.token, batch=args.batch_size, steps=args.num_steps,
                           hidden=args.hidden, lr=args.lr, epochs=args.epochs, clip=args.clip,
                           partition="random" if args.random_iter else "sequential", engine=args.engine,
                           device=args.device, seed=args.seed, prefix=args.prefix, **switches)
    heldout_text = None
    if settings.heldout.startswith("upload:"):
        heldout_text = Path(settings.heldout.removeprefix("upload:")).read_bytes()
    if args.run_id is not None and not RUN_ID.match(args.run_id):
        raise SettingsError(f"--run-id {args.run_id!r}: use 3 to 40 letters, digits, '-' or '_'.")
    store = RunStore(args.run_dir, reference_root=None, max_bytes=1 << 62) if args.run_dir else None
    if args.ray and store is None:
        raise SettingsError("--ray needs --run-dir: a folder every node of the cluster mounts at the same path.")
    # The dashboard's scheduler with this one run: the same turns and, unless --threads fixes it, the same
    # choice of threads (1 or every core, whichever trains faster on this machine now: on busy cores, every core
    # can be many times slower). A fixed count gives the same sums in the same order, so a rerun repeats the
    # figures bit for bit on the same machine. With --ray, the run is a job on that cluster instead.
    if args.ray:
        from .scheduler import make_scheduler  # ray is optional (requirements-cluster.txt): imported when asked for
    scheduler = make_scheduler(store, ray_address=args.ray) if args.ray else Scheduler(threads=args.threads)
    try:
        training = scheduler.create(settings, tc, store=store, run_id=args.run_id, device=device,
                                    init_params=init_params, heldout_text=heldout_text)
    except UserError:
        raise
    except ValueError as exc:  # a switch or held-out text that cannot be used, said in one sentence
        raise SettingsError(str(exc)) from None
    start = time.perf_counter()
    scheduler.start(training)
    shown, stopped_by_user = 0, False
    try:
        while training.running:
            view = training.wait(past_epoch=None if args.quiet else shown)  # an epoch more, or the run's end
            if not args.quiet and view.running and view.epoch > shown:  # the last one: after the loop
                shown = view.epoch
                progress(view, args.epochs)
    except KeyboardInterrupt:
        stopped_by_user = True
        with further_interrupts_ignored():
            scheduler.stop(training)  # its chunk in progress ends; the last finished epoch is kept
            scheduler.close()
            raise Interrupted(interrupted(training, args)) from None
    finally:
        if not stopped_by_user:
            scheduler.stop(training)
            scheduler.close()
    seconds = time.perf_counter() - start
    view = training.view()
    if view.status == "failed":
        raise RuntimeError(view.error)
    if not args.quiet and view.epoch > shown and view.status not in ("diverged", "out_of_memory"):
        progress(view, args.epochs)  # a run that ended on an error says so in one line, with no bar before it
    if view.status == "diverged":
        raise DivergenceError(view.error)
    if view.status == "out_of_memory":
        raise torch.OutOfMemoryError(view.error)
    net = training.trainer.net
    last = view.last
    if args.save:
        save_epoch(training, args.save, view.epoch)
    train_seconds = sum(r["seconds"] for r in view.records)
    return {
        "perplexity": last["perplexity"], "loss": last["loss"],
        "tokens_per_s": view.epoch * view.tokens_per_epoch / train_seconds,
        "epochs": view.epoch, "seconds": seconds, "device": str(device), "device_name": device_label(device),
        "engine": args.engine, "corpus": args.corpus, "clean": args.clean, "token": args.token,
        "vocab_size": len(tc.vocab),
        "num_tokens": len(tc.corpus), "batch_size": args.batch_size, "num_steps": args.num_steps,
        "hidden": args.hidden, "lr": args.lr, "clip": args.clip, "random_iter": args.random_iter,
        "seed": args.seed, "sample": predict(args.prefix, 50, net, tc.vocab), "run": training.id,
        "checkpoints": list(view.checkpoints), "threads": args.threads,
        "threads_used": dict(collections.Counter(str(r.get("threads")) for r in view.records)),
        "train_s": train_seconds,
        "engine_used": view.settings.engine, "activation": settings.activation, "input": settings.input,
        "detach": settings.detach, "predict": settings.predict, "heldout": settings.heldout,
        "heldout_perplexity": last.get("heldout_perplexity"),
    }


def guarded(work) -> int:
    """Call ``work()``: 0 when it returns; 2 with one line on stderr for a problem the user can fix; 130 after
    Ctrl-C, with one line that says what was saved."""
    try:
        work()
    except UserError as exc:  # every error a user can cause, the run store's included
        message, code = f"error: {exc}", 2
    except torch.OutOfMemoryError:
        message, code = ("error: the device ran out of memory: lower the batch size, steps or hidden size, or use "
                         "--device cpu"), 2
    except OSError as exc:  # e.g. a --heldout file that cannot be read
        message, code = f"error: {exc.strerror or exc}: {exc.filename or ''}".rstrip(": "), 2
    except Interrupted as exc:
        message, code = str(exc), INTERRUPTED
    except KeyboardInterrupt:
        message, code = "interrupted before training began: nothing was saved", INTERRUPTED
    else:
        return 0
    note(" ".join(message.split()))  # one line, whatever the sentence held
    return code


def main(argv=None) -> int:
    """The CLI: the summary as one JSON line on stdout (status 0), else status 2 or 130 and one line on stderr."""
    return guarded(lambda: print(json.dumps(run(parse_args(argv)))))


if __name__ == "__main__":
    sys.exit(main())

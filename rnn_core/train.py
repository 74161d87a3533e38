"""Headless trainer: ``python -m rnn_core.train --epochs 500``.

Progress goes to stderr; the last line on stdout is one JSON object with the run's figures. A problem the
user can fix (bad corpus, sizes, device, divergence) exits with status 2 and one line on stderr.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict
from pathlib import Path

import torch

from . import fast, variants
from .checkpoint import CheckpointError, read_checkpoint, save_checkpoint
from .corpus import CLEANINGS, CorpusError, load_corpus
from .data import tokenize_corpus
from .engines import DEFAULT_ENGINE, ENGINES
from .guards import SettingsError, check_settings
from .model import DeviceError, device_label, resolve_device
from .runs import RUN_ID, Run, RunSettings, RunStore, Scheduler
from .training import DivergenceError, predict

USER_ERRORS = (CorpusError, SettingsError, DeviceError, DivergenceError, CheckpointError)


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, not usage + error
        raise SettingsError(f"{message} (see --help)")


def parse_args(argv=None) -> argparse.Namespace:
    p = _Parser(prog="python -m rnn_core.train", description="Train the lesson's RNN from scratch.")
    p.add_argument("--corpus", default="time_machine", help="time_machine | a file path | a built-in name")
    p.add_argument("--token", choices=["char", "word"], default="char")
    p.add_argument("--clean", choices=list(CLEANINGS), default="lesson",
                   help="lesson: a-z and space, lower case (the lesson's); keep: every character (NFKC, "
                        "whitespace collapsed), for Chinese or other Unicode texts")
    p.add_argument("--max-tokens", type=int, default=10_000, help="use the first N tokens (<=0: all)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--num-steps", type=int, default=35)
    p.add_argument("--hidden", type=int, default=512)
    p.add_argument("--epochs", type=int, default=500)
    p.add_argument("--lr", type=float, default=1.0)
    p.add_argument("--clip", type=clip_value, default=1.0, help="gradient clipping threshold theta, or 'off'")
    p.add_argument("--random-iter", action="store_true", help="random partitioning (default: sequential)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | mps")
    p.add_argument("--engine", choices=sorted(ENGINES), default=DEFAULT_ENGINE)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--prefix", default="time traveller")
    p.add_argument("--save", default=None, help="write a checkpoint here")
    p.add_argument("--load", default=None, help="start from this checkpoint (from --save or the dashboard)")
    p.add_argument("--run-dir", default=None,
                   help="keep the run in this run store (run.json + log-spaced checkpoints), as the dashboard does")
    p.add_argument("--run-id", default=None, help="the run's id in --run-dir (default: a random one)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    variants.add_arguments(p)  # the lesson's exercises: --activation, --input, --no-detach, --predict, --heldout
    return p.parse_args(argv)


def clip_value(text: str) -> float | None:
    """--clip: a positive number, or 'off' (None: no clipping)."""
    if text.strip().lower() == "off":
        return None
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid clip value {text!r}: a positive number or 'off'") from None


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


def run(args: argparse.Namespace) -> dict:
    """Train as the arguments say; returns the summary dict."""
    device = resolve_device(args.device)
    tc = tokenize_corpus(load_corpus(args.corpus, seed=args.seed), args.token, args.max_tokens, clean=args.clean)
    init_params = None
    if args.load:
        init_params, vocab, _ = read_checkpoint(args.load)
        if vocab.idx_to_token != tc.vocab.idx_to_token:
            raise SettingsError(f"{args.load} was trained on another vocabulary ({len(vocab)} tokens) than "
                                f"{args.corpus}'s ({len(tc.vocab)}): use the corpus and token type it was trained on.")
        args.hidden = int(init_params["W_hh"].shape[0])
    check_settings(len(tc.vocab), args.batch_size, args.num_steps, args.hidden, len(tc.corpus),
                   args.epochs, args.lr, args.clip, device)
    if args.engine == "fast" and device.type == "cpu":  # the whole run on the C++ kernels, built first if need be
        fast.kernels(block=True, announce=lambda line: print(line, file=sys.stderr, flush=True))
    settings = RunSettings(corpus=str(args.corpus), token=args.token, batch=args.batch_size, steps=args.num_steps,
                           hidden=args.hidden, lr=args.lr, epochs=args.epochs, clip=args.clip,
                           partition="random" if args.random_iter else "sequential", engine=args.engine,
                           device=args.device, seed=args.seed, prefix=args.prefix,
                           **variants.settings_from_args(args))
    heldout_text = None
    if settings.heldout.startswith("upload:"):
        heldout_text = Path(settings.heldout.removeprefix("upload:")).read_bytes()
    if args.run_id is not None and not RUN_ID.match(args.run_id):
        raise SettingsError(f"--run-id {args.run_id!r}: use 3 to 40 letters, digits, '-' or '_'.")
    store = RunStore(args.run_dir, reference_root=None, max_bytes=1 << 62) if args.run_dir else None
    try:
        training = Run.create(settings, tc, store=store, run_id=args.run_id, device=device, init_params=init_params,
                              heldout_text=heldout_text)
    except ValueError as exc:  # a switch or held-out text that cannot be used, said in one sentence
        raise SettingsError(str(exc)) from None
    # The dashboard's scheduler with this one run: the same turns and the same choice of threads (1 or every
    # core, whichever trains faster on this machine now: on busy cores, every core can be many times slower)
    scheduler = Scheduler()
    start = time.perf_counter()
    scheduler.start(training)
    shown = 0
    try:
        while training.running:
            time.sleep(0.1)
            if not args.quiet and training.epoch > shown:
                shown = training.epoch
                progress(training.view(), args.epochs)
    finally:
        scheduler.stop(training)
        scheduler.close()
    seconds = time.perf_counter() - start
    view = training.view()
    if view.status == "failed":
        raise RuntimeError(view.error)
    if not args.quiet and view.epoch > shown:
        progress(view, args.epochs)
    if view.status == "diverged":
        raise DivergenceError(view.error)
    if view.status == "out_of_memory":
        raise torch.OutOfMemoryError(view.error)
    net = training.trainer.net
    last = view.last
    if args.save:
        save_checkpoint(args.save, net, tc.vocab, {**asdict(view.settings), "epoch": view.epoch,
                                                   "perplexity": last["perplexity"]})
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
        "checkpoints": list(view.checkpoints),
        "engine_used": view.settings.engine, "activation": settings.activation, "input": settings.input,
        "detach": settings.detach, "predict": settings.predict, "heldout": settings.heldout,
        "heldout_perplexity": last.get("heldout_perplexity"),
    }


def main(argv=None) -> int:
    try:
        summary = run(parse_args(argv))
    except USER_ERRORS as exc:
        message = f"error: {exc}"
    except torch.OutOfMemoryError:
        message = "error: the device ran out of memory: lower the batch size, steps or hidden size, or use --device cpu"
    except OSError as exc:  # e.g. --save into a folder that cannot be written
        message = f"error: {exc.strerror or exc}: {exc.filename or ''}".rstrip(": ")
    except KeyboardInterrupt:
        message = "error: interrupted"
    else:
        print(json.dumps(summary))
        return 0
    sys.stderr.write(("\n" if _bar_open else "") + message + "\n")
    return 2


if __name__ == "__main__":
    sys.exit(main())

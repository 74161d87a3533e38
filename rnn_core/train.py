"""Headless trainer: ``python -m rnn_core.train --epochs 500``.

Progress goes to stderr; the last line on stdout is one JSON object with the run's figures. A problem the
user can fix (bad corpus, sizes, device, divergence) exits with status 2 and one line on stderr.
"""
from __future__ import annotations

import argparse
import json
import sys
import time

import torch

from . import fast
from .checkpoint import save_checkpoint
from .corpus import CorpusError, load_corpus
from .data import make_loader, tokenize_corpus
from .engines import DEFAULT_ENGINE, ENGINES, make_model
from .guards import SettingsError, check_settings
from .model import DeviceError, device_label, resolve_device
from .training import DivergenceError, Trainer, predict

USER_ERRORS = (CorpusError, SettingsError, DeviceError, DivergenceError)


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, not usage + error
        raise SettingsError(f"{message} (see --help)")


def parse_args(argv=None) -> argparse.Namespace:
    p = _Parser(prog="python -m rnn_core.train", description="Train the lesson's RNN from scratch.")
    p.add_argument("--corpus", default="time_machine", help="time_machine | a file path | a built-in name")
    p.add_argument("--token", choices=["char", "word"], default="char")
    p.add_argument("--max-tokens", type=int, default=10_000, help="use the first N tokens (<=0: all)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--num-steps", type=int, default=35)
    p.add_argument("--hidden", type=int, default=512)
    p.add_argument("--epochs", type=int, default=500)
    p.add_argument("--lr", type=float, default=1.0)
    p.add_argument("--clip", type=float, default=1.0, help="gradient clipping threshold theta")
    p.add_argument("--random-iter", action="store_true", help="random partitioning (default: sequential)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | mps")
    p.add_argument("--engine", choices=sorted(ENGINES), default=DEFAULT_ENGINE)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--prefix", default="time traveller")
    p.add_argument("--save", default=None, help="write a checkpoint here")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p.parse_args(argv)


_bar_open = False  # a progress line is drawn but not yet ended


def progress(record, total: int, out=sys.stderr) -> None:
    """A one-line progress bar, redrawn in place."""
    global _bar_open
    _bar_open = record.epoch < total
    width = 30
    done = int(width * record.epoch / total)
    out.write(f"\r[{'#' * done}{'.' * (width - done)}] {record.epoch}/{total} "
              f"ppl {record.perplexity:7.2f}  {record.tokens_per_s:,.0f} tok/s")
    if record.epoch == total:
        out.write("\n")
    out.flush()


def run(args: argparse.Namespace) -> dict:
    """Train as the arguments say; returns the summary dict."""
    device = resolve_device(args.device)
    tc = tokenize_corpus(load_corpus(args.corpus, seed=args.seed), args.token, args.max_tokens)
    check_settings(len(tc.vocab), args.batch_size, args.num_steps, args.hidden, len(tc.corpus),
                   args.epochs, args.lr, args.clip, device)
    loader = make_loader(tc, args.batch_size, args.num_steps, args.random_iter, seed=args.seed)
    if args.engine == "fast" and device.type == "cpu":  # the whole run on the C++ kernels, built first if need be
        fast.kernels(block=True, announce=lambda line: print(line, file=sys.stderr, flush=True))
    net = make_model(args.engine, len(tc.vocab), args.hidden, device, seed=args.seed)
    trainer = Trainer(net, loader, tc.vocab, lr=args.lr, theta=args.clip, sample_every=0)
    start = time.perf_counter()
    for record in trainer.epochs(args.epochs):
        if not args.quiet:
            progress(record, args.epochs)
    seconds = time.perf_counter() - start
    last = trainer.history[-1]
    train_seconds = sum(r.seconds for r in trainer.history)
    tokens = sum(r.tokens_per_s * r.seconds for r in trainer.history)
    if args.save:
        save_checkpoint(args.save, net, tc.vocab, vars(args))
    return {
        "perplexity": last.perplexity, "loss": last.loss, "tokens_per_s": tokens / train_seconds,
        "epochs": last.epoch, "seconds": seconds, "device": str(device), "device_name": device_label(device),
        "engine": args.engine, "corpus": args.corpus, "token": args.token, "vocab_size": len(tc.vocab),
        "num_tokens": len(tc.corpus), "batch_size": args.batch_size, "num_steps": args.num_steps,
        "hidden": args.hidden, "lr": args.lr, "clip": args.clip, "random_iter": args.random_iter,
        "seed": args.seed, "sample": predict(args.prefix, 50, net, tc.vocab),
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

"""The lesson's reference run, shipped so a class sees a trained model at once.

``python -m rnn_core.reference`` trains it with this project's own trainer at the lesson's settings
(The Time Machine, char tokens, first 10,000, batch 32, 35 steps, 512 hidden units, lr 1, theta 1,
sequential partitioning, seed 0, 500 epochs) into ``data/reference/lesson/`` (run.json and checkpoints at
epochs 1, 2, 5, 10, 20, 50, 100, 200, 500), then evaluates the last checkpoint on the corpus and writes
that perplexity into run.json, with the gradient flow and W_hh's spectrum at each checkpoint. tests/test_reference.py loads it and checks that figure.
"""
from __future__ import annotations

import json
import math
import sys

from .data import make_loader, tokenize_corpus
from .corpus import load_corpus
from .engines import make_model
from .runs import REFERENCE_ROOT, Run, RunStore
from .training import evaluate

REFERENCE_ID = "lesson"


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


def main() -> int:
    from .train import main as train_main

    REFERENCE_ROOT.mkdir(parents=True, exist_ok=True)
    code = train_main(["--run-dir", str(REFERENCE_ROOT), "--run-id", REFERENCE_ID, "--seed", "0"])
    if code:
        return code
    store = RunStore(REFERENCE_ROOT, reference_root=None, max_bytes=1 << 62)
    run = store.load(REFERENCE_ID)
    run.origin = "reference"
    run.extra["eval_perplexity"] = evaluate_run(run)
    store.save_meta(run)
    print(json.dumps({"eval_perplexity": run.extra["eval_perplexity"], "checkpoints": run.checkpoints}))
    return 0


if __name__ == "__main__":
    sys.exit(main())

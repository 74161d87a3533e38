"""An exercise's pair on the server's scheduler: finding, starting and stopping its two runs, and who controls them.

A pair's runs are shared by every session on the same card (the same sizes and seed train the same numbers) and
controlled by the session that started them. What a button starts is kept in the page's session state, passed in as
``state`` (a mapping), with the error a user can cause kept there for :func:`take_error`.
"""
from __future__ import annotations

from collections.abc import MutableMapping
from dataclasses import replace

from rnn_core import fast
from rnn_core.runs import Run, RunView

from . import run_owners
from .exercise_catalogue import Exercise, Sizes, Variation, pair_ids, pair_settings
from .run_registry import RUN_ERRORS


def find_pair(registry, exercise: Exercise, variation: Variation, seed: int,
              sizes: Sizes | None = None) -> tuple[Run | None, Run | None]:
    """The pair's runs if the server has them (in memory or in the run store)."""
    a, b = pair_ids(exercise, variation, seed, sizes)
    return registry.get(a), registry.get(b)


def pair_complete(run: Run | None) -> bool:
    """A run that needs no training: finished (done or diverged)."""
    return run is not None and run.status in ("done", "diverged")


def start_pair(registry, tc, exercise: Exercise, variation: Variation, seed: int, corpus: str | None = None,
               prefix: str | None = None, heldout_text: bytes | None = None,
               sizes: Sizes | None = None) -> tuple[Run, Run]:
    """Train the pair in the background: runs that exist and are finished or training are kept, stopped ones
    go on, and missing ones (or ones read back from disk halfway, whose trainer is gone) start anew.

    ``corpus`` and ``prefix`` name the text ``tc`` is (the lesson's, or the built-in one used without it);
    ``heldout_text`` is the uploaded text an arm with ``heldout="upload:..."`` is scored on; ``sizes``: the pair's
    sizes (default :meth:`Sizes.from_env`).
    """
    sizes = sizes or Sizes.from_env()
    # The fast engine's C++ kernels settled first (loaded from the cache after the first build): a run that
    # found them ready halfway would differ from its twin in the last bits, and the same seed would not give
    # the same numbers.
    fast.kernels(block=True)
    named = {k: v for k, v in (("corpus", corpus), ("prefix", prefix)) if v}
    settings = [replace(s, **named) for s in pair_settings(exercise, variation, seed, sizes)]
    out = []
    for run_id, s in zip(pair_ids(exercise, variation, seed, sizes), settings):
        run = registry.get(run_id)
        if run is None or (not pair_complete(run) and not run.running and run.trainer is None):
            text = heldout_text if s.heldout.startswith("upload:") else None
            run = registry.create(s, tc, run_id=run_id, device="cpu", heldout_text=text)
        out.append(run)
    for run in out:
        if not pair_complete(run) and not run.running:
            registry.start(run)
    return out[0], out[1]


ERROR_KEY = "ex_error"  # the page's session state: an error kept by a button, said once when the page draws


def start_pair_keeping_the_error(state: MutableMapping, registry, tc, exercise: Exercise, variation: Variation,
                                 seed: int, corpus: str | None = None, prefix: str | None = None,
                                 heldout_text: bytes | None = None, sizes: Sizes | None = None) -> None:
    """:func:`start_pair` from a button: an error a user can cause is kept in ``state`` for :func:`take_error`.

    A pair's runs are shared by every session on the same card (the same sizes and seed train the same numbers),
    but controlled by the session that started them: an arm another session stopped halfway is not continued
    from here (NotOwnerError); the arms this press starts are this session's to stop."""
    # a button callback cannot draw: the error is said by the page, in its language
    try:
        for run in find_pair(registry, exercise, variation, seed, sizes):
            if run is not None and not pair_complete(run) and not run.running and run_owners.controlled_elsewhere(run):
                run_owners.require_owner(run)  # another session's arm: NotOwnerError
        for run in start_pair(registry, tc, exercise, variation, seed, corpus=corpus, prefix=prefix,
                              heldout_text=heldout_text, sizes=sizes):
            if run.running:
                run_owners.take_control(run)
    except RUN_ERRORS + (ValueError,) as exc:
        state[ERROR_KEY] = exc


def take_error(state: MutableMapping) -> Exception | None:
    """Why the last press of Run the pair, or a step that diverged, trained nothing (said once), or None."""
    return state.pop(ERROR_KEY, None)


def controls_pair(pair) -> bool:
    """Whether this session may stop the pair: it started an arm that is training."""
    return any(run is not None and run.running and run_owners.owns(run) for run in pair)


def stop_pair(registry, pair) -> None:
    """Stop the arms of the pair this session started (the others train on for the sessions that started them)."""
    for run in pair:
        if run is not None and run.running and run_owners.owns(run):
            registry.scheduler.stop(run)


def pair_running(a: Run | RunView | None, b: Run | RunView | None) -> bool:
    """Whether either arm is training now."""
    return any(x is not None and x.running for x in (a, b))

"""Training runs as background jobs: a run, the store that keeps it on disk, and a scheduler that trains it.

- :class:`Run`: one training run: its settings, one record per epoch, checkpoints at log-spaced epochs
  (1, 2, 5, 10, 20, 50, ... and the last). Its trainer advances in time-budgeted chunks
  (``Trainer.train_for``); readers take a :class:`RunView`, one consistent snapshot of it.
- :class:`RunStore`: one directory per run (``run.json`` + ``ckpt-000500.pt``), every file written
  atomically (temporary file + rename, safe on a shared volume). One process writes a run: it holds the
  run's ``.lock`` (its pid and host) while the run is in its memory, and a lock whose process is gone is
  broken. Past a size cap the oldest finished runs nobody holds are removed first; a run that trains or is
  open is never removed. Everything read back is checked (a damaged file is a :class:`CheckpointError`).
  Read-only reference runs (shipped in ``data/reference/``) are listed beside them.
- :class:`Scheduler`: one worker thread trains the active runs in turn, a chunk each (round robin), so the
  runs on a server share the CPU equally and a run alone gets the whole machine. Stop is answered
  within a chunk.
- :class:`RunRegistry`: the runs a server holds in memory (the active ones and the last few used),
  the rest read back from the store when asked for.

No Streamlit here: the dashboard, the CLI (``python -m rnn_core.train``) and tests use the same classes.

Each part has its own module; this one gathers their names in one import (``from rnn_core.runs import ...``):
rnn_core.run_settings (RunSettings, RunView), rnn_core.run (Run), rnn_core.run_lock (the directory's names and
its lock), rnn_core.run_store (RunStore) and rnn_core.run_scheduler (Scheduler, RunRegistry).
"""
from __future__ import annotations

from .run import META_EVERY_S, RECORD_NUMBERS, RECORD_OPTIONAL_NUMBERS, SAMPLE_EVERY, Run, new_run_id
from .run_lock import (CHECKPOINT, DEFAULT_MAX_BYTES, DEFAULT_ROOT, HOST, LOCK, LOCK_GRACE_S, META, REFERENCE_ROOT,
                       REPO_ROOT, RUN_ID, STOP, RunLock, RunLockedError, RunStoreError)
from .run_scheduler import RunLimitError, RunRegistry, Scheduler
from .run_settings import (MAX_EMBED, MAX_EPOCHS, ORIGINS, PREDICTIONS, SAVED_CHOICES, SEEDS, SETTING_NAMES, STATUSES,
                           RunSettings, RunView, checkpoint_epochs)
from .run_store import RunStore, shown_id

__all__ = ["CHECKPOINT", "DEFAULT_MAX_BYTES", "DEFAULT_ROOT", "HOST", "LOCK", "LOCK_GRACE_S", "MAX_EMBED", "MAX_EPOCHS",
           "META", "META_EVERY_S", "ORIGINS", "PREDICTIONS", "RECORD_NUMBERS", "RECORD_OPTIONAL_NUMBERS",
           "REFERENCE_ROOT", "REPO_ROOT", "RUN_ID", "SAMPLE_EVERY", "SAVED_CHOICES", "SEEDS", "SETTING_NAMES",
           "STATUSES", "STOP", "Run", "RunLimitError", "RunLock", "RunLockedError", "RunRegistry", "RunSettings",
           "RunStore", "RunStoreError", "RunView", "Scheduler", "checkpoint_epochs", "new_run_id", "shown_id"]

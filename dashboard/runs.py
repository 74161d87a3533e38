"""What the pages use of runs, in one import (``from dashboard import runs``); each part has its own module:

- ``run_registry``: the server's runs (one store, one scheduler) and reading a run, a damaged one said not raised;
- ``run_owners``: which session controls a run (its owner key);
- ``run_shown``: the run a session shows (``?run=``), whose it is and its figures;
- ``run_actions``: Start, Stop, Continue, Restart, Continue on the CPU, checkpoint upload, a copy of a run;
- ``model_choice``: the model Inside, Generate and the unrolled page show (``?model=``, ``?epoch=``);
- ``playback``: the checkpoint scrubber and Play through a run's checkpoints.
"""
from .model_choice import earlier_checkpoints, model_banner, net_at, pick_model
from .playback import scrubber
from .run_actions import (check, choose_after_stop, continue_on_cpu, offers_resume, press_start, press_stop,
                          press_train_copy, receive_upload, resume, stop, take_error)
from .run_owners import NotOwnerError, claim, is_shared, owner_key, owns
from .run_registry import DAMAGE, RUN_ERRORS, get, references, registry, reset_registry, session_runs
from .run_shown import current, current_view, figures, file_figures, run_settings, show, url_warnings, whose

__all__ = [
    "earlier_checkpoints", "model_banner", "net_at", "pick_model", "scrubber",
    "check", "choose_after_stop", "continue_on_cpu", "offers_resume", "press_start", "press_stop", "press_train_copy",
    "receive_upload", "resume", "stop", "take_error",
    "NotOwnerError", "claim", "is_shared", "owner_key", "owns",
    "DAMAGE", "RUN_ERRORS", "get", "references", "registry", "reset_registry", "session_runs",
    "current", "current_view", "figures", "file_figures", "run_settings", "show", "url_warnings", "whose",
]

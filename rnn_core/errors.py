"""The base of every error a user can cause: an English sentence for ``str(exc)`` (the CLI, a notebook), and a
message id with its values so an interface can say the same sentence in another language."""
from __future__ import annotations


class UserError(Exception):
    """A user-caused problem: ``str(exc)`` says it in English; ``key`` and ``values`` name the message and fill it.

    ``key`` is a stable id (the dashboard's catalogues hold ``error.<key>``); ``values`` are the sentence's
    numbers and names, already formatted for display. ``key`` is None for a message with no id.
    """

    def __init__(self, message: str, key: str | None = None, **values):
        super().__init__(message)
        self.key = key
        self.values = values

"""The base of every error a user can cause: an English sentence for ``str(exc)`` (the CLI, a notebook), and a
message id with its values so an interface can say the same sentence in another language."""
from __future__ import annotations


class UserMessage(str):
    """A sentence for the user that is not an error (a warning): the English text itself, with the same ``key``
    and ``values`` as :class:`UserError`, so an interface can say it in another language."""

    def __new__(cls, message: str, key: str | None = None, **values):
        text = super().__new__(cls, message)
        text.key, text.values = key, values
        return text

    def __reduce__(self):  # a str subclass with attributes: pickled (st.cache_data) with them
        return (_user_message, (str(self), self.key, self.values))


def _user_message(message: str, key: str | None, values: dict) -> UserMessage:
    return UserMessage(message, key, **values)


class UserError(Exception):
    """A user-caused problem: ``str(exc)`` says it in English; ``key`` and ``values`` name the message and fill it.

    ``key`` is a stable id (the dashboard's catalogues hold ``error.<key>``); ``values`` are the sentence's
    numbers and names, already formatted for display. ``key`` is None for a message with no id.
    """

    def __init__(self, message: str, key: str | None = None, **values):
        super().__init__(message)
        self.key = key
        self.values = values

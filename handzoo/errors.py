"""Exceptions with messages meant for people: each names what was wrong and the fix."""

from __future__ import annotations


class HandzooError(Exception):
    """Base class of every error handzoo raises on purpose."""


class UsageError(HandzooError):
    """The user asked for something that cannot work (bad name, option or value).

    The CLI turns it into a one-line message and exit code 2.
    """


class UnknownNameError(UsageError, LookupError):
    """A name is not registered; the message lists the closest registered names."""

    def __init__(self, kind: str, name: str, suggestions: list[str], available: int):
        self.kind, self.name, self.suggestions = kind, name, suggestions
        hint = (
            f"did you mean {', '.join(repr(s) for s in suggestions)}?"
            if suggestions
            else f"see `handzoo list {kind}s` for the {available} registered names"
        )
        super().__init__(f"unknown {kind} {name!r}: {hint}")

    def __str__(self) -> str:  # LookupError would quote the whole message
        return self.args[0]


class DuplicateNameError(HandzooError):
    """A plugin tried to register a name that another plugin already holds."""


class ConfigError(UsageError):
    """A configuration value or ``--set`` override is invalid."""


class DataError(HandzooError):
    """A data file is missing or malformed; the message names the file and index."""


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message ("" for none): for one-line errors that quote it."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else ""

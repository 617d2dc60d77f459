"""Exception hierarchy.

Every error llm4cell raises on purpose derives from :class:`Llm4cellError`. The command
line turns these into a one-line message and exit code 2; anything else is a bug and
keeps its traceback.
"""

from __future__ import annotations

__all__ = [
    "BackendError",
    "InputError",
    "KnowledgeBaseError",
    "Llm4cellError",
    "OutputError",
]


class Llm4cellError(Exception):
    """Root of all errors raised by llm4cell on purpose."""


class InputError(Llm4cellError, ValueError):
    """The user's input (file, matrix, column, option) cannot be used as given.

    The message names the problem and the fix.
    """


class KnowledgeBaseError(Llm4cellError):
    """The shipped knowledge (marker database, ontology) is missing or malformed."""


class BackendError(Llm4cellError):
    """An annotation backend cannot run (unknown spec, unreachable server, missing key)."""


class OutputError(Llm4cellError):
    """An output cannot be written (unwritable folder, a file where a folder should be,
    disk full); nothing of the output set was written."""

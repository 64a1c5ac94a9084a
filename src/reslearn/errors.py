"""Failures a user can fix, and how the command line tells them apart from bugs.

``UserError`` (a ``ValueError``, so ``except ValueError`` still catches it) is bad input: a
damaged file, a wrong option, data that does not fit the weights. Its message names the file or
value and says what to do. The command line shows it, like any ``ValueError`` or ``OSError``, as
one line with exit code 2; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations


class UserError(ValueError):
    """Bad input that the user can fix; the message names the file or value and the fix."""


#: The exceptions the command line reports in one line (exit code 2) instead of a traceback.
KNOWN_ERRORS = (ValueError, OSError)


def one_line(error: BaseException) -> str:
    """An exception's message on one line (whitespace runs, newlines included, become a space)."""
    text = " ".join(str(error).split())
    return text or type(error).__name__

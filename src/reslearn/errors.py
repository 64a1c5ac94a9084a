"""Failures a user can fix, and how the command line tells them apart from bugs.

``UserError`` (a ``ValueError``, so ``except ValueError`` still catches it) is bad input: a
damaged file, a wrong option, data that does not fit the weights. Its message names the file or
value and says what to do. The command line shows it, like any ``ValueError`` or ``OSError``, as
one line with exit code 2; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import re
from collections.abc import Callable


class UserError(ValueError):
    """Bad input that the user can fix; the message names the file or value and the fix."""


#: The exceptions the command line reports in one line (exit code 2) instead of a traceback.
KNOWN_ERRORS = (ValueError, OSError)


def one_line(error: BaseException) -> str:
    """An exception's message on one line (whitespace runs, newlines included, become a space)."""
    text = " ".join(str(error).split())
    return text or type(error).__name__


class SettingError(UserError):
    """A setting refused by name. The message marks each setting as ``<field_name>``: from
    Python it reads ``batch_size must be ...``, on the command line ``--batch-size must be ...``
    (``as_flags``)."""

    def __init__(self, template: str) -> None:
        self.template = template
        super().__init__(self.render(lambda name: name))

    def render(self, name: Callable[[str], str]) -> str:
        """The message with each ``<field>`` written as ``name(field)``."""
        return re.sub(r"<(\w+)>", lambda match: name(match.group(1)), self.template)

    def as_flags(self) -> str:
        """The message in the command line's words: ``<batch_size>`` -> ``--batch-size``."""
        return self.render(lambda field: "--" + field.replace("_", "-"))


def for_the_command_line(error: BaseException) -> str:
    """One line for the command line: settings named by their flags."""
    if isinstance(error, SettingError):
        return one_line(error.as_flags())
    return one_line(error)

"""Typed exceptions whose message says what went wrong and how to fix it.

Library code raises these; the CLI turns each into one line on stderr and a non-zero exit code
(``DLBENCH_DEBUG=1`` shows the traceback instead).
"""

from __future__ import annotations

import difflib


class DlbenchError(Exception):
    """Base class: the message is one line that says what is wrong and what to do."""

    exit_code = 1


class UsageError(DlbenchError):
    """The user asked for something that cannot work (bad flag value, unknown name)."""

    exit_code = 2


class UnknownNameError(UsageError):
    """An unknown model, dataset, setting or option, with the closest valid names."""

    def __init__(self, kind: str, name: str, choices, hint: str = ""):
        choices = sorted(choices)
        close = difflib.get_close_matches(name, choices, n=3, cutoff=0.5)
        msg = f"unknown {kind} '{name}'"
        if close:
            msg += f"; did you mean {', '.join(repr(c) for c in close)}?"
        elif len(choices) <= 30:
            msg += f"; choose from: {', '.join(choices)}"
        if hint:
            msg += f" ({hint})"
        super().__init__(msg)
        self.name = name
        self.close = close


class InvalidSettingError(UsageError):
    """A model or dataset setting has a value the builder cannot use."""


class DatasetError(DlbenchError):
    """Dataset files are missing or corrupt; the message names the file and the fix."""


class CacheError(DlbenchError):
    """A cache file is unreadable or from an incompatible version."""


class RunNotFoundError(UsageError):
    """No cached run matches the given key."""

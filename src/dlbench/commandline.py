"""The one builder of the command lines dlbench prints for a person to paste ("reproduce" commands).

Every value is shell-quoted, so a path such as ``x;touch pwned`` or a name with spaces reaches dlbench as one
argument when the line is pasted into ``sh``, instead of running what follows the ``;``.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterable


class CommandLine:
    """``CommandLine("train").opt("--model", "mlp").flag("--augment").text`` -> ``dlbench train --model mlp ...``."""

    def __init__(self, *words: str):
        self.args: list[str] = ["dlbench", *words]

    def arg(self, *values) -> CommandLine:
        """Positional arguments, in order."""
        self.args += [str(v) for v in values]
        return self

    def opt(self, flag: str, value) -> CommandLine:
        """``flag value``; skipped when ``value`` is None."""
        if value is not None:
            self.args += [flag, str(value)]
        return self

    def opts(self, flag: str, values: Iterable) -> CommandLine:
        """``flag v`` once per value (repeatable options such as ``--set``)."""
        for v in values:
            self.opt(flag, v)
        return self

    def flag(self, flag: str, on: bool = True) -> CommandLine:
        if on:
            self.args.append(flag)
        return self

    @property
    def text(self) -> str:
        return shell_join(self.args)

    def __str__(self) -> str:
        return self.text


def shell_join(args: Iterable) -> str:
    """Arguments joined into one line that a POSIX shell splits back into exactly these arguments."""
    return " ".join(shlex.quote(str(a)) for a in args)

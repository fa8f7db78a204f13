"""Turn every failure into one line on stderr and a non-zero exit; ``DLBENCH_DEBUG=1`` shows tracebacks.

SIGINT (Ctrl-C), SIGTERM and SIGHUP are handled alike, from the first moment of ``main``: each raises
:class:`Interrupted`, a BaseException that neither typer nor click nor an ``except Exception`` swallows, so every
``finally`` on the way out runs (a trial's claim is released, a checkpoint already written stays) and the user
gets one line saying how to resume, with the shell's exit code for that signal (130, 143, 129).
"""

from __future__ import annotations

import os
import signal
import sys
import warnings

from dlbench.errors import DlbenchError

EXIT_USAGE = 2
RESUME_HINT = "finished results are in the cache, rerun the same command to resume"
HANDLED_SIGNALS = tuple(
    getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name)
)


class Interrupted(BaseException):
    """A signal asked dlbench to stop; raised in the main thread by the handler below."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


def _raise_interrupted(signum, _frame) -> None:
    for sig in HANDLED_SIGNALS:  # a second signal while unwinding must not cut the cleanup short
        signal.signal(sig, signal.SIG_IGN)
    raise Interrupted(signum)


def install_signal_handlers() -> dict:
    """Route the handled signals to :class:`Interrupted`; returns the previous handlers."""
    return {sig: signal.signal(sig, _raise_interrupted) for sig in HANDLED_SIGNALS}


def _debug() -> bool:
    return os.environ.get("DLBENCH_DEBUG", "") not in ("", "0")


def _fail(message: str, code: int) -> None:
    sys.stderr.write(f"error: {message}\n")
    sys.exit(code)


def _is_ours(category: type) -> bool:
    # By module name, so the CLI need not import dlbench.cache (pandas) just to recognise CacheWarning.
    return getattr(category, "__module__", "").startswith("dlbench")


def _show_warning(message, category, filename, lineno, file=None, line=None, _default=warnings.showwarning):
    """dlbench's own warnings (CacheWarning, ...) as one line on stderr; others as Python shows them."""
    if _is_ours(category):
        text = " ".join(str(message).split())
        stream = sys.stderr  # looked up now: rich's live progress redirects it above the bars
        stream.write(f"warning: {text}\n")
        stream.flush()
    else:
        _default(message, category, filename, lineno, file, line)


def main(argv: list[str] | None = None) -> None:
    previous = install_signal_handlers()  # before importing typer: a Ctrl-C at once is one line too
    try:
        with warnings.catch_warnings():
            default = warnings.showwarning
            warnings.showwarning = lambda *a, **k: _show_warning(*a, **k, _default=default)
            warnings.filterwarnings(
                "always", module=r"dlbench(\.|$)"
            )  # each damaged file is named, every time
            _main(argv)
    finally:  # called in-process (tests, notebooks): give the caller its own handlers back
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _main(argv: list[str] | None) -> None:
    try:
        _run(argv)
    except Interrupted as exc:
        if _debug():
            raise
        _fail(f"interrupted ({exc}); {RESUME_HINT}", exc.exit_code)
    except KeyboardInterrupt:  # raised by a library that installed its own SIGINT handler
        if _debug():
            raise
        _fail(f"interrupted (SIGINT); {RESUME_HINT}", 128 + signal.SIGINT)


def _run(argv: list[str] | None) -> None:  # noqa: C901, PLR0912 - one except clause per kind of failure
    import typer

    from dlbench.cli._app import app

    # typer vendors click; reach its exception classes through typer's public BadParameter.
    mro = {c.__name__: c for c in typer.BadParameter.__mro__}
    click_usage_error, click_exception = mro["UsageError"], mro["ClickException"]
    try:
        code = app(args=argv, prog_name="dlbench", standalone_mode=False)
    except typer.Exit as exc:  # --version
        sys.exit(exc.exit_code)
    except typer.Abort:
        _fail(f"interrupted; {RESUME_HINT}", 128 + signal.SIGINT)
    except click_usage_error as exc:
        if type(exc).__name__ == "NoArgsIsHelpError":  # `dlbench` alone: the help was printed, that is all
            sys.exit(0)
        if _debug():
            raise
        hint = f" (see `{exc.ctx.command_path} --help`)" if exc.ctx else ""
        _fail(exc.format_message().replace("\n", " ") + hint, EXIT_USAGE)
    except click_exception as exc:
        if _debug():
            raise
        _fail(exc.format_message().replace("\n", " "), exc.exit_code or 1)
    except DlbenchError as exc:
        if _debug():
            raise
        _fail(str(exc).replace("\n", " "), exc.exit_code)
    except OSError as exc:  # a path the user chose cannot be read or written: their fix, not a bug
        if _debug():
            raise
        where = f" {exc.filename}" if exc.filename else ""
        what = exc.strerror or type(exc).__name__
        _fail(f"cannot use{where}: {what}; check that path (a writable folder, enough free space)", 1)
    except Exception as exc:  # an internal error: still one line, with the way to see more
        if _debug():
            raise
        _fail(
            f"{type(exc).__name__}: {exc} (internal error; rerun with DLBENCH_DEBUG=1 for the traceback)", 1
        )
    sys.exit(code if isinstance(code, int) else 0)  # --help returns its exit code when not standalone

"""Turn every failure into one line on stderr and a non-zero exit; ``DLBENCH_DEBUG=1`` shows tracebacks."""

from __future__ import annotations

import os
import sys
import warnings

import typer

from dlbench.errors import DlbenchError

# Recent typer versions vendor click; reach its exception classes through typer's public BadParameter so
# this works whether click is a separate package or not.
_MRO = {c.__name__: c for c in typer.BadParameter.__mro__}
ClickUsageError = _MRO["UsageError"]
ClickException = _MRO["ClickException"]

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


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
    with warnings.catch_warnings():
        default = warnings.showwarning
        warnings.showwarning = lambda *a, **k: _show_warning(*a, **k, _default=default)
        warnings.filterwarnings("always", module=r"dlbench(\.|$)")  # each damaged file is named, every time
        _main(argv)


def _main(argv: list[str] | None) -> None:
    from dlbench.cli._app import app

    try:
        code = app(args=argv, prog_name="dlbench", standalone_mode=False)
    except typer.Exit as exc:  # --version
        sys.exit(exc.exit_code)
    except typer.Abort:
        _fail(
            "interrupted; finished results are in the cache, rerun the same command to resume",
            EXIT_INTERRUPTED,
        )
    except ClickUsageError as exc:
        if _debug():
            raise
        hint = f" (see `{exc.ctx.command_path} --help`)" if exc.ctx else ""
        _fail(exc.format_message().replace("\n", " ") + hint, EXIT_USAGE)
    except ClickException as exc:
        if _debug():
            raise
        _fail(exc.format_message().replace("\n", " "), exc.exit_code or 1)
    except DlbenchError as exc:
        if _debug():
            raise
        _fail(str(exc).replace("\n", " "), exc.exit_code)
    except KeyboardInterrupt:
        if _debug():
            raise
        _fail(
            "interrupted; finished results are in the cache, rerun the same command to resume",
            EXIT_INTERRUPTED,
        )
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

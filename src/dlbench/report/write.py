"""Where a report goes: the output format from ``--out``, the figures folder beside a Markdown report, and
every file written through :func:`dlbench.atomic.write_bytes` (temp name, rename; never replacing anything
that is not a regular file)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from dlbench.atomic import WriteError, check_replaceable, write_bytes
from dlbench.errors import UsageError
from dlbench.paths import safe_name
from dlbench.report.build import build_report
from dlbench.report.collect import Selection
from dlbench.report.html import render_html
from dlbench.report.markdown import render_markdown

FORMATS = ("markdown", "html")


@dataclass
class Written:
    path: Path
    fmt: str
    figures_dir: Path | None
    figures: list[Path]
    sweeps: list[str]
    runs: int


def resolve_format(out: Path, fmt: str | None) -> str:
    """``markdown`` or ``html``: from ``--format`` if given (it must agree with ``--out``'s suffix), else the suffix."""
    suffix = out.suffix.lower()
    by_suffix = (
        "html" if suffix in (".html", ".htm") else "markdown" if suffix in (".md", ".markdown") else None
    )
    if fmt is None:
        return by_suffix or "markdown"
    if fmt not in FORMATS:
        raise UsageError(f"--format must be one of {', '.join(FORMATS)}, got '{fmt}'")
    if by_suffix and by_suffix != fmt:
        raise UsageError(
            f"--format {fmt} does not match --out {out.name}; use a {'.html' if fmt == 'html' else '.md'} "
            "file name or leave --format out"
        )
    return fmt


def figures_dir_for(out: Path) -> Path:
    """``report.md`` -> ``report_files/`` beside it."""
    return out.with_name(f"{safe_name(out.stem)}_files")


def _check_writable(out: Path) -> None:
    """Refuse, writing nothing, an ``--out`` that is a folder or cannot be created or replaced."""
    if out.is_dir():
        raise UsageError(f"--out {out} is a folder; give a file name such as {out / 'report.md'}")
    check_replaceable(out)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(
            f"cannot write the report to {out} ({exc.strerror or exc}); choose another --out"
        ) from None
    if not os.access(out.parent, os.W_OK | os.X_OK):
        raise UsageError(
            f"cannot write the report to {out} ({out.parent} is read-only); choose another --out"
        )


def write_report(
    store, out: Path, fmt: str | None = None, selection: Selection | None = None, data_dir: Path | None = None
) -> Written:
    """Build the report and write it to ``out`` (Markdown: plus ``<stem>_files/`` beside it).

    Nothing is written anywhere else: figure names are sanitised and every file goes through the atomic writer.

    Raises:
        UsageError: Nothing to report, or ``out`` cannot be written.
    """
    out = Path(out).expanduser()
    fmt = resolve_format(out, fmt)
    _check_writable(out)
    report = build_report(store, selection, data_dir)
    written: list[Path] = []
    folder = None
    try:
        if fmt == "html":
            text = render_html(report)
        else:
            folder = figures_dir_for(out)
            images = report.images()
            if images:
                folder.mkdir(exist_ok=True)
            written = [write_bytes(folder / safe_name(img.name), img.png) for img in images]
            text = render_markdown(report, folder.name)
        write_bytes(out, text.encode("utf-8"))
    except WriteError as exc:
        raise UsageError(f"{exc}; choose another --out") from None
    except OSError as exc:
        raise UsageError(
            f"cannot write the report to {out} ({exc.strerror or exc}); choose another --out"
        ) from None
    return Written(
        out, fmt, folder if written else None, written, report.stats["sweeps"], report.stats["runs"]
    )

"""Where a report goes: the output format from ``--out``, the figures folder beside a Markdown report, and
every file written through :func:`dlbench.atomic.write_bytes` (temp name, rename; never replacing anything
that is not a regular file)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from dlbench.atomic import WriteError, check_replaceable, write_bytes
from dlbench.errors import UsageError
from dlbench.paths import inside, safe_name
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


SUFFIXES = {".md": "markdown", ".markdown": "markdown", ".html": "html", ".htm": "html"}
STDOUT = "-"  # ``--out -``: the report on standard output


def resolve_format(out: Path, fmt: str | None) -> str:
    """``markdown`` or ``html``: from ``--format`` if given (it must agree with ``--out``'s suffix), else the suffix.

    Raises:
        UsageError: An unknown ``--format``, or an ``--out`` whose suffix is not a report's (``r.pdf`` would
            otherwise be Markdown under a misleading name).
    """
    if fmt is not None and fmt not in FORMATS:
        raise UsageError(f"--format must be one of {', '.join(FORMATS)}, got '{fmt}'")
    if str(out) == STDOUT:
        return fmt or "markdown"
    by_suffix = SUFFIXES.get(out.suffix.lower())
    if by_suffix is None:
        raise UsageError(
            f"--out {out.name}: a report is written as {', '.join(SUFFIXES)} (or - for standard output), "
            f"not '{out.suffix or 'no extension'}'"
        )
    if fmt and by_suffix != fmt:
        raise UsageError(
            f"--format {fmt} does not match --out {out.name}; use a {'.html' if fmt == 'html' else '.md'} "
            "file name or leave --format out"
        )
    return by_suffix


def figures_dir_for(out: Path) -> Path:
    """``report.md`` -> ``report_files/`` beside it: the user's own stem when the folder name fits in 255 bytes
    (``Report.md`` -> ``Report_files``), a safe encoding of it otherwise."""
    name = f"{out.stem}_files"
    return out.with_name(name if len(name.encode()) <= 255 else f"{safe_name(out.stem)}_files")


def _check_target(out: Path) -> None:
    """Refuse an ``--out`` that exists and is not a regular file: dlbench replaces only what it could have made."""
    if out.is_dir() and not out.is_symlink():
        raise UsageError(f"--out {out} is a folder; give a file name such as {out / 'report.md'}")
    check_replaceable(out)


def _check_writable(out: Path, fmt: str) -> None:
    """Refuse, writing nothing, an ``--out`` whose figures folder or own folder cannot be written."""
    folder = figures_dir_for(out)  # Markdown's figures go only into a real folder, never through a symlink
    if fmt == "markdown" and (folder.is_symlink() or (os.path.lexists(folder) and not folder.is_dir())):
        what = "a symlink" if folder.is_symlink() else "not a folder"
        raise UsageError(f"refusing to write the figures into {folder}: it is {what}; choose another --out")
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


def _build(store, selection: Selection | None, data_dir: Path | None, study: str | None):
    """The general report, or with ``study`` the report of that study run (its sections in order)."""
    if study is None:
        return build_report(store, selection, data_dir)
    from dlbench.report.study import build_study_report

    return build_study_report(store, study, data_dir)


def report_text(
    store,
    fmt: str | None = None,
    selection: Selection | None = None,
    data_dir: Path | None = None,
    study: str | None = None,
) -> tuple[str, int]:
    """The report as one text for standard output (``--out -``) and the number of figures it leaves out.

    HTML embeds its figures as always; Markdown has no folder beside it to link them from, so it names each
    figure it leaves out (write to a ``.md`` file, or use HTML, to keep them).

    Raises:
        UsageError: Nothing to report.
    """
    fmt = resolve_format(Path(STDOUT), fmt)
    report = _build(store, selection, data_dir, study)
    if fmt == "html":
        return render_html(report), 0
    return render_markdown(report, None), len(report.images())


def write_report(
    store,
    out: Path,
    fmt: str | None = None,
    selection: Selection | None = None,
    data_dir: Path | None = None,
    study: str | None = None,
) -> Written:
    """Build the report and write it to ``out`` (Markdown: plus ``<stem>_files/`` beside it).

    Nothing is written anywhere else: figure names are sanitised and every file goes through the atomic writer.

    Raises:
        UsageError: Nothing to report, or ``out`` cannot be written.
    """
    out = Path(out).expanduser()
    _check_target(out)  # a folder, device, fifo or symlink is refused as such, whatever its name
    fmt = resolve_format(out, fmt)
    _check_writable(out, fmt)
    report = _build(store, selection, data_dir, study)
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
            # names are blocks.FileNames' (paths.safe_name, one to one): encoding them again would not be
            written = [write_bytes(inside(folder / img.name, folder), img.png) for img in images]
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

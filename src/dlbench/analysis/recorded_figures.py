"""Figures written by the look-inside commands, with the command that writes each again, recorded in the cache's
figure index so that `report` can include them. ``default_folder``, ``record`` and ``figures`` are the only
calls from analysis into the index."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from dlbench.errors import UsageError


@dataclass
class FigureRecord:
    """One written figure: what it shows (``kind``, ``title``, ``meta``) and how to write it again."""

    kind: str  # 'kernels' | 'feature-maps' | 'equivariance'
    path: Path
    title: str
    command: str  # a shell-quoted dlbench command line (dlbench.commandline)
    meta: dict = field(default_factory=dict)


def default_folder(store) -> Path:
    """Where figures go when no ``--out`` is given: the cache's ``figures/`` folder."""
    return store.figures_dir


def png_path(path: Path) -> Path:
    """``path`` made absolute; a figure must be a ``.png`` that can be written where it is named (checked before
    any work, so a file in the way is one line, not a failure after the measurement)."""
    from dlbench.paths import check_output_dir

    path = Path(path).expanduser().resolve()
    if path.suffix.lower() != ".png":
        raise UsageError(f"--out must name a .png file, got {path.name}")
    check_output_dir(path.parent, "--out")
    if path.exists() and not path.is_file():
        raise UsageError(f"--out {path} is not a regular file; name a .png file")
    return path


def record(store, figure: FigureRecord) -> None:
    """Add (or replace) ``figure`` in the figure index of ``store``'s cache."""
    store.record_figure(figure.kind, figure.path, figure.title, figure.command, figure.meta)


def figures(store, kind: str | None = None):
    """The recorded figures (a DataFrame, oldest first), optionally of one ``kind``."""
    return store.figures(kind)

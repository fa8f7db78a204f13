"""`dlbench status NAME`: follow a study whose trials run as Slurm jobs (a detached sweep), then tabulate it."""

from __future__ import annotations

from pathlib import Path

import typer

from dlbench.cli._options import CacheDirOpt, FormatOpt
from dlbench.cli._output import Format, err


def status(
    name: str = typer.Argument(..., help="The sweep's name (as `dlbench sweep` printed it)."),
    wait: bool = typer.Option(
        True, "--wait/--no-wait", help="Follow the jobs until every trial ends, or show where they are now."
    ),
    figures: bool = typer.Option(
        True, "--figures/--no-figures", help="Write the curves once all trials ended."
    ),
    cache_dir: Path = CacheDirOpt,
    fmt: Format = FormatOpt,
) -> None:
    """Show each trial of a sweep live (queued, running, done, failed) and its table when all have ended."""
    from dlbench import paths
    from dlbench.cache import Store
    from dlbench.cli._slurm import StudyView
    from dlbench.cli.sweep import show_study
    from dlbench.sweep.slurm import follow_study
    from dlbench.sweep.study import Study

    store = Store(paths.cache_dir(cache_dir))
    study = Study.from_dict(store.get_sweep(name))
    with StudyView(study.name, len(study.trials)) as view:
        counts, missing = follow_study(store, study, view.change, wait=wait)
    ended = counts.cached + counts.done + counts.failed
    line = f"{len(study.trials)} trials: {counts.line()}" + (
        f", {len(study.trials) - ended - len(missing)} still queued or running" if not wait else ""
    )
    if missing:
        line += f", {len(missing)} never submitted (run the sweep command: {study.command or 'dlbench sweep ...'})"
    show_study(store, study, line + ".", fmt, None, figures and wait and not missing, counts.rows)
    if missing or counts.failed:
        err.print(
            "rerun the sweep command to submit the missing or failed trials", markup=False, highlight=False
        )

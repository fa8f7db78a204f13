"""The typer app: one module per command, wired here. Command modules import torch only when they run."""

from __future__ import annotations

import typer

from dlbench import __version__
from dlbench.cli import (
    count_params,
    equivariance,
    kernels,
    registry,
    report,
    runs,
    solve_depth,
    status,
    study,
    sweep,
    train,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"dlbench {__version__}")
        raise typer.Exit()


app = typer.Typer(
    name="dlbench",
    help="One command per classic small-vision-model study: train, sweep, count, solve, look inside, report.",
    no_args_is_help=True,
    add_completion=True,  # --install-completion / --show-completion; completing never imports torch
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version."
    ),
) -> None:
    """dlbench: results are cached by config, so nothing runs twice."""


app.command("models")(registry.models)
app.command("datasets")(registry.datasets)
app.command("count-params")(count_params.count_params)
app.command("solve-depth")(solve_depth.solve_depth)
app.command("train")(train.train)
app.command("sweep")(sweep.sweep)
app.command("status")(status.status)
app.command("visualize-kernels")(kernels.visualize_kernels)
app.command("equivariance")(equivariance.equivariance)
app.command("report")(report.report)
app.add_typer(runs.app, name="runs")
app.add_typer(study.app, name="study")

"""`dlbench solve-depth`: the integer setting that brings a model closest to a parameter budget."""

from __future__ import annotations

from pathlib import Path

import typer

from dlbench.cli._options import DataDirOpt, FormatOpt, SetOpt
from dlbench.cli._output import Format, Output, Table


def solve_depth(
    model: str = typer.Argument(..., help="Model whose setting to solve, e.g. mlp."),
    solve: str = typer.Option(
        "depth", "--solve", help="Integer setting to solve: depth, width, kernel_size..."
    ),
    target: int = typer.Option(None, "--target", help="Target parameter count."),
    target_model: str = typer.Option(None, "--target-model", help="Match this model's count instead."),
    target_sets: list[str] = typer.Option(
        None, "--target-set", help="Setting of the target model (repeatable)."
    ),
    sets: list[str] = SetOpt,
    dataset: str = typer.Option(None, "--dataset", "-d", help="Dataset whose shape and classes to use."),
    no_bias: bool = typer.Option(False, "--no-bias", help="Count weights only, as hand formulas usually do."),
    minimum: int = typer.Option(1, "--min", help="Smallest value to consider."),
    data_dir: Path = DataDirOpt,
    fmt: Format = FormatOpt,
) -> None:
    """Find the value of one setting whose parameter count is closest to a target."""
    from dlbench.analysis.count_tables import solve_table
    from dlbench.cli.train import single_values

    table = solve_table(
        model,
        solve,
        target=target,
        target_model=target_model,
        target_settings=single_values(target_sets),
        settings=single_values(sets),
        dataset=dataset,
        bias=not no_bias,
        minimum=minimum,
        data_dir=data_dir,
    )
    output = Output(fmt)
    output.note(table.summary)
    output.result(table.as_dict(), Table(table.rows, highlight=table.best))

"""`dlbench count-params`: parameters, trainable parameters and MACs, one row per combination of values."""

from __future__ import annotations

from pathlib import Path

import typer

from dlbench.cli._options import DataDirOpt, DatasetOptOpt, FormatOpt, SetOpt
from dlbench.cli._output import Format, Output, Table


def count_params(
    model: str = typer.Argument(..., help="Model name (see `dlbench models`), e.g. mlpmixer or tv:resnet50."),
    dataset: str = typer.Option(None, "--dataset", "-d", help="Dataset whose shape and classes to use."),
    sets: list[str] = SetOpt,
    dataset_opts: list[str] = DatasetOptOpt,
    depth: int = typer.Option(0, "--depth", help="Also print a per-layer breakdown down to this depth."),
    no_bias: bool = typer.Option(False, "--no-bias", help="Count weights only (leave out bias vectors)."),
    data_dir: Path = DataDirOpt,
    fmt: Format = FormatOpt,
) -> None:
    """Count parameters and multiply-accumulates per image without allocating any weights."""
    from dlbench.analysis.count_tables import count_table
    from dlbench.cli.train import single_values
    from dlbench.settings import parse_assignments

    grid = parse_assignments(sets)
    table = count_table(
        model, dataset, grid, single_values(dataset_opts), depth=depth, bias=not no_bias, data_dir=data_dir
    )
    tables = [Table(table.rows, table.columns, title=table.title, name="counts")]
    if depth:
        tables.append(Table(table.layers, title=table.layers_title, name="layers"))
    Output(fmt).tables(*tables)

"""Option types shared by several commands."""

from __future__ import annotations

import typer

from dlbench.cli._output import Format

SetOpt = typer.Option(
    None,
    "--set",
    "-s",
    help="Model setting NAME=VALUE (repeatable). Commas give alternatives: width=64,128; "
    "a slash separates items of one list value: channels=32/64/128.",
)
DatasetOptOpt = typer.Option(
    None, "--dataset-opt", help="Dataset option NAME=VALUE (repeatable), e.g. train_size=5000 for shapes."
)
DataDirOpt = typer.Option(
    None, "--data-dir", envvar="DLBENCH_DATA_DIR", help="Folder holding <dataset>/ files.", show_default=False
)
CacheDirOpt = typer.Option(
    None,
    "--cache-dir",
    envvar="DLBENCH_HOME",
    help="Results folder (default: results/ in the user data folder).",
    show_default=False,
)
FormatOpt = typer.Option(Format.table, "--format", "-f", help="Output format.")

"""`dlbench count-params`: parameters, trainable parameters and MACs, one row per combination of values."""

from __future__ import annotations

from pathlib import Path

import typer

from dlbench.cli._options import CacheDirOpt, DataDirOpt, DatasetOptOpt, FormatOpt, SetOpt
from dlbench.cli._output import Format, Output, Table

LAYER_KEEP = ["layer", "output", "params"]


def count_params(
    model: str = typer.Argument(..., help="Model name (see `dlbench models`), e.g. mlpmixer or tv:resnet50."),
    dataset: str = typer.Option(None, "--dataset", "-d", help="Dataset whose shape and classes to use."),
    sets: list[str] = SetOpt,
    dataset_opts: list[str] = DatasetOptOpt,
    depth: int = typer.Option(0, "--depth", help="Also print a per-layer breakdown down to this depth."),
    no_bias: bool = typer.Option(False, "--no-bias", help="Count weights only (leave out bias vectors)."),
    input_size: int = typer.Option(
        None,
        "--input-size",
        help="Count on N x N inputs (keeping the dataset's channels and classes) instead of its own size.",
        show_default="the dataset's size",
    ),
    data_dir: Path = DataDirOpt,
    cache_dir: Path = CacheDirOpt,
    fmt: Format = FormatOpt,
) -> None:
    """Count parameters and multiply-accumulates per image without allocating any weights.

    The table is also recorded in the cache (when it is writable), so `dlbench report` shows it.
    """
    from dlbench.analysis.count_tables import count_table
    from dlbench.cli.train import single_values
    from dlbench.settings import parse_assignments

    grid = parse_assignments(sets)
    table = count_table(
        model,
        dataset,
        grid,
        single_values(dataset_opts),
        depth=depth,
        bias=not no_bias,
        data_dir=data_dir,
        input_size=input_size,
    )
    _record(table, cache_dir)
    # Every column of the counts is a setting or a count: none is left out. Layers keep their name and counts.
    tables = [Table(table.rows, table.columns, title=table.title, name="counts", keep=table.columns)]
    if depth:
        tables.append(Table(table.layers, title=table.layers_title, name="layers", keep=LAYER_KEEP))
    output = Output(fmt)
    output.tables(*tables)
    for note in table.notes:  # why a `macs` cell is `-` (on stderr: machine formats stay one document)
        output.warning(note)


def _record(table, cache_dir) -> None:
    """Keep the table for `report`; a read-only (shared) cache keeps nothing and the count still prints."""
    from dlbench import paths
    from dlbench.cache import Store
    from dlbench.errors import DlbenchError

    store = Store(paths.cache_dir(cache_dir))
    if store.read_only():
        return
    try:
        store.record_counts(table.title, table.command, table.columns, table.rows)
    except DlbenchError as exc:  # a cache folder that cannot be created: the count itself is still right
        import warnings

        from dlbench.cache import CacheWarning

        warnings.warn(f"the table was not recorded for `report`: {exc}", CacheWarning, stacklevel=2)

"""`dlbench count-params`: parameters, trainable parameters and MACs, one row per combination of values."""

from __future__ import annotations

import itertools
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
    from dlbench.analysis.params import build_meta, count_macs, count_parameters, input_for, layer_summary
    from dlbench.errors import UsageError
    from dlbench.models import get_model_spec
    from dlbench.settings import parse_assignments

    spec = get_model_spec(model)
    grid = parse_assignments(sets)
    shape, classes, ds_name = input_for(spec, dataset, data_dir, parse_assignments(dataset_opts, False))
    keys = list(grid)
    combos = list(itertools.product(*grid.values())) if grid else [()]
    if depth and len(combos) > 1:
        raise UsageError("--depth prints one model's layers: give one value per setting")
    rows = []
    for combo in combos:
        settings = dict(zip(keys, combo, strict=True))
        resolved = spec.resolve(settings)
        net = build_meta(spec, shape, classes, resolved)
        total, trainable = count_parameters(net, bias=not no_bias)
        row = {k: resolved[k] for k in keys}
        row.update(params=total, trainable=trainable, macs=count_macs(net, shape))
        rows.append(row)
    title = f"{model} on {ds_name} ({'x'.join(map(str, shape))}, {classes} classes)"
    tables = [Table(rows, title=title, name="counts")]
    if depth:
        layer_rows = [
            {
                "layer": r.name,
                "type": r.type,
                "output": "x".join(map(str, r.output_shape or ())) or "-",
                "params": r.params,
            }
            for r in layer_summary(net, shape, depth)
        ]
        tables.append(Table(layer_rows, title=f"Layers of {model} (depth {depth})", name="layers"))
    Output(fmt).tables(*tables)

"""`dlbench models` and `dlbench datasets`: what the registries hold."""

from __future__ import annotations

from pathlib import Path

import typer

from dlbench.cli._options import DataDirOpt, FormatOpt
from dlbench.cli._output import Format, Output


def models(
    pattern: str = typer.Argument(
        None, help="Glob or substring on name or family, e.g. mlp, 'tv:*', resnet."
    ),
    fmt: Format = FormatOpt,
) -> None:
    """List models: name, family, description, parameters at the defaults for the default dataset."""
    from dlbench.analysis.params import build_meta, count_parameters, input_for
    from dlbench.models import list_models

    show_tv = bool(pattern) and ("tv" in pattern or "torchvision" in pattern or "*" in pattern)
    specs = list_models(pattern, torchvision=show_tv or bool(pattern))
    rows = []
    for spec in specs:
        shape, classes, dataset = input_for(spec, None)
        total, _ = count_parameters(build_meta(spec, shape, classes))
        rows.append(
            {
                "name": spec.name,
                "family": spec.family,
                "description": spec.description,
                "dataset": dataset,
                "params": total,
            }
        )
    output = Output(fmt)
    output.table(
        rows,
        title="Models (parameters at defaults on the default dataset)",
        keep=["name", "params"],
        drop_order=["family", "dataset"],
    )
    if not pattern:
        output.note(
            "Every torchvision classifier is also available as tv:NAME; list them with `dlbench models tv:`."
        )


def datasets(data_dir: Path = DataDirOpt, fmt: Format = FormatOpt) -> None:
    """List datasets: shape, classes, split sizes, where the files live and whether they are present."""
    from dlbench import paths
    from dlbench.data import list_datasets

    root = paths.data_dir(data_dir)
    rows = []
    for spec in list_datasets():
        info = spec.info(root)
        rows.append(
            {
                "name": spec.name,
                "shape": "x".join(map(str, info.input_shape)),
                "classes": info.num_classes,
                "train": info.train_size,
                "test": info.test_size,
                "folder": str(spec.folder(root)),
                "present": spec.present(root),
            }
        )
    # The folder is ROOT/NAME: the first column to leave out of a narrow terminal (the title names ROOT).
    Output(fmt).table(rows, title=f"Datasets in {root}", drop_order=["folder"])

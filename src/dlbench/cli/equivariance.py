"""`dlbench equivariance`: how a layer or a model commutes with shifts, rotations, flips and illumination."""

from __future__ import annotations

from pathlib import Path

import typer

from dlbench.analysis.equivariance_views import DEFAULT_TRANSFORMS
from dlbench.cli._options import CacheDirOpt, DataDirOpt, DatasetOptOpt, FormatOpt, SetOpt
from dlbench.cli._output import Format, Output, Table


def equivariance(
    layer: str = typer.Option(
        None, "--layer", "-l", help="A random layer: conv | pool | mlp | stack (default conv)."
    ),
    model: str = typer.Option(
        None, "--model", "-m", help="An untrained registry model instead of a random layer."
    ),
    run: str = typer.Option(None, "--run", "-r", help="A trained model from the cache (see `dlbench runs`)."),
    sets: list[str] = SetOpt,
    dataset: str = typer.Option(
        None, "--dataset", "-d", help="Images to use (default: fashion-mnist if present, else shapes)."
    ),
    dataset_opts: list[str] = DatasetOptOpt,
    transform: str = typer.Option(
        DEFAULT_TRANSFORMS,
        "--transform",
        "-t",
        help="Comma list: shift, rot90, rotate:ANGLE, hflip, brightness:F, contrast:F.",
    ),
    shift: str = typer.Option("3,3", "--shift", help="DX,DY of the shift transform, in pixels."),
    margin: int = typer.Option(
        None,
        "--margin",
        help="Border pixels left out (default: the layer's receptive-field radius).",
        show_default=False,
    ),
    kernel_size: int = typer.Option(
        3, "--kernel-size", "-k", help="conv/stack kernel size (odd); pool window."
    ),
    channels: int = typer.Option(8, "--channels", help="Output channels of the random conv/stack."),
    padding: str = typer.Option("zero", "--padding", help="zero | circular"),
    symmetric: bool = typer.Option(
        False, "--symmetric", help="Make kernels rot90-symmetric (mean of 4 rotations)."
    ),
    depth: int = typer.Option(3, "--depth", help="stack: number of conv+ReLU layers."),
    stride: int = typer.Option(2, "--stride", help="pool: stride."),
    seed: int = typer.Option(0, "--seed", help="Seed of the random layer or the untrained model."),
    images: int = typer.Option(256, "--images", "-n", help="Number of test images to average over."),
    per_layer: bool = typer.Option(False, "--per-layer", help="Model: shift/rot90 errors after each layer."),
    sample: int = typer.Option(0, "--sample", help="Test image shown in the figure."),
    out_path: Path = typer.Option(None, "--out", "-o", help="Figure PNG (default: <cache>/figures/...)."),
    no_figure: bool = typer.Option(False, "--no-figure", help="Do not write the figure."),
    data_dir: Path = DataDirOpt,
    cache_dir: Path = CacheDirOpt,
    fmt: Format = FormatOpt,
) -> None:
    """Equivariance errors ||f(Tx) - T f(x)|| / ||f(x)|| (invariance for logits), with a four-panel figure."""
    from dlbench.analysis.equivariance_views import Measurement, RandomLayer, measure_equivariance
    from dlbench.analysis.model_source import ModelSource
    from dlbench.cli.train import single_values
    from dlbench.errors import UsageError

    if sum(bool(v) for v in (layer, model, run)) > 1:
        raise UsageError("give one target: --layer conv|pool|mlp|stack, --model NAME or --run KEY")
    if per_layer and not (model or run):
        raise UsageError("--per-layer needs a model: --model NAME or --run KEY")
    ds_opts = single_values(dataset_opts)
    if model or run:
        target = ModelSource(
            run=run,
            model=model,
            dataset=dataset,
            settings=single_values(sets),
            dataset_options=ds_opts,
            untrained=True,
            seed=seed,
        )
    else:
        target = RandomLayer(
            layer=layer or "conv",
            kernel_size=kernel_size,
            channels=channels,
            padding=padding,
            symmetric=symmetric,
            depth=depth,
            stride=stride,
            seed=seed,
            margin=margin,
            dataset=dataset,
            dataset_options=ds_opts,
        )
    how = Measurement(transform=transform, shift=shift, images=images, per_layer=per_layer, sample=sample)
    result = measure_equivariance(
        target, how, figure=not no_figure, out=out_path, cache_dir=cache_dir, data_dir=data_dir
    )
    _show(Output(fmt), result)


def _show(output: Output, result) -> None:
    """Errors per transform, errors after each layer, and how to read them."""
    report = result.report
    for note in report.notes:
        output.warning(note)
    rows = [r.as_dict() for r in report.rows]
    columns = ["transform", "measure", "error", "full_error", "agreement", "margin", "note"]
    if all(r["agreement"] is None for r in rows):
        columns.remove("agreement")
    if all(not r["note"] for r in rows):
        columns.remove("note")
    title = f"Equivariance of {report.target} on {report.images} {report.dataset} test images"
    tables = [Table(rows, columns, title=title, name="details")]
    if report.per_layer:
        title = "Error after each layer (None: shift not a multiple of the stride)"
        tables.append(Table(report.per_layer, title=title, name="per_layer"))
    output.result(result.as_dict(), *tables)
    output.note(
        "(error: away from the borders (margin) / inside the shrunken disc for rotate:A; "
        "full_error: the whole image. invariance rows compare f(Tx) with f(x).)"
    )
    if result.figure:
        output.note(f"figure: {result.figure.path}")

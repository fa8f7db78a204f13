"""`dlbench visualize-kernels`: a layer's weights (or feature maps) as image grid, recorded for `report`."""

from __future__ import annotations

from pathlib import Path

import typer

from dlbench.cli._options import CacheDirOpt, DataDirOpt, DatasetOptOpt, FormatOpt, SetOpt
from dlbench.cli._output import Format, Output
from dlbench.cli._train_options import with_train_options


@with_train_options
def visualize_kernels(
    run: str = typer.Option(None, "--run", "-r", help="Key of a cached run (see `dlbench runs`)."),
    model: str = typer.Option(
        None, "--model", "-m", help="Model name: looks up the run trained with these options."
    ),
    dataset: str = typer.Option(None, "--dataset", "-d", help="Dataset (default: the model's own)."),
    sets: list[str] = SetOpt,
    dataset_opts: list[str] = DatasetOptOpt,
    untrained: bool = typer.Option(
        False, "--untrained", help="A freshly initialised model (--seed picks the init)."
    ),
    layer: str = typer.Option(
        "first", "--layer", "-l", help="first | last | a module name (conv layers are listed)."
    ),
    norm: str = typer.Option(
        "layer", "--norm", help="layer (one scale) | kernel (each its own) | standard (z-scores)."
    ),
    channels: str = typer.Option(
        "auto", "--channels", help="auto | rgb | mean | each (auto: rgb for 3 channels)."
    ),
    max_units: int = typer.Option(256, "--max-units", help="Draw at most this many units/channels (0: all)."),
    show_maps: bool = typer.Option(
        False, "--feature-maps", help="Draw the layer's activations for one image."
    ),
    sample: int = typer.Option(0, "--sample", help="Feature maps: index of the test image."),
    image: Path = typer.Option(None, "--image", help="Feature maps: a PNG/JPEG instead of a test image."),
    out_path: Path = typer.Option(None, "--out", "-o", help="PNG to write (default: <cache>/figures/...)."),
    save_array: bool = typer.Option(
        False, "--save-array", help="Also write the raw array (.npy) beside the PNG."
    ),
    data_dir: Path = DataDirOpt,
    cache_dir: Path = CacheDirOpt,
    fmt: Format = FormatOpt,
    train_opts: dict = None,
) -> None:
    """Show a layer's kernels (first conv by default; MLP-Mixer: token-mixing units) or its feature maps."""
    from dlbench.analysis.kernel_views import KernelView
    from dlbench.analysis.kernel_views import visualize_kernels as draw_view
    from dlbench.analysis.model_source import ModelSource
    from dlbench.cli.train import single_values
    from dlbench.errors import UsageError

    if run and (model or untrained):
        raise UsageError("give either --run KEY or --model (with --untrained or training options), not both")
    if not run and not model:
        raise UsageError("give --run KEY, or --model NAME (add --untrained for a freshly initialised model)")
    if image is not None and not show_maps:
        raise UsageError("--image is for --feature-maps")
    extra = sorted(set(train_opts) - {"seed"}) if untrained else []
    if extra:
        raise UsageError(
            f"--untrained takes only --seed among training options, got --{extra[0].replace('_', '-')}"
        )
    source = ModelSource(
        run=run,
        model=model,
        dataset=dataset,
        settings=single_values(sets),
        dataset_options=single_values(dataset_opts),
        untrained=untrained,
        seed=int(train_opts.get("seed", 0)),
        train_options=train_opts,
    )
    view = KernelView(
        layer=layer,
        norm=norm,
        channels=channels,
        max_units=max_units,
        feature_maps=show_maps,
        sample=sample,
        image=image,
        save_array=save_array,
    )
    result = draw_view(source, view, out=out_path, cache_dir=cache_dir, data_dir=data_dir)

    output = Output(fmt)
    for note in result.notes:
        output.warning(note)
    output.note(result.summary)
    paths = [result.figure.path, result.array_path] if result.array_path else [result.figure.path]
    output.result(result.as_dict(), lines=[str(p) for p in paths])

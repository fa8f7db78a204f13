"""`dlbench equivariance`: how a layer or a model commutes with shifts, rotations, flips and illumination."""

from __future__ import annotations

import shlex
from pathlib import Path

import typer

from dlbench.cli._options import CacheDirOpt, DataDirOpt, DatasetOptOpt, FormatOpt, SetOpt
from dlbench.cli._output import Format, err, out, print_json, render_rows


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
        "shift,rot90,rotate:45,hflip,brightness:1.5,contrast:0.5",
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
    import hashlib

    from dlbench import paths
    from dlbench.analysis import equivariance as E
    from dlbench.analysis.kernels import build_untrained, load_run, save_figure
    from dlbench.cache import Store
    from dlbench.cli.train import default_dataset, single_values
    from dlbench.errors import UsageError

    if sum(bool(v) for v in (layer, model, run)) > 1:
        raise UsageError("give one target: --layer conv|pool|mlp|stack, --model NAME or --run KEY")
    if per_layer and not (model or run):
        raise UsageError("--per-layer needs a model: --model NAME or --run KEY")
    dxdy = E.parse_shift(shift)
    transforms = E.parse_transforms(transform, dxdy)
    data_root = paths.data_dir(data_dir)
    cache_root = paths.cache_dir(cache_dir)
    ds_opts = single_values(dataset_opts)

    if model or run:
        if run:
            from dlbench.cache import Store

            loaded = load_run(Store(cache_root), run, data_root)
        else:
            loaded = build_untrained(
                model, dataset or default_dataset(model), single_values(sets), ds_opts, seed, data_root
            )
        imgs = E.load_images(images, data_root, loaded.dataset, loaded.dataset_options)
        report = E.run_model(
            loaded,
            imgs,
            transforms,
            sample=sample,
            shift=dxdy,
            per_layer_=per_layer,
            with_figure=not no_figure,
        )
        who = loaded.key or f"{loaded.name}-untrained-seed{seed}"
    else:
        layer = layer or "conv"
        target_args = dict(
            kernel_size=kernel_size,
            channels=channels,
            padding=padding,
            symmetric=symmetric,
            depth=depth,
            stride=stride,
            seed=seed,
        )
        # Check the layer's flags on a dummy shape first: a typo should not wait for the dataset to load.
        E.build_target(layer, 1, (32, 32), **target_args)
        if margin is not None and margin < 0:
            raise UsageError(f"--margin must be >= 0, got {margin}")
        imgs = E.load_images(images, data_root, dataset, ds_opts if dataset else None)
        report = E.run_random(
            layer,
            imgs,
            transforms,
            margin=margin,
            sample=sample,
            shift=dxdy,
            with_figure=not no_figure,
            **target_args,
        )
        who = layer

    # The command line that reproduces these numbers and the figure.
    parts = ["dlbench equivariance"]
    if run:
        parts += ["--run", report.target.split("run ")[-1].rstrip(")")]
    elif model:
        parts += ["--model", model, *[f"--set {shlex.quote(s)}" for s in sets or []]]
        parts += ["--seed", str(seed)]
        if dataset:
            parts += ["--dataset", dataset]
    else:
        parts += [
            "--layer",
            layer,
            "--kernel-size",
            str(kernel_size),
            "--padding",
            padding,
            "--seed",
            str(seed),
        ]
        parts += ["--channels", str(channels)] if layer in ("conv", "stack") else []
        parts += ["--depth", str(depth)] if layer == "stack" else []
        parts += ["--stride", str(stride)] if layer == "pool" else []
        parts += ["--symmetric"] if symmetric else []
        parts += ["--dataset", dataset] if dataset else []
        parts += ["--margin", str(margin)] if margin is not None else []
    parts += [f"--dataset-opt {shlex.quote(s)}" for s in dataset_opts or []] if dataset else []
    parts += ["--transform", shlex.quote(transform), "--shift", shlex.quote(shift), "--images", str(images)]
    parts += ["--per-layer"] if per_layer else []
    parts += ["--sample", str(sample)] if sample else []

    figure_path = None
    if report.figure is not None:
        if out_path is None:
            digest = hashlib.sha256(" ".join(parts).encode()).hexdigest()[:8]
            out_path = Store(cache_root).figures_dir / f"equivariance-{paths.safe_name(who)}-{digest}.png"
        out_path = Path(out_path).expanduser().resolve()
        if out_path.suffix.lower() != ".png":
            raise UsageError(f"--out must name a .png file, got {out_path.name}")
        figure_path = save_figure(report.figure, out_path)
        parts += ["--out", shlex.quote(str(figure_path))]
        if cache_dir is not None:
            parts += ["--cache-dir", shlex.quote(str(Path(cache_dir).resolve()))]
        if data_dir is not None:
            parts += ["--data-dir", shlex.quote(str(Path(data_dir).resolve()))]
        command = " ".join(parts)
        Store(cache_root).record_figure(
            "equivariance",
            figure_path,
            f"equivariance of {report.target}",
            command,
            {
                "target": report.target,
                "dataset": report.dataset,
                "images": report.images,
                "errors": report.errors(),
                "rows": [r.as_dict() for r in report.rows],
            },
        )

    for note in report.notes:
        err.print(f"note: {note}")
    rows = [r.as_dict() for r in report.rows]
    if fmt == Format.json:
        print_json(
            {
                "target": report.target,
                "dataset": report.dataset,
                "images": report.images,
                "errors": report.errors(),
                "details": rows,
                "per_layer": report.per_layer,
                "figure": str(figure_path) if figure_path else None,
            }
        )
        return
    columns = ["transform", "measure", "error", "full_error", "agreement", "margin", "note"]
    if all(r["agreement"] is None for r in rows):
        columns.remove("agreement")
    if all(not r["note"] for r in rows):
        columns.remove("note")
    title = f"Equivariance of {report.target} on {report.images} {report.dataset} test images"
    render_rows(rows, columns, fmt=fmt, title=title)
    if report.per_layer:
        if fmt == Format.table:
            out.print()
        render_rows(
            report.per_layer,
            fmt=fmt,
            title="Error after each layer (None: shift not a multiple of the stride)",
        )
    if fmt == Format.table:
        out.print(
            "(error: away from the borders (margin) / inside the shrunken disc for rotate:A; "
            "full_error: the whole image. invariance rows compare f(Tx) with f(x).)",
            highlight=False,
        )
        if figure_path:
            out.print(f"figure: {figure_path}", highlight=False)

"""`dlbench visualize-kernels`: a layer's weights (or feature maps) as image grid, recorded for `report`."""

from __future__ import annotations

import shlex
from pathlib import Path

import typer

from dlbench.cli._options import CacheDirOpt, DataDirOpt, DatasetOptOpt, FormatOpt, SetOpt
from dlbench.cli._output import Format, err, out, print_json
from dlbench.cli._train_options import with_train_options


def _flags(pairs) -> list[str]:
    parts = []
    for flag, value in pairs:
        if value is None or value is False:
            continue
        parts.append(flag if value is True else f"{flag} {shlex.quote(str(value))}")
    return parts


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
    from dlbench import paths
    from dlbench.analysis import kernels as K
    from dlbench.cache import Store
    from dlbench.cli.train import default_dataset, single_values
    from dlbench.config import resolve_config
    from dlbench.errors import RunNotFoundError, UsageError

    if run and (model or untrained):
        raise UsageError("give either --run KEY or --model (with --untrained or training options), not both")
    if not run and not model:
        raise UsageError("give --run KEY, or --model NAME (add --untrained for a freshly initialised model)")
    if image is not None and not show_maps:
        raise UsageError("--image is for --feature-maps")
    cache_root = paths.cache_dir(cache_dir)
    data_root = paths.data_dir(data_dir)
    store = Store(cache_root)
    if run:
        loaded = K.load_run(store, run, data_root)
    elif untrained:
        extra = sorted(set(train_opts) - {"seed"})
        if extra:
            raise UsageError(
                f"--untrained takes only --seed among training options, got --{extra[0].replace('_', '-')}"
            )
        loaded = K.build_untrained(
            model,
            dataset or default_dataset(model),
            single_values(sets),
            single_values(dataset_opts),
            int(train_opts.get("seed", 0)),
            data_root,
        )
    else:
        config = resolve_config(
            model,
            dataset or default_dataset(model),
            single_values(sets),
            single_values(dataset_opts),
            train_opts,
        )
        if not store.has(config.key):
            raise RunNotFoundError(
                f"no cached run of {config.model} on {config.dataset} with these options (key {config.key}); "
                f"train it first: `{config.command()}`, or add --untrained"
            )
        loaded = K.load_run(store, config.key, data_root)

    kind = "feature-maps" if show_maps else "kernels"
    if loaded.key:
        who = loaded.key
    else:  # untrained: the name carries a digest of everything that shapes the model
        import hashlib

        ident = "|".join(
            [
                loaded.name,
                loaded.dataset,
                str(sorted(loaded.dataset_options.items())),
                str(sorted(loaded.settings.items())),
            ]
        )
        who = f"{loaded.name}-untrained-seed{loaded.seed}-{hashlib.sha256(ident.encode()).hexdigest()[:8]}"
    if out_path is None:
        name = f"{kind}-{who}-{paths.safe_name(layer)}-{norm}-{channels}"
        if show_maps:
            name = f"{kind}-{who}-{paths.safe_name(layer)}-" + (
                f"img-{paths.safe_name(Path(image).stem)}" if image else f"sample{sample}"
            )
        out_path = store.figures_dir / f"{name}.png"
    out_path = Path(out_path).expanduser().resolve()
    if out_path.suffix.lower() != ".png":
        raise UsageError(f"--out must name a .png file, got {out_path.name}")

    if show_maps:
        if image is not None:
            img = K.image_from_file(Path(image), loaded.input_shape)
            label = f"image {Path(image).name}"
        else:
            img, y = K.test_image(loaded, data_root, sample)
            label = f"test image {sample} (label {y})"
        result = K.visualize_feature_maps(
            loaded, out_path, img, layer=layer, max_units=max_units, save_array=save_array, image_label=label
        )
    else:
        result = K.visualize(
            loaded,
            out_path,
            layer=layer,
            norm=norm,
            channels=channels,
            max_units=max_units,
            save_array=save_array,
        )

    # The command that writes this figure again: the run key if trained, the build if untrained.
    source = (
        ["--run", loaded.key]
        if loaded.key
        else [
            "--untrained",
            "--model",
            loaded.name,
            "--dataset",
            loaded.dataset,
            *[f"--set {k}={v}" for k, v in sorted(single_values(sets).items())],
            *[f"--dataset-opt {k}={v}" for k, v in sorted(single_values(dataset_opts).items())],
            "--seed",
            str(loaded.seed),
        ]
    )
    flags = [("--layer", layer)]
    if show_maps:
        flags += [
            ("--feature-maps", True),
            ("--image", str(Path(image).resolve()) if image else None),
            ("--sample", None if image else sample),
        ]
    else:
        flags += [("--norm", norm), ("--channels", channels)]
    flags += [
        ("--max-units", max_units if max_units != 256 else None),
        ("--save-array", save_array),
        ("--out", str(out_path)),
    ]
    if cache_dir is not None:
        flags.append(("--cache-dir", str(Path(cache_dir).resolve())))
    if data_dir is not None:
        flags.append(("--data-dir", str(Path(data_dir).resolve())))
    command = " ".join(["dlbench visualize-kernels", *source, *_flags(flags)])
    title = f"{loaded.name} {result.layer} {'feature maps' if show_maps else 'kernels'} ({loaded.source})"
    meta = {
        "model": loaded.name,
        "dataset": loaded.dataset,
        "run": loaded.key,
        "layer": result.layer,
        "layer_kind": result.kind,
        "weight_shape": list(result.weight_shape),
        "image_shape": list(result.image_shape),
        "units": result.units,
        "shown": result.shown,
        "norm": None if show_maps else norm,
        "channels": result.channels or None,
        "array": str(result.array_path) if result.array_path else None,
    }
    store.record_figure(kind, result.path, title, command, meta)

    for note in result.notes:
        err.print(f"note: {note}")
    if fmt == Format.json:
        print_json(
            {
                "path": str(result.path),
                "array": meta["array"],
                "kind": kind,
                "title": title,
                "command": command,
                **meta,
            }
        )
        return
    if fmt == Format.table:
        err.print(f"{title}: {result.units} units, weight {'x'.join(map(str, result.weight_shape))}")
    out.print(str(result.path), highlight=False)
    if result.array_path:
        out.print(str(result.array_path), highlight=False)

"""`equivariance` as one library call: build or load the target, measure it, draw and record the figure with
the command that measures it again."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from dlbench import paths
from dlbench.analysis.model_source import ModelSource, load_model, source_args
from dlbench.analysis.recorded_figures import FigureRecord, default_folder, png_path, record
from dlbench.commandline import CommandLine
from dlbench.errors import UsageError

DEFAULT_TRANSFORMS = "shift,rot90,rotate:45,hflip,brightness:1.5,contrast:0.5"


@dataclass(frozen=True)
class RandomLayer:
    """A random float64 layer (``conv``, ``pool``, ``mlp`` or ``stack``) measured on test images of ``dataset``
    (None: Fashion-MNIST when present, else ``shapes``)."""

    layer: str = "conv"
    kernel_size: int = 3
    channels: int = 8
    padding: str = "zero"
    symmetric: bool = False
    depth: int = 3
    stride: int = 2
    seed: int = 0
    margin: int | None = None  # border pixels left out (None: the receptive-field radius)
    dataset: str | None = None
    dataset_options: dict = field(default_factory=dict)

    def build_args(self) -> dict:
        return dict(
            kernel_size=self.kernel_size,
            channels=self.channels,
            padding=self.padding,
            symmetric=self.symmetric,
            depth=self.depth,
            stride=self.stride,
            seed=self.seed,
        )


@dataclass(frozen=True)
class Measurement:
    """How to measure: the transforms (``--transform`` text), the shift, how many test images, whether to
    measure after each layer (models only), which test image the figure shows."""

    transform: str = DEFAULT_TRANSFORMS
    shift: str = "3,3"
    images: int = 256
    per_layer: bool = False
    sample: int = 0


@dataclass
class EquivarianceResult:
    """The measured ``report`` (``analysis.equivariance.Report``) and the recorded figure, if one was drawn."""

    report: object
    figure: FigureRecord | None = None

    def as_dict(self) -> dict:
        r = self.report
        return {
            "target": r.target,
            "dataset": r.dataset,
            "images": r.images,
            "errors": r.errors(),
            "details": [row.as_dict() for row in r.rows],
            "per_layer": r.per_layer,
            "figure": str(self.figure.path) if self.figure else None,
        }


def target_args(cmd: CommandLine, target: RandomLayer) -> CommandLine:
    """The flags that build ``target`` again (only those its kind of layer uses)."""
    cmd.opt("--layer", target.layer).opt("--kernel-size", target.kernel_size).opt("--padding", target.padding)
    cmd.opt("--seed", target.seed)
    cmd.opt("--channels", target.channels if target.layer in ("conv", "stack") else None)
    cmd.opt("--depth", target.depth if target.layer == "stack" else None)
    cmd.opt("--stride", target.stride if target.layer == "pool" else None)
    cmd.flag("--symmetric", target.symmetric).opt("--dataset", target.dataset).opt("--margin", target.margin)
    opts = sorted(target.dataset_options.items()) if target.dataset else []  # used only with --dataset
    return cmd.opts("--dataset-opt", [f"{k}={v}" for k, v in opts])


def _measure_model(source: ModelSource, how: Measurement, transforms, dxdy, with_figure, store, data_root):
    from dlbench.analysis import equivariance as E

    loaded = load_model(store, source, data_root)
    imgs = E.load_images(how.images, data_root, loaded.dataset, loaded.dataset_options)
    report = E.run_model(
        loaded,
        imgs,
        transforms,
        sample=how.sample,
        shift=dxdy,
        per_layer_=how.per_layer,
        with_figure=with_figure,
    )
    cmd = source_args(CommandLine("equivariance"), loaded, source, untrained_flag=False)
    return report, cmd, loaded.key or f"{loaded.name}-untrained-seed{loaded.seed}"


def _measure_layer(target: RandomLayer, how: Measurement, transforms, dxdy, with_figure, data_root):
    from dlbench.analysis import equivariance as E

    # Check the layer's flags on a dummy shape first: a typo should not wait for the dataset to load.
    E.build_target(target.layer, 1, (32, 32), **target.build_args())
    if target.margin is not None and target.margin < 0:
        raise UsageError(f"--margin must be >= 0, got {target.margin}")
    opts = target.dataset_options if target.dataset else None
    imgs = E.load_images(how.images, data_root, target.dataset, opts)
    report = E.run_random(
        target.layer,
        imgs,
        transforms,
        margin=target.margin,
        sample=how.sample,
        shift=dxdy,
        with_figure=with_figure,
        **target.build_args(),
    )
    return report, target_args(CommandLine("equivariance"), target), target.layer


def measure_equivariance(
    target: RandomLayer | ModelSource,
    how: Measurement,
    *,
    figure: bool = True,
    out: Path | None = None,
    cache_dir: Path | None = None,
    data_dir: Path | None = None,
) -> EquivarianceResult:
    """Measure how ``target`` commutes with ``how.transform``; draw the four-panel figure (unless ``figure`` is
    False or the output is flat), write it to ``out`` (default: the cache's figures folder) and record it.

    Args:
        target: A random layer, or a model (a cached run, or an untrained registry model with its seed).
        how: The transforms and images.
        figure: Draw the figure.
        out: The PNG to write.
        cache_dir: ``--cache-dir`` as given (None: the default folder); also written into the command.
        data_dir: ``--data-dir`` as given (None: the default folder); also written into the command.
    """
    from dlbench.analysis import equivariance as E
    from dlbench.analysis.kernels import save_figure
    from dlbench.cache import Store

    out = png_path(out) if out is not None else None
    dxdy = E.parse_shift(how.shift)
    transforms = E.parse_transforms(how.transform, dxdy)
    store = Store(paths.cache_dir(cache_dir))
    data_root = paths.data_dir(data_dir)
    if isinstance(target, ModelSource):
        report, cmd, tag = _measure_model(target, how, transforms, dxdy, figure, store, data_root)
    else:
        report, cmd, tag = _measure_layer(target, how, transforms, dxdy, figure, data_root)
    cmd.opt("--transform", how.transform).opt("--shift", how.shift).opt("--images", how.images)
    cmd.flag("--per-layer", how.per_layer).opt("--sample", how.sample or None)
    if report.figure is None:
        return EquivarianceResult(report)
    if (
        out is None
    ):  # the images measured are part of the name: the default dataset depends on the data folder
        digest = hashlib.sha256(f"{cmd.text}\0{report.dataset}".encode()).hexdigest()[:8]
        stem = f"equivariance-{tag}-{report.dataset}"
        out = png_path(default_folder(store) / f"{paths.safe_name(stem)}-{digest}.png")
    path = save_figure(report.figure, out)
    cmd.opt("--out", path)
    cmd.opt("--cache-dir", Path(cache_dir).resolve() if cache_dir is not None else None)
    cmd.opt("--data-dir", Path(data_dir).resolve() if data_dir is not None else None)
    meta = {
        "target": report.target,
        "dataset": report.dataset,
        "images": report.images,
        "errors": report.errors(),
        "rows": [r.as_dict() for r in report.rows],
    }
    recorded = FigureRecord("equivariance", path, f"equivariance of {report.target}", cmd.text, meta)
    record(store, recorded)
    return EquivarianceResult(report, recorded)

"""`visualize-kernels` as one library call: pick the model, name the figure, draw it, record it with the
command that draws it again."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from dlbench import paths
from dlbench.analysis.model_source import ModelSource, load_model, source_args
from dlbench.analysis.recorded_figures import FigureRecord, default_folder, png_path, record
from dlbench.commandline import CommandLine

DEFAULT_MAX_UNITS = 256


@dataclass(frozen=True)
class KernelView:
    """What to draw: a layer's weights (``norm``, ``channels``) or, with ``feature_maps``, its activations for
    test image ``sample`` or for the picture file ``image``."""

    layer: str = "first"
    norm: str = "layer"
    channels: str = "auto"
    max_units: int = DEFAULT_MAX_UNITS
    feature_maps: bool = False
    sample: int = 0
    image: Path | None = None
    save_array: bool = False

    @property
    def kind(self) -> str:
        return "feature-maps" if self.feature_maps else "kernels"


@dataclass
class KernelResult:
    """The written figure, as recorded; ``notes`` are things the reader should know about it."""

    figure: FigureRecord
    array_path: Path | None
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        f = self.figure
        return {"path": str(f.path), "kind": f.kind, "title": f.title, "command": f.command, **f.meta}

    @property
    def summary(self) -> str:
        m = self.figure.meta
        return f"{self.figure.title}: {m['units']} units, weight {'x'.join(map(str, m['weight_shape']))}"


def model_tag(loaded) -> str:
    """A file-name-safe name for the model: its run key, or for an untrained model its name, seed and a digest
    of everything that shapes it (dataset, dataset options, settings)."""
    if loaded.key:
        return loaded.key
    ident = "|".join(
        [
            loaded.name,
            loaded.dataset,
            str(sorted(loaded.dataset_options.items())),
            str(sorted(loaded.settings.items())),
        ]
    )
    return f"{loaded.name}-untrained-seed{loaded.seed}-{hashlib.sha256(ident.encode()).hexdigest()[:8]}"


def figure_name(loaded, view: KernelView) -> str:
    """The default file name (without folder) of the figure of ``view`` for ``loaded``."""
    stem = f"{view.kind}-{model_tag(loaded)}-{paths.safe_name(view.layer)}-"
    if not view.feature_maps:
        return f"{stem}{view.norm}-{view.channels}.png"
    return stem + (_image_part(view.image) if view.image else f"sample{view.sample}") + ".png"


def _image_part(image) -> str:
    """``img-<stem>-<hash of the image's absolute path>``: two images of one name in two folders differ."""
    where = str(Path(image).expanduser().resolve())
    return f"img-{paths.safe_name(Path(image).stem, 60)}-{hashlib.sha256(where.encode()).hexdigest()[:8]}"


def kernel_command(
    loaded, source: ModelSource, view: KernelView, out: Path, cache_dir: Path | None, data_dir: Path | None
) -> str:
    """The shell-quoted `dlbench visualize-kernels` line that writes this figure again."""
    cmd = source_args(CommandLine("visualize-kernels"), loaded, source, untrained_flag=True)
    cmd.opt("--layer", view.layer)
    if view.feature_maps:
        cmd.flag("--feature-maps").opt("--image", Path(view.image).resolve() if view.image else None)
        cmd.opt("--sample", None if view.image else view.sample)
    else:
        cmd.opt("--norm", view.norm).opt("--channels", view.channels)
    cmd.opt("--max-units", view.max_units if view.max_units != DEFAULT_MAX_UNITS else None)
    cmd.flag("--save-array", view.save_array).opt("--out", out)
    cmd.opt("--cache-dir", Path(cache_dir).resolve() if cache_dir is not None else None)
    return cmd.opt("--data-dir", Path(data_dir).resolve() if data_dir is not None else None).text


def draw(loaded, view: KernelView, out: Path, data_root: Path | None):
    """Draw ``view`` of ``loaded`` into the PNG ``out``; returns the ``kernels.KernelFigure``."""
    from dlbench.analysis import kernels as K

    if not view.feature_maps:
        return K.visualize(
            loaded,
            out,
            layer=view.layer,
            norm=view.norm,
            channels=view.channels,
            max_units=view.max_units,
            save_array=view.save_array,
        )
    if view.image is not None:
        img = K.image_from_file(Path(view.image), loaded.input_shape)
        label = f"image {Path(view.image).name}"
    else:
        img, y = K.test_image(loaded, data_root, view.sample)
        label = f"test image {view.sample} (label {y})"
    return K.visualize_feature_maps(
        loaded,
        out,
        img,
        layer=view.layer,
        max_units=view.max_units,
        save_array=view.save_array,
        image_label=label,
    )


def visualize_kernels(
    source: ModelSource,
    view: KernelView,
    *,
    out: Path | None = None,
    cache_dir: Path | None = None,
    data_dir: Path | None = None,
) -> KernelResult:
    """Draw ``view`` of the model ``source`` names, write it to ``out`` (default: the cache's figures folder)
    and record it in the figure index.

    Args:
        source: The model: a cached run, the run trained with some options, or an untrained model.
        view: What to draw.
        out: The PNG to write.
        cache_dir: ``--cache-dir`` as given (None: the default folder); also written into the command.
        data_dir: ``--data-dir`` as given (None: the default folder); also written into the command.
    """
    from dlbench.cache import Store

    store = Store(paths.cache_dir(cache_dir))
    data_root = paths.data_dir(data_dir)
    out = png_path(out) if out is not None else None  # a bad --out before the model is built
    loaded = load_model(store, source, data_root)
    out = out or png_path(default_folder(store) / figure_name(loaded, view))
    result = draw(loaded, view, out, data_root)
    title = (
        f"{loaded.name} {result.layer} {'feature maps' if view.feature_maps else 'kernels'} ({loaded.source})"
    )
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
        "norm": None if view.feature_maps else view.norm,
        "channels": result.channels or None,
        "array": str(result.array_path) if result.array_path else None,
    }
    command = kernel_command(loaded, source, view, result.path, cache_dir, data_dir)
    figure = FigureRecord(view.kind, result.path, title, command, meta)
    record(store, figure)
    return KernelResult(figure, result.array_path, list(result.notes))

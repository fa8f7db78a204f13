"""Dataset registry.

Every dataset is served the same way: whole splits as uint8 tensors ``(N, C, H, W)`` with int64 labels, so
the engine can keep them resident on the device. Files live in ``<data dir>/<dataset name>/`` exactly as their
authors distribute them (``fashion-mnist/train-images-idx3-ubyte.gz``), so ``--data-dir ../shared/data`` works.

A spec knows its shape without touching files (``info``), so counting parameters needs no data.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dlbench.errors import InvalidSettingError, UnknownNameError
from dlbench.paths import RESULTS
from dlbench.settings import canon_key, coerce


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    input_shape: tuple[int, int, int]  # (C, H, W)
    num_classes: int
    train_size: int
    test_size: int
    classes: tuple[str, ...]
    mean: tuple[float, ...]  # per channel, on the [0, 1] scale
    std: tuple[float, ...]


@dataclass
class ArrayDataset:
    """Both splits, in memory. ``*_x``: uint8 (N, C, H, W); ``*_y``: int64 (N,)."""

    info: DatasetInfo
    train_x: Any
    train_y: Any
    test_x: Any
    test_y: Any


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    description: str
    info_fn: Callable[..., DatasetInfo]  # info_fn(data_dir, **options) -> DatasetInfo, no heavy file reads
    load_fn: Callable[..., ArrayDataset]  # load_fn(data_dir, download, **options) -> ArrayDataset
    files: tuple[str, ...] = ()  # what a user must place in folder(data_dir) when offline
    defaults: dict[str, Any] = field(default_factory=dict)  # typed options (shapes: train_size, ...)
    present_fn: Callable[[Path], bool] | None = None
    folder_fn: Callable[[Path], Path] | None = None

    def resolve(self, options: dict[str, Any] | None = None) -> dict[str, Any]:
        out = dict(self.defaults)
        for key, raw in (options or {}).items():
            key = canon_key(key)
            if key not in self.defaults:
                valid = ", ".join(sorted(self.defaults)) or "none"
                raise InvalidSettingError(f"unknown option '{key}' for dataset '{self.name}'; valid: {valid}")
            out[key] = coerce(key, raw, self.defaults[key])
        return out

    def folder(self, data_dir: Path) -> Path:
        return self.folder_fn(Path(data_dir)) if self.folder_fn else Path(data_dir) / self.name

    def present(self, data_dir: Path) -> bool:
        if self.present_fn:
            return self.present_fn(Path(data_dir))
        return all((self.folder(data_dir) / f).exists() for f in self.files)

    def info(self, data_dir: Path | None = None, options: dict | None = None) -> DatasetInfo:
        return self.info_fn(data_dir, **self.resolve(options))

    def load(self, data_dir: Path, options: dict | None = None, download: bool = True) -> ArrayDataset:
        return self.load_fn(Path(data_dir), download, **self.resolve(options))


_DATASETS: dict[str, DatasetSpec] = {}
IMAGEFOLDER_PREFIX = "imagefolder:"


def register_dataset(spec: DatasetSpec) -> DatasetSpec:
    if spec.name in _DATASETS:
        raise ValueError(f"dataset '{spec.name}' is registered twice")
    if spec.name == RESULTS:  # its folder in the user data folder would be the results folder
        raise ValueError(f"'{RESULTS}' cannot be a dataset's name: it is dlbench's results folder")
    _DATASETS[spec.name] = spec
    return spec


def get_dataset(name: str) -> DatasetSpec:
    _load_sets()
    if name.startswith(IMAGEFOLDER_PREFIX):
        from dlbench.data.imagefolder import imagefolder_spec

        return imagefolder_spec(name[len(IMAGEFOLDER_PREFIX) :])
    if name in _DATASETS:
        return _DATASETS[name]
    raise UnknownNameError(
        "dataset", name, list(_DATASETS), hint="see `dlbench datasets`; your own images: imagefolder:PATH"
    )


def list_datasets() -> list[DatasetSpec]:
    _load_sets()
    return [_DATASETS[n] for n in sorted(_DATASETS)]


def _load_sets() -> None:
    from dlbench.data import shapes, torchvision_sets  # noqa: F401

"""MNIST, Fashion-MNIST, CIFAR-10 and CIFAR-100, backed by torchvision's dataset classes.

Layout: ``<data_dir>/<name>/`` holds the files exactly as their authors distribute them:

* ``mnist/`` and ``fashion-mnist/``: ``train-images-idx3-ubyte.gz``, ``train-labels-idx1-ubyte.gz``,
  ``t10k-images-idx3-ubyte.gz``, ``t10k-labels-idx1-ubyte.gz``;
* ``cifar10/``: ``cifar-10-python.tar.gz`` or its extracted ``cifar-10-batches-py/`` folder;
* ``cifar100/``: ``cifar-100-python.tar.gz`` or its extracted ``cifar-100-python/`` folder.

torchvision's MNIST classes look in ``<root>/<ClassName>/raw/``; a subclass points ``raw_folder`` at
``<data_dir>/<name>`` instead, so torchvision's own download code writes there and nothing is ever copied
(``--data-dir`` can point at a read-only shared folder). Files are checked against the md5 sums torchvision
lists (copied in :mod:`.checksums`, so files on disk load without importing torchvision), once per file per
process, then decoded straight from the ``.gz`` / ``.tar.gz`` / pickle files. The decoded arrays are kept in
``<data_dir>/<name>/dlbench-decoded/`` (:mod:`.decoded`) and read from there while the files are unchanged.
"""

from __future__ import annotations

import functools
import gzip
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dlbench.data._registry import ArrayDataset, DatasetInfo, DatasetSpec, register_dataset
from dlbench.data.checksums import CIFAR10Files, CIFAR100Files, FashionMNISTFiles, MNISTFiles
from dlbench.data.cifar import cifar_present, load_cifar
from dlbench.data.decoded import SPLIT_ARRAYS, Source, load_or_decode
from dlbench.data.file_checks import fetch, missing_error, verify_md5
from dlbench.errors import DatasetError

FASHION_CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
CIFAR10_CLASSES = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)
# CIFAR-100 fine labels in label order (as in the archive's ``meta`` file), so info() needs no file.
CIFAR100_CLASSES = tuple(
    """apple aquarium_fish baby bear beaver bed bee beetle bicycle bottle bowl boy bridge bus butterfly
    camel can castle caterpillar cattle chair chimpanzee clock cloud cockroach couch crab crocodile cup
    dinosaur dolphin elephant flatfish forest fox girl hamster house kangaroo keyboard lamp lawn_mower
    leopard lion lizard lobster man maple_tree motorcycle mountain mouse mushroom oak_tree orange orchid
    otter palm_tree pear pickup_truck pine_tree plain plate poppy porcupine possum rabbit raccoon ray
    road rocket rose sea seal shark shrew skunk skyscraper snail snake spider squirrel streetcar
    sunflower sweet_pepper table tank telephone television tiger tractor train trout tulip turtle
    wardrobe whale willow_tree wolf woman worm""".split()
)
assert len(CIFAR100_CLASSES) == 100

MNIST_FILES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)

# -------------------- torchvision bridges
# Built on first use: importing torchvision costs seconds, and most commands (a cache hit, count-params on
# CIFAR-10's shape) never touch a torchvision dataset.
_BRIDGES = ("MNISTInFolder", "FashionMNISTInFolder", "CIFAR10InFolder", "CIFAR100InFolder")


@functools.cache
def _bridge_classes() -> dict[str, type]:
    from torchvision import datasets as tvd

    class _InFolder:
        """Mixin: torchvision's MNIST-style classes, reading and downloading in one given folder.

        ``__init__`` is replaced so that constructing one neither checks nor loads anything; we only use the
        class's metadata and its ``download()``.
        """

        def __init__(self, folder: Path):  # noqa: D107 - deliberately skips the torchvision __init__
            tvd.VisionDataset.__init__(self, root=str(folder))
            self._folder = str(folder)

        @property
        def raw_folder(self) -> str:
            return self._folder

        @property
        def processed_folder(self) -> str:  # legacy .pt files are never used
            return os.path.join(self._folder, "processed")

    class MNISTInFolder(_InFolder, tvd.MNIST):
        """torchvision ``MNIST`` whose raw files live directly in the given folder."""

    class FashionMNISTInFolder(_InFolder, tvd.FashionMNIST):
        """torchvision ``FashionMNIST`` whose raw files live directly in the given folder."""

    class _CIFARInFolder:
        """Mixin: torchvision's CIFAR classes without their loading ``__init__`` (download only)."""

        def __init__(self, folder: Path):  # noqa: D107
            tvd.VisionDataset.__init__(self, root=str(folder))

    class CIFAR10InFolder(_CIFARInFolder, tvd.CIFAR10):
        """torchvision ``CIFAR10`` rooted at ``<data_dir>/cifar10`` (its own layout already matches)."""

    class CIFAR100InFolder(_CIFARInFolder, tvd.CIFAR100):
        """torchvision ``CIFAR100`` rooted at ``<data_dir>/cifar100``."""

    return {
        "MNISTInFolder": MNISTInFolder,
        "FashionMNISTInFolder": FashionMNISTInFolder,
        "CIFAR10InFolder": CIFAR10InFolder,
        "CIFAR100InFolder": CIFAR100InFolder,
    }


def __getattr__(name: str):  # module attribute access: tvs.MNISTInFolder
    if name in _BRIDGES:
        return _bridge_classes()[name]
    raise AttributeError(name)


# -------------------- MNIST format
def _read_idx(path: Path) -> np.ndarray:
    """Decode an idx-ubyte file (gzipped or not) of uint8 values into an array of its stored shape."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            data = f.read()
        magic = int.from_bytes(data[0:4], "big")
        ndim, dtype_code = magic & 0xFF, (magic >> 8) & 0xFF
        if dtype_code != 0x08 or not 1 <= ndim <= 3:
            raise ValueError(f"not a uint8 idx file (magic {magic:#x})")
        dims = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
        arr = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
        if arr.size != int(np.prod(dims)):
            raise ValueError(f"{arr.size} values for shape {tuple(dims)}")
    except (OSError, EOFError, ValueError) as e:
        raise DatasetError(f"cannot decode {path} ({e}); delete it and download it again") from e
    return arr.reshape(dims).copy()


def _mnist_file(folder: Path, gz_name: str) -> Path | None:
    """The ``.gz`` as distributed, or the file torchvision extracts next to it; None if neither exists."""
    for candidate in (folder / gz_name, folder / gz_name[: -len(".gz")]):
        if candidate.exists():
            return candidate
    return None


def _mnist_present(folder: Path) -> bool:
    return all(_mnist_file(folder, f) is not None for f in MNIST_FILES)


def _load_mnist_like(cls, downloader, name: str, folder: Path, download: bool, verify: bool):
    """Both splits of an MNIST-format set from ``folder``. ``cls`` holds the files' md5 sums
    (:mod:`.checksums`); ``downloader(folder)`` builds torchvision's dataset object, only to download.
    The decoded arrays are kept in ``folder/dlbench-decoded`` (:mod:`.decoded`) for the next load."""
    if not _mnist_present(folder):
        if not download:
            raise missing_error(name, folder, MNIST_FILES)
        fetch(downloader(folder), name, folder, MNIST_FILES)
    md5s = dict(cls.resources)
    sources = []
    for gz_name in MNIST_FILES:
        path = _mnist_file(folder, gz_name)
        if path is None:
            raise missing_error(name, folder, MNIST_FILES)
        # torchvision lists md5 sums of the .gz files only
        sources.append(Source(path, md5s[gz_name] if verify and path.name == gz_name else None))

    def decode() -> dict[str, np.ndarray]:
        out = {}
        for key, gz_name, source in zip(SPLIT_ARRAYS, MNIST_FILES, sources, strict=True):
            if source.md5 is not None:
                fix = f"delete it and run again to download it, or place the original {gz_name} there"
                verify_md5(source.path, source.md5, fix)
            out[key] = _read_idx(source.path)
        return out

    arrays = load_or_decode(folder, sources, SPLIT_ARRAYS, decode)
    import torch

    train_x, train_y, test_x, test_y = (torch.from_numpy(arrays[k]) for k in SPLIT_ARRAYS)
    # images (N, 28, 28), labels (N,)
    return train_x.unsqueeze(1), train_y.long(), test_x.unsqueeze(1), test_y.long()


# -------------------- specs
@dataclass(frozen=True)
class _Set:
    name: str
    source: str  # name of the torchvision bridge class (built only to download)
    checksums: type  # the files and their md5 sums (dlbench.data.checksums)
    loader: Callable
    info: DatasetInfo
    files: tuple[str, ...]
    present: Callable[[Path], bool]
    description: str


def _info(name, shape, n_train, classes, mean, std) -> DatasetInfo:
    return DatasetInfo(name, shape, len(classes), n_train, 10000, tuple(classes), mean, std)


_SETS = {
    s.name: s
    for s in (
        _Set(
            "mnist",
            "MNISTInFolder",
            MNISTFiles,
            _load_mnist_like,
            _info("mnist", (1, 28, 28), 60000, [str(i) for i in range(10)], (0.1307,), (0.3081,)),
            MNIST_FILES,
            _mnist_present,
            "MNIST handwritten digits, 28x28 grey, 10 classes (LeCun et al.)",
        ),
        _Set(
            "fashion-mnist",
            "FashionMNISTInFolder",
            FashionMNISTFiles,
            _load_mnist_like,
            _info("fashion-mnist", (1, 28, 28), 60000, FASHION_CLASSES, (0.2860,), (0.3530,)),
            MNIST_FILES,
            _mnist_present,
            "Fashion-MNIST clothing images, 28x28 grey, 10 classes (Zalando Research)",
        ),
        _Set(
            "cifar10",
            "CIFAR10InFolder",
            CIFAR10Files,
            load_cifar,
            _info(
                "cifar10",
                (3, 32, 32),
                50000,
                CIFAR10_CLASSES,
                (0.4914, 0.4822, 0.4465),
                (0.2470, 0.2435, 0.2616),
            ),
            ("cifar-10-python.tar.gz",),  # torchvision CIFAR10.filename
            lambda folder: cifar_present(CIFAR10Files, folder),
            "CIFAR-10 natural images, 32x32 RGB, 10 classes (Krizhevsky)",
        ),
        _Set(
            "cifar100",
            "CIFAR100InFolder",
            CIFAR100Files,
            load_cifar,
            _info(
                "cifar100",
                (3, 32, 32),
                50000,
                CIFAR100_CLASSES,
                (0.5071, 0.4865, 0.4409),
                (0.2673, 0.2564, 0.2762),
            ),
            ("cifar-100-python.tar.gz",),  # torchvision CIFAR100.filename
            lambda folder: cifar_present(CIFAR100Files, folder),
            "CIFAR-100 natural images, 32x32 RGB, 100 fine classes (Krizhevsky)",
        ),
    )
}


def load_set(name: str, data_dir: Path, download: bool = True, verify: bool = True) -> ArrayDataset:
    """Load one of the torchvision-backed datasets from ``<data_dir>/<name>/``.

    Args:
        name: ``mnist``, ``fashion-mnist``, ``cifar10`` or ``cifar100``.
        data_dir: Data directory; the files live in ``<data_dir>/<name>/``.
        download: Download the files with torchvision when they are missing.
        verify: Check the files' md5 sums (:mod:`.checksums`; tests turn this off for small fake files).

    Returns:
        Both splits as uint8 (N, C, H, W) images and int64 (N,) labels.

    Raises:
        DatasetError: files missing (and not downloadable), corrupt or undecodable.
    """
    s = _SETS[name]
    folder = Path(data_dir) / name

    def downloader(where: Path):
        return _bridge_classes()[s.source](where)

    train_x, train_y, test_x, test_y = s.loader(s.checksums, downloader, name, folder, download, verify)
    info = s.info
    if len(train_x) != info.train_size or len(test_x) != info.test_size:
        # Only fake test files differ in size; report what was actually loaded.
        info = DatasetInfo(**{**info.__dict__, "train_size": len(train_x), "test_size": len(test_x)})
    return ArrayDataset(info, train_x, train_y, test_x, test_y)


def _make_spec(s: _Set) -> DatasetSpec:
    def info_fn(data_dir=None):
        return s.info

    def load_fn(data_dir: Path, download: bool = True):
        return load_set(s.name, data_dir, download)

    return DatasetSpec(
        name=s.name,
        description=s.description,
        info_fn=info_fn,
        load_fn=load_fn,
        files=s.files,
        present_fn=lambda data_dir: s.present(Path(data_dir) / s.name),
    )


SPECS = {name: register_dataset(_make_spec(s)) for name, s in _SETS.items()}

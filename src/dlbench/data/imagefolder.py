"""``imagefolder:PATH``: your own images, one folder per class (torchvision's ImageFolder layout).

``PATH/train/<class>/*.png`` and ``PATH/test/<class>/*.png`` when both exist; otherwise ``PATH/<class>/*``
split 80/20 at random from ``seed``. Images are decoded with PIL, converted to RGB and resized to
``image_size`` x ``image_size``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from dlbench.data._registry import IMAGEFOLDER_PREFIX, ArrayDataset, DatasetInfo, DatasetSpec
from dlbench.errors import DatasetError, InvalidSettingError

DEFAULTS = {"image_size": 32, "seed": 0}
TEST_FRACTION = 0.2
# Images of unknown origin: ImageNet statistics are a sensible normalisation without decoding anything.
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)


def _split_dirs(root: Path) -> tuple[Path, Path] | None:
    train, test = root / "train", root / "test"
    return (train, test) if train.is_dir() and test.is_dir() else None


def _classes(folder: Path) -> list[str]:
    from torchvision.datasets.folder import find_classes

    try:
        return find_classes(str(folder))[0]
    except FileNotFoundError:
        raise DatasetError(
            f"no class folders in {folder}: put each class's images in its own subfolder "
            f"({folder}/<class>/<image>.png)"
        ) from None


def _samples(folder: Path, class_to_idx: dict[str, int]) -> list[tuple[str, int]]:
    """``(path, label)`` of every image file (by extension; nothing is decoded)."""
    from torchvision.datasets.folder import IMG_EXTENSIONS, make_dataset

    try:
        return make_dataset(str(folder), class_to_idx, extensions=IMG_EXTENSIONS, allow_empty=True)
    except FileNotFoundError as e:
        raise DatasetError(f"cannot list images in {folder}: {e}") from None


def _scan(root: Path) -> tuple[list[str], list[tuple[str, int]], list[tuple[str, int]] | None]:
    """Class names and samples: ``(classes, train, test)``; ``test`` is None when the folder is not split."""
    if not root.is_dir():
        raise DatasetError(f"image folder {root} does not exist")
    dirs = _split_dirs(root)
    if dirs is None:
        classes = _classes(root)
        return classes, _samples(root, {c: i for i, c in enumerate(classes)}), None
    classes = _classes(dirs[0])
    extra = sorted(set(_classes(dirs[1])) - set(classes))
    if extra:
        raise DatasetError(f"{dirs[1]} has classes missing from {dirs[0]}: {', '.join(extra)}")
    index = {c: i for i, c in enumerate(classes)}
    return classes, _samples(dirs[0], index), _samples(dirs[1], index)


def _check_counts(root: Path, classes: list[str], train: list, test: list | None) -> None:
    total = len(train) + len(test or [])
    if total == 0:
        raise DatasetError(f"no images in the class folders of {root} (looked for .png, .jpg, ...)")
    if test is None and total < 2:
        raise DatasetError(f"{root} has only one image; an 80/20 split needs at least 2")
    if test is not None and (not train or not test):
        raise DatasetError(f"{root}/train and {root}/test must both hold images")


def _n_test(n: int) -> int:
    return min(n - 1, max(1, round(n * TEST_FRACTION)))


def _check_options(image_size: int, seed: int) -> None:
    if not 4 <= image_size <= 1024:
        raise InvalidSettingError(f"imagefolder image_size must be between 4 and 1024, got {image_size}")


def _decode(samples: list[tuple[str, int]], size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Decode, convert to RGB and resize: uint8 (N, 3, size, size) and int64 labels (N,)."""
    import warnings

    from PIL import Image

    x = np.empty((len(samples), size, size, 3), dtype=np.uint8)  # (N, H, W, C) as PIL gives it
    for i, (path, _) in enumerate(samples):
        try:
            with warnings.catch_warnings():
                # PIL only warns between 1x and 2x its pixel limit; a file that large is refused, not decoded
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                with Image.open(path) as img:
                    img = img.convert("RGB")
                    if img.size != (size, size):
                        img = img.resize((size, size), Image.BILINEAR)
                    x[i] = np.asarray(img)
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise DatasetError(
                f"image {path} declares more than {Image.MAX_IMAGE_PIXELS:,} pixels, too many to decode safely "
                "(a decompression bomb?); shrink or remove it"
            ) from None
        except (OSError, ValueError, SyntaxError) as e:  # what PIL raises for truncated or malformed files
            raise DatasetError(f"cannot decode image {path} ({e}); fix or remove it") from e
    y = torch.tensor([label for _, label in samples], dtype=torch.int64)
    return torch.from_numpy(x).permute(0, 3, 1, 2).contiguous(), y  # (N, 3, H, W)


def imagefolder_spec(path: str | Path) -> DatasetSpec:
    """The dataset spec for ``imagefolder:PATH``.

    Args:
        path: Folder with one subfolder per class, or ``train/`` and ``test/`` folders that each have them.

    Returns:
        A spec named ``imagefolder:PATH`` with options ``image_size`` and ``seed``; it is not registered.
    """
    root = Path(path).expanduser()
    name = f"{IMAGEFOLDER_PREFIX}{path}"

    def info_fn(data_dir=None, *, image_size: int, seed: int) -> DatasetInfo:
        _check_options(image_size, seed)
        classes, train, test = _scan(root)
        _check_counts(root, classes, train, test)
        n_test = len(test) if test is not None else _n_test(len(train))
        n_train = len(train) if test is not None else len(train) - n_test
        return DatasetInfo(
            name, (3, image_size, image_size), len(classes), n_train, n_test, tuple(classes), MEAN, STD
        )

    def load_fn(data_dir: Path, download: bool = True, *, image_size: int, seed: int) -> ArrayDataset:
        meta = info_fn(data_dir, image_size=image_size, seed=seed)
        _, train, test = _scan(root)
        if test is None:  # seeded 80/20 split of one pool
            perm = torch.randperm(len(train), generator=torch.Generator().manual_seed(seed)).tolist()
            test = [train[i] for i in perm[: meta.test_size]]
            train = [train[i] for i in perm[meta.test_size :]]
        return ArrayDataset(meta, *_decode(train, image_size), *_decode(test, image_size))

    return DatasetSpec(
        name=name,
        description=f"your images in {root}, one folder per class",
        info_fn=info_fn,
        load_fn=load_fn,
        files=(),
        defaults=dict(DEFAULTS),
        present_fn=lambda data_dir: root.is_dir(),
        folder_fn=lambda data_dir: root,
    )

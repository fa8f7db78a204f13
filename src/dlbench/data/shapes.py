"""``shapes``: a procedural, offline dataset of 10 geometric shapes and textures.

Every image is one shape (or textured patch) at a random position, scale, rotation and colour on a noisy
background, drawn by :mod:`.shapes_render` (50,000 32x32 images take a few seconds); the arrays are then cached
in ``<data_dir>/shapes/`` under a name that encodes every option. This module imports no torch until it loads.

The task is learnable but not trivial: the shape can sit anywhere, so a small CNN (translation equivariant)
clearly beats an MLP of similar size, while colour and brightness carry no class information.
"""

from __future__ import annotations

from pathlib import Path

from dlbench.atomic import reap, write_atomic
from dlbench.data._registry import ArrayDataset, DatasetInfo, DatasetSpec, register_dataset
from dlbench.errors import DlbenchError, InvalidSettingError

NAME = "shapes"
FORMAT_VERSION = 1  # bump when the generator changes, so old cache files are not reused
CLASSES = (
    "circle",
    "square",
    "triangle",
    "cross",
    "ring",
    "horizontal-stripes",
    "vertical-stripes",
    "checkerboard",
    "diagonal-line",
    "star",
)
# Measured on the default options (50,000 train images, seed 0); they barely move with the options.
MEAN = (0.5000, 0.5000, 0.4996)
STD = (0.2917, 0.2919, 0.2916)
DEFAULTS = {"train_size": 50000, "test_size": 10000, "image_size": 32, "seed": 0}


# -------------------- spec
def _check(train_size: int, test_size: int, image_size: int, seed: int) -> None:
    if train_size < 1 or test_size < 1:
        raise InvalidSettingError(
            f"shapes needs train_size and test_size >= 1, got {train_size} and {test_size}"
        )
    if not 8 <= image_size <= 256:
        raise InvalidSettingError(f"shapes image_size must be between 8 and 256, got {image_size}")


def cache_file(data_dir: Path, train_size: int, test_size: int, image_size: int, seed: int) -> Path:
    """Path of the cache file for one set of options.

    Returns:
        ``<data_dir>/shapes/shapes-v1-n50000-t10000-s32-seed0.pt`` for the defaults.
    """
    stem = f"shapes-v{FORMAT_VERSION}-n{train_size}-t{test_size}-s{image_size}-seed{seed}.pt"
    return Path(data_dir) / NAME / stem


def info(data_dir=None, *, train_size: int, test_size: int, image_size: int, seed: int) -> DatasetInfo:
    """Static description of ``shapes`` for the given options; generates nothing."""
    _check(train_size, test_size, image_size, seed)
    return DatasetInfo(
        name=NAME,
        input_shape=(3, image_size, image_size),
        num_classes=len(CLASSES),
        train_size=train_size,
        test_size=test_size,
        classes=CLASSES,
        mean=MEAN,
        std=STD,
    )


def _read_cache(path: Path) -> dict | None:
    import torch

    try:
        blob = torch.load(path, weights_only=True)
    except FileNotFoundError:
        return None
    except Exception:  # a truncated or foreign file: it can always be regenerated
        return None
    if not isinstance(blob, dict) or not {"train_x", "train_y", "test_x", "test_y"} <= blob.keys():
        return None
    return blob


def load(data_dir: Path, download: bool = True, **options) -> ArrayDataset:
    """Load ``shapes`` from the cache file, generating (and caching) it on first use.

    Args:
        data_dir: Data directory; the cache goes to ``<data_dir>/shapes/``.
        download: Unused (nothing is downloaded); kept for the registry's signature.
        **options: ``train_size``, ``test_size``, ``image_size``, ``seed``.

    Returns:
        Both splits: uint8 (N, 3, S, S) images and int64 labels.
    """
    meta = info(data_dir, **options)
    path = cache_file(data_dir, **options)
    blob = _read_cache(path)
    if blob is None:
        import torch

        from dlbench.data.shapes_render import generate, split_seed

        size, seed = options["image_size"], options["seed"]
        train_x, train_y = generate(options["train_size"], size, split_seed(seed, "train"))
        test_x, test_y = generate(options["test_size"], size, split_seed(seed, "test"))
        blob = {"train_x": train_x, "train_y": train_y, "test_x": test_x, "test_y": test_y}
        try:  # atomic, with the user's umask: readable in a shared data folder
            reap(path.parent)  # temp files of killed writers
            write_atomic(path, lambda f: torch.save(blob, f))
        except (OSError, RuntimeError, DlbenchError):  # RuntimeError: torch.save on a full disk
            pass  # a read-only or full data dir only costs regenerating next time
    return ArrayDataset(meta, blob["train_x"], blob["train_y"], blob["test_x"], blob["test_y"])


SPEC = register_dataset(
    DatasetSpec(
        name=NAME,
        description="procedural shapes and textures, 10 classes, RGB; generated offline from a seed",
        info_fn=info,
        load_fn=load,
        files=(),
        defaults=dict(DEFAULTS),
        present_fn=lambda data_dir: True,
    )
)

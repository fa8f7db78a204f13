"""CIFAR-10 and CIFAR-100 read straight from their python pickles: the extracted folder or the ``.tar.gz``
itself (no extraction, so a read-only data folder works), md5-checked against torchvision's class attributes.
The decoded arrays are kept in ``<root>/dlbench-decoded/`` (:mod:`.decoded`) for the next load."""

from __future__ import annotations

import pickle
import tarfile
from pathlib import Path

import numpy as np

from dlbench.data.decoded import SPLIT_ARRAYS, Source, load_or_decode
from dlbench.data.file_checks import fetch, missing_error, verify_md5
from dlbench.errors import DatasetError


def _unpickle(raw: bytes, where: str) -> dict:
    try:
        return pickle.loads(raw, encoding="latin1")
    except Exception as e:
        raise DatasetError(f"cannot decode {where} ({e}); delete it and download it again") from e


def _cifar_arrays(entries: list[dict]) -> tuple[np.ndarray, np.ndarray]:
    """Concatenate CIFAR pickle batches: rows of 3072 bytes (R plane, G, B) -> (N, 3, 32, 32) uint8."""
    x = np.concatenate([np.asarray(e["data"], dtype=np.uint8) for e in entries]).reshape(-1, 3, 32, 32)
    key = "labels" if "labels" in entries[0] else "fine_labels"
    y = np.concatenate([np.asarray(e[key], dtype=np.int64) for e in entries])
    return x, y


def _cifar_from_folder(cls, root: Path, verify: bool) -> list[list[dict]]:
    base = root / cls.base_folder
    splits = []
    for file_list in (cls.train_list, cls.test_list):
        entries = []
        for fname, md5 in file_list:
            path = base / fname
            if verify:
                fix = (
                    f"delete {base} and run again to download it, "
                    f"or place the original {cls.filename} in {root}"
                )
                verify_md5(path, md5, fix)
            entries.append(_unpickle(path.read_bytes(), str(path)))
        splits.append(entries)
    return splits


def _cifar_from_archive(cls, root: Path, verify: bool) -> list[list[dict]]:
    # Read the pickles straight out of the archive: no extraction, so a read-only data dir works.
    archive = root / cls.filename
    if verify:
        verify_md5(
            archive, cls.tgz_md5, "delete it and run again to download it, or place the original there"
        )
    try:
        with tarfile.open(archive, "r:gz") as tar:
            splits = []
            for file_list in (cls.train_list, cls.test_list):
                member = [f"{cls.base_folder}/{fname}" for fname, _ in file_list]
                raws = [tar.extractfile(m).read() for m in member]
                splits.append([_unpickle(r, f"{archive}:{m}") for r, m in zip(raws, member, strict=True)])
    except (OSError, EOFError, KeyError, tarfile.TarError, AttributeError) as e:
        raise DatasetError(f"cannot read {archive} ({e}); delete it and download it again") from e
    return splits


def _cifar_extracted(cls, root: Path) -> bool:
    base = root / cls.base_folder
    return all((base / f).exists() for f, _ in cls.train_list + cls.test_list)


def cifar_present(cls, root: Path) -> bool:
    return (root / cls.filename).exists() or _cifar_extracted(cls, root)


def load_cifar(cls, downloader, name: str, root: Path, download: bool, verify: bool):
    """Both splits of CIFAR-10/100 from ``root``. ``cls`` holds the files' names and md5 sums
    (:mod:`.checksums`); ``downloader(root)`` builds torchvision's dataset object, only to download."""
    files = (cls.filename,)
    if not cifar_present(cls, root):
        if not download:
            raise missing_error(name, root, files)
        fetch(downloader(root), name, root, files)  # torchvision downloads the archive and extracts it
    if _cifar_extracted(cls, root):
        base = root / cls.base_folder
        sources = [Source(base / f, md5 if verify else None) for f, md5 in cls.train_list + cls.test_list]
        read = _cifar_from_folder
    elif (root / cls.filename).exists():
        sources = [Source(root / cls.filename, cls.tgz_md5 if verify else None)]
        read = _cifar_from_archive
    else:
        raise missing_error(name, root, files)

    def decode() -> dict[str, np.ndarray]:
        train, test = read(cls, root, verify)
        return dict(zip(SPLIT_ARRAYS, (*_cifar_arrays(train), *_cifar_arrays(test)), strict=True))

    arrays = load_or_decode(root, sources, SPLIT_ARRAYS, decode)
    import torch

    return tuple(torch.from_numpy(arrays[k]) for k in SPLIT_ARRAYS)

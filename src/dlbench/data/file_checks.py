"""Checks shared by the torchvision-backed datasets: md5 sums, the download call, the missing-files error."""

from __future__ import annotations

import hashlib
from pathlib import Path

from dlbench.errors import DatasetError, DlbenchError

# (resolved path, size, mtime_ns) of files whose md5 matched in this process: a second load skips hashing.
_VERIFIED: set[tuple[str, int, int]] = set()


def _stamp(path: Path) -> tuple[str, int, int]:
    st = path.stat()
    return (str(path.resolve()), st.st_size, st.st_mtime_ns)


def _md5(path: Path) -> str:
    h = hashlib.md5()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def verify_md5(path: Path, md5: str, fix: str) -> None:
    """Raise :class:`DatasetError` unless ``path`` has md5 ``md5``; cached per (path, size, mtime).

    Args:
        path: File to check.
        md5: Expected hex digest (from torchvision's class attributes).
        fix: What the user should do, appended to the message.
    """
    stamp = _stamp(path)
    if stamp in _VERIFIED:
        return
    got = _md5(path)
    if got != md5:
        raise DatasetError(f"corrupt dataset file {path}: md5 {got}, expected {md5}; {fix}")
    _VERIFIED.add(stamp)


def fetch(source, name: str, folder: Path, files: tuple[str, ...]) -> None:
    """Run torchvision's download; any failure becomes one DatasetError naming the folder and the files."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        source.download()
    except DlbenchError:
        raise
    except Exception as e:  # no network, a proxy, a read-only folder, ...: all end the same way for the user
        reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise DatasetError(
            f"{name} is not in {folder} and could not be downloaded ({reason}); place these files there: "
            f"{', '.join(files)}"
        ) from e


def missing_error(name: str, folder: Path, files: tuple[str, ...]) -> DatasetError:
    return DatasetError(
        f"{name} is not in {folder} and downloading is off; place these files there: {', '.join(files)}"
    )

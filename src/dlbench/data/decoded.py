"""Decoded copies of dataset files, kept beside them in ``<dataset folder>/dlbench-decoded/``.

Checking and decoding Fashion-MNIST's ``.gz`` files (md5, gunzip) takes about 0.35 s a run; reading the decoded
arrays back from ``.npy`` files takes about 0.03 s. After a verified decode, each array is written to
``dlbench-decoded/<name>.npy`` and ``stamp.json`` records, per source file, its name, size, ``mtime_ns`` and the
md5 it was checked against, and per array its shape, dtype, file size and the CRC-32 of its bytes.

A later load uses the copy only when every source file named in the stamp still has that size and ``mtime_ns``
and is checked against the same md5, and every ``.npy`` is a regular file with the stamped size, header and
CRC-32. Anything else (a source replaced or downloaded again, a truncated, edited or foreign copy, a symlink at
one of these names) means decoding from the source files as before and writing the copy again. The copy is
written through :mod:`dlbench.atomic` (temp file, rename; the stamp last), so concurrent loaders never read half
a file, and never written where the dataset folder is read-only: by permissions, or by its mode bits when even
root could write (a folder made read-only for everyone, such as a shared data folder, says "leave me alone").
The folder is dlbench's own and safe to delete at any time.
"""

from __future__ import annotations

import json
import logging
import os
import re
import stat
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dlbench.atomic import check_replaceable, reap, write_atomic, write_text
from dlbench.errors import DlbenchError

DIRNAME = "dlbench-decoded"
STAMP = "stamp.json"
SPLIT_ARRAYS = ("train_x", "train_y", "test_x", "test_y")  # what a dataset's two splits decode to
FORMAT = 1  # bump when what the arrays hold changes, so older copies are decoded again
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")  # array names, hence file names: never a path
_MAX_STAMP_BYTES = 1 << 20
_NOTED: set[str] = set()  # folders whose copy could not be written: noted once per process
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Source:
    """A file the arrays are decoded from, and the md5 the load checks it against (None: not checked)."""

    path: Path
    md5: str | None


def load_or_decode(
    folder: Path,
    sources: Sequence[Source],
    names: Sequence[str],
    decode: Callable[[], dict[str, np.ndarray]],
) -> dict[str, np.ndarray]:
    """The arrays ``names``: read from ``folder``'s decoded copy when it matches ``sources``, else decoded.

    Args:
        folder: The dataset's folder; every source file lies inside it, the copy in ``folder/dlbench-decoded``.
        sources: The files ``decode`` reads, with the md5 sums it checks them against.
        names: The arrays ``decode`` returns (lower-case identifiers: they name the ``.npy`` files).
        decode: Checks and decodes the source files (raising :class:`~dlbench.errors.DatasetError`).

    Returns:
        ``{name: array}``; arrays read from the copy are writable and owned.
    """
    folder = Path(folder)
    stamped = _source_stamp(folder, sources)
    if stamped is not None:
        arrays = _read_copy(folder / DIRNAME, stamped, names)
        if arrays is not None:
            return arrays
    arrays = decode()
    # A source changed while it was decoded: its stamp would not describe these arrays.
    if stamped is not None and stamped == _source_stamp(folder, sources):
        _write_copy(folder, stamped, {n: arrays[n] for n in names})
    return arrays


def _source_stamp(folder: Path, sources: Sequence[Source]) -> list[dict] | None:
    """Name (relative to ``folder``), size, mtime_ns and md5 of each source; None if one is missing."""
    out = []
    for s in sources:
        try:
            st = os.stat(s.path)
        except OSError:
            return None
        name = Path(s.path).relative_to(folder).as_posix()
        out.append({"name": name, "size": st.st_size, "mtime_ns": st.st_mtime_ns, "md5": s.md5})
    return out


def _open_regular(path: Path) -> tuple[int, os.stat_result]:
    """An fd of ``path`` opened without following a symlink; OSError unless it is a regular file."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise OSError(f"{path} is not a regular file")
    return fd, st


def _read_stamp(path: Path) -> dict | None:
    try:
        fd, st = _open_regular(path)
        with os.fdopen(fd, "rb") as f:
            if st.st_size > _MAX_STAMP_BYTES:
                return None
            stamp = json.loads(f.read())
    except (OSError, ValueError):  # missing, a symlink or folder, unreadable, not JSON
        return None
    return stamp if isinstance(stamp, dict) else None


def _read_array(path: Path, entry: dict) -> np.ndarray | None:
    """The array in ``path`` when it matches its stamp ``entry`` (size, shape, dtype, CRC-32); else None."""
    try:
        fd, st = _open_regular(path)
        with os.fdopen(fd, "rb") as f:
            if st.st_size != entry["size"]:
                return None
            arr = np.lib.format.read_array(f, allow_pickle=False)
        ok = (
            list(arr.shape) == entry["shape"]
            and arr.dtype.str == entry["dtype"]
            and zlib.crc32(memoryview(arr).cast("B")) == entry["crc32"]
        )
    except (OSError, ValueError, TypeError, KeyError, EOFError):  # missing, damaged or a foreign file
        return None
    return arr if ok else None


def _read_copy(where: Path, sources: list[dict], names: Sequence[str]) -> dict[str, np.ndarray] | None:
    if where.is_symlink() or not where.is_dir():
        return None
    stamp = _read_stamp(where / STAMP)
    if stamp is None or stamp.get("format") != FORMAT or stamp.get("sources") != sources:
        return None
    entries = stamp.get("arrays")
    if not isinstance(entries, dict) or sorted(entries) != sorted(names):
        return None
    arrays = {}
    for name in names:
        entry = entries[name]
        if not _NAME.match(name) or not isinstance(entry, dict):
            return None
        arr = _read_array(where / f"{name}.npy", entry)
        if arr is None:
            return None
        arrays[name] = arr
    return arrays


def _writable(path: Path) -> bool:
    """Writable by this process, and not a folder whose mode bits let nobody write (root ignores those)."""
    try:
        return bool(os.stat(path).st_mode & 0o222) and os.access(path, os.W_OK)
    except OSError:
        return False


def _note_once(folder: Path, why: str) -> None:
    if str(folder) not in _NOTED:
        _NOTED.add(str(folder))
        log.debug("no decoded copy written in %s: %s", folder, why)


def _write_copy(folder: Path, sources: list[dict], arrays: dict[str, np.ndarray]) -> None:
    """Write the arrays, then their stamp; any failure leaves the copy to be decoded again next time."""
    where = folder / DIRNAME
    if not _writable(folder) or (where.exists() and not _writable(where)):
        return _note_once(folder, "the folder is read-only")
    if where.is_symlink() or (os.path.lexists(where) and not where.is_dir()):
        return _note_once(folder, f"{where} is not a folder dlbench made")
    entries = {}
    try:
        # A symlink or folder at any name: write nothing, rather than arrays that every load writes again.
        for name in [*(f"{n}.npy" for n in arrays), STAMP]:
            check_replaceable(where / name)
        reap(where)  # temp files of loaders killed while writing
        for name, arr in arrays.items():
            arr = np.ascontiguousarray(arr)
            write_atomic(where / f"{name}.npy", lambda f, a=arr: np.save(f, a, allow_pickle=False))
            entries[name] = {
                "shape": list(arr.shape),
                "dtype": arr.dtype.str,
                "size": (where / f"{name}.npy").stat().st_size,
                "crc32": zlib.crc32(memoryview(arr).cast("B")),
            }
        stamp = {"format": FORMAT, "sources": sources, "arrays": entries}
        write_text(where / STAMP, json.dumps(stamp, indent=1) + "\n")
    except (OSError, ValueError, DlbenchError) as exc:  # a full disk, a symlink at a name: decode next time
        _note_once(folder, str(exc))

"""What makes a cached run trustworthy: the size and hash of each of its files, recorded in its ``runs`` row.

A run's ``runs`` row (written last) holds a ``files`` column: a JSON object naming each table and the weights,
with the file's size in bytes and its SHA-256 hash (truncated to 128 bits). A run counts as cached only if

- its ``runs`` row reads, its ``key`` column equals the file's key, and the SHA-256 of its ``config`` column
  (the run key's own definition) gives that key again: a row copied under another key is not that run;
- every table file has the recorded size and hash: damage anywhere in the file, even one that keeps the
  Parquet footer valid, and a valid table copied from another run (its ``key`` column and so its hash differ)
  are both found;
- the weights file has the recorded size. Its hash is checked whenever the weights are loaded (hashing
  megabytes of weights on every cache lookup would make ``has()`` slow for no gain: a lookup never reads them).

Runs written by dlbench 0.1.0 have no ``files`` column: they keep the checks of that version (each table's
Parquet footer reads) plus a key check that costs no data read (the ``key`` column's min and max statistics in
the footer must both equal the run's key).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import BinaryIO

DIGEST_HEX = 32  # SHA-256 truncated to 128 bits: collisions are no concern at this scale
CHUNK = 1 << 20


class Damage(Exception):
    """A file does not match what the ``runs`` row recorded; the message says how (one short phrase)."""


# SHA-256, not BLAKE2b: CPUs with SHA extensions (most x86 and ARM since 2017) hash it 2-3x faster.
def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:DIGEST_HEX]


def file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()[:DIGEST_HEX]


def config_key(config_json: str) -> str:
    """The run key a canonical config JSON stands for (as :attr:`dlbench.config.TrainConfig.key`)."""
    return hashlib.sha256(config_json.encode()).hexdigest()[:16]


class HashingWriter:
    """A write-only file wrapper that hashes and counts what passes through (for ``torch.save``).

    ``error`` keeps the OSError of a failed write: ``torch.save`` replaces it with a RuntimeError of its own
    ("unexpected pos"), and a full disk must stay a full disk.
    """

    def __init__(self, f: BinaryIO):
        self._f = f
        self._h = hashlib.sha256()
        self.size = 0
        self.error: OSError | None = None

    def write(self, data) -> int:
        self._h.update(data)
        self.size += len(data)
        try:
            return self._f.write(data)
        except OSError as exc:
            self.error = exc
            raise

    def flush(self) -> None:
        self._f.flush()

    @property
    def hexdigest(self) -> str:
        return self._h.hexdigest()[:DIGEST_HEX]


def entry(size: int, hexdigest: str) -> dict:
    return {"size": int(size), "sha256": hexdigest}


def parse_files(text) -> dict | None:
    """The ``files`` column of a runs row as {name: {size, sha256}}; None for a 0.1.0 row without one."""
    if text is None or (isinstance(text, float) and text != text):  # missing, or NaN from a concat
        return None
    try:
        files = json.loads(text)
    except (TypeError, ValueError):
        raise Damage("its files column is not JSON") from None
    if not isinstance(files, dict) or not all(
        isinstance(v, dict) and isinstance(v.get("size"), int) and isinstance(v.get("sha256"), str)
        for v in files.values()
    ):
        raise Damage("its files column is malformed")
    return files


def check_row(row: dict, key: str) -> None:
    """Raise :class:`Damage` unless a runs row belongs to run ``key``."""
    if row.get("key") != key:
        raise Damage(f"it holds run {row.get('key')}, not {key}")
    config = row.get("config")
    if not isinstance(config, str) or config_key(config) != key:
        raise Damage("its config does not hash to its key")


def check_file(path: Path, expected: dict, *, hash_it: bool = True) -> None:
    """Raise FileNotFoundError if ``path`` is absent, :class:`Damage` if its size or hash differs."""
    size = path.stat().st_size
    if size != expected["size"]:
        raise Damage(f"{size} bytes, {expected['size']} recorded")
    if hash_it and file_digest(path) != expected["sha256"]:
        raise Damage("its content hash differs from the one recorded")


def check_footer(path: Path, key: str) -> None:
    """The 0.1.0 check of a table: its footer reads and its ``key`` column (if any rows) holds only ``key``."""
    import pyarrow.parquet as pq

    try:
        meta = pq.read_metadata(path)
    except FileNotFoundError:
        raise
    except Exception as exc:
        raise Damage(type(exc).__name__) from None
    if meta.num_rows == 0:
        return
    names = meta.schema.names
    if "key" not in names:
        raise Damage("it has no key column")
    col = names.index("key")
    for i in range(meta.num_row_groups):
        stats = meta.row_group(i).column(col).statistics
        if stats is None or not stats.has_min_max:
            continue  # no statistics written: nothing cheap to compare
        lo, hi = (v.decode() if isinstance(v, bytes) else v for v in (stats.min, stats.max))
        if lo != key or hi != key:
            raise Damage(f"it holds rows of run {lo if lo != key else hi}, not {key}")

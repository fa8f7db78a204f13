"""The figure index: every figure a command writes is recorded in the cache, so `report` can include it.

The index is one Parquet file, ``<cache>/figures/index.parquet``, with one row per figure path:

    kind      'kernels' | 'feature-maps' | 'equivariance'
    path      absolute path of the PNG (inside the cache's ``figures/`` folder or wherever ``--out`` pointed)
    title     a one-line caption
    command   the dlbench command line that writes this figure again
    created   ISO time stamp
    meta      JSON object with the numbers behind the figure (layer, shape, errors, ...)

Writing the same path again replaces its row. Every write goes to a temporary file renamed into place, under
an exclusive lock where the platform has ``fcntl``, so concurrent commands never lose each other's rows.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from pathlib import Path

import pandas as pd

KINDS = ("kernels", "feature-maps", "equivariance")
COLUMNS = ("kind", "path", "title", "command", "created", "meta")


def figures_dir(cache_root: Path) -> Path:
    return Path(cache_root) / "figures"


def index_path(cache_root: Path) -> Path:
    return figures_dir(cache_root) / "index.parquet"


@contextlib.contextmanager
def _locked(folder: Path):
    folder.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # Windows: the atomic rename still keeps the file whole
        yield
        return
    with open(folder / ".index.lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _read(path: Path) -> pd.DataFrame:
    try:
        df = pd.read_parquet(path)
    except FileNotFoundError:
        return pd.DataFrame(columns=list(COLUMNS))
    return df[[c for c in COLUMNS if c in df.columns]]


def record_figure(cache_root: Path, kind: str, path: Path, title: str, command: str, meta: dict) -> dict:
    """Add (or replace) the row of figure ``path`` in the cache's figure index; returns the row.

    Args:
        cache_root: The cache folder (``--cache-dir`` / ``DLBENCH_HOME``).
        kind: One of ``KINDS``.
        path: The figure file; stored as an absolute path.
        title: A one-line caption.
        command: The dlbench command line that writes this figure again.
        meta: JSON-serialisable details (numbers shown in the figure).
    """
    if kind not in KINDS:
        raise ValueError(f"figure kind must be one of {KINDS}, got {kind!r}")
    row = {
        "kind": kind,
        "path": str(Path(path).expanduser().resolve()),
        "title": title,
        "command": command,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "meta": json.dumps(meta, sort_keys=True, default=_plain),
    }
    folder = figures_dir(cache_root)
    target = index_path(cache_root)
    with _locked(folder):
        df = _read(target)
        df = df[df["path"] != row["path"]] if len(df) else df
        df = pd.concat([df, pd.DataFrame([row])], ignore_index=True) if len(df) else pd.DataFrame([row])
        tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        df.to_parquet(tmp, index=False)
        os.replace(tmp, target)
    return row


def list_figures(cache_root: Path, kind: str | None = None) -> pd.DataFrame:
    """All recorded figures (oldest first), optionally of one ``kind``; ``meta`` stays a JSON string."""
    df = _read(index_path(cache_root))
    if kind is not None and len(df):
        df = df[df["kind"] == kind]
    return df.sort_values("created", kind="stable").reset_index(drop=True) if len(df) else df


def _plain(value):
    if hasattr(value, "item"):
        return value.item()
    if isinstance(value, tuple | set):
        return list(value)
    if isinstance(value, Path):
        return str(value)
    return str(value)

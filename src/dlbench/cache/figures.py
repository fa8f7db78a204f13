"""The figure index: every figure a command writes is recorded in the cache, so `report` can include it.

Used through :meth:`dlbench.cache.Store.record_figure` and :meth:`~dlbench.cache.Store.figures`. The index is
one Parquet file, ``<cache>/figures/index.parquet``, with one row per figure path:

    kind      'kernels' | 'feature-maps' | 'equivariance'
    path      absolute path of the PNG (inside the cache's ``figures/`` folder or wherever ``--out`` pointed)
    title     a one-line caption
    command   the dlbench command line that writes this figure again
    created   ISO time stamp
    meta      JSON object with the numbers behind the figure (layer, shape, errors, ...)

Writing the same path again replaces its row. Each write goes through the atomic writer under an exclusive lock
(``figures/.index.lock``, where the platform has ``fcntl``), so concurrent commands never lose each other's rows.
"""

from __future__ import annotations

import contextlib
import json
import time
from pathlib import Path
from typing import TYPE_CHECKING

from dlbench.atomic import write_atomic

if TYPE_CHECKING:  # pandas is imported where a table is read or written (about 0.6 s)
    import pandas as pd

KINDS = ("kernels", "feature-maps", "equivariance")
COLUMNS = ("kind", "path", "title", "command", "created", "meta")


@contextlib.contextmanager
def locked(folder: Path):
    """Hold ``folder/.index.lock`` exclusively (a no-op where ``fcntl`` is missing: the rename keeps it whole)."""
    folder.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # pragma: no cover
        yield
        return
    with open(folder / ".index.lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def read_index(path: Path) -> pd.DataFrame:
    """The index as a DataFrame (empty when absent); raises what pandas raises for a damaged file."""
    import pandas as pd

    try:
        df = pd.read_parquet(path)
    except FileNotFoundError:
        return pd.DataFrame(columns=list(COLUMNS))
    return df[[c for c in COLUMNS if c in df.columns]]


def figure_row(kind: str, path: Path, title: str, command: str, meta: dict) -> dict:
    if kind not in KINDS:
        raise ValueError(f"figure kind must be one of {KINDS}, got {kind!r}")
    return {
        "kind": kind,
        "path": str(Path(path).expanduser().resolve()),
        "title": title,
        "command": command,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "meta": json.dumps(meta, sort_keys=True, default=_plain),
    }


def write_index(path: Path, df: pd.DataFrame, row: dict) -> None:
    """Write ``df`` with ``row`` replacing any row of the same figure path."""
    import pandas as pd

    df = df[df["path"] != row["path"]] if len(df) else df
    df = pd.concat([df, pd.DataFrame([row])], ignore_index=True) if len(df) else pd.DataFrame([row])
    write_atomic(path, lambda f: df.to_parquet(f, index=False))


def select(df: pd.DataFrame, kind: str | None) -> pd.DataFrame:
    """Rows of one ``kind`` (all when None), oldest first; ``meta`` stays a JSON string."""
    if kind is not None and len(df):
        df = df[df["kind"] == kind]
    return df.sort_values("created", kind="stable").reset_index(drop=True) if len(df) else df


def _plain(value):
    if hasattr(value, "item"):
        return value.item()
    if isinstance(value, tuple | set):
        return list(value)
    return str(value)

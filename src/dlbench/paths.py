"""Where dlbench keeps data and results.

Data: the platformdirs user data dir, overridden by ``--data-dir`` or ``DLBENCH_DATA_DIR``.
Cache (results, checkpoints, figures): the platformdirs user cache dir, overridden by ``--cache-dir`` or
``DLBENCH_HOME``. Every file dlbench writes lives under one of these or under an output path the user chose.
"""

from __future__ import annotations

import os
from pathlib import Path

APP = "dlbench"


def data_dir(override: str | os.PathLike | None = None) -> Path:
    if override:
        return Path(override).expanduser()
    env = os.environ.get("DLBENCH_DATA_DIR")
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_data_dir(APP))


def cache_dir(override: str | os.PathLike | None = None) -> Path:
    if override:
        return Path(override).expanduser()
    env = os.environ.get("DLBENCH_HOME")
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir(APP))


def safe_name(name: str) -> str:
    """A file-name-safe version of a user-supplied label: never a path, never hidden."""
    out = "".join(c if (c.isalnum() or c in "-_.=") else "_" for c in str(name))
    out = out.strip(".") or "unnamed"
    return out[:120]


def inside(path: Path, root: Path) -> Path:
    """Return ``path`` resolved, refusing anything that escapes ``root``."""
    from dlbench.errors import UsageError

    p = Path(path).resolve()
    r = Path(root).resolve()
    if p != r and r not in p.parents:
        raise UsageError(f"refusing to write {p}: it is outside {r}")
    return p

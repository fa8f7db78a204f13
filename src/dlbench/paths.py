"""Where dlbench keeps data and results.

Data: the platformdirs user data dir, overridden by ``--data-dir`` or ``DLBENCH_DATA_DIR``.
Cache (results, checkpoints, figures): the platformdirs user cache dir, overridden by ``--cache-dir`` or
``DLBENCH_HOME``. Every file dlbench writes lives under one of these or under an output path the user chose.
"""

from __future__ import annotations

import hashlib
import os
import re
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


# A name kept as it is: ASCII lower case, digits and -_.= (so two names never differ only in case, which a
# case-insensitive file system would merge), not hidden, and short.
_VERBATIM = re.compile(r"[a-z0-9_=-][a-z0-9._=-]*")
NAME_BYTES = 120  # bytes, not characters: file names are limited to 255 bytes, and a suffix may follow


def safe_name(name: str, limit: int = NAME_BYTES) -> str:
    """A file name for a user-supplied label, one to one: different labels never share a file.

    A label of ASCII lower case, digits and ``-_.=`` (not starting with a dot, at most ``limit`` bytes) is
    its own file name. Any other label becomes a readable prefix (unsafe characters as ``_``, cut to whole
    characters within the byte limit) plus ``~`` and a hash of the exact label; ``~`` never occurs in a
    verbatim name, so the two forms cannot meet. The result is never a path, never hidden, and at most
    ``limit`` bytes of UTF-8.
    """
    text = str(name)
    if _VERBATIM.fullmatch(text) and len(text.encode()) <= limit:
        return text
    digest = "~" + hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:12]
    prefix = "".join(c if (c.isalnum() or c in "-_.=") else "_" for c in text).lstrip(".")
    room = limit - len(digest)
    encoded = prefix.encode("utf-8", "replace")[:room]
    return encoded.decode("utf-8", "ignore") + digest  # a character cut in half is dropped whole


def inside(path: Path, root: Path) -> Path:
    """Return ``path`` resolved, refusing anything that escapes ``root``."""
    from dlbench.errors import UsageError

    p = Path(path).resolve()
    r = Path(root).resolve()
    if p != r and r not in p.parents:
        raise UsageError(f"refusing to write {p}: it is outside {r}")
    return p


def check_output_dir(path: str | os.PathLike, option: str) -> Path:
    """Refuse, before any work, an output folder that cannot be made or written: a file (or something else
    that is not a folder) on its path, or a folder this process may not write. Creates nothing.

    Args:
        path: The folder as given.
        option: The option that gave it (``--figures-dir``), for the message.
    """
    from dlbench.errors import UsageError

    folder = Path(path).expanduser().absolute()
    probe = folder
    while not probe.exists():
        if probe.is_symlink():
            raise UsageError(f"{option} {folder}: {probe} is a dangling link; give another folder")
        probe = probe.parent
    if not probe.is_dir():
        where = "is a file" if probe.is_file() else "is not a folder"
        raise UsageError(f"{option} {folder}: {probe} {where}; give a folder")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise UsageError(f"{option} {folder}: {probe} is not writable; give a folder you can write")
    return folder

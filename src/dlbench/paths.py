"""Where dlbench keeps data and results.

Data: the platformdirs user data dir (``~/.local/share/dlbench``), one ``<dataset>/`` folder per dataset,
overridden by ``--data-dir`` or ``DLBENCH_DATA_DIR``.
Results (the cache of runs, checkpoints, figures): ``results/`` in that same user data dir, overridden by
``--cache-dir`` or ``DLBENCH_HOME``. Not the user *cache* dir: cleaners and cluster purges empty cache folders,
and results took hours to make. ``results`` is never a dataset's name (the data registry refuses it), so the
two never share a folder. Results an older dlbench kept in the user cache dir are moved on first use
(:func:`cache_dir`). Every file dlbench writes lives under one of these or under an output path the user chose.
"""

from __future__ import annotations

import hashlib
import os
import re
import shlex
import warnings
from functools import cache
from pathlib import Path

APP = "dlbench"
RESULTS = "results"  # the results folder in the user data folder, beside the datasets' folders


class ResultsMoved(UserWarning):
    """Results were moved from the old default folder (or could not be): one line on stderr."""


def data_dir(override: str | os.PathLike | None = None) -> Path:
    if override:
        return Path(override).expanduser()
    env = os.environ.get("DLBENCH_DATA_DIR")
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_data_dir(APP))


def cache_dir(override: str | os.PathLike | None = None) -> Path:
    """The results folder: ``override`` (``--cache-dir``), else ``DLBENCH_HOME``, else the default.

    The default is ``results/`` in the platformdirs user data folder. Results that dlbench 0.1 kept in the
    user cache folder (``~/.cache/dlbench``) are moved there the first time the default is asked for: see
    :func:`move_old_results`.
    """
    if override:
        return Path(override).expanduser()
    env = os.environ.get("DLBENCH_HOME")
    if env:
        return Path(env).expanduser()
    import platformdirs

    old = Path(platformdirs.user_cache_dir(APP))
    return move_old_results(old, Path(platformdirs.user_data_dir(APP)) / RESULTS)


def _holds_results(folder: Path) -> bool:
    """Whether ``folder`` is a results folder dlbench wrote (its SCHEMA marker or its runs table)."""
    return folder.is_dir() and ((folder / "SCHEMA").is_file() or (folder / "runs").is_dir())


def _empty_folder(folder: Path) -> bool:
    return folder.is_dir() and not any(folder.iterdir())  # a rename replaces an empty folder (POSIX)


@cache  # once per process: one line about a move, not one per lookup
def move_old_results(old: Path, new: Path) -> Path:
    """Move the results folder ``old`` to ``new`` (one rename, atomic) unless ``new`` exists; the folder to use.

    Only a folder dlbench wrote moves (its SCHEMA or ``runs/`` is there), as a whole, with whatever else it
    holds: nothing is deleted or left half-moved. When the rename is impossible (``old`` and ``new`` on two
    file systems, a read-only folder), ``old`` stays in use and one warning says the command that moves it.

    Returns:
        ``new``, or ``old`` when it holds results that could not be moved.
    """
    if (new.exists() and not _empty_folder(new)) or new.is_symlink() or not _holds_results(old):
        return new
    try:
        new.parent.mkdir(parents=True, exist_ok=True)
        os.rename(old, new)
    except OSError as exc:
        if new.exists() or not old.exists():  # another dlbench process moved it at the same moment
            return new
        warnings.warn(
            f"dlbench now keeps results in {new}, but could not move yours from {old} ({exc.strerror}); "
            f"until you move them (`{shlex.join(['mv', str(old), str(new)])}`) it keeps using {old}",
            ResultsMoved,
            stacklevel=3,
        )
        return old
    warnings.warn(
        f"moved your dlbench results from {old} to {new} (cache folders get emptied by cleaners)",
        ResultsMoved,
        stacklevel=3,
    )
    return new


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

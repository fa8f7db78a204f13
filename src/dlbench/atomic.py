"""The one atomic writer: every file dlbench writes, anywhere, goes through :func:`write_atomic`.

A file is written to a temporary name beside it and renamed into place, so a crash never leaves half a file and
readers never see one. The temporary name has one format, ``.<name>.dlbench-<host>-<pid>.tmp``, so cleanup can
tell dlbench's own abandoned temp files from anything a user keeps (a user's ``.notes.tmp`` never matches), and
can tell whose they are: a temp file of a dead process on this host, or of anyone after an hour, is abandoned.
Files are created with mode 0666 less the user's umask, as ``open()`` would, so a shared folder stays readable.

Only regular files are ever replaced: a symlink, a device node or a folder at the target is refused, so writing a
report to ``/dev/null`` or through a planted symlink never replaces something dlbench did not make.

Test hook: ``DLBENCH_FAULT=KIND[@N]`` (KIND is ``checkpoint-write`` or ``cache-write``) kills the process with
SIGKILL halfway through its N-th write of that kind (default the first).
"""

from __future__ import annotations

import errno
import io
import os
import re
import signal
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from dlbench.errors import DlbenchError, UsageError

HOST = re.sub(r"[^A-Za-z0-9]", "_", socket.gethostname()) or "host"
STALE_TMP_SECONDS = 3600  # a temp file of another host untouched this long is abandoned
_TMP_RE = re.compile(r"^\..+\.dlbench-(?P<host>[A-Za-z0-9_]+)-(?P<pid>\d+)\.tmp$")
_FAULT_COUNTS: dict[str, int] = {}


class WriteError(DlbenchError):
    """A file could not be written (disk full, no permission); nothing was replaced."""


def tmp_path(path: Path) -> Path:
    """The temporary name ``path`` is written under before the rename: hidden, per host and process."""
    path = Path(path)
    return path.with_name(f".{path.name}.dlbench-{HOST}-{os.getpid()}.tmp")


def tmp_owner(name: str) -> tuple[str, int] | None:
    """(host, pid) of a dlbench temp file name; None for any other name."""
    m = _TMP_RE.match(name)
    return (m["host"], int(m["pid"])) if m else None


def check_replaceable(path: Path) -> None:
    """Raise UsageError unless ``path`` is absent or a regular file (never a symlink, device or folder)."""
    path = Path(path)
    if path.is_symlink() or (os.path.lexists(path) and not path.is_file()):
        what = "a symlink" if path.is_symlink() else "a folder" if path.is_dir() else "not a regular file"
        raise UsageError(f"refusing to write {path}: it is {what}; choose a path to a regular file")


def write_atomic(path: Path, write: Callable[[BinaryIO], None], *, fault: str | None = None) -> Path:
    """Write ``path`` atomically: ``write(f)`` fills a temp file beside it, which is synced and renamed.

    Args:
        path: The target; its folder is created. Refused unless absent or a regular file.
        write: Called once with a binary file object (``torch.save``, ``df.to_parquet``, ``fig.savefig``...).
        fault: The ``DLBENCH_FAULT`` kind this write counts as (tests kill the process midway).

    Raises:
        WriteError: the disk is full or the folder not writable; the target is left as it was.
    """
    path = Path(path)
    check_replaceable(path)
    tmp = tmp_path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0), 0o666)
        with os.fdopen(fd, "wb") as f:
            if fault and fault_due(fault):  # test hook: die like `kill -9` halfway through the temp file
                buf = io.BytesIO()
                write(buf)
                crash_midway(f, buf.getvalue())
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        try:
            tmp.unlink()
        except OSError:
            pass
        why = "no space left on the device" if exc.errno == errno.ENOSPC else (exc.strerror or str(exc))
        raise WriteError(f"cannot write {path}: {why}; {path.name} was left as it was") from exc
    return path


def write_bytes(path: Path, data: bytes, *, fault: str | None = None) -> Path:
    return write_atomic(path, lambda f: f.write(data), fault=fault)


def write_text(path: Path, text: str, *, fault: str | None = None) -> Path:
    return write_bytes(path, text.encode(), fault=fault)


def reap(folder: Path, *, now: float | None = None) -> int:
    """Remove abandoned dlbench temp files directly in ``folder``; returns how many.

    Only names of :func:`tmp_path`'s format, only regular files, and never through a symlink (a symlinked
    ``folder`` is skipped whole). A temp file is abandoned when its process on this host is dead, or when it is
    older than ``STALE_TMP_SECONDS`` (another host's process cannot be asked).
    """
    folder = Path(folder)
    if folder.is_symlink() or not folder.is_dir():
        return 0
    now = time.time() if now is None else now
    removed = 0
    with os.scandir(folder) as entries:
        for entry in entries:
            owner = tmp_owner(entry.name)
            if owner is None or not entry.is_file(follow_symlinks=False):
                continue
            host, pid = owner
            try:
                age = now - entry.stat(follow_symlinks=False).st_mtime
                dead = host == HOST and not pid_alive(pid)
                if dead or age > STALE_TMP_SECONDS:
                    os.unlink(entry.path)
                    removed += 1
            except OSError:
                pass
    return removed


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` exists on this host (a zombie, killed but not yet reaped, counts as dead)."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        pass
    except OSError:
        return False
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            state = f.read().rsplit(b")", 1)[1].split()[0]
        return state not in (b"Z", b"X")
    except (OSError, IndexError):
        return True  # no /proc (macOS): kill(pid, 0) said it exists


def fault_due(kind: str) -> bool:
    """True when ``DLBENCH_FAULT`` asks to crash at this write."""
    spec = os.environ.get("DLBENCH_FAULT", "")
    if not spec:
        return False
    name, _, nth = spec.partition("@")
    if name != kind:
        return False
    _FAULT_COUNTS[kind] = _FAULT_COUNTS.get(kind, 0) + 1
    return _FAULT_COUNTS[kind] == (int(nth) if nth.isdigit() else 1)


def crash_midway(f, data: bytes) -> None:
    """Write half of ``data``, make it durable, and die as ``kill -9`` would."""
    f.write(data[: len(data) // 2])
    f.flush()
    os.fsync(f.fileno())
    os.kill(os.getpid(), signal.SIGKILL)

"""Temporary file names for atomic writes, and the crash hook that tests use to interrupt them.

Every file dlbench writes goes to ``tmp_path(path)`` first and is then renamed into place, so a crash never
leaves half a file. The temporary name carries the host and process, so two processes never share one and a
sweep can tell an abandoned one (see ``Store.clean_tmp``). Shared by the engine (checkpoints) and the cache
(Parquet tables), which must not import each other.

Test hook: ``DLBENCH_FAULT=KIND[@N]`` (KIND is ``checkpoint-write`` or ``cache-write``) kills the process with
SIGKILL halfway through its N-th write of that kind (default the first).
"""

from __future__ import annotations

import os
import signal
import socket
from pathlib import Path

HOST = socket.gethostname().replace(".", "_").replace("-", "_") or "host"
_FAULT_COUNTS: dict[str, int] = {}


def tmp_path(path: Path) -> Path:
    """The temporary name ``path`` is written under before the rename: hidden, per host and process."""
    return path.with_name(f".{path.name}.{HOST}-{os.getpid()}.tmp")


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

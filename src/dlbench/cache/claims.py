"""Claims: at most one process trains a run at a time, across processes sharing one cache folder.

A trial is claimed by creating ``claims/<key>.claim`` with ``O_CREAT | O_EXCL`` (atomic on local file systems and
NFSv3+), holding ``{"pid", "host", "time", "token"}``. While the run trains, a background thread rewrites the
file every ``heartbeat`` seconds; the claim is removed when the run completes or fails. A claim is *stale* when
its heartbeat is older than ``DLBENCH_CLAIM_TIMEOUT`` seconds (default 60) or when it names a process on this
host that no longer exists (a ``kill -9``): a stale claim is taken over. Take-overs are serialised by a short
``flock`` on ``claims/.lock`` (released by the kernel if the holder dies), so two processes never take over the
same stale claim; a fresh claim is only ever created with ``O_EXCL``.

If the owner of a claim was only paused past the timeout and its claim was taken over, its heartbeat thread
notices the foreign token and marks the claim ``lost``; the runner then stops that training at the next epoch
boundary, so the two never both store the run.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
import uuid
from pathlib import Path

from dlbench.atomic import pid_alive, write_bytes
from dlbench.errors import DlbenchError

try:  # POSIX; elsewhere take-overs are best effort
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None


def claim_timeout() -> float:
    """Seconds without a heartbeat after which a claim is stale (``DLBENCH_CLAIM_TIMEOUT``, default 60)."""
    try:
        return max(0.5, float(os.environ.get("DLBENCH_CLAIM_TIMEOUT", "60")))
    except ValueError:
        return 60.0


_LIVE_TOKENS: set[str] = set()  # tokens of the claims this process holds now


class ClaimLost(Exception):
    """Another process took this claim over (our heartbeat had gone stale): stop training this run."""


class Claim:
    """The claim of one run key; use :meth:`acquire`, then :meth:`release` (or the context manager)."""

    def __init__(self, folder: Path, key: str, timeout: float | None = None, heartbeat: float | None = None):
        self.folder = Path(folder)
        self.key = key
        self.path = self.folder / f"{key}.claim"
        self.timeout = claim_timeout() if timeout is None else timeout
        self.heartbeat = heartbeat if heartbeat is not None else max(0.2, min(10.0, self.timeout / 4))
        self.token = uuid.uuid4().hex
        self.host = socket.gethostname()
        self.held = False
        self.lost = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- file content -----------------------------------------------------------------------------------
    def _content(self) -> bytes:
        return json.dumps(
            {"pid": os.getpid(), "host": self.host, "time": time.time(), "token": self.token, "key": self.key}
        ).encode()

    def _read(self) -> dict | None:
        """The claim file's content; {} when it exists but is unreadable (half written); None when absent."""
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError:
            return {}
        try:
            data = json.loads(raw)
            return data if isinstance(data, dict) else {}
        except ValueError:
            return {}

    def _age(self) -> float | None:
        try:
            return time.time() - self.path.stat().st_mtime
        except FileNotFoundError:
            return None

    def owner(self) -> dict | None:
        return self._read()

    def is_stale(self, data: dict | None = None) -> bool:
        data = self._read() if data is None else data
        if data is None:
            return False  # no claim at all
        age = self._age()
        if age is None:
            return False
        if age > self.timeout:
            return True
        if not data and age > 5:  # created, then killed before its first write: no owner to ask
            return True
        pid = data.get("pid")
        if data.get("host") == self.host and isinstance(pid, int):
            if pid == os.getpid():  # ours only if one of this process's live claims wrote it
                return data.get("token") not in _LIVE_TOKENS
            return not pid_alive(pid)
        return False

    def held_elsewhere(self) -> bool:
        """Whether a live process other than this one holds this claim now."""
        data = self._read()
        return data is not None and data.get("token") not in _LIVE_TOKENS and not self.is_stale(data)

    # -- acquire / release ------------------------------------------------------------------------------
    def _create(self) -> bool:
        self.folder.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return False
        try:
            os.write(fd, self._content())
        finally:
            os.close(fd)
        return True

    def acquire(self) -> bool:
        """Claim the run: True if this process now holds it, False if a live process does."""
        if self.held:
            return True
        if self._create():
            return self._start()
        if not self.is_stale():
            return False
        with _TakeoverLock(self.folder):
            data = self._read()  # again, under the lock: another process may have taken it over already
            if data is not None and not self.is_stale(data):
                return False
            if data is not None:
                try:
                    self.path.unlink()
                except FileNotFoundError:
                    pass
            if not self._create():
                return False
        return self._start()

    def _start(self) -> bool:
        _LIVE_TOKENS.add(self.token)
        self.held, self.lost = True, False
        self._stop.clear()
        self._thread = threading.Thread(target=self._beat, name=f"dlbench-claim-{self.key}", daemon=True)
        self._thread.start()
        return True

    def _beat(self) -> None:
        while not self._stop.wait(self.heartbeat):
            data = self._read()
            if data is None or (data and data.get("token") != self.token):
                self.lost = True  # taken over (or removed): the runner stops at the next epoch
                return
            try:  # rewrite atomically: the mtime is the heartbeat; the content says who and when
                write_bytes(self.path, self._content())
            except DlbenchError:  # a full disk or a vanished folder: the claim goes stale, as it should
                pass

    def check(self) -> None:
        """Raise :class:`ClaimLost` if another process has taken this claim over."""
        if self.lost:
            raise ClaimLost(f"run {self.key} was taken over by another process")

    def release(self) -> None:
        """Stop the heartbeat and remove the claim file if it is still ours."""
        if not self.held:
            return
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.held = False
        _LIVE_TOKENS.discard(self.token)
        data = self._read()
        if data is not None and data.get("token") == self.token:
            try:
                self.path.unlink()
            except FileNotFoundError:
                pass

    def __enter__(self) -> Claim:
        return self

    def __exit__(self, *exc) -> None:
        self.release()


class _TakeoverLock:
    """An exclusive ``flock`` on ``claims/.lock``, held only while a stale claim is replaced."""

    def __init__(self, folder: Path):
        self.path = Path(folder) / ".lock"
        self.fd: int | None = None

    def __enter__(self):
        if fcntl is None:
            return self
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.fd = os.open(self.path, os.O_CREAT | os.O_RDWR, 0o644)
        fcntl.flock(self.fd, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc):
        if self.fd is not None:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = None

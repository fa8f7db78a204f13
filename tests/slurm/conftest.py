"""The real one-node Slurm cluster of `scripts/slurm-cluster.sh` as a session fixture for the tests in this folder.

`up` needs root and apt (Debian/Ubuntu). Where it cannot run, or a daemon fails to start, every test that uses
the fixture is skipped with the script's one-line reason; `DLBENCH_SLURM_REQUIRED=1` (CI with a cluster) turns
that skip into a failure. The cluster is stopped after the session when these tests started it and no other
pytest process (another xdist worker) still uses it; a cluster that was up before the tests is left up.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "slurm-cluster.sh"
STATE_DIR = Path(os.environ.get("DLBENCH_SLURM_DIR", "/tmp/dlbench-slurm"))
# Beside the state folder: one file per pytest process using the cluster, and a marker when tests started it.
USERS_DIR = STATE_DIR.with_name(STATE_DIR.name + ".users")
STARTED_MARKER = USERS_DIR / "started-by-tests"


def _script(command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", str(SCRIPT), command], capture_output=True, text=True, timeout=900)


def _reason(result: subprocess.CompletedProcess[str]) -> str:
    # The script ends a failure with its one-line reason on stderr (the log tail it printed comes before).
    for stream in (result.stderr, result.stdout):
        lines = [line for line in stream.splitlines() if line.strip()]
        if lines:
            return lines[-1]
    return f"scripts/slurm-cluster.sh exited with {result.returncode}"


def _cannot_run(reason: str) -> None:
    if os.environ.get("DLBENCH_SLURM_REQUIRED") == "1":
        pytest.fail(f"local Slurm cluster required but unavailable: {reason}")
    pytest.skip(f"no local Slurm cluster: {reason}")


@contextlib.contextmanager
def _users_lock() -> Iterator[None]:
    USERS_DIR.mkdir(parents=True, exist_ok=True)
    with open(USERS_DIR.with_name(USERS_DIR.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@pytest.fixture(scope="session")
def slurm_cluster() -> Iterator[str]:
    """A running one-node cluster with accounting; yields the path of its slurm.conf (also set as SLURM_CONF)."""
    if not sys.platform.startswith("linux"):
        _cannot_run(f"needs Linux (this is {sys.platform})")
    me = USERS_DIR / str(os.getpid())
    with _users_lock():
        was_up = _script("status").returncode == 0
        up = _script("up")
        if up.returncode != 0:
            _cannot_run(_reason(up))
        if not was_up:
            STARTED_MARKER.touch()
        me.touch()
    env_line = shlex.split(_script("env").stdout)  # ["export", "SLURM_CONF=..."]
    conf = env_line[-1].split("=", 1)[1]
    previous = os.environ.get("SLURM_CONF")
    os.environ["SLURM_CONF"] = conf
    try:
        yield conf
    finally:
        if previous is None:
            os.environ.pop("SLURM_CONF", None)
        else:
            os.environ["SLURM_CONF"] = previous
        with _users_lock():
            me.unlink(missing_ok=True)
            others = []
            for user in USERS_DIR.iterdir():
                if user.name.isdigit():
                    if _pid_alive(int(user.name)):
                        others.append(user)
                    else:
                        user.unlink(missing_ok=True)  # a pytest process that died without its teardown
            if not others and STARTED_MARKER.exists():
                _script("down")
                STARTED_MARKER.unlink()

"""Atomic checkpoint files, loaded with ``weights_only=True`` (no arbitrary code from a pickle).

Test hook: ``DLBENCH_FAULT=checkpoint-write[@N]`` kills this process (SIGKILL) halfway through writing its N-th
checkpoint temp file (default the first); ``save_atomic(..., fault="cache-write")`` counts as a cache write.
"""

from __future__ import annotations

import io
import os
import warnings
from pathlib import Path

import torch

from dlbench.atomic import crash_midway, fault_due, tmp_path
from dlbench.errors import CacheError

RESUME_KEYS = ("key", "epoch", "model", "optimizer", "epochs", "steps", "grads", "best", "bad_epochs")


class CheckpointError(CacheError):
    """A checkpoint cannot be loaded safely (truncated, garbage, or a pickle that is not plain weights)."""

    def __init__(self, message: str, path: Path):
        super().__init__(message)
        self.path = Path(path)


def save_atomic(obj, path: Path, *, fault: str = "checkpoint-write") -> None:
    """Write to a temporary name in the same folder, fsync, then rename: a crash never leaves half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = tmp_path(path)
    with open(tmp, "wb") as f:
        if fault_due(fault):  # test hook: die like `kill -9` halfway through the temp file
            buf = io.BytesIO()
            torch.save(obj, buf)
            crash_midway(f, buf.getvalue())
        torch.save(obj, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def load(path: Path, map_location="cpu"):
    """Load a checkpoint safely; a damaged file raises CheckpointError (a CacheError) naming it and the fix."""
    try:
        with warnings.catch_warnings():  # a foreign file's pickle protocol is not worth a two-line warning
            warnings.filterwarnings("ignore", message="Detected pickle protocol")
            return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:
        first = (str(exc).strip().splitlines() or [""])[0][:120]
        raise CheckpointError(
            f"checkpoint {path} cannot be loaded safely ({type(exc).__name__}: {first}); "
            "delete it to start that run over",
            path,
        ) from exc


def check_resume_state(path: Path) -> dict:
    """Load a resume checkpoint and check its structure; raise CheckpointError if it cannot be resumed from.

    Besides loading safely, the history must be whole: epochs 0..epoch, each exactly once, so a resumed run
    neither loses nor repeats an epoch.
    """
    state = load(path)

    def bad(why: str):
        return CheckpointError(f"checkpoint {path} is not a dlbench resume state ({why}); delete it", path)

    if not isinstance(state, dict):
        raise bad(f"a {type(state).__name__}, not a dict")
    missing = [k for k in RESUME_KEYS if k not in state]
    if missing:
        raise bad(f"missing {', '.join(missing)}")
    epoch, epochs = state["epoch"], state["epochs"]
    if not isinstance(epoch, int) or not isinstance(epochs, list):
        raise bad("epoch or history of the wrong type")
    seen = [e.get("epoch") if isinstance(e, dict) else None for e in epochs]
    if seen != list(range(epoch + 1)):
        raise bad(f"its history holds epochs {seen}, expected 0..{epoch}")
    return state
